//! The event stream every socket follows: the chat log, the join and leave
//! announcements, typing, the user count, the ping clock and shutdown,
//! each serialized once and shared by reference. Everything that concerns
//! every socket comes through here, so a socket waits on one channel (one
//! registration) for all of it. Chat and announcement events carry their
//! position, so a socket that was sent a snapshot (its history) skips what
//! the snapshot already held.

use tokio::sync::broadcast;
use tungstenite::Utf8Bytes;

#[derive(Debug, Clone)]
pub enum Event {
    /// A change of the chat log, at this log position.
    Chat { seq: i64, frame: Utf8Bytes },
    /// A `user` announcement, at this presence position.
    Notice { seq: i64, frame: Utf8Bytes },
    /// The users who started typing in the last tick (never stored).
    Typing(super::typing::TypingTick),
    /// A new `user count`.
    Count(super::presence::Count),
    /// A beat of the ping clock (`beat.rs`).
    Beat(u64),
    /// The server is shutting down: what came before is delivered, then
    /// the socket closes with 1001.
    Shutdown,
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub struct Events(broadcast::Sender<Event>);

impl Events {
    /// `backlog`: how many events a socket may fall behind before it must be
    /// caught up from the history (or closed with 1013).
    pub fn new(backlog: usize) -> Self {
        Self(broadcast::channel(backlog.max(16)).0)
    }

    /// Follow the stream. Subscribe before taking a snapshot, so nothing
    /// published in between is missed.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.subscribe()
    }

    pub fn publish(&self, event: Event) {
        // No receivers is fine: nobody to tell.
        let _ = self.0.send(event);
    }
}
