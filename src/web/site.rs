//! The pages: home, profile, chat, an invite's registration page, and the 404 page.

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
use crate::accounts::{AuthSession, plausible_token, token_hash, token_matches};

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

pub async fn chat(State(state): State<AppState>, auth: AuthSession) -> Response {
    match auth.user {
        Some(user) => render(
            StatusCode::OK,
            &ChatPage {
                viewer: Some(Viewer::of(&user)),
                admin: user.is_admin(),
                username: user.username,
                edit_window: state.realtime.edit_window().as_secs(),
            },
        ),
        None => Redirect::to("/?next=/chat").into_response(),
    }
}

/// `GET /join/TOKEN`: the registration form, carrying the invite.
pub async fn join(
    State(state): State<AppState>,
    auth: AuthSession,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    const NOT_VALID: &str =
        "This invite link is not valid: it was used, revoked or has expired. Ask for a new one.";
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
