//! Read markers: the newest message of each room each user has seen,
//! stored, and shown to every tab of theirs.
//!
//! - A `read` from a tab moves the user's marker in that room forward
//!   (never back), here at once: the user's sockets here are sent `read
//!   marker` through their inboxes, no other socket is woken.
//! - The database gets the moves of the last `FLUSH` (1 s) in one
//!   transaction, so reading costs no write per frame.
//! - On a cluster the flush also tells the other nodes (one notification),
//!   which send the user's tabs there the same.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{index::RoomIndex, wire::frames::read_marker_frame};
use crate::{
    cluster::Peers,
    notify::{Channel, Marker, marker_payloads, parse_markers},
    store::Store,
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
    index: Arc<RoomIndex>,
    /// To tell the other nodes, if any.
    peers: Peers,
    state: Mutex<State>,
    moved: Notify,
}

#[derive(Default)]
struct State {
    /// The markers known here, (user, room) → id, for users with a socket
    /// here: a move is news only if it is forward of these.
    known: HashMap<(i64, i64), i64>,
    /// Moves not written yet.
    pending: HashMap<(i64, i64), i64>,
}

impl ReadMarkers {
    /// Starts the flusher (when the tasks stop, it writes what is pending and
    /// ends), and hears the other nodes' moves.
    pub fn start(store: Store, index: Arc<RoomIndex>, peers: Peers, tasks: &Tasks) -> Self {
        let inner = Inner { store, index, peers, state: Mutex::default(), moved: Notify::new() };
        let markers = Self { inner: Arc::new(inner) };
        if let Some(node) = markers.inner.peers.node() {
            let heard = markers.clone();
            node.on(
                Channel::Read,
                Arc::new(move |payload| {
                    for (user, room, id) in parse_markers(payload) {
                        heard.advance(user, room, id);
                    }
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

    /// What a user's new socket was told (their markers, from the database):
    /// later moves are compared with these.
    pub fn known(&self, user: i64, markers: impl IntoIterator<Item = (i64, i64)>) {
        let mut state = self.state();
        for (room, id) in markers {
            let known = state.known.entry((user, room)).or_insert(0);
            *known = (*known).max(id);
        }
    }

    /// A tab of `user` has seen the messages of `room` up to `id`.
    pub fn read(&self, user: i64, room: i64, id: i64) {
        if self.advance(user, room, id) {
            let mut state = self.state();
            let pending = state.pending.entry((user, room)).or_insert(0);
            *pending = (*pending).max(id);
            drop(state);
            self.inner.moved.notify_one();
        }
    }

    /// Moves the marker forward to `id` and tells the user's tabs here;
    /// false if it was there already.
    fn advance(&self, user: i64, room: i64, id: i64) -> bool {
        {
            let mut state = self.state();
            let known = state.known.entry((user, room)).or_insert(0);
            if *known >= id {
                return false;
            }
            *known = id;
        }
        self.inner.index.deliver_user(user, 0, &read_marker_frame(room, id));
        true
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
        let moves: Vec<Marker> = {
            let mut state = self.state();
            // Users with no tab here need no markers kept.
            let index = &self.inner.index;
            state.known.retain(|(user, _), _| index.is_here(*user));
            state.pending.drain().map(|((user, room), id)| (user, room, id)).collect()
        };
        self.write(moves).await;
    }

    /// Writes `user`'s moves not written yet, now: a new socket of theirs
    /// reads its rooms (markers, unread counts) from the database, which
    /// must not be behind what their tabs here were told.
    pub async fn write_now(&self, user: i64) {
        let moves: Vec<Marker> = {
            let mut state = self.state();
            let theirs: Vec<(i64, i64)> = state.pending.keys().filter(|(u, _)| *u == user).copied().collect();
            theirs.into_iter().filter_map(|k| state.pending.remove(&k).map(|id| (k.0, k.1, id))).collect()
        };
        self.write(moves).await;
    }

    async fn write(&self, moves: Vec<Marker>) {
        if moves.is_empty() {
            return;
        }
        if let Err(e) = self.inner.store.advance_read_markers(&moves).await {
            // Kept for the next flush: a marker is a convenience, not worth a retry loop.
            tracing::warn!(error = %e, "could not store read markers");
            let mut state = self.state();
            for (user, room, id) in moves {
                let pending = state.pending.entry((user, room)).or_insert(0);
                *pending = (*pending).max(id);
            }
            return;
        }
        if let Err(e) = self.inner.peers.tell(Channel::Read, &marker_payloads(&moves)).await {
            tracing::debug!(error = %e, "could not tell the other nodes of read markers");
        }
    }
}
