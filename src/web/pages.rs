//! The askama templates (the course's pug views) and their render helper.

use askama::Template;
use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};

use super::error::AppError;

#[derive(Template, Default)]
#[template(path = "home.html")]
pub struct HomePage {
    pub viewer: Option<String>,
    /// Local path to go to after login (already checked by `LocalPath`).
    pub next: String,
    pub login_error: Option<String>,
    pub login_username: String,
    pub register_error: Option<String>,
    pub register_username: String,
}

#[derive(Template)]
#[template(path = "profile.html")]
pub struct ProfilePage {
    pub viewer: Option<String>,
    pub username: String,
}

#[derive(Template)]
#[template(path = "chat.html")]
pub struct ChatPage {
    pub viewer: Option<String>,
    pub username: String,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub viewer: Option<String>,
    pub title: &'a str,
    pub message: &'a str,
}

/// Renders a page with a status. A template that fails to render is a bug
/// of ours: it becomes a logged 500, never a panic.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => AppError::Internal(err.into()).into_response(),
    }
}

/// The plain-text last resort for when the error page itself cannot render.
pub fn render_error(status: StatusCode, title: &str, message: &str) -> Response {
    let page = ErrorPage { viewer: None, title, message };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "the error page failed to render");
            (status, format!("{title}\n\n{message}\n")).into_response()
        }
    }
}
