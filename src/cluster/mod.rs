//! Running as one node of many on one PostgreSQL database. The nodes share
//! nothing but the database: its tables are the truth (the chat log,
//! presence, sessions), and notifications only wake nodes up to read them.
//!
//! A [`Node`] is this process's membership of the cluster: its row in
//! `nodes`, its LISTEN connection ([`listener`]), which hands each
//! notification to the handlers registered for its channel, and its
//! heartbeat ([`heartbeat`]), which writes what the cluster needs of this
//! node and fences the node when it cannot. The parts above (presence,
//! typing, revocation) register handlers and a heartbeat; this module knows
//! none of them.
//!
//! Whether there is a cluster at all is decided once, in `app.rs`, from the
//! engine: every part that behaves differently on a cluster takes [`Peers`].

pub mod heartbeat;
pub mod listener;

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use sqlx::{PgPool, postgres::PgConnectOptions};
use tokio::sync::{Notify, watch};

use crate::{
    notify::Channel,
    store::{StoreError, cluster::ClusterStore},
    tasks::Tasks,
};

/// The cluster's clocks, all derived from `NODE_TTL` so one setting tunes them.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A node whose heartbeat is older than this (by the database's clock)
    /// is counted out; a node that could not heartbeat this long fences itself.
    pub node_ttl: Duration,
    /// How often a node writes its heartbeat (a tenth of the TTL, at most 1 s).
    pub heartbeat: Duration,
    /// How often readers look at the tables even without a notification: the
    /// backstop for one that was lost.
    pub poll: Duration,
    /// How long a liveness probe may take to come back before the listener
    /// is taken for dead and replaced.
    pub probe_timeout: Duration,
}

impl Timing {
    pub fn from_ttl(node_ttl: Duration) -> Self {
        let heartbeat = (node_ttl / 10).clamp(Duration::from_millis(100), Duration::from_secs(1));
        Self {
            node_ttl,
            heartbeat,
            poll: heartbeat.min(Duration::from_millis(500)),
            probe_timeout: (node_ttl / 5).clamp(Duration::from_millis(200), Duration::from_secs(2)),
        }
    }
}

/// What a handler does with a notification's payload.
pub type Handled = Pin<Box<dyn Future<Output = ()> + Send>>;
/// A handler for one channel's notifications.
pub type Handler = Arc<dyn Fn(&str) -> Handled + Send + Sync>;
/// Run after every gap in listening, when notifications may have been missed.
pub type GapHandler = Arc<dyn Fn() -> Handled + Send + Sync>;

/// This node's membership of the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Node(Arc<Inner>);

struct Inner {
    store: ClusterStore,
    /// For the listener's own connection.
    options: PgConnectOptions,
    /// This node's id in the `nodes` table; a new one if it was counted out.
    id: AtomicI64,
    name: String,
    timing: Timing,
    /// Set before listening starts; read by the listener.
    handlers: Mutex<HashMap<Channel, Vec<Handler>>>,
    after_gap: Mutex<Vec<GapHandler>>,
    /// Whether the listener is known to be alive: caches that notifications
    /// keep honest are trusted only while it is.
    listening: watch::Sender<bool>,
    /// Set while this node cannot write its heartbeat (it has closed its
    /// sockets and admits none).
    fenced: watch::Sender<bool>,
    /// Wakes the heartbeat before its tick (a seat is asked for).
    beat_soon: Notify,
    /// Where the node's own work runs (the listener, the heartbeat, what
    /// runs after a gap), so shutdown waits for it.
    tasks: Tasks,
}

impl Node {
    /// Joins the cluster as a new node.
    pub async fn join(pool: &PgPool, timing: Timing, tasks: &Tasks) -> Result<Node, StoreError> {
        let store = ClusterStore::new(pool.clone(), timing.node_ttl);
        let name = node_name();
        let id = store.register(&name).await?;
        tracing::info!(node = id, %name, "joined the cluster");
        Ok(Node(Arc::new(Inner {
            store,
            options: pool.connect_options().as_ref().clone(),
            id: AtomicI64::new(id),
            name,
            timing,
            handlers: Mutex::default(),
            after_gap: Mutex::default(),
            listening: watch::Sender::new(false),
            fenced: watch::Sender::new(false),
            beat_soon: Notify::new(),
            tasks: tasks.clone(),
        })))
    }

    pub fn id(&self) -> i64 {
        self.0.id.load(Ordering::Relaxed)
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn timing(&self) -> Timing {
        self.0.timing
    }

    /// The cluster's tables.
    pub fn store(&self) -> &ClusterStore {
        &self.0.store
    }

    /// Hands every notification on `channel` to `handler` (register before
    /// [`listener::listen`] starts).
    pub fn on(&self, channel: Channel, handler: Handler) {
        self.0.handlers.lock().unwrap_or_else(|p| p.into_inner()).entry(channel).or_default().push(handler);
    }

    /// Runs `handler` every time listening starts again after a gap.
    pub fn after_gap(&self, handler: GapHandler) {
        self.0.after_gap.lock().unwrap_or_else(|p| p.into_inner()).push(handler);
    }

    fn handlers(&self, channel: Channel) -> Vec<Handler> {
        let handlers = self.0.handlers.lock().unwrap_or_else(|p| p.into_inner());
        handlers.get(&channel).cloned().unwrap_or_default()
    }

    fn gap_handlers(&self) -> Vec<GapHandler> {
        self.0.after_gap.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether the listener is known to be alive, to follow.
    pub fn listening(&self) -> watch::Receiver<bool> {
        self.0.listening.subscribe()
    }

    /// Whether this node is fenced, to follow.
    pub fn fenced(&self) -> watch::Receiver<bool> {
        self.0.fenced.subscribe()
    }

    pub fn is_fenced(&self) -> bool {
        *self.0.fenced.borrow()
    }

    /// Asks for a heartbeat now rather than at the next tick.
    pub fn beat_soon(&self) {
        self.0.beat_soon.notify_one();
    }

    /// Sends notifications to every node (this one too).
    pub async fn tell(&self, channel: Channel, payloads: &[String]) -> Result<(), StoreError> {
        self.0.store.notify(channel, payloads).await
    }
}

/// Who else serves this database: nobody (SQLite: one server), or the other
/// nodes of a cluster (PostgreSQL).
#[derive(Clone)]
pub enum Peers {
    Alone,
    Cluster(Node),
}

impl Peers {
    pub fn node(&self) -> Option<&Node> {
        match self {
            Peers::Alone => None,
            Peers::Cluster(node) => Some(node),
        }
    }

    /// Tells the other nodes (and this one) something not stored; alone,
    /// there is nobody to tell.
    pub async fn tell(&self, channel: Channel, payloads: &[String]) -> Result<(), StoreError> {
        match self {
            Peers::Alone => Ok(()),
            Peers::Cluster(node) => node.tell(channel, payloads).await,
        }
    }
}

/// "host:pid/n", to tell nodes apart in the `nodes` table, in
/// `pg_stat_activity` and in the logs (n counts nodes started in this
/// process: tests run several).
fn node_name() -> String {
    static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "node".to_owned());
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    format!("{host}:{}/{n}", std::process::id())
}
