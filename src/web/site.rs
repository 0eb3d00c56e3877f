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
    pages::{ChatPage, HomePage, ProfilePage, Viewer, render},
};
use crate::{
    accounts::{AuthSession, plausible_token, token_hash, token_matches},
    domain::RegistrationMode,
};

#[derive(Debug, Deserialize)]
pub struct HomeQuery {
    next: Option<String>,
}

pub async fn home(
    State(state): State<AppState>,
    auth: AuthSession,
    query: Result<Query<HomeQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query?;
    let page = HomePage {
        viewer: auth.user.as_ref().map(Viewer::of),
        next: local_path(query.next.as_deref()).unwrap_or_default().to_owned(),
        registration: state.store.registration_mode(state.registration).await?,
        ..HomePage::default()
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
                max_upload: state.files.limits().max_bytes,
            },
        ),
        None => Redirect::to("/?next=/chat").into_response(),
    }
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
            let page = HomePage {
                viewer: auth.user.as_ref().map(Viewer::of),
                registration,
                invite: token,
                ..HomePage::default()
            };
            Ok(render(StatusCode::OK, &page))
        }
        _ => Err(AppError::Missing(NOT_VALID)),
    }
}

pub async fn not_found() -> AppError {
    AppError::NotFound
}
