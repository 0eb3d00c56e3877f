//! `GET /ws`: the upgrade, for authenticated sessions from our own origin.
//!
//! The handshake is done here rather than by axum's `ws` extractor so the
//! connection gets the protocol library's own stream, which can send raw
//! frames: a long `chat history` goes out fragmented (see
//! `realtime::connection::PIECE` for why that matters for memory).

use axum::{
    extract::{Query, Request, State, rejection::QueryRejection},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::{Role, WebSocketConfig};

use super::{origin::PublicOrigin, serve::ConnectionIo};
use crate::{
    accounts::AuthSession,
    realtime::{
        Realtime,
        connection::{self, Opened},
        presence::{Identity, Refused},
        protocol::MAX_FRAME_BYTES,
    },
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
    query: Result<Query<WsQuery>, QueryRejection>,
    mut request: Request,
) -> Response {
    let headers = request.headers();
    if !origin.allows_upgrade(headers) {
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
    let accept = match accept_key(request.method(), headers) {
        Ok(accept) => accept,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(on_upgrade) = request.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return (StatusCode::UPGRADE_REQUIRED, "This connection cannot be upgraded.").into_response();
    };
    if !realtime.has_room() {
        tracing::warn!(connections = realtime.presence.here(), "connection ceiling reached: upgrade refused");
        return (StatusCode::SERVICE_UNAVAILABLE, "The server is full. Try again in a moment.")
            .into_response();
    }

    let settings = realtime.settings;
    let who = Identity { user_id: user.id, username: user.username.into(), session };
    // Subscribed before the seat is taken, so the socket hears its own join.
    let events = realtime.events.subscribe();
    let (seat, count) = match realtime.presence.admit(who).await {
        Ok(admitted) => admitted,
        Err(Refused::TooManyTabs) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                "This account has too many open connections. Close a tab.",
            )
                .into_response();
        }
        Err(Refused::Unavailable) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "The server cannot take connections right now. Try again in a moment.",
            )
                .into_response();
        }
    };
    let opened = Opened { events, seat, count, session: realtime.revocation.watch(session), since };
    let config = WebSocketConfig::default()
        .read_buffer_size(settings.read_buffer)
        .write_buffer_size(settings.write_buffer)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    tokio::spawn(async move {
        match on_upgrade.await {
            // Our own server's connection: take the TCP stream back out of its
            // HTTP deadlines (the socket has pings instead) and out of hyper's
            // boxed upgrade type, with whatever the client sent already.
            Ok(upgraded) => match upgraded.downcast::<ConnectionIo>() {
                Ok(parts) => {
                    let tcp = parts.io.into_inner().into_inner();
                    let socket = WebSocketStream::from_partially_read(
                        tcp,
                        parts.read_buf.to_vec(),
                        Role::Server,
                        Some(config),
                    )
                    .await;
                    connection::run(socket, realtime, opened).await;
                }
                Err(upgraded) => {
                    let socket =
                        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                            .await;
                    connection::run(socket, realtime, opened).await;
                }
            },
            Err(e) => tracing::debug!(error = %e, "the upgrade did not complete"),
        }
    });

    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let out = response.headers_mut();
    out.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    out.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    out.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    response
}

/// Checks the handshake request (RFC 6455, 4.2.1) and derives the accept key.
fn accept_key(method: &Method, headers: &HeaderMap) -> Result<HeaderValue, (StatusCode, &'static str)> {
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if method != Method::GET {
        return Err((StatusCode::METHOD_NOT_ALLOWED, "The WebSocket handshake is a GET."));
    }
    if !has(header::CONNECTION, "upgrade") || !has(header::UPGRADE, "websocket") {
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            "This address only speaks WebSocket (Upgrade: websocket).",
        ));
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        return Err((StatusCode::BAD_REQUEST, "Sec-WebSocket-Version must be 13."));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or((StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing."))?;
    HeaderValue::from_str(&tungstenite::handshake::derive_accept_key(key.as_bytes()))
        .map_err(|_| (StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is invalid."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_example_key() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        headers.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(accept_key(&Method::GET, &headers).unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(accept_key(&Method::POST, &headers).unwrap_err().0, StatusCode::METHOD_NOT_ALLOWED);
        headers.remove(header::SEC_WEBSOCKET_KEY);
        assert_eq!(accept_key(&Method::GET, &headers).unwrap_err().0, StatusCode::BAD_REQUEST);
        headers.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        assert_eq!(accept_key(&Method::GET, &headers).unwrap_err().0, StatusCode::UPGRADE_REQUIRED);
    }
}
