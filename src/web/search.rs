//! `GET /api/search?q=TEXT&room=ID&before=MSGID&limit=N`: the messages a
//! logged-in user may see that match a query, newest first, each with a
//! snippet of its text with the matches marked. Without `room`: every room
//! the user is a member of now; with it, that room alone, if they may see it
//! (one of theirs, or an open room). Errors are `{"error": "…"}` in our words.

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{AppState, json::ApiError};
use crate::{
    accounts::AuthSession,
    domain::{SearchQuery, search::snippet},
    realtime::wire::MessageJson,
    store::Scope,
};

/// Results per page when `limit` is not given, and the most a page holds.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 50;

/// Parameters arrive as text, so a bad one gets our words, not serde's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    q: Option<String>,
    room: Option<String>,
    before: Option<String>,
    limit: Option<String>,
}

#[derive(Serialize)]
struct Found<'a> {
    message: MessageJson<'a>,
    snippet: String,
}

#[derive(Serialize)]
struct Results<'a> {
    results: Vec<Found<'a>>,
    more: bool,
}

fn bad(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

/// An id: a whole number above 0.
fn id(raw: Option<&str>, what: &str) -> Result<Option<i64>, ApiError> {
    match raw.map(str::parse::<i64>) {
        None => Ok(None),
        Some(Ok(id)) if id > 0 => Ok(Some(id)),
        Some(_) => Err(bad(what)),
    }
}

pub async fn search(
    State(state): State<AppState>,
    auth: AuthSession,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Some(user) = auth.user else { return Err(ApiError::unauthorized()) };
    let Ok(Query(params)) = params else {
        return Err(bad(
            "The parameters are q (what to look for), room (a room id), before (a message id) and limit (1 to 50).",
        ));
    };
    let query = SearchQuery::parse(params.q.as_deref().unwrap_or("")).map_err(|e| bad(&e.to_string()))?;
    let room = id(params.room.as_deref(), "room must be a room id (a whole number above 0).")?;
    let before = id(params.before.as_deref(), "before must be a message id (a whole number above 0).")?;
    let limit = match params.limit.as_deref().map(str::parse::<usize>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => return Err(bad("limit must be a whole number from 1 to 50.")),
    };
    let scope = match room {
        // One question for every read path: may this user see this room now?
        Some(room) if state.store.can_see(user.id, room).await? => Scope::Room(room),
        Some(_) => return Err(ApiError::new(StatusCode::NOT_FOUND, "There is no such room.")),
        None => Scope::MemberOf(user.id),
    };
    state.search_indexer.before_search().await;
    let hits = state.store.search(&query, scope, before, limit).await?;
    let results = hits
        .messages
        .iter()
        .map(|message| Found { message: MessageJson(message), snippet: snippet(&message.body, &query) })
        .collect();
    Ok(Json(Results { results, more: hits.more }).into_response())
}
