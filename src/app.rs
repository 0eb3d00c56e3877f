//! Building and running the server. The listener is bound here and its
//! address reported, so tests start the real app on port 0; the shutdown
//! signal is passed in, so tests can stop it too.

use std::{future::Future, net::SocketAddr, time::Duration};

use tokio::{net::TcpListener, task::JoinHandle};
use tower_sessions::session_store::ExpiredDeletion;
use url::Url;

use crate::{
    accounts::{Accounts, HashError, Hasher},
    config::Config,
    rate::Rate,
    realtime::{Realtime, RealtimeSettings, RealtimeTasks, presence::PresenceSettings},
    session_cache::CachedSessions,
    store::{DatabaseSessions, DbError, Store, StoreError},
    web::{self, AppState, SessionSettings, origin::PublicOrigin},
};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("could not start the live half: {0}")]
    Realtime(#[from] StoreError),
    #[error("could not listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error("PUBLIC_URL {0} must be an http:// or https:// URL")]
    PublicUrl(Url),
    #[error("PING_TIMEOUT ({timeout:?}) must be shorter than PING_INTERVAL ({interval:?})")]
    PingTimeout { timeout: Duration, interval: Duration },
}

/// How shutdown spends its 10 s (the contract's bound on SIGTERM): closing
/// the sockets (after committing what is queued), letting HTTP requests in
/// flight finish, and stopping the background tasks (the final commit).
const SHUTDOWN_STEPS: [Duration; 3] =
    [Duration::from_secs(4), Duration::from_secs(3), Duration::from_secs(3)];

pub struct Application {
    listener: TcpListener,
    /// Where metrics are served, if they are.
    metrics_addr: Option<SocketAddr>,
    limits: web::serve::Limits,
    router: axum::Router,
    store: Store,
    public_url: Url,
    realtime: Realtime,
    realtime_tasks: RealtimeTasks,
    session_cleanup: JoinHandle<()>,
}

impl Application {
    /// Opens (and migrates) the database, binds the listener and wires the app.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let live = &config.live;
        if live.ping_timeout >= live.ping_interval {
            return Err(StartError::PingTimeout { timeout: live.ping_timeout, interval: live.ping_interval });
        }
        let store = Store::connect(&config.database_url, &config.database).await?;
        store.migrate().await?;

        let listener = TcpListener::bind(config.listen_addr)
            .await
            .map_err(|source| StartError::Bind { addr: config.listen_addr, source })?;
        let local_addr =
            listener.local_addr().map_err(|source| StartError::Bind { addr: config.listen_addr, source })?;
        let public_url = match config.public_url.clone() {
            Some(url) if matches!(url.scheme(), "http" | "https") => url,
            Some(url) => return Err(StartError::PublicUrl(url)),
            None => Url::parse(&format!("http://{local_addr}")).map_err(|_| StartError::Bind {
                addr: local_addr,
                source: std::io::Error::other("listen address is not a URL host"),
            })?,
        };

