//! `GET /ws`: the upgrade, for authenticated sessions from our own origin.
//!
//! The handshake (`handshake`) is checked here rather than by axum's `ws`
//! extractor so the connection runs on our own WebSocket code
//! (`crate::websocket`), over the bare TCP stream. Admitting the socket is
//! the live half's (`Realtime::open`); this only maps its refusals to
//! HTTP statuses.

use std::future::Future;

use axum::{
    extract::{Query, Request, State, rejection::QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use hyper::upgrade::OnUpgrade;
use serde::Deserialize;

use super::{handshake, origin::PublicOrigin, serve::ConnectionIo};
use crate::{
    accounts::AuthSession,
    realtime::{Realtime, Refused, connection::WebSocket, presence::Identity, wire::MAX_FRAME_BYTES},
    websocket::Socket,
};

/// When a user with every socket they may have can try again: a tab closed
/// elsewhere frees a seat at once, so no more than a few seconds (every 429
/// says when to retry).
const TABS_RETRY_AFTER: &str = "5";

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
    let accept = match handshake::accept(request.method(), request.version(), headers) {
        Ok(accept) => accept,
        Err(bad) => return bad.into_response(),
    };
    let since = match query {
        Ok(Query(q)) => q.since,
        Err(_) => {
            return (StatusCode::BAD_REQUEST, "since must be a message id (an integer).").into_response();
        }
    };
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        return (StatusCode::UPGRADE_REQUIRED, "This connection cannot be upgraded.").into_response();
    };
    let who = Identity { user_id: user.id, username: user.username.into(), session };
    let opened = match realtime.open(who, since).await {
        Ok(opened) => opened,
        Err(refused) => return refusal(refused),
    };
    when_upgraded(on_upgrade, MAX_FRAME_BYTES, move |socket| opened.run(socket));
    switching_protocols(accept)
}

/// A socket that was not opened, as an HTTP status the client can read.
fn refusal(refused: Refused) -> Response {
    let (status, words) = match refused {
        Refused::Full => (StatusCode::SERVICE_UNAVAILABLE, "The server is full. Try again in a moment."),
        Refused::TooManyTabs => {
            let words = "This account has too many open connections. Close a tab.";
            let retry = [(header::RETRY_AFTER, HeaderValue::from_static(TABS_RETRY_AFTER))];
            return (StatusCode::TOO_MANY_REQUESTS, retry, words).into_response();
        }
        Refused::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The server cannot take connections right now. Try again in a moment.",
        ),
    };
    (status, words).into_response()
}

/// `GET /autobahn` (the `autobahn` feature): the conformance suite's echo,
/// upgraded exactly as `/ws` is (no session asked), on the same socket code
/// but with a limit the suite's 16 MiB messages fit in.
#[cfg(feature = "autobahn")]
pub async fn autobahn(State(realtime): State<Realtime>, mut request: Request) -> Response {
    let accept = match handshake::accept(request.method(), request.version(), request.headers()) {
        Ok(accept) => accept,
        Err(bad) => return bad.into_response(),
    };
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        return (StatusCode::UPGRADE_REQUIRED, "This connection cannot be upgraded.").into_response();
    };
    let send_timeout = realtime.settings().send_timeout;
    when_upgraded(on_upgrade, 16 * 1024 * 1024, move |socket| {
        crate::realtime::connection::echo(socket, send_timeout)
    });
    switching_protocols(accept)
}

/// Once the 101 is out, runs `socket` over the connection's own TCP stream:
/// taken back out of its HTTP deadlines (the socket has pings instead) and
/// out of hyper's boxed upgrade type, with whatever the client sent already.
/// No frame or message from the client may be over `max_message` bytes.
pub fn when_upgraded<F, Fut>(on_upgrade: OnUpgrade, max_message: usize, socket: F)
where
    F: FnOnce(WebSocket) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => return tracing::debug!(error = %e, "the upgrade did not complete"),
        };
        match upgraded.downcast::<ConnectionIo>() {
            Ok(parts) => {
                let tcp = parts.io.into_inner().into_inner();
                // The bytes after the handshake, copied out: `read_buf` shares
                // hyper's whole read buffer (8 KiB), which would otherwise
                // stay allocated for the socket's life.
                let early = parts.read_buf.to_vec();
                drop(parts.read_buf);
                // A task of its own: this one (and what it held for the
                // upgrade) is freed, and the socket's task is no bigger
                // than the socket's future.
                tokio::spawn(socket(Socket::new(tcp, early, max_message)));
            }
            // Only our own server (web::serve) serves this router.
            Err(_) => tracing::error!("an upgraded connection that web::serve did not accept"),
        }
    });
}

/// `101 Switching Protocols`, with the accept key.
pub fn switching_protocols(accept: HeaderValue) -> Response {
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let out = response.headers_mut();
    out.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    out.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    out.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    response
}
