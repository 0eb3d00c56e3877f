//! `GET /api/messages?room=ID&before=ID&limit=N` (or `&around=ID`):
//! scrollback of a room the user may see (without `room`: the lobby), for a
//! logged-in user. Answers are JSON, errors too (`{"error": "…"}`), in our words.

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::{accounts::AuthSession, domain::LOBBY, realtime::wire::MessageJson};

/// Messages per page when `limit` is not given, and the most a page holds.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 100;

/// Parameters arrive as text, so a bad one gets our words, not serde's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scrollback {
    room: Option<String>,
    before: Option<String>,
    around: Option<String>,
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
    State(state): State<AppState>,
    auth: AuthSession,
    query: Result<Query<Scrollback>, QueryRejection>,
) -> Response {
    let Some(user) = auth.user else {
        return refused(StatusCode::UNAUTHORIZED, "Log in first.");
    };
    let Ok(Query(query)) = query else {
        return refused(
            StatusCode::BAD_REQUEST,
            "The parameters are room (a room id), before or around (a message id) and limit (1 to 100).",
        );
    };
    // Ids are whole numbers above 0; `Err` names what was not.
    let id = |raw: Option<&str>, what: &'static str| match raw.map(str::parse::<i64>) {
        None => Ok(None),
        Some(Ok(id)) if id > 0 => Ok(Some(id)),
        Some(_) => Err(what),
    };
    let room = match id(query.room.as_deref(), "room must be a room id (a whole number above 0).") {
        Ok(room) => room.unwrap_or(LOBBY),
        Err(what) => return refused(StatusCode::BAD_REQUEST, what),
    };
    let around = match id(query.around.as_deref(), "around must be a message id (a whole number above 0).") {
        Ok(around) => around,
        Err(what) => return refused(StatusCode::BAD_REQUEST, what),
    };
    if around.is_some() && query.before.is_some() {
        return refused(StatusCode::BAD_REQUEST, "Ask for messages before an id, or around one, not both.");
    }
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
    // One question for every read path: may this user see this room now?
    match state.store.can_see(user.id, room).await {
        Ok(true) => {}
        Ok(false) => return refused(StatusCode::NOT_FOUND, "There is no such room."),
        Err(e) => return unavailable(e),
    }
    let page = match around {
        Some(around) => match state.store.messages_around(room, around, limit).await {
            Ok(Some(page)) => Ok(page),
            Ok(None) => return refused(StatusCode::NOT_FOUND, "There is no such message in this room."),
            Err(e) => Err(e),
        },
        None => state.store.messages_before(room, before, limit).await,
    };
    match page {
        Ok(page) => Json(Page { messages: page.messages.iter().map(MessageJson).collect(), more: page.more })
            .into_response(),
        Err(e) => unavailable(e),
    }
}

fn unavailable(e: crate::store::StoreError) -> Response {
    tracing::warn!(error = %e, "scrollback failed");
    refused(StatusCode::SERVICE_UNAVAILABLE, "The messages cannot be read right now. Try again in a moment.")
}
