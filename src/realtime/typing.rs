//! Who is typing: never stored, never replayed, and cheap however many type.
//!
//! - A user is announced at most once per `EVERY` (2 s), however fast their
//!   tabs send `typing`: extra ones are dropped at once, with no other work.
//! - The users announced are gathered for a `TICK` (500 ms) and go out as one
//!   event of the stream; each socket writes at most one `typing` frame per
//!   tick (never its own user's), so a socket gets at most 2 a second even
//!   when a thousand people type. Which of the tick's typists a socket is
//!   told of rotates from tick to tick; the page says "several people are
//!   typing" past two anyway.
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

use super::{
    stream::{Event, Events},
    wire::frame,
};
use crate::{
    cluster::Peers,
    notify::{Channel, parse_typing, typing_payloads},
    tasks::Tasks,
};

/// A user is announced as typing at most this often.
pub const EVERY: Duration = Duration::from_secs(2);
/// Typists are gathered this long, then sent together. Half a second late
/// is not noticed on a "typing…" line; at 200 ms, 1,000 typists cost a chat
/// fanout half again its p99 (BENCHMARKS.md, typing storm).
pub const TICK: Duration = Duration::from_millis(500);

/// One user typing, with their frame serialized once.
#[derive(Debug, Clone)]
pub struct Typist {
    pub user_id: i64,
    pub username: Arc<str>,
    pub frame: Utf8Bytes,
}

impl Typist {
    fn new(user_id: i64, username: &str) -> Self {
        #[derive(serde::Serialize)]
        struct Data<'a> {
            username: &'a str,
        }
        Self { user_id, username: username.into(), frame: frame("typing", &Data { username }) }
    }
}

/// The typists of one tick, for every socket to pick one from.
#[derive(Debug, Clone)]
pub struct TypingTick {
    pub typists: Arc<[Typist]>,
    pub tick: u64,
}

impl TypingTick {
    /// The frame for a socket of `user_id`: one typist not that user,
    /// rotating with the tick.
    pub fn frame_for(&self, user_id: i64) -> Option<&Utf8Bytes> {
        let n = self.typists.len();
        (0..n)
            .map(|k| &self.typists[(self.tick as usize + k) % n])
            .find(|t| t.user_id != user_id)
            .map(|t| &t.frame)
    }
}

#[derive(Clone)]
pub struct Typing {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    events: Events,
    /// To tell the other nodes, if any.
    peers: Peers,
}

#[derive(Default)]
struct State {
    /// When each user was last announced (pruned each tick).
    announced: HashMap<i64, Instant>,
    /// This tick's typists: from this node's sockets (`local`) or heard.
    pending: Vec<(Typist, bool)>,
}

impl Typing {
    /// Starts the ticker (it stops with `tasks`), and hears the other nodes' typists.
    pub fn start(events: Events, peers: Peers, tasks: &Tasks) -> Self {
        let typing = Self { inner: Arc::new(Inner { state: Mutex::default(), events, peers }) };
        if let Some(node) = typing.inner.peers.node() {
            let heard = typing.clone();
            node.on(
                Channel::Typing,
                Arc::new(move |payload| {
                    heard.heard(&parse_typing(payload));
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

    /// A `typing` frame from one of this node's sockets.
    pub fn typed(&self, user_id: i64, username: &str) {
        self.note(user_id, username, true);
    }

    /// Typists another node announced.
    fn heard(&self, typists: &[(i64, String)]) {
        for (user_id, username) in typists {
            self.note(*user_id, username, false);
        }
    }

    fn note(&self, user_id: i64, username: &str, local: bool) {
        let now = Instant::now();
        let mut state = self.state();
        if state.announced.get(&user_id).is_some_and(|at| now.duration_since(*at) < EVERY) {
            return;
        }
        state.announced.insert(user_id, now);
        state.pending.push((Typist::new(user_id, username), local));
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
            let ours = pending.iter().filter(|(_, local)| *local).map(|(t, _)| (t.user_id, &*t.username));
            let payloads = typing_payloads(ours);
            if !payloads.is_empty()
                && let Err(e) = self.inner.peers.tell(Channel::Typing, &payloads).await
            {
                tracing::debug!(error = %e, "could not tell the other nodes who is typing");
            }
            let typists: Arc<[Typist]> = pending.into_iter().map(|(t, _)| t).collect();
            self.inner.events.publish(Event::Typing(TypingTick { typists, tick }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typist(user_id: i64) -> Typist {
        Typist::new(user_id, &format!("u{user_id}"))
    }

    #[test]
    fn a_socket_is_never_told_of_its_own_user_and_rotates_through_the_rest() {
        let tick = |n| TypingTick { typists: vec![typist(1), typist(2), typist(3)].into(), tick: n };
        assert!(tick(0).frame_for(1).unwrap().as_str().contains("u2"));
        assert!(tick(1).frame_for(1).unwrap().as_str().contains("u2"));
        assert!(tick(2).frame_for(1).unwrap().as_str().contains("u3"));
        let alone = TypingTick { typists: vec![typist(1)].into(), tick: 0 };
        assert!(alone.frame_for(1).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_user_is_announced_once_per_two_seconds() {
        let events = Events::new(64);
        let mut stream = events.subscribe();
        let typing = Typing::start(events, Peers::Alone, &Tasks::new());
        for _ in 0..50 {
            typing.typed(1, "alice");
        }
        tokio::time::sleep(TICK * 2).await;
        let Ok(Event::Typing(tick)) = stream.try_recv() else { panic!("one tick") };
        assert_eq!(tick.typists.len(), 1);
        assert!(stream.try_recv().is_err(), "fifty keystrokes, one event");
        tokio::time::sleep(EVERY).await;
        typing.typed(1, "alice");
        tokio::time::sleep(TICK * 2).await;
        assert!(matches!(stream.try_recv(), Ok(Event::Typing(_))), "again after 2 s");
    }
}
