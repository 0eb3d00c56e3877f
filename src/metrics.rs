//! Prometheus metrics: `GET /metrics` on a listener of its own,
//! `METRICS_ADDR` (off when unset), so they are never on the public port.
//!
//! Events are counted where they happen, through the `metrics` facade
//! (which does nothing when no recorder is installed); gauges that describe
//! a state (connections, users online, the database pool, the hashing queue)
//! are read when scraped. The names are all here, in one place.

use std::{net::SocketAddr, sync::atomic::Ordering::Relaxed, time::Duration};

use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::{
    accounts::Hasher,
    realtime::{Realtime, inbox},
    store::Store,
    web::serve::Limits,
};

/// Connections closed at once on arrival, by reason: `pending` when the
/// client address already had MAX_PENDING_PER_CLIENT unfinished (counter).
pub const CONNECTIONS_REFUSED: &str = "lobby_connections_refused_total";
/// Open authenticated WebSockets on this node (gauge).
pub const CONNECTIONS: &str = "lobby_connections";
/// Users with at least one open socket, on the whole cluster (gauge).
pub const USERS_ONLINE: &str = "lobby_users_online";
/// Chat messages committed by this node (counter).
pub const MESSAGES_COMMITTED: &str = "lobby_messages_committed_total";
/// Messages per committed batch, and how long the commit took (histograms).
pub const COMMIT_BATCH_SIZE: &str = "lobby_commit_batch_size";
pub const COMMIT_SECONDS: &str = "lobby_commit_seconds";
/// Sockets caught up from the history after falling behind (counter).
pub const CATCH_UPS: &str = "lobby_catch_ups_total";
/// Frames given to sockets' inboxes (one per socket a change reaches), and
/// the times an inbox woke its socket's task to write, and the frames
/// written into sockets directly, without their tasks (counters).
pub const INBOX_FRAMES: &str = "lobby_inbox_frames_total";
pub const INBOX_WAKES: &str = "lobby_inbox_wakes_total";
pub const DIRECT_FRAMES: &str = "lobby_direct_frames_total";
/// Sockets closed, by close code (or `client` when the client closed, `gone`
/// when it vanished) (counter).
pub const SOCKET_CLOSES: &str = "lobby_socket_closes_total";
/// Client frames refused, by the error code sent back (counter).
pub const REFUSED_FRAMES: &str = "lobby_refused_frames_total";
/// Logins and registrations, by outcome (counters).
pub const LOGINS: &str = "lobby_logins_total";
pub const REGISTRATIONS: &str = "lobby_registrations_total";
/// Sign-ins (and links) through a provider, by provider and outcome (counter).
pub const SSO_SIGN_INS: &str = "lobby_sso_sign_ins_total";
/// Web Push attempts, by outcome: `sent`, `gone` (404/410, the subscription
/// deleted), `failed` (to be retried or given up), `refused` (counter).
pub const PUSHES: &str = "lobby_pushes_total";
/// Passwords waiting for a hashing thread (gauge).
pub const HASH_QUEUE: &str = "lobby_hash_queue";
/// Pooled database connections, busy or idle (gauge), and the pool's size.
pub const DB_CONNECTIONS: &str = "lobby_db_connections";
pub const DB_POOL_SIZE: &str = "lobby_db_pool_size";

/// How long a scrape in flight at shutdown may take to finish.
const SCRAPE_DEADLINE: Duration = Duration::from_secs(1);

/// What a scrape reads besides the recorded events.
#[derive(Clone)]
pub struct Scrape {
    handle: PrometheusHandle,
    realtime: Realtime,
    store: Store,
    hasher: Hasher,
}

/// Installs the process's recorder; `None` if one is installed already (a
/// second app in one process, as in tests, shares the first's).
pub fn install() -> Option<PrometheusHandle> {
    let seconds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
    let sizes = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 512.0];
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(metrics_exporter_prometheus::Matcher::Full(COMMIT_SECONDS.into()), &seconds)
        .and_then(|b| {
            b.set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(COMMIT_BATCH_SIZE.into()),
                &sizes,
            )
        })
        .ok()?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).ok()?;
    Some(handle)
}

impl Scrape {
    pub fn new(handle: PrometheusHandle, realtime: Realtime, store: Store, hasher: Hasher) -> Self {
        Self { handle, realtime, store, hasher }
    }

    /// Binds `addr`; serves `GET /metrics` there until `shutdown`, in
    /// `tasks`, through the same loop as the public listener, with the same
    /// deadlines: a private port is no reason to let a client hold a
    /// connection for ever.
    pub async fn serve(
        self,
        addr: SocketAddr,
        limits: Limits,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
        tasks: &crate::tasks::Tasks,
    ) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let router = Router::new().route("/metrics", get(metrics)).with_state(self);
        tasks.spawn(crate::web::serve::serve(listener, router, limits, shutdown, SCRAPE_DEADLINE));
        tracing::info!(%bound, "metrics at /metrics");
        Ok(bound)
    }
}

async fn metrics(State(scrape): State<Scrape>) -> impl IntoResponse {
    metrics::gauge!(CONNECTIONS).set(scrape.realtime.connections_here() as f64);
    metrics::gauge!(USERS_ONLINE).set(scrape.realtime.online_users() as f64);
    let (size, idle) = scrape.store.pool_use();
    metrics::gauge!(DB_CONNECTIONS, "state" => "busy").set((size as usize).saturating_sub(idle) as f64);
    metrics::gauge!(DB_CONNECTIONS, "state" => "idle").set(idle as f64);
    metrics::gauge!(DB_POOL_SIZE).set(size as f64);
    metrics::gauge!(HASH_QUEUE).set(scrape.hasher.queued() as f64);
    metrics::counter!(INBOX_FRAMES).absolute(inbox::PUSHED.load(Relaxed));
    metrics::counter!(INBOX_WAKES).absolute(inbox::WAKES.load(Relaxed));
    metrics::counter!(DIRECT_FRAMES).absolute(inbox::DIRECT.load(Relaxed));
    scrape.handle.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], scrape.handle.render())
}
