//! The rooms API under `/api/rooms` and `/api/direct`: JSON in and out,
//! with the session cookie. Every change is made (and every permission
//! checked) in one transaction in the store, which also puts it in the log
//! for every node's sockets; this layer reads the request, says what was
//! wrong in our words, and answers with the room as the user now sees it.
//!
//! A room the user may not see is answered exactly as an id never used.
//! A change is answered once this node's sockets have been given it
//! ([`crate::realtime::Realtime::caught_up`]).

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{
    AppState,
    json::{ApiError, Body},
};
use crate::{
    accounts::AuthSession,
    domain::{DIRECT_MAX, Level, RoomKind, RoomName, Topic, User, Username},
    realtime::wire::frames::RoomJson,
    store::{Actor, RoomError},
};

/// Who asks: the user and their session, or 401.
pub(super) fn asker(auth: &AuthSession) -> Result<(User, Actor), ApiError> {
    match (&auth.user, auth.session.id()) {
        (Some(user), Some(session)) => Ok((user.clone(), Actor::User { user: user.id, session })),
        _ => Err(ApiError::unauthorized()),
    }
}

/// A room id from the path; anything else is a room that does not exist.
fn room_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(not_found)
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, RoomError::NotFound.to_string())
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

impl From<RoomError> for ApiError {
    fn from(e: RoomError) -> Self {
        let status = match &e {
            RoomError::NotFound | RoomError::UnknownUser(_) => StatusCode::NOT_FOUND,
            RoomError::Forbidden | RoomError::AdminsOnly => StatusCode::FORBIDDEN,
            RoomError::Refused(_) | RoomError::NameTaken | RoomError::TooManyRooms(_) => StatusCode::CONFLICT,
            RoomError::TooFast(_) => StatusCode::TOO_MANY_REQUESTS,
            RoomError::NotAllowed => StatusCode::UNAUTHORIZED,
            RoomError::Store(e) => {
                tracing::warn!(error = %e, "a room could not be changed");
                return ApiError::unavailable();
            }
        };
        let retry_after = match e {
            RoomError::TooFast(secs) => Some(secs),
            _ => None,
        };
        ApiError { status, message: e.to_string(), retry_after }
    }
}

/// The room as `user` sees it now.
async fn view(state: &AppState, user: &User, room: i64) -> Result<Response, ApiError> {
    match state.store.room_for(user.id, &user.username, room).await? {
        Some(room) => Ok(Json(RoomJson(&room)).into_response()),
        None => Err(not_found()),
    }
}

async fn created(state: &AppState, user: &User, room: i64) -> Result<Response, ApiError> {
    let mut response = view(state, user, room).await?;
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// `GET /api/rooms`
pub async fn list(State(state): State<AppState>, auth: AuthSession) -> Result<Response, ApiError> {
    let (user, _) = asker(&auth)?;
    let (_, rooms) = state.store.rooms_for(user.id, &user.username).await?;
    #[derive(Serialize)]
    struct Rooms<'a> {
        rooms: Vec<RoomJson<'a>>,
    }
    Ok(Json(Rooms { rooms: rooms.iter().map(RoomJson).collect() }).into_response())
}

/// `GET /api/rooms/ID`
pub async fn get(
    State(state): State<AppState>,
    auth: AuthSession,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (user, _) = asker(&auth)?;
    view(&state, &user, room_id(&id)?).await
}

fn names(people: &[String]) -> Result<Vec<Username>, ApiError> {
    people
        .iter()
        .map(|p| Username::parse(p).map_err(|_| invalid(format!("{p:?} is not a username."))))
        .collect()
}

#[derive(Debug, Deserialize)]
pub struct NewRoom {
    name: Option<String>,
    kind: Option<String>,
    topic: Option<String>,
    people: Option<Vec<String>>,
}

/// `POST /api/rooms`
pub async fn create(
    State(state): State<AppState>,
    auth: AuthSession,
    Body(new): Body<NewRoom>,
) -> Result<Response, ApiError> {
    let (user, actor) = asker(&auth)?;
    let name =
        RoomName::parse(new.name.as_deref().unwrap_or_default()).map_err(|e| invalid(e.to_string()))?;
    let kind = match new.kind.as_deref() {
        Some("open") => RoomKind::Open,
        Some("private") => RoomKind::Private,
        _ => return Err(invalid("A room's kind is open or private (a direct room is made at /api/direct).")),
    };
    let topic = Topic::parse(new.topic.as_deref().unwrap_or_default()).map_err(|e| invalid(e.to_string()))?;
    let people = names(new.people.as_deref().unwrap_or_default())?;
    let room = state.store.create_room(actor, kind, &name, &topic, &people, state.rooms).await?;
    state.realtime.caught_up().await;
    tracing::info!(room, user.id = user.id, kind = kind.as_str(), "room made");
    created(&state, &user, room).await
}

#[derive(Debug, Deserialize)]
pub struct Direct {
    people: Option<Vec<String>>,
}

