//! The event stream every socket follows: the join and leave
//! announcements, the user count, the ping clock and shutdown, each
//! serialized once and shared by reference. What concerns every socket,
//! whatever its rooms, comes through here, so a socket waits on one channel
//! (one registration) for all of it; what concerns some sockets (a room's
//! messages, typing, a user's markers) goes to their inboxes (`inbox`).
//! Announcements carry their position, so a socket that was sent a snapshot
//! (who is online) skips what the snapshot already held.

use tokio::sync::broadcast;
use tungstenite::Utf8Bytes;

#[derive(Debug, Clone)]
pub enum Event {
    /// A `user` announcement, at this presence position.
    Notice { seq: i64, frame: Utf8Bytes },
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
    /// `backlog`: how many events a socket may fall behind before it is
    /// caught up (the latest count) or closed with 1013.
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
