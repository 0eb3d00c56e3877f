//! What every JSON route shares: errors as `{"error": "…"}` in our words,
//! and request bodies read with our words for what was wrong with them.

use axum::{
    Json,
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::de::DeserializeOwned;

/// A JSON error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// For a 429: when to try again, in seconds.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), retry_after: None }
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Log in first.")
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Lobby cannot reach its database right now. Try again in a moment.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(serde_json::json!({ "error": self.message }))).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::warn!(error = %e, "a JSON request could not reach the database");
        Self::unavailable()
    }
}

/// A JSON body, or an error in our words: a body that is not
/// `application/json` is 415, one that is not JSON 400, one of the wrong
/// shape 422.
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => {
                tracing::info!(rejection = %rejection.body_text(), "a JSON body could not be read");
                Err(match rejection {
                    JsonRejection::MissingJsonContentType(_) => ApiError::new(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "Send the body as JSON (Content-Type: application/json).",
                    ),
                    JsonRejection::JsonDataError(_) => ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "The body has the wrong shape: see the fields this request takes.",
                    ),
                    JsonRejection::JsonSyntaxError(_) => {
                        ApiError::new(StatusCode::BAD_REQUEST, "The body is not valid JSON.")
                    }
                    _ => ApiError::new(StatusCode::BAD_REQUEST, "The body could not be read."),
                })
            }
        }
    }
}