/// `POST /api/direct`
pub async fn direct(
    State(state): State<AppState>,
    auth: AuthSession,
    Body(direct): Body<Direct>,
) -> Result<Response, ApiError> {
    let (user, actor) = asker(&auth)?;
    let mut people = names(direct.people.as_deref().unwrap_or_default())?;
    people.retain(|p| !p.as_str().eq_ignore_ascii_case(&user.username));
    people.sort_by_key(|p| p.as_str().to_ascii_lowercase());
    people.dedup_by_key(|p| p.as_str().to_ascii_lowercase());
    if people.is_empty() || people.len() > DIRECT_MAX - 1 {
        return Err(invalid(format!("A direct conversation is with 1 to {} other people.", DIRECT_MAX - 1)));
    }
    let (room, new) = state.store.direct_room(actor, &people, state.rooms).await?;
    if new {
        state.realtime.caught_up().await;
    }
    if new { created(&state, &user, room).await } else { view(&state, &user, room).await }
}

#[derive(Debug, Deserialize)]
pub struct Change {
    name: Option<String>,
    topic: Option<String>,
}

/// `PATCH /api/rooms/ID`
pub async fn update(
    State(state): State<AppState>,
    auth: AuthSession,
    Path(id): Path<String>,
    Body(change): Body<Change>,
) -> Result<Response, ApiError> {
    let (user, actor) = asker(&auth)?;
    let room = room_id(&id)?;
    let name = change.name.as_deref().map(RoomName::parse).transpose().map_err(|e| invalid(e.to_string()))?;
    let topic = change.topic.as_deref().map(Topic::parse).transpose().map_err(|e| invalid(e.to_string()))?;
    if name.is_none() && topic.is_none() {
        return Err(invalid("Send a new name, a new topic, or both."));
    }
    state.store.update_room(actor, room, name.as_ref(), topic.as_ref()).await?;
    state.realtime.caught_up().await;
    view(&state, &user, room).await
}

/// `DELETE /api/rooms/ID`: archives it.
pub async fn archive(
    State(state): State<AppState>,
    auth: AuthSession,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (_, actor) = asker(&auth)?;
    state.store.archive_room(actor, room_id(&id)?).await?;
    state.realtime.caught_up().await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/rooms/ID/join`
pub async fn join(
    State(state): State<AppState>,
    auth: AuthSession,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (user, actor) = asker(&auth)?;
    let room = room_id(&id)?;
    state.store.join_room(actor, room, state.rooms).await?;
    state.realtime.caught_up().await;
    view(&state, &user, room).await
}

/// `POST /api/rooms/ID/leave`
pub async fn leave(
    State(state): State<AppState>,
    auth: AuthSession,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (user, actor) = asker(&auth)?;
    state.store.remove_member(actor, room_id(&id)?, user.id).await?;
    state.realtime.caught_up().await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/rooms/ID/members`
pub async fn members(
    State(state): State<AppState>,
    auth: AuthSession,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (user, _) = asker(&auth)?;
    let names = state.store.room_members(user.id, room_id(&id)?).await?;
    #[derive(Serialize)]
    struct Member<'a> {
        username: &'a str,
        online: bool,
    }
    #[derive(Serialize)]
    struct Members<'a> {
        members: Vec<Member<'a>>,
    }
    let members = names.iter().map(|n| Member { username: n, online: state.realtime.is_online(n) }).collect();
    Ok(Json(Members { members }).into_response())
}

#[derive(Debug, Deserialize)]
pub struct Person {
    username: Option<String>,
}

/// `POST /api/rooms/ID/members`
pub async fn add_member(
    State(state): State<AppState>,
    auth: AuthSession,
    Path(id): Path<String>,
    Body(person): Body<Person>,
) -> Result<Response, ApiError> {
    let (_, actor) = asker(&auth)?;
    let room = room_id(&id)?;
    let raw = person.username.unwrap_or_default();
    let name = Username::parse(&raw).map_err(|_| invalid(format!("{raw:?} is not a username.")))?;
    state.store.add_member(actor, room, &name, state.rooms).await?;
    state.realtime.caught_up().await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /api/rooms/ID/members/USERNAME`
pub async fn remove_member(
    State(state): State<AppState>,
    auth: AuthSession,
    Path((id, username)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (_, actor) = asker(&auth)?;
    let room = room_id(&id)?;
    // Someone unknown is no member: the same answer as for one who is not.
    let target = match Username::parse(&username) {
        Ok(name) => state.store.user_named(&name).await?,
        Err(_) => None,
    };
    let Some(target) = target else { return Err(not_found()) };
    state.store.remove_member(actor, room, target.id).await?;
    state.realtime.caught_up().await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
pub struct LevelBody {
    level: Option<String>,
}

/// `PUT /api/rooms/ID/level`
pub async fn level(
    State(state): State<AppState>,
    auth: AuthSession,
    Path(id): Path<String>,
    Body(body): Body<LevelBody>,
) -> Result<Response, ApiError> {
    let (_, actor) = asker(&auth)?;
    let room = room_id(&id)?;
    let level: Level = body
        .level
        .as_deref()
        .unwrap_or_default()
        .parse()
        .map_err(|e: crate::domain::room::InvalidLevel| invalid(e.to_string()))?;
    state.store.set_level(actor, room, level).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
