//! Who is typing, room by room: never stored, never replayed, and cheap
//! however many type.
//!
//! - A user is announced at most once per `EVERY` (2 s) per room, however
//!   fast their tabs send `typing`: extra ones are dropped at once, with no
//!   other work.
//! - The users announced are gathered for a `TICK` (500 ms); then each room's
//!   sockets here (the lobby: every socket) are sent at most one `typing`
//!   frame each for that room (never their own user's), so a socket gets at
//!   most 2 a second per room even when a thousand people type. Which of the
//!   tick's typists a socket is told of rotates from tick to tick; the page
//!   says "several people are typing" past two anyway.
//! - On a cluster, each node sends its own typists to the others once per
//!   tick (a notification); the others throttle them the same way, so a user
//!   typing in tabs on two nodes is still announced once per 2 s.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::time::Instant;
use tungstenite::Utf8Bytes;

use super::{index::RoomIndex, wire::frames::typing_frame};
use crate::{
    cluster::Peers,
    notify::{Channel, parse_typing, typing_payloads},
    tasks::Tasks,
};

/// A user is announced as typing at most this often, per room.
pub const EVERY: Duration = Duration::from_secs(2);
/// Typists are gathered this long, then sent together. Half a second late
/// is not noticed on a "typing…" line; at 200 ms, 1,000 typists cost a chat
/// fanout half again its p99 (BENCHMARKS.md, typing storm).
pub const TICK: Duration = Duration::from_millis(500);

/// One user typing in one room, with their frame serialized once.
#[derive(Debug, Clone)]
struct Typist {
    user_id: i64,
    room: i64,
    username: Arc<str>,
    frame: Utf8Bytes,
}

impl Typist {
    fn new(user_id: i64, room: i64, username: &str) -> Self {
        Self { user_id, room, username: username.into(), frame: typing_frame(username, room) }
    }
}

/// The frame for a socket of `user_id` among one room's typists: one not
/// that user, rotating with the tick.
fn pick(typists: &[&Typist], tick: u64, user_id: i64) -> Option<Utf8Bytes> {
    let n = typists.len();
    (0..n).map(|k| typists[(tick as usize + k) % n]).find(|t| t.user_id != user_id).map(|t| t.frame.clone())
}

#[derive(Clone)]
pub struct Typing {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    index: Arc<RoomIndex>,
    /// To tell the other nodes, if any.
    peers: Peers,
}

#[derive(Default)]
struct State {
    /// When each user was last announced in each room (pruned each tick).
    announced: HashMap<(i64, i64), Instant>,
    /// This tick's typists: from this node's sockets (`local`) or heard.
    pending: Vec<(Typist, bool)>,
}

impl Typing {
    /// Starts the ticker (it stops with `tasks`), and hears the other nodes' typists.
    pub fn start(index: Arc<RoomIndex>, peers: Peers, tasks: &Tasks) -> Self {
        let typing = Self { inner: Arc::new(Inner { state: Mutex::default(), index, peers }) };
        if let Some(node) = typing.inner.peers.node() {
            let heard = typing.clone();
            node.on(
                Channel::Typing,
                Arc::new(move |payload| {
                    for (user_id, room, username) in parse_typing(payload) {
                        heard.note(user_id, room, &username, false);
                    }
                    Box::pin(async {})
                }),
            );
        }
        tasks.spawn(typing.clone().tick(tasks.stop_token()));
        typing
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A `typing` frame from one of this node's sockets, for `room`.
    pub fn typed(&self, user_id: i64, room: i64, username: &str) {
        self.note(user_id, room, username, true);
    }

    fn note(&self, user_id: i64, room: i64, username: &str, local: bool) {
        let now = Instant::now();
        let mut state = self.state();
        if state.announced.get(&(user_id, room)).is_some_and(|at| now.duration_since(*at) < EVERY) {
            return;
        }
        state.announced.insert((user_id, room), now);
        state.pending.push((Typist::new(user_id, room, username), local));
    }

    async fn tick(self, stop: tokio_util::sync::CancellationToken) {
        let mut every = tokio::time::interval(TICK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tick = 0u64;
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stop.cancelled() => return,
            }
            let pending = {
                let mut state = self.state();
                let now = Instant::now();
                state.announced.retain(|_, at| now.duration_since(*at) < EVERY);
                std::mem::take(&mut state.pending)
            };
            if pending.is_empty() {
                continue;
            }
            tick += 1;
            let ours =
                pending.iter().filter(|(_, local)| *local).map(|(t, _)| (t.user_id, t.room, &*t.username));
            let payloads = typing_payloads(ours);
            if !payloads.is_empty()
                && let Err(e) = self.inner.peers.tell(Channel::Typing, &payloads).await
            {
                tracing::debug!(error = %e, "could not tell the other nodes who is typing");
            }
            let mut by_room: HashMap<i64, Vec<&Typist>> = HashMap::new();
            for (typist, _) in &pending {
                by_room.entry(typist.room).or_default().push(typist);
            }
            for (room, typists) in by_room {
                self.inner.index.each_in(room, None, |user, inbox| {
                    if let Some(frame) = pick(&typists, tick, user) {
                        inbox.push((0, frame));
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::inbox::{Inbox, Taken};

    #[test]
    fn a_socket_is_never_told_of_its_own_user_and_rotates_through_the_rest() {
        let all = [Typist::new(1, 1, "u1"), Typist::new(2, 1, "u2"), Typist::new(3, 1, "u3")];
        let typists: Vec<&Typist> = all.iter().collect();
        assert!(pick(&typists, 0, 1).unwrap().as_str().contains("u2"));
        assert!(pick(&typists, 1, 1).unwrap().as_str().contains("u2"));
        assert!(pick(&typists, 2, 1).unwrap().as_str().contains("u3"));
        assert!(pick(&typists[..1], 0, 1).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_user_is_announced_once_per_two_seconds_per_room_to_that_rooms_sockets() {
        let index = Arc::new(RoomIndex::default());
        let (mine, other) = (Arc::new(Inbox::new(64)), Arc::new(Inbox::new(64)));
        let (_a, _) = index.attach(2, vec![7], 0, mine.clone(), |_| ());
        let (_b, _) = index.attach(3, vec![], 0, other.clone(), |_| ());
        let typing = Typing::start(index, Peers::Alone, &Tasks::new());
        for _ in 0..50 {
            typing.typed(1, 7, "alice");
        }
        tokio::time::sleep(TICK * 2).await;
        let Taken::Items(items) = mine.take().await else { panic!("one frame") };
        assert_eq!(items.len(), 1, "fifty keystrokes, one frame");
        assert!(items[0].1.as_str().contains(r#""room":7"#));
        let waker = std::task::Waker::noop();
        assert!(other.poll_take(&mut std::task::Context::from_waker(waker)).is_pending(), "not in room 7");
        tokio::time::sleep(EVERY).await;
        typing.typed(1, 7, "alice");
        tokio::time::sleep(TICK * 2).await;
        assert!(matches!(mine.take().await, Taken::Items(_)), "again after 2 s");
    }
}
