//! The live half: the session-gated WebSocket, the user count, joins and
//! leaves, and durable chat.
//!
//! - [`hub`]: presence counts (watch), events (broadcast), session → sockets.
//! - [`sequencer`]: the single writer: group commit, then publish in id order.
//! - [`history`]: the recent messages in memory, for connects and catch-up.
//! - [`connection`]: the task that owns one socket.
//! - [`protocol`]: the frames on the wire.

pub mod connection;
pub mod history;
pub mod hub;
pub mod protocol;
pub mod sequencer;

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tower_sessions::SessionStore as _;

use crate::db::{Pool, Sessions};
use history::History;
use hub::{Hub, HubSettings};
use sequencer::Sequencer;

#[derive(Debug, Clone, Copy)]
pub struct RealtimeSettings {
    pub hub: HubSettings,
    /// A write to a socket that takes longer than this ends it.
    pub send_timeout: Duration,
    /// How often live sockets' sessions are checked for expiry.
    pub session_check_interval: Duration,
    /// WebSocket buffer sizes: chat frames are small, so KiBs, not the library's 128 KiB.
    pub read_buffer: usize,
    pub write_buffer: usize,
}

/// A handle to everything a socket needs; cheap to clone.
#[derive(Clone)]
pub struct Realtime {
    pub hub: Hub,
    pub sequencer: Sequencer,
    pub history: Arc<History>,
    pub settings: RealtimeSettings,
}

/// The background tasks, for shutdown.
pub struct RealtimeTasks {
    sequencer: JoinHandle<()>,
    session_watch: JoinHandle<()>,
}

impl Realtime {
    pub async fn start(
        pool: Pool,
        store: Sessions,
        settings: RealtimeSettings,
    ) -> Result<(Self, RealtimeTasks), sqlx::Error> {
        let history = Arc::new(sequencer::load_recent(&pool).await?);
        let hub = Hub::start(settings.hub);
        let (sequencer, sequencer_task) = Sequencer::start(pool, hub.clone(), history.clone(), 4096);
        let session_watch = tokio::spawn(watch_sessions(hub.clone(), store, settings.session_check_interval));
        let realtime = Self { hub, sequencer, history, settings };
        Ok((realtime, RealtimeTasks { sequencer: sequencer_task, session_watch }))
    }

    /// The first half of shutdown: commit and publish what is queued, then
    /// close every socket with 1001 and wait (a bounded time) for them to go.
    pub async fn close_sockets(&self) {
        self.sequencer.flush().await;
        self.hub.shut_down();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.hub.connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl RealtimeTasks {
    /// The second half: once every handle is gone, the sequencer commits what
    /// is left and ends.
    pub async fn finish(self) {
        self.session_watch.abort();
        if tokio::time::timeout(Duration::from_secs(10), self.sequencer).await.is_err() {
            tracing::warn!("the sequencer did not finish within 10 s");
        }
    }
}

/// Logout closes a session's sockets at once; this catches the rest: sessions
/// that expired, or were ended by another server sharing the database.
async fn watch_sessions(hub: Hub, store: Sessions, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for session in hub.live_sessions() {
            match store.load(&session).await {
                Ok(Some(_)) => {}
                Ok(None) => hub.end_session(&session),
                // The database is down: no verdict; try again next tick.
                Err(e) => {
                    tracing::warn!(error = %e, "could not check sessions");
                    break;
                }
            }
        }
        hub.forget_idle_users();
    }
}
