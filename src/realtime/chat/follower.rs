//! The follower: follows the chat log by position and publishes each change,
//! in order, to this node's history and sockets. Under load (a crowd here, or
//! more than a message per window coming in) it reads at most once per
//! `FANOUT_WINDOW` (25 ms): one read and one socket write then carry several
//! messages, which is where most of a delivery's cost is (a 1,000-receiver
//! fan-out at 200 messages/s: server CPU 1.05 → 0.74 cores, see
//! BENCHMARKS.md). A small room at a chatting pace is never made to wait:
//! there coalescing would only add latency. Woken when this node commits a
//! batch, when another node's notification arrives, and after every gap in
//! listening; it also polls, as the backstop for a lost notification. Since
//! it only ever asks for `seq > last`, being woken too often costs a query
//! and being woken too late costs latency, never a message.

use std::{sync::Arc, time::Duration};

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::history::History;
use crate::{
    domain::RoomView,
    realtime::{
        inbox::Cork,
        index::RoomIndex,
        presence::Presence,
        wire::frames::{member_frame, room_frame, room_left_frame, room_updated_frame},
    },
    store::{LogChange, RoomChange, RoomEvent, Store},
    tasks::Tasks,
};

/// Sockets on this node from which reads are spaced by the window: one
/// fan-out to this many costs about a window's worth of CPU (~8 µs each).
const CROWD: usize = 1_000;
/// Messages a second from which reads are spaced by the window, whatever
/// the crowd: more than one per window.
const BUSY_RATE: usize = 40;

/// How many changes one read takes at most.
const READ_BATCH: usize = 512;

/// The position up to which this node has published; for shutdown, which
/// waits until what it committed has gone out.
#[derive(Clone)]
pub struct Published(watch::Receiver<i64>);

impl Published {
    /// The position published, to follow.
    pub fn watch(&self) -> watch::Receiver<i64> {
        self.0.clone()
    }

    /// Waits (at most `within`) until everything up to `position` is published.
    pub async fn reach(&mut self, position: i64, within: Duration) -> bool {
        tokio::time::timeout(within, self.0.wait_for(|p| *p >= position)).await.is_ok_and(|r| r.is_ok())
    }
}

pub struct Follower {
    pub store: Store,
    pub history: Arc<History>,
    /// Who is where on this node: each change goes to its room's sockets.
    pub index: Arc<RoomIndex>,
    /// Woken by this node's commits and other nodes' notifications.
    pub wake: Arc<Notify>,
    pub poll: Duration,
    /// The least time between two reads (`FANOUT_WINDOW`), with a crowd here.
    pub window: Duration,
    /// Who is here: a crowd gets the window.
    pub presence: Presence,
}

impl Follower {
    /// Follows the log from `position` until the tasks stop.
    pub fn start(self, position: i64, tasks: &Tasks) -> Published {
        let (published, follower) = watch::channel(position);
        tasks.spawn(self.follow(position, published, tasks.stop_token()));
        Published(follower)
    }

    async fn follow(self, mut position: i64, published: watch::Sender<i64>, stop: CancellationToken) {
        let mut last_read = tokio::time::Instant::now();
        let mut pace = Pace::new(last_read);
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
                _ = stop.cancelled() => return,
            }
            // While messages keep coming, read at most once per window: each
            // read then publishes all that committed meanwhile, and each
            // socket writes them in one go. After a quiet moment the window
            // has long passed, and the message goes out at once.
            if pace.busy() || self.presence.here() >= CROWD {
                tokio::time::sleep_until(last_read + self.window).await;
            }
            last_read = tokio::time::Instant::now();
            loop {
                let entries = match self.store.log_after(position, READ_BATCH).await {
                    Ok(entries) => entries,
                    Err(e) => {
                        // Nothing is lost: the next wake or poll asks again from here.
                        tracing::warn!(error = %e, position, "could not read the chat log");
                        break;
                    }
                };
                let full = entries.len() == READ_BATCH;
                pace.count(entries.len(), last_read);
                // Each socket's messages of this read go out in one write.
                let mut cork = Cork::default();
                for change in entries {
                    // Positions only grow; an edit or delete leaves a hole
                    // where the message's earlier change was, which is fine.
                    let seq = change.seq();
                    if seq <= position {
                        tracing::error!(after = position, got = seq, "the chat log went backwards");
                        continue;
                    }
                    position = seq;
                    match change {
                        LogChange::Message(entry) => {
                            let frame = self.history.apply(&entry);
                            self.index.deliver(entry.message.room, seq, &frame, None, &mut cork);
                        }
                        LogChange::Room(event) => self.room_event(&event),
                    }
                }
                cork.release();
                self.top_up().await;
                published.send_replace(position);
                if !full {
                    break;
                }
            }
        }
    }
}

