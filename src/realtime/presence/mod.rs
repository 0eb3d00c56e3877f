//! Presence: who is connected, the live counts, and the join and leave
//! announcements. One interface, two implementations:
//!
//! - [`local`]: one server (SQLite). Exact counts in memory under one lock;
//!   a user's first and last tab are announced under that lock.
//! - [`cluster`]: many nodes on one PostgreSQL. Each node keeps its exact
//!   local counts and commits them, batched, with its heartbeat; the cluster's
//!   counts are the sum over live nodes, and joins and leaves are decided and
//!   announced in the database, once, whichever nodes the tabs are on.
//!
//! Either way a connection is counted by a [`Seat`]: created once the upgrade
//! is admitted, it counts the connection out when dropped, on every path a
//! connection can end by (close, reset, ping timeout, kick, panic, shutdown).

pub mod cluster;
pub mod local;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower_sessions::session::Id as SessionId;
use tungstenite::Utf8Bytes;

use super::{
    protocol::frame,
    stream::{Event, Events},
};

/// Who a connection belongs to.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user_id: i64,
    pub username: Arc<str>,
    pub session: SessionId,
}

/// The latest `user count`, with its frame serialized once for all sockets.
#[derive(Debug, Clone)]
pub struct Count {
    pub value: usize,
    pub frame: Utf8Bytes,
}

impl Count {
    pub fn of(value: usize) -> Self {
        Self { value, frame: frame("user count", &value) }
    }
}

/// Who is online, as a socket is told on connect: the `online users` frame,
/// and the position of the last announcement it reflects (the socket skips
/// announcements up to it).
#[derive(Debug, Clone)]
pub struct Online {
    pub frame: Utf8Bytes,
    pub position: i64,
}

/// The names of the users online, sorted without regard to case, with the
/// frame that lists them made once per change (a storm of connects between
/// two changes shares it).
#[derive(Debug, Default)]
pub(crate) struct OnlineNames {
    /// Lowercase name → the name as registered.
    names: std::collections::BTreeMap<String, Arc<str>>,
    frame: Option<Utf8Bytes>,
}

impl OnlineNames {
    fn set(&mut self, name: &str, online: bool) {
        if online {
            self.names.insert(name.to_ascii_lowercase(), name.into());
        } else {
            self.names.remove(&name.to_ascii_lowercase());
        }
        self.frame = None;
    }

    /// Is the user (by lowercase name) online?
    pub(crate) fn contains(&self, lowercase: &str) -> bool {
        self.names.contains_key(lowercase)
    }

    fn frame(&mut self) -> Utf8Bytes {
        self.frame
            .get_or_insert_with(|| {
                let names: Vec<&str> = self.names.values().map(|n| &**n).collect();
                frame("online users", &names)
            })
            .clone()
    }
}

/// Why an upgrade was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("this account has too many open connections")]
    TooManyTabs,
    /// The cluster could not be asked (the database is down or this node is fenced).
    #[error("the cluster cannot be reached")]
    Unavailable,
}

#[derive(Debug, Clone, Copy)]
pub struct PresenceSettings {
    /// A count is published once joins and leaves pause this long…
    pub count_quiet: Duration,
    /// …or this long after the first unpublished change, if they never pause.
    /// A storm of joins so costs each socket about one frame per this period.
    pub count_max_delay: Duration,
    /// Open sockets one user may have, on all nodes together.
    pub max_tabs: usize,
}

/// The presence of this server, single-node or cluster. Cheap to clone.
#[derive(Clone)]
pub enum Presence {
    Local(Arc<local::Local>),
    Cluster(Arc<cluster::Cluster>),
}

impl Presence {
    /// Counts a new connection in, or says why not. The seat counts it out
    /// when dropped. The count is the true one including this connection
    /// (the published one may lag behind it).
    pub async fn admit(&self, who: Identity) -> Result<(Seat, Count), Refused> {
        let count = match self {
            Presence::Local(local) => local.join(&who)?,
            Presence::Cluster(cluster) => cluster.join(&who).await?,
        };
        Ok((Seat { presence: self.clone(), who }, Count::of(count)))
    }

