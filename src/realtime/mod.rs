//! The live half: the session-gated WebSocket, the user count, joins and
//! leaves, and durable chat.
//!
//! - [`connection`]: the task that owns one socket.
//! - [`presence`]: counts and announcements (one server, or a cluster).
//! - [`revocation`]: ended sessions close their sockets (one server, or a cluster).
//! - [`chat`]: the log's writer, its reader, and the recent history.
//! - [`stream`]: the event stream every socket follows.
//! - [`typing`]: who is typing, throttled and coalesced.
//! - [`markers`]: each user's read marker, stored and shown to their tabs.
//! - [`beat`]: the one ping clock.
//! - [`limits`]: each user's chat allowance on this node.
//! - [`protocol`]: the frames on the wire.

pub mod beat;
pub mod chat;
pub mod connection;
pub mod limits;
pub mod markers;
pub mod presence;
pub mod protocol;
pub mod revocation;
pub mod stream;
pub mod typing;

use std::{sync::Arc, time::Duration};

use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{
    cluster::{
        Timing, Wakeups,
        listener::{self, Listener},
    },
    rate::Rate,
    session_cache::Sessions,
    store::{Store, StoreError, cluster::ClusterStore},
};
use chat::{
    history::History,
    sequencer::Sequencer,
    tail::{Published, Tail},
};
use limits::ChatLimits;
use presence::{Presence, PresenceSettings};
use revocation::{ClusterRevocation, Core, Revocation};
use stream::Events;

#[derive(Debug, Clone, Copy)]
pub struct RealtimeSettings {
    pub presence: PresenceSettings,
    /// How many events a socket may fall behind before it is caught up from
    /// the history (or closed with 1013).
    pub event_backlog: usize,
    pub chat_rate: Rate,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// The most sockets this node holds.
    pub max_connections: usize,
    /// A write to a socket that takes longer than this ends it.
    pub send_timeout: Duration,
    /// Under load, the chat log is read (and published) at most once per this.
    pub fanout_window: Duration,
    /// How long after sending a message its author may edit it.
    pub edit_window: Duration,
    /// How often live sockets' sessions are checked for expiry (and, being
    /// open, kept from idling out).
    pub session_check_interval: Duration,
    pub session_policy: crate::web::activity::SessionPolicy,
}

/// A handle to everything a socket needs: one pointer, so cheap to clone
/// and small to hold (every socket's task holds one for its whole life).
#[derive(Clone)]
pub struct Realtime(Arc<Parts>);