/// How fast messages come: those published this second, and whether the
/// last whole second was busy.
struct Pace {
    second: tokio::time::Instant,
    published: usize,
    was_busy: bool,
}

impl Pace {
    fn new(now: tokio::time::Instant) -> Self {
        Self { second: now, published: 0, was_busy: false }
    }

    fn count(&mut self, published: usize, now: tokio::time::Instant) {
        if now.duration_since(self.second) >= Duration::from_secs(1) {
            self.was_busy = self.published > BUSY_RATE;
            self.second = now;
            self.published = 0;
        }
        self.published += published;
    }

    fn busy(&self) -> bool {
        self.was_busy || self.published > BUSY_RATE
    }
}

impl Follower {
    /// A room's event, in its place among the messages: who is in the room
    /// here changes before anything after it is delivered.
    fn room_event(&self, event: &RoomEvent) {
        let (seq, room) = (event.seq, event.room.id);
        match (event.change, &event.user) {
            (RoomChange::Created | RoomChange::Joined, Some((user, name))) => {
                let joined = room_frame("room joined", &joined_view(event, name));
                self.index.joined(seq, *user, room, joined);
                // A room's first members are told it exists, not that the others joined.
                if event.change == RoomChange::Joined {
                    self.index.news(seq, room, member_frame("member joined", room, name), Some(*user));
                }
            }
            (RoomChange::Left, Some((user, name))) => {
                self.index.news(seq, room, member_frame("member left", room, name), Some(*user));
                self.index.left(seq, *user, room, room_left_frame(room));
            }
            (RoomChange::Updated, _) => {
                self.index.news(seq, room, room_updated_frame(&joined_view(event, "")), None)
            }
            (RoomChange::Archived, _) => self.index.archived(seq, room, room_left_frame(room)),
            // A join or leave of a user since deleted: nobody to tell.
            (_, None) => {}
        }
    }

    /// Deletions can leave the plain history short of its 50: fetch older
    /// messages to fill it. A failure only leaves it short until the next read.
    async fn top_up(&self) {
        let Some((before, count)) = self.history.wants_older() else { return };
        match self.store.messages_before(crate::domain::LOBBY, before, count).await {
            Ok(page) => self.history.add_older(&page.messages, page.more),
            Err(e) => tracing::debug!(error = %e, "could not fill the history after deletions"),
        }
    }
}

/// The room as a member who just came into it sees it: nothing unread (their
/// marker starts at its newest message), the level its kind starts at.
fn joined_view(event: &RoomEvent, name: &str) -> RoomView {
    let facts = &event.room;
    let people = (facts.kind == crate::domain::RoomKind::Direct)
        .then(|| facts.people.iter().filter(|p| *p != name).cloned().collect());
    RoomView {
        id: facts.id,
        kind: facts.kind,
        name: facts.name.clone(),
        topic: facts.topic.clone(),
        people,
        members: facts.members,
        member: true,
        level: facts.kind.default_level(facts.id),
        last_id: facts.last_id,
        last_read: facts.last_id,
        unread: 0,
        mentions: 0,
        created_by: facts.created_by,
    }
}
