//! The node's LISTEN connection.
//!
//! Notifications are hints that can be lost: while the connection is being
//! replaced, or silently, on a half-open TCP connection that sqlx's
//! `PgListener` would wait on forever. So:
//!
//! - the listener has a connection (and a pool) of its own, and any error
//!   replaces it whole;
//! - every time it starts listening, the gap handlers run (the readers catch
//!   up by position, revocation sweeps): listen first, then catch up, so
//!   nothing falls between;
//! - it proves itself alive by notifying itself on the probe channel every
//!   heartbeat; a probe that does not come back in time replaces it;
//! - readers also poll on their own (the backstop).
//!
//! While it is not known to be alive, caches of what notifications would
//! invalidate are not trusted (`Node::listening`).

use std::time::Duration;

use sqlx::{
    PgPool,
    postgres::{PgListener, PgNotification, PgPoolOptions},
};
use tokio::time::Instant;

use super::Node;
use crate::notify::Channel;

/// Why a listening connection was given up.
#[derive(Debug, thiserror::Error)]
enum Lost {
    #[error("{0}")]
    Error(sqlx::Error),
    #[error("a liveness probe did not come back in time")]
    ProbeTimedOut,
}

/// Listens until the tasks stop, replacing the connection whenever it fails.
/// Register every handler first.
pub fn start(node: &Node) {
    let node = node.clone();
    let stop = node.0.tasks.stop_token();
    node.0.tasks.clone().spawn(async move {
        let mut retry = Duration::from_millis(100);
        loop {
            let lost = tokio::select! {
                lost = listen(&node) => lost,
                _ = stop.cancelled() => return,
            };
            node.0.listening.send_replace(false);
            tracing::warn!(reason = %lost, "the notification listener was lost; reconnecting");
            tokio::select! {
                _ = tokio::time::sleep(retry) => {}
                _ = stop.cancelled() => return,
            }
            retry = (retry * 2).min(node.timing().heartbeat);
        }
    });
}

/// One listening connection, from LISTEN until it is lost.
async fn listen(node: &Node) -> Lost {
    let timing = node.timing();
    let pool: PgPool = PgPoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(timing.node_ttl)
        .connect_lazy_with(node.0.options.clone().application_name(&listener_name(node.name())));
    let mut listener = match PgListener::connect_with(&pool).await {
        Ok(listener) => listener,
        Err(e) => return Lost::Error(e),
    };
    if let Err(e) = listener.listen_all(Channel::ALL.map(Channel::name)).await {
        return Lost::Error(e);
    }
    tracing::debug!("listening for notifications");
    after_gap(node);

    let mut probes = 0u64;
    let mut outstanding: Option<(String, Instant)> = None;
    let mut tick = tokio::time::interval(timing.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = listener.try_recv() => match received {
                Ok(Some(notification)) => match Channel::named(notification.channel()) {
                    // Our own probe came back: the whole path works.
                    Some(Channel::Probe)
                        if outstanding.as_ref().is_some_and(|(probe, _)| probe == notification.payload()) =>
                    {
                        outstanding = None;
                        node.0.listening.send_replace(true);
                    }
                    // Another node's probe.
                    Some(Channel::Probe) | None => {}
                    Some(channel) => dispatch(node, channel, &notification).await,
                },
                // The connection dropped and sqlx made a new one: whatever
                // was sent meanwhile is gone, so catch up.
                Ok(None) => {
                    node.0.listening.send_replace(false);
                    after_gap(node);
                }
                Err(e) => return Lost::Error(e),
            },
            _ = tick.tick() => {
                match &outstanding {
                    Some((_, sent)) if sent.elapsed() > timing.probe_timeout => return Lost::ProbeTimedOut,
                    Some(_) => {}
                    None => {
                        probes += 1;
                        let probe = format!("{}#{probes}", node.name());
                        // Sent through the main pool, so a probe that comes
                        // back proves the whole path. One that could not be
                        // sent cannot come back: the timeout decides either way.
                        if let Err(e) = node.tell(Channel::Probe, std::slice::from_ref(&probe)).await {
                            tracing::debug!(error = %e, "could not send a liveness probe");
                        }
                        outstanding = Some((probe, Instant::now()));
                    }
                }
            }
        }
    }
}

async fn dispatch(node: &Node, channel: Channel, notification: &PgNotification) {
    for handler in node.handlers(channel) {
        handler(notification.payload()).await;
    }
}

/// Listening (again): whatever the notifications may have missed is read
/// or checked, off the listener's task.
fn after_gap(node: &Node) {
    for handler in node.gap_handlers() {
        node.0.tasks.spawn(handler());
    }
}

/// How the listening connection shows in `pg_stat_activity.application_name`
/// (at most 63 bytes).
pub fn listener_name(node: &str) -> String {
    let mut name = format!("lobby listener {node}");
    while name.len() > 63 {
        name.remove(15);
    }
    name
}
