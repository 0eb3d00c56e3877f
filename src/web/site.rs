//! The pages: home, profile, chat and the 404 page.

use axum::{
    extract::{Query, rejection::QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    error::AppError,
    next::local_path,
    pages::{ChatPage, HomePage, ProfilePage, render},
};
use crate::accounts::{AuthSession, User};

#[derive(Debug, Deserialize)]
pub struct HomeQuery {
    next: Option<String>,
}

pub async fn home(
    auth: AuthSession,
    query: Result<Query<HomeQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query?;
    let page = HomePage {
        viewer: auth.user.map(|u| u.username),
        next: local_path(query.next.as_deref()).unwrap_or_default().to_owned(),
        ..HomePage::default()
    };
    Ok(render(StatusCode::OK, &page))
}

pub async fn profile(auth: AuthSession) -> Response {
    match auth.user {
        Some(User { username, .. }) => {
            render(StatusCode::OK, &ProfilePage { viewer: Some(username.clone()), username })
        }
        None => Redirect::to("/?next=/profile").into_response(),
    }
}

pub async fn chat(auth: AuthSession) -> Response {
    match auth.user {
        Some(User { username, .. }) => {
            render(StatusCode::OK, &ChatPage { viewer: Some(username.clone()), username })
        }
        None => Redirect::to("/?next=/chat").into_response(),
    }
}

pub async fn not_found() -> AppError {
    AppError::NotFound
}
