//! Building and running the server: the one place that builds everything
//! (the composition root). The listener is bound here and its address
//! reported, so tests start the real app on port 0; the shutdown signal is
//! passed in, so tests can stop it too.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use url::Url;

use crate::{
    accounts::{Accounts, HashError, Hasher, Throttles, UserCache},
    cluster::{self, Node, Peers, Timing},
    config::Config,
    notify::{Channel, parse_ending},
    rate::Rate,
    realtime::{Realtime, RealtimeSettings, presence::PresenceSettings},
    search_indexer::{SearchIndexer, WriteTurns},
    sessions::{CachedSessions, DatabaseSessions, Endings, SessionPolicy},
    sso::{Sso, SsoConfigError},
    store::{DbError, Store, StoreError},
    tasks::Tasks,
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
    #[error(transparent)]
    SignIn(#[from] SsoConfigError),
    #[error(transparent)]
    Storage(#[from] crate::files::StorageError),
    #[error("VAPID_SUBJECT {0:?} must be a mailto: address or an https: URL")]
    VapidSubject(String),
    #[error("could not start Web Push: {0}")]
    Push(#[from] crate::push::StartError),
}

/// How shutdown spends its 10 s (the contract's bound on SIGTERM): closing
/// the sockets (after committing what is queued), letting HTTP requests in
/// flight finish, and the last commit and the background tasks (a cluster
/// node leaving the cluster).
const SHUTDOWN_STEPS: [Duration; 3] =
    [Duration::from_secs(4), Duration::from_secs(3), Duration::from_secs(3)];

/// Open and private rooms one user may make a minute (the contract's).
const ROOMS_PER_MINUTE: i64 = 10;

pub struct Application {
    listener: tokio::net::TcpListener,
    /// Where metrics are served, if they are.
    metrics_addr: Option<SocketAddr>,
    limits: web::serve::Limits,
    router: axum::Router,
    store: Store,
    public_url: Url,
    realtime: Realtime,
    /// Everything running in the background, owned, for shutdown to wait for.
    tasks: Tasks,
}

impl Application {
    /// Opens (and migrates) the database, binds the listener and wires the app.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let live = &config.live;
        if live.ping_timeout >= live.ping_interval {
            return Err(StartError::PingTimeout { timeout: live.ping_timeout, interval: live.ping_interval });
        }
        // A sign-in setting that cannot work stops the start, before anything is opened.
        let sso = Sso::from_config(&config.sign_in)?;
        // Where files are kept is settled before anything starts: on
        // PostgreSQL without a store every node reaches, the server refuses.
        let storage = crate::files::Storage::open(&config.files, &config.database_url)?;
        let store = Store::connect(&config.database_url, &config.database).await?;
        store.migrate().await?;

        let listener = tokio::net::TcpListener::bind(config.listen_addr)
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
        let open_files = crate::process::open_files::raise_open_files();
        let hasher = Hasher::new(&config.argon2).await?;
        let tasks = Tasks::new();

        // One server, or one node of many: decided here, once, by the engine.
        let peers = match &store {
            Store::Postgres(pool) => {
                Peers::Cluster(Node::join(pool, Timing::from_ttl(live.node_ttl), &tasks).await?)
            }
            Store::Sqlite(_) => Peers::Alone,
        };

        // Sessions: the database's store behind a cache that, on a cluster,
        // is trusted only while this node hears the others' notifications.
        let endings = Endings::default();
        let database_sessions = DatabaseSessions::new(store.clone(), endings.clone());
        let mut cache = CachedSessions::new(database_sessions.clone(), config.cache_ttl, 100_000);
        if let Some(node) = peers.node() {
            cache = cache.trusting(node.listening());
        }
        let session_policy = SessionPolicy { idle: config.session_idle, lifetime: config.session_lifetime };
        let users = UserCache::new(config.cache_ttl);

        // The chat writer and SQLite's search indexer take turns at the write lock.
        let write_turns = WriteTurns::default();
        let realtime = Realtime::start(
            &store,
            &peers,
            cache.clone(),
            realtime_settings(&config, open_files, session_policy),
            write_turns.clone(),
            &tasks,
        )
        .await?;

        // Whoever ends sessions, here or on another node: caches forget
        // first, then sockets close.
        endings.register(Arc::new(cache.clone()));
        endings.register(Arc::new(users.clone()));
        endings.register(realtime.endings());
        if let Some(node) = peers.node() {
            let heard = endings.clone();
            node.on(
                Channel::Revoke,
                Arc::new(move |payload| {
                    let (endings, ending) = (heard.clone(), parse_ending(payload));
                    Box::pin(async move {
                        match ending {
                            Some(ending) => endings.apply(&ending).await,
                            None => tracing::warn!("an unreadable revocation"),
                        }
                    })
                }),
            );
            // Endings may have been missed while the listener was away.
            let (gap_endings, gap_realtime) = (endings.clone(), realtime.clone());
            node.after_gap(Arc::new(move || {
                let (endings, realtime) = (gap_endings.clone(), gap_realtime.clone());
                Box::pin(async move {
                    endings.forget_all();
                    realtime.sweep().await;
                })
            }));
            cluster::listener::start(node);
        }

        let push = crate::push::Push::start(
            &store,
            &realtime,
            &config.push,
            vapid_subject(&config, &public_url)?,
            &tasks,
        )
        .await?;

        let throttles = Throttles::new(
            store.clone(),
            config.login_failure_burst,
            config.login_failure_refill,
            config.auth_attempts_per_minute,
        );
        let files = crate::files::Files::new(storage, store.clone(), upload_limits(&config), &tasks);
        files.start_sweep(&tasks);
        let search_indexer = SearchIndexer::start(&store, write_turns, &tasks);
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
            sessions: database_sessions,
            endings,
            sign_in: web::sso::SignInRoutes::new(sso, &public_url),
            rooms: crate::store::RoomLimits {
                max_rooms: i64::from(config.max_rooms_per_user),
                admins_only: config.room_creation == crate::config::RoomCreation::Admins,
                per_minute: ROOMS_PER_MINUTE,
            },
            files,
            push,
            search_indexer,
        };
        tasks.spawn(housekeeping(
            store.clone(),
            throttles.forget_after(),
            config.session_cleanup_interval,
            tasks.clone(),
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
                let stop = tasks.stop_token().cancelled_owned();
                let bound = scrape.serve(addr, limits.clone(), stop, &tasks).await;
                Some(bound.map_err(|source| StartError::Bind { addr, source })?)
            }
            Some((addr, None)) => {
                tracing::warn!(%addr, "metrics are served by the first app of this process only");
                None
            }
            None => None,
        };
        let router = web::router(state, sessions);
        Ok(Self { listener, metrics_addr, limits, router, store, public_url, realtime, tasks })
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

    /// Serves until `shutdown` resolves. Then, in order, within 10 s
    /// (`SHUTDOWN_STEPS`) whatever the clients do: queued chat messages are
    /// committed and published, sockets are closed with 1001, the listener
    /// stops and requests in flight get a few seconds to finish, the writer
    /// commits anything sent meanwhile, the background tasks stop and are
    /// waited for (a cluster node leaves the cluster), and the pool is closed.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Self { listener, router, store, public_url, realtime, tasks, limits, .. } = self;
        tracing::info!(addr = %listener.local_addr()?, %public_url, engine = ?store.engine(), "listening");
        let [sockets, requests, background] = SHUTDOWN_STEPS;
        let closing = realtime.clone();
        let sockets_closed = async move {
            shutdown.await;
            tracing::info!("shutting down");
            closing.close_sockets(sockets).await;
        };
        web::serve::serve(listener, router, limits, sockets_closed, requests).await;
        let deadline = tokio::time::Instant::now() + background;
        realtime.finish_writes(background / 2).await;
        if !tasks.stop(deadline.saturating_duration_since(tokio::time::Instant::now())).await {
            tracing::warn!("background tasks still running at the shutdown deadline");
        }
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The limits on uploads. An upload's objects are unowned (and swept if
/// still so) after the longest its body may take (`BODY_TIMEOUT`, or
/// `MAX_UPLOAD` at `MIN_BODY_RATE`), and ten minutes more for the rest.
fn upload_limits(config: &Config) -> crate::files::UploadLimits {
    let max_bytes = config.files.max_upload.0;
    let rate = config.min_body_rate.per_second();
    let at_pace = if rate == 0 { Duration::ZERO } else { Duration::from_secs(max_bytes.div_ceil(rate)) };
    crate::files::UploadLimits {
        max_bytes,
        per_hour: config.files.uploads_per_hour,
        unowned_for: config.body_timeout.max(at_pace) + Duration::from_secs(600),
    }
}

/// The WebSocket settings; `open_files` (the process's limit, if known) caps
/// how many connections are accepted.
fn realtime_settings(
    config: &Config,
    open_files: Option<u64>,
    session_policy: SessionPolicy,
) -> RealtimeSettings {
    let live = &config.live;
    let ceiling = open_files.map(crate::process::open_files::connection_ceiling);
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

/// VAPID's `sub`: `VAPID_SUBJECT` (a `mailto:` or https URL), or else the
/// public URL's origin (push services want a way to reach the operator).
fn vapid_subject(config: &Config, public_url: &Url) -> Result<String, StartError> {
    match &config.push.vapid_subject {
        Some(subject) => {
            let valid = match Url::parse(subject) {
                Ok(url) if url.scheme() == "mailto" => url.path().contains('@'),
                Ok(url) if url.scheme() == "https" => url.host().is_some(),
                _ => false,
            };
            if valid { Ok(subject.clone()) } else { Err(StartError::VapidSubject(subject.clone())) }
        }
        None => Ok(public_url.origin().ascii_serialization()),
    }
}

/// Deletes expired sessions, sign-ins through a provider that expired, and
/// throttles that have refilled, until the tasks stop. A failed sweep is logged and retried on the next tick: it
/// must not end the task.
async fn housekeeping(store: Store, throttles_refill: Duration, period: Duration, tasks: Tasks) {
    let mut tick = tokio::time::interval(period.max(Duration::from_secs(1)));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tasks.stopping() => return,
        }
        if let Err(e) = store.delete_expired_sessions().await {
            tracing::warn!(error = %e, "could not delete expired sessions");
        }
        if let Err(e) = store.prune_throttles(throttles_refill).await {
            tracing::warn!(error = %e, "could not prune throttles");
        }
        // Kept an hour past their expiry, so a late return from the provider
        // is told it took too long, not that it never began.
        let forgotten = time::OffsetDateTime::now_utc().unix_timestamp() - 3600;
        if let Err(e) = store.delete_expired_sign_ins(forgotten).await {
            tracing::warn!(error = %e, "could not delete expired sign-ins");
        }
    }
}
