//! Presence: who is connected, the live counts, and the join and leave
//! announcements. One interface, two ledgers, chosen by [`Peers`]:
//!
//! - [`local`]: one server (SQLite). Exact counts in memory under one lock;
//!   a user's first and last tab are announced under that lock.
//! - [`cluster`]: many nodes on one PostgreSQL. Each node keeps its exact
//!   local counts and commits them, batched, as its heartbeat; the cluster's
//!   counts are the sum over live nodes, and joins and leaves are decided and
//!   announced in the database, once, whichever nodes the tabs are on
//!   ([`follow`] reads them back).
//!
//! Either way a connection is counted by a [`Seat`]: created once the upgrade
//! is admitted, it counts the connection out when dropped, on every path a
//! connection can end by (close, reset, ping timeout, kick, panic, shutdown).

pub mod cluster;
mod count;
mod follow;
pub mod local;
mod names;
mod notices;

use std::{collections::HashSet, sync::Arc, time::Duration};

use tower_sessions::session::Id as SessionId;
use tungstenite::Utf8Bytes;

pub use super::Refused;
use super::{stream::Events, wire::frame};
use crate::{cluster::Peers, store::StoreError, tasks::Tasks};

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
    /// Starts the ledger `peers` calls for; its tasks stop with `tasks`.
    pub async fn start(
        settings: PresenceSettings,
        events: Events,
        peers: &Peers,
        tasks: &Tasks,
    ) -> Result<Self, StoreError> {
        Ok(match peers.node() {
            None => Presence::Local(local::Local::start(settings, events, tasks)),
            Some(node) => Presence::Cluster(cluster::Cluster::start(node, settings, events, tasks).await?),
        })
    }

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

    /// Who is online now, `joining` (the user about to take a seat)
    /// included; take it before `admit`, so the user's own join (if it is
    /// their first tab) is announced after it, to this socket too.
    pub fn online(&self, joining: &str) -> Online {
        match self {
            Presence::Local(local) => local.online(joining),
            Presence::Cluster(cluster) => cluster.online(joining),
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

    /// Which of `users` have a socket open on any node: this server's own
    /// count alone; on a cluster, the presence table (every node's
    /// heartbeat) and this node's own sockets.
    pub async fn with_sockets(&self, users: &[i64]) -> Result<HashSet<i64>, StoreError> {
        match self {
            Presence::Local(local) => Ok(local.with_sockets(users)),
            Presence::Cluster(cluster) => cluster.with_sockets(users).await,
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
