//! The node's LISTEN connection.
//!
//! Notifications are hints that can be lost: while the connection is being
//! replaced, or silently, on a half-open TCP connection that sqlx's
//! `PgListener` would wait on forever. So:
//!
//! - the listener has a connection (and a pool) of its own, and any error
//!   replaces it whole;
//! - every time it starts listening, the readers catch up by position and
//!   revocation sweeps: listen first, then catch up, so nothing falls between;
//! - it proves itself alive by notifying itself on a probe channel every
//!   heartbeat; a probe that does not come back in time replaces it;
//! - readers also poll on their own (the backstop).
//!
//! While it is not known to be alive, caches of what notifications would
//! invalidate are not trusted (`healthy`).

use std::{sync::Arc, time::Duration};

use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgListener, PgNotification, PgPoolOptions},
};
use tokio::{sync::watch, time::Instant};
use tokio_util::sync::CancellationToken;

use super::{Timing, Wakeups};
use crate::{
    realtime::{
        markers::{ReadMarkers, parse_moves},
        revocation::ClusterRevocation,
        typing::{Typing, parse_typing},
    },
    store::{
        cluster::{
            ClusterStore, PRESENCE_CHANNEL, PROBE_CHANNEL, READ_CHANNEL, REVOKE_CHANNEL, TYPING_CHANNEL,
        },
        log::LOG_CHANNEL,
        sessions::Ending,
    },
};

/// What else notifications reach: who is typing, read markers.
pub struct Reach {
    pub typing: Typing,
    pub markers: ReadMarkers,
}

pub struct Listener {
    pub options: PgConnectOptions,
    /// The node's own tables handle: probes are sent through the main pool,
    /// so a probe that comes back proves the whole path.
    pub store: ClusterStore,
    pub wake: Arc<Wakeups>,
    pub revocation: Arc<ClusterRevocation>,
    pub reach: Reach,
    pub healthy: watch::Sender<bool>,
    /// Tells this node's probes from others'.
    pub name: String,
    pub timing: Timing,
}

/// Why a listening connection was given up.
#[derive(Debug, thiserror::Error)]
enum Lost {
    #[error("{0}")]
    Error(sqlx::Error),
    #[error("a liveness probe did not come back in time")]
    ProbeTimedOut,
}

impl Listener {
    /// Listens until `stop`, replacing the connection whenever it fails.
    pub async fn run(self, stop: CancellationToken) {
        let mut retry = Duration::from_millis(100);
        loop {
            let lost = tokio::select! {
                lost = self.listen() => lost,
                _ = stop.cancelled() => return,
            };
            self.healthy.send_replace(false);
            tracing::warn!(reason = %lost, "the notification listener was lost; reconnecting");
            tokio::select! {
                _ = tokio::time::sleep(retry) => {}
                _ = stop.cancelled() => return,
            }
            retry = (retry * 2).min(self.timing.heartbeat);
        }
    }

    /// One listening connection, from LISTEN until it is lost.
    async fn listen(&self) -> Lost {
        let pool: PgPool = PgPoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(self.timing.node_ttl)
            .connect_lazy_with(self.options.clone().application_name(&listener_name(&self.name)));
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(e) => return Lost::Error(e),
        };
        let channels =
            [LOG_CHANNEL, PRESENCE_CHANNEL, REVOKE_CHANNEL, PROBE_CHANNEL, TYPING_CHANNEL, READ_CHANNEL];
        if let Err(e) = listener.listen_all(channels).await {
            return Lost::Error(e);
        }
        tracing::debug!("listening for notifications");
        self.catch_up();

        let mut probes = 0u64;
        let mut outstanding: Option<(String, Instant)> = None;
        let mut tick = tokio::time::interval(self.timing.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(notification)) => {
                        if notification.channel() == PROBE_CHANNEL {
                            if outstanding.as_ref().is_some_and(|(probe, _)| probe == notification.payload()) {
                                outstanding = None;
                                self.healthy.send_replace(true);
                            }
                        } else {
                            self.dispatch(&notification).await;
                        }
                    }
                    // The connection dropped and sqlx made a new one: whatever
                    // was sent meanwhile is gone, so catch up.
                    Ok(None) => {
                        self.healthy.send_replace(false);
                        self.catch_up();
                    }
                    Err(e) => return Lost::Error(e),
                },
                _ = tick.tick() => {
                    match &outstanding {
                        Some((_, sent)) if sent.elapsed() > self.timing.probe_timeout => return Lost::ProbeTimedOut,
                        Some(_) => {}
                        None => {
                            probes += 1;
                            let probe = format!("{}#{probes}", self.name);
                            // A probe that could not be sent cannot come back:
                            // the timeout decides either way.
                            if let Err(e) = self.store.notify(PROBE_CHANNEL, &probe).await {
                                tracing::debug!(error = %e, "could not send a liveness probe");
                            }
                            outstanding = Some((probe, Instant::now()));
                        }
                    }
                }
            }
        }
    }

    async fn dispatch(&self, notification: &PgNotification) {
        match notification.channel() {
            LOG_CHANNEL => self.wake.log.notify_one(),
            PRESENCE_CHANNEL => self.wake.presence.notify_one(),
            REVOKE_CHANNEL => match Ending::parse(notification.payload()) {
                Some(ending) => self.revocation.heard(&ending).await,
                None => tracing::warn!(payload = notification.payload(), "an unreadable revocation"),
            },
            TYPING_CHANNEL => self.reach.typing.heard(&parse_typing(notification.payload())),
            READ_CHANNEL => self.reach.markers.heard(&parse_moves(notification.payload())),
            _ => {}
        }
    }

    /// Listening (again): read everything the notifications may have missed.
    fn catch_up(&self) {
        self.wake.log.notify_one();
        self.wake.presence.notify_one();
        let revocation = self.revocation.clone();
        tokio::spawn(async move { revocation.after_gap().await });
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