    fn leave(&self, who: &Identity) {
        match self {
            Presence::Local(local) => local.leave(who),
            Presence::Cluster(cluster) => cluster.leave(who),
        }
    }

    /// The `user count` last published to every socket (cluster-wide on a
    /// cluster); later ones come through the event stream.
    pub fn count(&self) -> Count {
        match self {
            Presence::Local(local) => local.counts.latest(),
            Presence::Cluster(cluster) => cluster.counts.latest(),
        }
    }

    /// This node's name in the cluster (`None`: a single server).
    pub fn node_name(&self) -> Option<String> {
        match self {
            Presence::Local(_) => None,
            Presence::Cluster(cluster) => Some(cluster.name().to_owned()),
        }
    }

    /// Who is online now; take it before `admit`, so the socket's own join
    /// (if its first tab) comes after it, as for everyone else.
    pub fn online(&self) -> Online {
        match self {
            Presence::Local(local) => local.online(),
            Presence::Cluster(cluster) => cluster.online(),
        }
    }

    /// Is this user (by name, in any case) online anywhere?
    pub fn is_online(&self, username: &str) -> bool {
        let name = username.to_ascii_lowercase();
        match self {
            Presence::Local(local) => local.names_contain(&name),
            Presence::Cluster(cluster) => cluster.names_contain(&name),
        }
    }

    /// Users with a socket open, on the whole cluster.
    pub fn online_users(&self) -> usize {
        match self {
            Presence::Local(local) => local.online_users(),
            Presence::Cluster(cluster) => cluster.online_users(),
        }
    }

    /// Open authenticated connections on this node.
    pub fn here(&self) -> usize {
        match self {
            Presence::Local(local) => local.here(),
            Presence::Cluster(cluster) => cluster.here(),
        }
    }
}

/// Counts a connection for as long as it lives.
pub struct Seat {
    presence: Presence,
    who: Identity,
}

impl Seat {
    pub fn identity(&self) -> &Identity {
        &self.who
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.presence.leave(&self.who);
    }
}

/// Publishes `user count` on a trailing edge: when joins and leaves pause for
/// `count_quiet`, or `count_max_delay` after the first change if they do not.
/// Every publish costs one frame per socket, so a storm of N joins costs each
/// socket a handful of frames instead of N, and the true count still goes out
/// within `count_quiet` of the last change.
/// Counts go out through the event stream, so a socket waits on one
/// channel for deliveries and counts alike.
pub(crate) struct CountClock {
    latest: Mutex<Count>,
    events: Events,
    changed: Notify,
    settings: PresenceSettings,
}

impl CountClock {
    fn new(settings: PresenceSettings, events: Events) -> Arc<Self> {
        Arc::new(Self { latest: Mutex::new(Count::of(0)), events, changed: Notify::new(), settings })
    }

    fn latest(&self) -> Count {
        self.latest.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Something changed; publish once things settle.
    fn changed(&self) {
        self.changed.notify_one();
    }

    /// Runs until `stop`, publishing `value()` on each trailing edge.
    async fn run(self: Arc<Self>, value: impl Fn() -> usize, stop: CancellationToken) {
        let PresenceSettings { count_quiet, count_max_delay, .. } = self.settings;
        loop {
            tokio::select! {
                _ = self.changed.notified() => {}
                _ = stop.cancelled() => return,
            }
            let deadline = tokio::time::Instant::now() + count_max_delay;
            loop {
                let quiet_until = (tokio::time::Instant::now() + count_quiet).min(deadline);
                tokio::select! {
                    _ = self.changed.notified() => {
                        if tokio::time::Instant::now() >= deadline {
                            break;
                        }
                    }
                    _ = tokio::time::sleep_until(quiet_until) => break,
                    _ = stop.cancelled() => return,
                }
            }
            // Always publish, even a value equal to the last one published: a
            // socket that joined since was sent its own exact count, which may
            // differ (2 → join: 3 → leave: 2). Each socket skips a value it has.
            let count = Count::of(value());
            *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = count.clone();
            self.events.publish(Event::Count(count));
        }
    }
}
