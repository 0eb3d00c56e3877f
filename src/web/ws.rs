//! `GET /ws`: the upgrade, for authenticated sessions from our own origin.

use axum::{
    extract::{
        Query, State, WebSocketUpgrade, rejection::QueryRejection, ws::rejection::WebSocketUpgradeRejection,
    },
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::origin::PublicOrigin;
use crate::{
    accounts::AuthSession,
    realtime::{Realtime, connection, hub::Identity, protocol::MAX_FRAME_BYTES},
};

#[derive(Debug, Deserialize)]
pub struct WsQuery {
    /// The id of the last message the client showed.
    since: Option<i64>,
}

pub async fn upgrade(
    State(realtime): State<Realtime>,
    State(origin): State<PublicOrigin>,
    auth: AuthSession,
    headers: HeaderMap,
    query: Result<Query<WsQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if !origin.allows_upgrade(&headers) {
        return (StatusCode::FORBIDDEN, "Cross-origin WebSocket connections are refused.").into_response();
    }
    let (Some(user), Some(session)) = (auth.user, auth.session.id()) else {
        return (StatusCode::UNAUTHORIZED, "Log in first: the live connection needs a session.")
            .into_response();
    };
    let since = match query {
        Ok(Query(q)) => q.since,
        Err(_) => {
            return (StatusCode::BAD_REQUEST, "since must be a message id (an integer).").into_response();
        }
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    if !realtime.hub.has_room() {
        tracing::warn!(
            connections = realtime.hub.connections(),
            "connection ceiling reached: upgrade refused"
        );
        return (StatusCode::SERVICE_UNAVAILABLE, "The server is full. Try again in a moment.")
            .into_response();
    }
    let settings = realtime.settings;
    let who = Identity { user_id: user.id, username: user.username.into(), session };
    upgrade
        .read_buffer_size(settings.read_buffer)
        .write_buffer_size(settings.write_buffer)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| connection::run(socket, realtime, who, since))
}
