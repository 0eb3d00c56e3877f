//! The one error type of the web layer. 4xx answers carry a message the user
//! can act on; 5xx details are logged with their whole chain and the user
//! sees a plain apology.

use axum::{
    extract::rejection::{FormRejection, QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};

use super::pages::render_error;
use crate::accounts::{Accounts, AccountsError};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("page not found")]
    NotFound,
    /// A 404 that says what was not there.
    #[error("{0}")]
    Missing(&'static str),
    #[error("cross-origin request refused")]
    CrossOrigin,
    /// The request's body did not arrive in time (408; the connection closes).
    #[error("the request's body came too slowly")]
    TooSlow,
    /// The request named a host that is not ours (421).
    #[error("a request for another host")]
    WrongHost,
    /// Logged in, but not allowed this (a member at `/admin`).
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{message}")]
    BadRequest { status: StatusCode, message: String },
    /// The database (or the session store in it) did not answer: try later.
    #[error("the database is unavailable")]
    Unavailable(#[source] BoxError),
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl From<crate::store::StoreError> for AppError {
    fn from(err: crate::store::StoreError) -> Self {
        Self::Unavailable(err.into())
    }
}

impl From<AccountsError> for AppError {
    fn from(err: AccountsError) -> Self {
        match err {
            AccountsError::Database(e) => Self::Unavailable(e.into()),
            AccountsError::Hashing(e) => Self::Internal(e.into()),
        }
    }
}

impl From<axum_login::Error<Accounts>> for AppError {
    fn from(err: axum_login::Error<Accounts>) -> Self {
        match err {
            // Session errors come from the session store, which is the database.
            axum_login::Error::Session(e) => Self::Unavailable(e.into()),
            axum_login::Error::Backend(e) => e.into(),
        }
    }
}

impl From<tower_sessions::session::Error> for AppError {
    fn from(err: tower_sessions::session::Error) -> Self {
        Self::Unavailable(err.into())
    }
}

/// What was wrong with a form, in our words (serde's, "Failed to
/// deserialize form body: duplicate field `username`", are for us, not the
/// person at the keyboard); the details go to the log.
impl From<FormRejection> for AppError {
    fn from(rejection: FormRejection) -> Self {
        tracing::info!(rejection = %rejection.body_text(), "a form could not be read");
        let message = match &rejection {
            FormRejection::InvalidFormContentType(_) => {
                "Send the form as a web form does (application/x-www-form-urlencoded)."
            }
            FormRejection::FailedToDeserializeForm(_) | FormRejection::FailedToDeserializeFormBody(_) => {
                "The form could not be read: send each field once, as text."
            }
            FormRejection::BytesRejection(_) => "The form is too large or was cut off.",
            _ => "The form could not be read.",
        };
        Self::BadRequest { status: rejection.status(), message: message.to_owned() }
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        tracing::info!(rejection = %rejection.body_text(), "a query string could not be read");
        Self::BadRequest {
            status: StatusCode::BAD_REQUEST,
            message: "The address has a parameter Lobby cannot read.".to_owned(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            Self::NotFound => {
                (StatusCode::NOT_FOUND, "Page not found", "There is nothing at this address.".to_owned())
            }
            Self::Missing(message) => (StatusCode::NOT_FOUND, "Not found", (*message).to_owned()),
            Self::Forbidden(message) => (StatusCode::FORBIDDEN, "Not allowed", (*message).to_owned()),
            Self::CrossOrigin => (
                StatusCode::FORBIDDEN,
                "Request refused",
                "This request came from another site, so it was not carried out.".to_owned(),
            ),
            Self::TooSlow => (
                StatusCode::REQUEST_TIMEOUT,
                "Too slow",
                "The request took too long to arrive, so it was not carried out. Please try again.".to_owned(),
            ),
            Self::WrongHost => (
                StatusCode::MISDIRECTED_REQUEST,
                "Wrong address",
                "This server does not answer for that host name. Use its address as the people who run it gave it.".to_owned(),
            ),
            Self::BadRequest { status, message } => (*status, "Bad request", message.clone()),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Lobby cannot reach its database right now. Please try again in a moment.".to_owned(),
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Sorry, something went wrong on our side. Please try again.".to_owned(),
            ),
        };
        if status.is_server_error() {
            tracing::error!(error = %error_chain(&self), "request failed");
        }
        render_error(status, title, &message)
    }
}

/// "outer: inner: innermost", so a log line explains itself.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn chains_are_printed_whole() {
        let err = AppError::Unavailable("disk on fire".into());
        assert_eq!(error_chain(&err), "the database is unavailable: disk on fire");
        assert!(err.source().is_some());
    }
}