        // Every socket is a file: take all the process may have.
        let open_files = crate::limits::raise_open_files();
        let hasher = Hasher::new(&config.argon2).await?;
        let database_sessions = store.sessions();
        let cache = CachedSessions::new(database_sessions.clone(), config.cache_ttl, 100_000);
        let session_policy =
            web::activity::SessionPolicy { idle: config.session_idle, lifetime: config.session_lifetime };
        let users = crate::accounts::UserCache::new(config.cache_ttl);
        let (realtime, realtime_tasks, cache) = Realtime::start(
            &store,
            cache,
            users.clone(),
            realtime_settings(&config, open_files, session_policy),
            config.live.node_ttl,
        )
        .await?;
        let throttles = crate::accounts::Throttles::new(
            store.clone(),
            config.login_failure_burst,
            config.login_failure_refill,
            config.auth_attempts_per_minute,
        );
        let state = AppState {
            store: store.clone(),
            accounts: Accounts::new(store.clone(), hasher, users),
            origin: PublicOrigin::of(&public_url),
            realtime: realtime.clone(),
            throttles: throttles.clone(),
            proxies: web::client::TrustedProxies::new(&config.trusted_proxies),
            hosts: web::host::AllowedHosts::new(config.public_url.as_ref(), &config.allowed_hosts),
            session_policy,
            health: web::health::Health::new(store.clone()),
            registration: config.registration,
            sessions: database_sessions.clone(),
        };
        let session_cleanup = tokio::spawn(housekeeping(
            database_sessions,
            store.clone(),
            throttles.forget_after(),
            config.session_cleanup_interval,
        ));
        let sessions =
            SessionSettings { store: cache, policy: session_policy, secure: public_url.scheme() == "https" };
        let limits = web::serve::Limits {
            timeouts: web::deadlines::Timeouts { headers: config.header_timeout, idle: config.idle_timeout },
            body: web::body::BodyDeadline {
                timeout: config.body_timeout,
                min_rate: config.min_body_rate.per_second(),
            },
            pending_per_client: config.max_pending_per_client,
            proxies: web::client::TrustedProxies::new(&config.trusted_proxies),
        };
        // The recorder is installed only when metrics are served: a process
        // has one, and the first app to ask for metrics gets it.
        let metrics_addr = match config.metrics_addr.map(|addr| (addr, crate::metrics::install())) {
            Some((addr, Some(handle))) => {
                let scrape = crate::metrics::Scrape::new(
                    handle,
                    realtime.clone(),
                    store.clone(),
                    state.accounts.hasher().clone(),
                );
                let stop = realtime.shutdown.clone().cancelled_owned();
                let bound = scrape.serve(addr, limits.clone(), stop).await;
                Some(bound.map_err(|source| StartError::Bind { addr, source })?)
            }
            Some((addr, None)) => {
                tracing::warn!(%addr, "metrics are served by the first app of this process only");
                None
            }
            None => None,
        };
        let router = web::router(state, sessions);
        Ok(Self {
            listener,
            metrics_addr,
            limits,
            router,
            store,
            public_url,
            realtime,
            realtime_tasks,
            session_cleanup,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        // The listener was bound successfully, so it has an address.
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Where `/metrics` is served (with `METRICS_ADDR` set).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The live half, for tests that look inside a node.
    pub fn realtime(&self) -> &Realtime {
        &self.realtime
    }

    /// Serves until `shutdown` resolves. Then, in order, within
    /// `SHUTDOWN_DEADLINE` whatever the clients do: queued chat messages are
    /// committed and published, sockets are closed with 1001, the listener
    /// stops and requests in flight get a few seconds to finish, the
    /// sequencer commits anything sent meanwhile, background tasks stop (a
    /// cluster node leaves the cluster), and the pool is closed.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Self {
            listener,
            router,
            store,
            public_url,
            realtime,
            realtime_tasks,
            session_cleanup,
            limits,
            ..
        } = self;
        tracing::info!(addr = %listener.local_addr()?, %public_url, engine = ?store.engine(), "listening");
        let [sockets, requests, tasks] = SHUTDOWN_STEPS;
        let sockets_closed = async move {
            shutdown.await;
            tracing::info!("shutting down");
            realtime.close_sockets(sockets).await;
        };
        web::serve::serve(listener, router, limits, sockets_closed, requests).await;
        realtime_tasks.finish(tasks).await;
        session_cleanup.abort();
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The WebSocket settings; `open_files` (the process's limit, if known) caps
/// how many connections are accepted.
fn realtime_settings(
    config: &Config,
    open_files: Option<u64>,
    session_policy: web::activity::SessionPolicy,
) -> RealtimeSettings {
    let live = &config.live;
    let ceiling = open_files.map(crate::limits::connection_ceiling);
    let max_connections = match (live.max_connections, ceiling) {
        (0, Some(ceiling)) => ceiling,
        (0, None) => usize::MAX,
        (configured, Some(ceiling)) => configured.min(ceiling),
        (configured, None) => configured,
    };
    tracing::info!(
        max_connections,
        "WebSocket connection ceiling (from the open-file limit and MAX_CONNECTIONS)"
    );
    RealtimeSettings {
        presence: PresenceSettings {
            count_quiet: live.count_quiet,
            count_max_delay: live.count_max_delay,
            max_tabs: live.max_sockets_per_user.max(1),
        },
        event_backlog: live.event_backlog,
        chat_rate: Rate { burst: live.chat_burst, per_second: live.chat_rate },
        ping_interval: live.ping_interval,
        ping_timeout: live.ping_timeout,
        max_connections,
        send_timeout: live.send_timeout,
        fanout_window: live.fanout_window,
        edit_window: config.edit_window,
        session_check_interval: live.session_check_interval,
        session_policy,
    }
}

/// The background task that deletes expired sessions and throttles that
/// have refilled. A failed sweep is logged and retried on the next tick: it
/// must not end the task.
async fn housekeeping(
    sessions: DatabaseSessions,
    store: Store,
    throttles_refill: Duration,
    period: Duration,
) {
    let mut tick = tokio::time::interval(period.max(Duration::from_secs(1)));
    loop {
        tick.tick().await;
        if let Err(e) = sessions.delete_expired().await {
            tracing::warn!(error = %e, "could not delete expired sessions");
        }
        if let Err(e) = store.prune_throttles(throttles_refill).await {
            tracing::warn!(error = %e, "could not prune throttles");
        }
    }
}
