//! The pages: home, profile, chat (and a room of it), an invite's registration
//! page, and the 404 page.

use axum::{
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    AppState,
    error::AppError,
    next::local_path,
    pages::{ChatPage, HomePage, ProfilePage, SignInButton, Viewer, render},
    sso::{SignInRoutes, problem_message},
};
use crate::{
    accounts::{AuthSession, plausible_token, token_hash, token_matches},
    domain::{LOBBY, RegistrationMode, User},
};

#[derive(Debug, Deserialize)]
pub struct HomeQuery {
    next: Option<String>,
    /// Why a sign-in through a provider did not happen (`sso::Problem`)…
    signin: Option<String>,
    /// …at which provider.
    provider: Option<String>,
}

/// The home page for `viewer`, with the registration mode in force and,
/// for someone not logged in, a button per configured provider carrying
/// `next` (a local path, checked) or the invite the page is for.
pub async fn home_page(
    state: &AppState,
    viewer: Option<Viewer>,
    next: &str,
    invite: &str,
) -> Result<HomePage, AppError> {
    let next = local_path(Some(next)).unwrap_or_default();
    let sign_in = if viewer.is_some() {
        Vec::new()
    } else {
        let routes = &state.sign_in;
        routes
            .providers()
            .map(|provider| SignInButton {
                provider: provider.as_str(),
                label: format!("Log in with {}", routes.label(provider)),
                href: SignInRoutes::href(provider, next, invite),
            })
            .collect()
    };
    Ok(HomePage {
        viewer,
        sign_in,
        next: next.to_owned(),
        registration: state.store.registration_mode(state.registration).await?,
        invite: invite.to_owned(),
        ..HomePage::default()
    })
}

pub async fn home(
    State(state): State<AppState>,
    auth: AuthSession,
    query: Result<Query<HomeQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query?;
    let viewer = auth.user.as_ref().map(Viewer::of);
    let page = HomePage {
        sign_in_error: problem_message(&state.sign_in, query.signin.as_deref(), query.provider.as_deref()),
        ..home_page(&state, viewer, query.next.as_deref().unwrap_or_default(), "").await?
    };
    Ok(render(StatusCode::OK, &page))
}

pub async fn profile(auth: AuthSession) -> Response {
    match auth.user {
        Some(user) => {
            render(StatusCode::OK, &ProfilePage { viewer: Some(Viewer::of(&user)), username: user.username })
        }
        None => Redirect::to("/?next=/profile").into_response(),
    }
}

/// `GET /chat`: the chat page, opened on the lobby.
pub async fn chat(State(state): State<AppState>, auth: AuthSession) -> Result<Response, AppError> {
    match auth.user {
        Some(user) => chat_page(&state, &user, LOBBY).await,
        None => Ok(Redirect::to("/?next=/chat").into_response()),
    }
}

/// A room this user may not see, as on the API: the same answer as an id
/// never used, so the page tells nobody that a private room exists.
const NO_SUCH_ROOM: &str =
    "There is no such room here. It may have been archived, or it is private and you are not in it.";

/// `GET /chat/ID`: the same page, opened on that room (`/chat/1` is the
/// lobby's `/chat`). A room the user may not see is a 404 page, not the
/// lobby: someone who followed a link to a room should learn that it is
/// not there for them, rather than find themselves somewhere else, writing
/// to everyone what they meant for a few.
pub async fn chat_room(
    State(state): State<AppState>,
    auth: AuthSession,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let Some(user) = auth.user else {
        // Only digits go into `next`: anything else is not a room anyway.
        let next =
            if id.bytes().all(|b| b.is_ascii_digit()) { format!("/chat/{id}") } else { "/chat".into() };
        return Ok(Redirect::to(&format!("/?next={next}")).into_response());
    };
    let room = id.parse::<i64>().ok().filter(|id| *id > 0).ok_or(AppError::Missing(NO_SUCH_ROOM))?;
    if room == LOBBY {
        return Ok(Redirect::to("/chat").into_response());
    }
    chat_page(&state, &user, room).await
}

/// The chat page opened on `room`, if this user may see it (a member, or
/// an open room they may look into before joining).
async fn chat_page(state: &AppState, user: &User, room: i64) -> Result<Response, AppError> {
    let (_, rooms) = state.store.rooms_for(user.id, &user.username).await?;
    let open = rooms.iter().find(|r| r.id == room).ok_or(AppError::Missing(NO_SUCH_ROOM))?;
    let heading = match &open.name {
        Some(name) => name.clone(),
        None => open.people.as_deref().unwrap_or_default().join(", "),
    };
    let title = if room == LOBBY { "Chat".to_owned() } else { format!("{heading} · Chat") };
    // The rooms this user made: the page offers them what only a creator
    // (or an admin) may do. The room's JSON does not say who made it.
    let created = rooms
        .iter()
        .filter(|r| r.created_by == Some(user.id))
        .map(|r| r.id.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let page = ChatPage {
        viewer: Some(Viewer::of(user)),
        admin: user.is_admin(),
        username: user.username.clone(),
        edit_window: state.realtime.edit_window().as_secs(),
        room,
        title,
        heading,
        created,
    };
    Ok(render(StatusCode::OK, &page))
}

/// `GET /join/TOKEN`: the registration form, carrying the invite. In closed
/// mode no invite opens it (POST `/register` would refuse), so none is shown.
pub async fn join(
    State(state): State<AppState>,
    auth: AuthSession,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    const NOT_VALID: &str =
        "This invite link is not valid: it was used, revoked or has expired. Ask for a new one.";
    const CLOSED: &str = "Registration is closed: no invite link opens it. Ask an admin of this Lobby if you should have an account.";
    let registration = state.store.registration_mode(state.registration).await?;
    if registration == RegistrationMode::Closed {
        return Err(AppError::Missing(CLOSED));
    }
    if !plausible_token(&token) {
        return Err(AppError::Missing(NOT_VALID));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match state.store.usable_invite(&token_hash(&token), now).await? {
        Some(stored) if token_matches(&token, &stored) => {
            let page = home_page(&state, auth.user.as_ref().map(Viewer::of), "", &token).await?;
            Ok(render(StatusCode::OK, &page))
        }
        _ => Err(AppError::Missing(NOT_VALID)),
    }
}

pub async fn not_found() -> AppError {
    AppError::NotFound
}
