//! The node's heartbeat: at least once per `Timing::heartbeat` (and at once
//! when asked), what the cluster needs of this node is written, by the part
//! that owns it ([`Heartbeat`]: presence, which writes this node's counts
//! and who it holds). Then dead nodes are counted out.
//!
//! A node that cannot write its heartbeat for `NODE_TTL` (by its own clock,
//! from the start of its last successful heartbeat, which is never later
//! than the moment the others judge by) fences itself: `Node::fenced` turns
//! true, the parts above close their sockets and admit none, until a
//! heartbeat is written again. A node the others counted out meanwhile joins
//! again as a new node.
//!
//! At shutdown the heartbeat leaves the cluster (its users with no tab
//! elsewhere are announced as left at once) before the task ends, so before
//! the pool closes.

use std::{sync::Arc, time::Duration};

use tokio::time::{Instant, MissedTickBehavior};

use super::Node;
use crate::store::StoreError;

/// Announcements older than this are pruned; a node away longer starts afresh.
const KEEP_ANNOUNCEMENTS: Duration = Duration::from_secs(600);

/// What a heartbeat wrote.
#[derive(Debug)]
pub enum Beat {
    Written,
    /// This node's row is gone: another node counted it out.
    CountedOut,
}

/// The part that writes what the cluster needs of this node.
#[async_trait::async_trait]
pub trait Heartbeat: Send + Sync + 'static {
    /// One heartbeat, as node `node`.
    async fn beat(&self, node: i64) -> Result<Beat, StoreError>;
    /// The node joined again under a new id: write everything again.
    fn rejoined(&self);
    /// The node is leaving the cluster: refuse whatever waits on a heartbeat.
    fn leaving(&self);
}

/// Runs the heartbeat until the node's tasks stop, then leaves the cluster.
pub fn start(node: &Node, heart: Arc<dyn Heartbeat>) {
    let node = node.clone();
    node.0.tasks.clone().spawn(async move { run(node, heart).await });
}

async fn run(node: Node, heart: Arc<dyn Heartbeat>) {
    let timing = node.timing();
    let mut tick = tokio::time::interval(timing.heartbeat);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_written = Instant::now();
    let mut last_reap = Instant::now();
    let mut last_prune = Instant::now();
    loop {
        tokio::select! {
            _ = node.0.beat_soon.notified() => {}
            _ = tick.tick() => {}
            _ = node.0.tasks.stopping() => break,
        }
        let started = Instant::now();
        let beat = heart.beat(node.id()).await;
        match beat {
            Ok(Beat::Written) => {
                last_written = started;
                if node.0.fenced.send_replace(false) {
                    tracing::info!(node = node.id(), "the database answers again: admitting connections");
                }
            }
            Ok(Beat::CountedOut) => {
                tracing::warn!(node = node.id(), "this node was counted out by the cluster");
                fence(&node);
                match node.store().register(node.name()).await {
                    Ok(id) => {
                        node.0.id.store(id, std::sync::atomic::Ordering::Relaxed);
                        heart.rejoined();
                        tracing::info!(node = id, "joined the cluster again");
                    }
                    Err(e) => tracing::warn!(error = %e, "could not join the cluster again"),
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not write the heartbeat");
                if last_written.elapsed() >= timing.node_ttl {
                    fence(&node);
                }
                // Do not spin against a database that is down.
                tokio::time::sleep(timing.heartbeat / 4).await;
                continue;
            }
        }
        if last_reap.elapsed() >= timing.heartbeat {
            last_reap = Instant::now();
            // Counting a node out notifies presence (every node's, this one's too).
            if let Err(e) = node.store().reap(node.id()).await {
                tracing::warn!(error = %e, "could not look for dead nodes");
            }
        }
        if last_prune.elapsed() >= KEEP_ANNOUNCEMENTS / 10 {
            last_prune = Instant::now();
            if let Err(e) = node.store().prune_announcements(KEEP_ANNOUNCEMENTS).await {
                tracing::debug!(error = %e, "could not prune announcements");
            }
        }
    }
    // Leaving: no seat is granted from now on.
    node.0.fenced.send_replace(true);
    heart.leaving();
    if let Err(e) = node.store().deregister(node.id()).await {
        tracing::warn!(error = %e, "could not leave the cluster; the others will count this node out");
    }
}

fn fence(node: &Node) {
    if !node.0.fenced.send_replace(true) {
        tracing::error!(node = node.id(), "cannot reach the database: closing this node's sockets");
    }
}
