//! `GET /api/messages?before=ID&limit=N`: scrollback, for a logged-in user.
//! Answers are JSON, errors too (`{"error": "…"}`), in our words.

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use crate::{accounts::AuthSession, realtime::wire::MessageJson, store::Store};

/// Messages per page when `limit` is not given, and the most a page holds.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 100;

/// Parameters arrive as text, so a bad one gets our words, not serde's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scrollback {
    before: Option<String>,
    limit: Option<String>,
}

#[derive(Serialize)]
struct Page<'a> {
    messages: Vec<MessageJson<'a>>,
    more: bool,
}

fn refused(status: StatusCode, error: &str) -> Response {
    (status, Json(serde_json::json!({ "error": error }))).into_response()
}

pub async fn messages(
    State(store): State<Store>,
    auth: AuthSession,
    query: Result<Query<Scrollback>, QueryRejection>,
) -> Response {
    if auth.user.is_none() {
        return refused(StatusCode::UNAUTHORIZED, "Log in first.");
    }
    let Ok(Query(query)) = query else {
        return refused(
            StatusCode::BAD_REQUEST,
            "The parameters are before (a message id) and limit (1 to 100).",
        );
    };
    let before = match query.before.as_deref().map(str::parse::<i64>) {
        None => None,
        Some(Ok(id)) if id > 0 => Some(id),
        Some(_) => {
            return refused(StatusCode::BAD_REQUEST, "before must be a message id (a whole number above 0).");
        }
    };
    let limit = match query.limit.as_deref().map(str::parse::<usize>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => return refused(StatusCode::BAD_REQUEST, "limit must be a whole number from 1 to 100."),
    };
    match store.messages_before(before, limit).await {
        Ok(page) => Json(Page { messages: page.messages.iter().map(MessageJson).collect(), more: page.more })
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "scrollback failed");
            refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "The messages cannot be read right now. Try again in a moment.",
            )
        }
    }
}
