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

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::{
    cluster::Peers,
    notify::{Channel, marker_payloads, parse_markers},
    store::{Store, StoreError},
    tasks::Tasks,
};

/// How long moves gather before they are written.
pub const FLUSH: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct ReadMarkers {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// To tell the other nodes, if any.
    peers: Peers,
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
    /// Starts the flusher (when the tasks stop, it writes what is pending and
    /// ends), and hears the other nodes' moves.
    pub fn start(store: Store, peers: Peers, tasks: &Tasks) -> Self {
        let markers =
            Self { inner: Arc::new(Inner { store, peers, state: Mutex::default(), moved: Notify::new() }) };
        if let Some(node) = markers.inner.peers.node() {
            let heard = markers.clone();
            node.on(
                Channel::Read,
                Arc::new(move |payload| {
                    heard.heard(&parse_markers(payload));
                    Box::pin(async {})
                }),
            );
        }
        tasks.spawn(markers.clone().flush_until(tasks.stop_token()));
        markers
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
    fn heard(&self, moves: &[(i64, i64)]) {
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
        if let Err(e) = self.inner.peers.tell(Channel::Read, &marker_payloads(&moves)).await {
            tracing::debug!(error = %e, "could not tell the other nodes of read markers");
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