impl std::ops::Deref for Realtime {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// What a `Realtime` points to.
pub struct Parts {
    pub presence: Presence,
    pub revocation: Revocation,
    pub events: Events,
    pub sequencer: Sequencer,
    pub history: Arc<History>,
    pub limits: ChatLimits,
    pub typing: typing::Typing,
    pub markers: markers::ReadMarkers,
    /// One permit per socket this node may hold (`max_connections`).
    pub permits: Arc<tokio::sync::Semaphore>,
    /// Cancelled at shutdown: every socket closes with 1001.
    pub shutdown: CancellationToken,
    pub settings: RealtimeSettings,
    published: Published,
}

/// The background tasks, for the second half of shutdown.
pub struct RealtimeTasks {
    sequencer: JoinHandle<()>,
    /// Tells the sequencer to commit what is queued and end.
    finish: CancellationToken,
    /// Stops the readers, clocks, sweeps and (on a cluster) the listener and
    /// heartbeat, once the sockets are gone.
    stop: CancellationToken,
    stopped: Vec<JoinHandle<()>>,
}

impl Realtime {
    /// Starts the live half on `store`. On PostgreSQL this node joins the
    /// cluster; the session cache is then trusted only while the node hears
    /// the cluster's notifications (the returned cache says so).
    pub async fn start(
        store: &Store,
        cache: Sessions,
        users: crate::accounts::UserCache,
        settings: RealtimeSettings,
        node_ttl: Duration,
    ) -> Result<(Self, RealtimeTasks, Sessions), StoreError> {
        let shutdown = CancellationToken::new();
        let stop = CancellationToken::new();
        let events = Events::new(settings.event_backlog);
        let tail = store.log_tail(chat::history::KEEP, chat::history::NEWEST).await?;
        let position = tail.head;
        let history = Arc::new(History::from_log(tail));
        let wake = Arc::new(Wakeups::default());
        let mut stopped = Vec::new();

        let cluster_store = match store {
            Store::Postgres(pool) => Some(ClusterStore::new(pool.clone(), node_ttl)),
            Store::Sqlite(_) => None,
        };
        let typing = typing::Typing::start(events.clone(), cluster_store.clone(), stop.clone());
        let (markers, markers_task) =
            markers::ReadMarkers::start(store.clone(), cluster_store.clone(), stop.clone());
        stopped.push(markers_task);
        let (presence, revocation, cache, poll) = match store {
            Store::Sqlite(_) => {
                let revocation = Revocation::Local(Arc::new(Core::new(
                    cache.clone(),
                    users.clone(),
                    settings.session_policy,
                )));
                let local = presence::local::Local::start(settings.presence, events.clone(), stop.clone());
                // One server: nothing else writes the log, but a second
                // server on the same file would be picked up within a second.
                (Presence::Local(local), revocation, cache, Duration::from_secs(1))
            }
            Store::Postgres(pool) => {
                let timing = Timing::from_ttl(node_ttl);
                let cluster_store = ClusterStore::new(pool.clone(), node_ttl);
                let reach = listener::Reach { typing: typing.clone(), markers: markers.clone() };
                let (healthy, trusted) = watch::channel(false);
                let cache = cache.trusting(trusted);
                let cluster_revocation = Arc::new(ClusterRevocation::new(Core::new(
                    cache.clone(),
                    users.clone(),
                    settings.session_policy,
                )));
                let revocation = Revocation::Cluster(cluster_revocation.clone());
                let name = crate::cluster::node_name();
                let listener = Listener {
                    options: pool.connect_options().as_ref().clone(),
                    store: cluster_store.clone(),
                    wake: wake.clone(),
                    revocation: cluster_revocation,
                    reach,
                    healthy,
                    name: name.clone(),
                    timing,
                };
                stopped.push(tokio::spawn(listener.run(stop.clone())));
                let cluster = presence::cluster::Cluster::start(
                    cluster_store,
                    name,
                    settings.presence,
                    timing,
                    events.clone(),
                    wake.clone(),
                    revocation.clone(),
                    stop.clone(),
                )
                .await?;
                (Presence::Cluster(cluster), revocation, cache, timing.poll)
            }
        };
        // The tail wakes on this node's commits and on other nodes' notifications.
        let tail = Tail {
            store: store.clone(),
            history: history.clone(),
            events: events.clone(),
            wake: wake.clone(),
            poll,
            window: settings.fanout_window,
            presence: presence.clone(),
        };
        let published = tail.start(position, stop.clone());
        let finish = CancellationToken::new();
        let (sequencer, sequencer_task) =
            Sequencer::start(store.clone(), settings.chat_rate, wake, 4096, finish.clone());
        let limits = ChatLimits::new(settings.chat_rate);
        beat::start(settings.ping_interval, settings.ping_timeout, events.clone(), shutdown.clone());
        stopped.push(tokio::spawn(sweep_sessions(
            revocation.clone(),
            limits.clone(),
            settings.session_check_interval,
            stop.clone(),
        )));
        let realtime = Self(Arc::new(Parts {
            presence,
            revocation,
            events,
            sequencer,
            history,
            limits,
            typing,
            markers,
            permits: Arc::new(tokio::sync::Semaphore::new(
                settings.max_connections.min(tokio::sync::Semaphore::MAX_PERMITS),
            )),
            shutdown,
            settings,
            published,
        }));
        Ok((realtime, RealtimeTasks { sequencer: sequencer_task, finish, stop, stopped }, cache))
    }

    /// The first half of shutdown: commit what is queued and publish it, then
    /// close every socket with 1001 and wait for them to go; all within `budget`.
    pub async fn close_sockets(&self, budget: Duration) {
        let deadline = tokio::time::Instant::now() + budget;
        // What this node committed goes out before the goodbye.
        let committed = tokio::time::timeout_at(deadline, self.sequencer.flush()).await.unwrap_or(0);
        if !self.published.clone().reach(committed, budget / 2).await {
            tracing::warn!(committed, "shutting down before this node's last messages were read back");
        }
        // Cancelled first: a socket that subscribes after the event was
        // published sees the token instead.
        self.shutdown.cancel();
        self.events.publish(stream::Event::Shutdown);
        while self.presence.here() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl RealtimeTasks {
    /// The second half: the sequencer commits what is left and ends; then
    /// the background tasks stop (a cluster node leaves the cluster,
    /// announcing its users' leaves); all within `budget`.
    pub async fn finish(self, budget: Duration) {
        let deadline = tokio::time::Instant::now() + budget;
        self.finish.cancel();
        if tokio::time::timeout_at(deadline, self.sequencer).await.is_err() {
            tracing::warn!(?budget, "the sequencer did not finish in time");
        }
        self.stop.cancel();
        for task in self.stopped {
            let _ = tokio::time::timeout_at(deadline, task).await;
        }
    }
}

/// Logout closes a session's sockets at once; this catches the rest:
/// sessions that expired, or were ended where no notification reached us.
async fn sweep_sessions(
    revocation: Revocation,
    limits: ChatLimits,
    every: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        revocation.sweep().await;
        limits.forget_full();
    }
}
