//! Read markers: the newest message each user has seen, stored, and shown to
//! every tab of theirs.
//!
//! - Each user with a tab here has one `watch` of their marker: a move wakes
//!   that user's tabs only, not every socket.
//! - A `read` from a tab moves the marker forward (never back) here at once;
//!   the database gets the moves of the last `FLUSH` (1 s) in one
//!   transaction, so reading costs no write per frame.
//! - On a cluster the flush also tells the other nodes (one notification),
//!   which move their watches for the user's tabs there.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::{
    sync::{Notify, watch},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use crate::store::{
    Store, StoreError,
    cluster::{ClusterStore, READ_CHANNEL},
};

/// How long moves gather before they are written.
pub const FLUSH: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct ReadMarkers {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    cluster: Option<ClusterStore>,
    state: Mutex<State>,
    moved: Notify,
}

#[derive(Default)]
struct State {
    /// The marker of each user with a tab here.
    watches: HashMap<i64, watch::Sender<i64>>,
    /// Moves not written yet: user → newest id.
    pending: HashMap<i64, i64>,
}

impl ReadMarkers {
    /// Starts the flusher; at `stop` it writes what is pending and ends.
    pub fn start(
        store: Store,
        cluster: Option<ClusterStore>,
        stop: CancellationToken,
    ) -> (Self, JoinHandle<()>) {
        let markers =
            Self { inner: Arc::new(Inner { store, cluster, state: Mutex::default(), moved: Notify::new() }) };
        let task = tokio::spawn(markers.clone().flush_until(stop));
        (markers, task)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The user's marker, to follow: the one tabs here already share, or the
    /// stored one for the first.
    pub async fn follow(&self, user_id: i64) -> Result<watch::Receiver<i64>, StoreError> {
        if let Some(watch) = self.state().watches.get(&user_id) {
            return Ok(watch.subscribe());
        }
        let stored = self.inner.store.read_marker(user_id).await?;
        let mut state = self.state();
        // Another tab may have come (or moved it) while we read.
        let watch = state.watches.entry(user_id).or_insert_with(|| watch::Sender::new(stored));
        forward(watch, stored);
        Ok(watch.subscribe())
    }

    /// A tab of the user has seen the messages up to `id`.
    pub fn read(&self, user_id: i64, id: i64) {
        let mut state = self.state();
        if Self::advance(&mut state, user_id, id) {
            let pending = state.pending.entry(user_id).or_insert(0);
            *pending = (*pending).max(id);
            drop(state);
            self.inner.moved.notify_one();
        }
    }

    /// Another node moved these users' markers.
    pub fn heard(&self, moves: &[(i64, i64)]) {
        let mut state = self.state();
        for (user_id, id) in moves {
            Self::advance(&mut state, *user_id, *id);
        }
    }

    /// Moves the user's watch forward to `id`; false if it was there already.
    fn advance(state: &mut State, user_id: i64, id: i64) -> bool {
        match state.watches.get(&user_id) {
            Some(watch) => forward(watch, id),
            // No tab here: nothing to show, but the move is still stored.
            None => true,
        }
    }

    async fn flush_until(self, stop: CancellationToken) {
        loop {
            let stopping = tokio::select! {
                _ = self.inner.moved.notified() => false,
                _ = stop.cancelled() => true,
            };
            if !stopping {
                tokio::time::sleep(FLUSH).await;
            }
            self.flush().await;
            if stopping {
                return;
            }
        }
    }

    async fn flush(&self) {
        let moves: Vec<(i64, i64)> = {
            let mut state = self.state();
            // Users whose last tab here closed need no watch any more.
            state.watches.retain(|_, watch| watch.receiver_count() > 0);
            state.pending.drain().collect()
        };
        if moves.is_empty() {
            return;
        }
        if let Err(e) = self.inner.store.advance_read_markers(&moves).await {
            // Kept for the next flush: a marker is a convenience, not worth a retry loop.
            tracing::warn!(error = %e, "could not store read markers");
            let mut state = self.state();
            for (user_id, id) in moves {
                let pending = state.pending.entry(user_id).or_insert(0);
                *pending = (*pending).max(id);
            }
            return;
        }
        if let Some(cluster) = &self.inner.cluster {
            let entries: Vec<String> = moves.iter().map(|(user, id)| format!("{user}:{id}")).collect();
            if let Err(e) = cluster.notify_entries(READ_CHANNEL, &entries).await {
                tracing::debug!(error = %e, "could not tell the other nodes of read markers");
            }
        }
    }
}

/// Moves `watch` to `id` if that is forward; says whether it moved.
fn forward(watch: &watch::Sender<i64>, id: i64) -> bool {
    watch.send_if_modified(|marker| {
        let moved = id > *marker;
        if moved {
            *marker = id;
        }
        moved
    })
}

/// The moves of a notification from another node ("USER:ID USER:ID …").
pub fn parse_moves(payload: &str) -> Vec<(i64, i64)> {
    payload
        .split_ascii_whitespace()
        .filter_map(|entry| {
            let (user, id) = entry.split_once(':')?;
            Some((user.parse().ok()?, id.parse().ok()?))
        })
        .collect()
}
