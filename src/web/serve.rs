//! Serving a router on HTTP/1.1 connections (what `axum::serve` does),
//! with what it does not do: deadlines on every connection's headers and
//! idle time (see `deadlines`) and on every request's body (see `body`),
//! and a deadline on shutdown, after which the connections still open are
//! dropped, whatever their clients do. Every listener (the public one and
//! the metrics one) is served here, so each has the same deadlines.

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::ConnectInfo,
    http::{HeaderValue, Request, header},
    response::{IntoResponse, Response},
};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

use super::{
    body::{BodyDeadline, Expired, TimedBody},
    client::TrustedProxies,
    deadlines::{Deadlines, Timeouts},
    error::AppError,
    pending::{Pending, PendingLimit},
};

/// What every connection of a listener is held to.
#[derive(Debug, Clone)]
pub struct Limits {
    pub timeouts: Timeouts,
    pub body: BodyDeadline,
    /// Connections one client address may have with a request unfinished
    /// (see `pending`); 0: no limit.
    pub pending_per_client: usize,
    /// Peers not counted: proxies, which hold their own clients to their limits.
    pub proxies: TrustedProxies,
}

/// The I/O each HTTP connection runs on; an upgrade takes the `TcpStream`
/// back out of it.
pub type ConnectionIo = TokioIo<Deadlines<TcpStream>>;

/// Accepts connections until `shutdown`, then stops accepting and gives the
/// requests in flight until `deadline` to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    deadline: Duration,
) {
    // Every connection's task, to wait for at shutdown; and the signal that
    // tells them to finish the request in flight and close.
    let connections = TaskTracker::new();
    let closing = CancellationToken::new();
    let pending_limit = (limits.pending_per_client > 0).then(|| PendingLimit::new(limits.pending_per_client));
    let mut http = http1::Builder::new();
    // No hyper timer: its header timer would also run while a connection
    // idles between requests; `Deadlines` keeps both clocks instead.
    http.keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: wait rather than
                    // spin; the connections that end free some.
                    tracing::warn!(error = %e, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let client = peer.ip().to_canonical();
        let pending = match &pending_limit {
            Some(limit) if !limits.proxies.trusts(client) => match limit.admit(client) {
                Some(pending) => Some(pending),
                None => {
                    // Closed at once, before it costs more than the accept.
                    tracing::debug!(%peer, "too many pending connections from this address: closed");
                    metrics::counter!(crate::metrics::CONNECTIONS_REFUSED, "reason" => "pending")
                        .increment(1);
                    continue;
                }
            },
            _ => None,
        };
        // Chat frames are small and must leave at once: no Nagle delay.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let io: ConnectionIo = TokioIo::new(Deadlines::new(tcp, limits.timeouts, pending.clone()));
        let (router, body) = (router.clone(), limits.body);
        let service = hyper::service::service_fn(move |request| {
            answer(router.clone(), request, peer, body, pending.clone())
        });
        let connection = http.serve_connection(io, service).with_upgrades();
        let closing = closing.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            let mut asked_to_close = false;
            let ended = loop {
                tokio::select! {
                    ended = connection.as_mut() => break ended,
                    _ = closing.cancelled(), if !asked_to_close => {
                        // Finish the request in flight (if any), then close.
                        connection.as_mut().graceful_shutdown();
                        asked_to_close = true;
                    }
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    closing.cancel();
    connections.close();
    if tokio::time::timeout(deadline, connections.wait()).await.is_err() {
        tracing::warn!(?deadline, "connections still open at the shutdown deadline were dropped");
    }
}

/// One request: its body timed from now (its headers are just read), the
/// router's answer, or 408 if the body ran out of time (the handler then got
/// an error reading it and answered as it could). `Connection: close` makes
/// hyper close the connection after the 408 instead of reading on. A
/// request without a body has arrived whole: it is no longer pending.
async fn answer(
    router: Router,
    request: Request<Incoming>,
    peer: SocketAddr,
    deadline: BodyDeadline,
    pending: Option<Arc<Pending>>,
) -> Result<Response, Infallible> {
    let pending = match pending {
        Some(pending) if hyper::body::Body::is_end_stream(request.body()) => {
            pending.release();
            None
        }
        pending => pending,
    };
    let expired = Expired::default();
    let mut request =
        request.map(|body| axum::body::Body::new(TimedBody::new(body, deadline, expired.clone(), pending)));
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = router.oneshot(request).await?;
    if !expired.is_set() {
        return Ok(response);
    }
    let mut response = AppError::TooSlow.into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    Ok(response)
}
