//! Running as one node of many on one PostgreSQL database. The nodes share
//! nothing but the database: its tables are the truth (the chat log,
//! presence, sessions), and notifications only wake nodes up to read them.
//!
//! - [`listener`]: the node's one LISTEN connection: wakes the log and
//!   presence readers, hands on revocations, and proves itself alive.
//!
//! The statements are in `store::cluster`; presence and revocation have their
//! cluster halves in `realtime::presence::cluster` and `realtime::revocation`.

pub mod listener;

use std::time::Duration;

use tokio::sync::Notify;

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

/// What a notification wakes: the readers of the log and of presence. Each
/// is a `Notify`, so a burst of notifications costs one read.
#[derive(Default)]
pub struct Wakeups {
    pub log: Notify,
    pub presence: Notify,
}

/// "host:pid/n", to tell nodes apart in the `nodes` table, in
/// `pg_stat_activity` and in the logs (n counts nodes started in this
/// process: tests run several).
pub fn node_name() -> String {
    static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "node".to_owned());
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    format!("{host}:{}/{n}", std::process::id())
}
