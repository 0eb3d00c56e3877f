//! What reaches a socket besides its client's answers, written to it: from
//! the event stream, announcements not already in its snapshot, the latest
//! count of a batch, pings, shutdown; from its inbox, its rooms' changes
//! not already in its history, typing, its user's markers, rooms joined and
//! left. A socket that fell behind its inbox is caught up from the history
//! (its rooms' changes), or closed with 1013.

use tokio::sync::broadcast::{
    self,
    error::{RecvError, TryRecvError},
};

use super::{End, GOING_AWAY, WebSocket};
use crate::{
    domain::LOBBY,
    realtime::{
        Realtime,
        beat::Beat,
        inbox::{Item, Taken},
        stream::Event,
        wire::close,
    },
};

/// Events written before one flush when a backlog is waiting.
const FLUSH_BATCH: usize = 64;

/// This socket's place in the event stream and its inbox, and what it was
/// last sent of each kind, so nothing goes out twice.
pub(super) struct Feed {
    events: broadcast::Receiver<Event>,
    /// The newest change of the log sent (history included).
    last_sent: i64,
    /// The last announcement this socket's `online users` reflected.
    last_notice: i64,
    /// The position of the log its `rooms` reflected: rooms' events up to
    /// it are in them already.
    rooms_reflect: i64,
    count_sent: usize,
    /// The beat of a ping not answered yet.
    awaiting_pong: Option<u64>,
    /// Whose socket: catching up keeps to their rooms.
    user_id: i64,
}

impl Feed {
    /// A socket whose snapshot reached `last_sent` (chat), `last_notice`
    /// (announcements) and `rooms_reflect` (its rooms), and that was sent
    /// `count_sent`.
    pub(super) fn new(
        events: broadcast::Receiver<Event>,
        last_sent: i64,
        last_notice: i64,
        rooms_reflect: i64,
        count_sent: usize,
        user_id: i64,
    ) -> Self {
        Self { events, last_sent, last_notice, rooms_reflect, count_sent, awaiting_pong: None, user_id }
    }

    /// The next event (cancel-safe).
    pub(super) async fn next(&mut self) -> Result<Event, RecvError> {
        self.events.recv().await
    }

    /// Writes what was taken from the inbox, in one write.
    pub(super) async fn write_inbox(
        &mut self,
        socket: &mut WebSocket,
        taken: Taken,
        realtime: &Realtime,
    ) -> Result<(), End> {
        let write = async {
            match taken {
                Taken::Items(items) => {
                    for item in items {
                        self.item(socket, item).await?;
                    }
                }
                Taken::Lagged => self.catch_up(socket, realtime).await?,
            }
            socket.flush().await.map_err(|_| End::Gone)
        };
        tokio::time::timeout(realtime.0.settings.send_timeout, write).await.unwrap_or(Err(End::Gone))
    }

    async fn item(&mut self, socket: &mut WebSocket, (seq, frame): Item) -> Result<(), End> {
        if !self.is_new(seq) {
            return Ok(());
        }
        socket.feed(frame).await.map_err(|_| End::Gone)
    }

    /// Is the item at `seq` news to this socket? Not a change of the log
    /// its history had, nor a room's event its `rooms` had: the two were
    /// read at different positions, either one further along.
    fn is_new(&mut self, seq: i64) -> bool {
        if seq > 0 {
            if seq <= self.last_sent {
                return false;
            }
            self.last_sent = seq;
        } else if seq < 0 && -seq <= self.rooms_reflect {
            return false;
        }
        true
    }

    /// The client sent something: it is alive, whatever it sent.
    pub(super) fn answered(&mut self) {
        self.awaiting_pong = None;
    }

    /// Writes `first` and whatever else is already waiting (up to
    /// `FLUSH_BATCH`), then flushes once: a backlog costs one write.
    pub(super) async fn write(
        &mut self,
        socket: &mut WebSocket,
        first: Result<Event, RecvError>,
        realtime: &Realtime,
    ) -> Result<(), End> {
        let write = async {
            let mut next = Some(first);
            let mut written = 0;
            // Only the latest count of a batch goes out: in a storm of joins
            // a socket busy with the announcements sends one count per write.
            let mut count = None;
            while let Some(event) = next {
                match event {
                    Ok(Event::Count(latest)) => count = Some(latest),
                    Ok(event) => self.feed(socket, event).await?,
                    // What it missed that matters: the count, and shutdown.
                    Err(RecvError::Lagged(_)) if realtime.0.shutdown.is_cancelled() => {
                        return Err(GOING_AWAY);
                    }
                    Err(RecvError::Lagged(_)) => count = Some(realtime.0.presence.count()),
                    Err(RecvError::Closed) => return Err(GOING_AWAY),
                }
                written += 1;
                next = if written <= FLUSH_BATCH { self.waiting() } else { None };
            }
            if let Some(count) = count {
                self.feed(socket, Event::Count(count)).await?;
            }
            socket.flush().await.map_err(|_| End::Gone)
        };
        tokio::time::timeout(realtime.0.settings.send_timeout, write).await.unwrap_or(Err(End::Gone))
    }

    /// The next event if one is already there, without waiting.
    fn waiting(&mut self) -> Option<Result<Event, RecvError>> {
        match self.events.try_recv() {
            Ok(event) => Some(Ok(event)),
            Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
            Err(TryRecvError::Empty | TryRecvError::Closed) => None,
        }
    }

    async fn feed(&mut self, socket: &mut WebSocket, event: Event) -> Result<(), End> {
        let frame = match event {
            Event::Notice { seq, .. } if seq <= self.last_notice => return Ok(()),
            Event::Notice { seq, frame } => {
                self.last_notice = seq;
                frame
            }
            Event::Count(count) if count.value == self.count_sent => return Ok(()),
            Event::Count(count) => {
                self.count_sent = count.value;
                count.frame
            }
            Event::Beat(beat) => return self.beat(socket, beat),
            Event::Shutdown => return Err(GOING_AWAY),
        };
        socket.feed(frame).await.map_err(|_| End::Gone)
    }

    /// A ping now, or the end of a socket that left the last one unanswered.
    fn beat(&mut self, socket: &mut WebSocket, beat: u64) -> Result<(), End> {
        match (Beat::of(beat), self.awaiting_pong) {
            // A ping went unanswered past the timeout (or a whole round).
            (_, Some(pinged)) if pinged < beat => Err(End::Gone),
            (Beat::Ping, _) => {
                self.awaiting_pong = Some(beat);
                socket.queue_ping();
                Ok(())
            }
            (Beat::Check, _) => Ok(()),
        }
    }

    /// The socket fell further behind than its inbox holds: send the changes
    /// of its rooms it missed from the history, or close it with 1013 if
    /// even the history no longer has them (the client reconnects with
    /// `since`).
    async fn catch_up(&mut self, socket: &mut WebSocket, realtime: &Realtime) -> Result<(), End> {
        metrics::counter!(crate::metrics::CATCH_UPS).increment(1);
        if realtime.0.shutdown.is_cancelled() {
            return Err(GOING_AWAY);
        }
        let missed = realtime.0.index.rooms_of(self.user_id, |rooms| {
            let theirs = |room: i64| room == LOBBY || rooms.is_some_and(|r| r.contains(&room));
            realtime.0.history.after(self.last_sent, theirs)
        });
        let Some(missed) = missed else {
            return Err(End::Close(close::TRY_AGAIN_LATER, "fell too far behind"));
        };
        for (id, frame) in missed {
            self.last_sent = id;
            socket.feed(frame).await.map_err(|_| End::Gone)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::inbox::room_event;

    fn feed(history_reaches: i64, rooms_reflect: i64) -> Feed {
        let (_, events) = broadcast::channel(1);
        Feed::new(events, history_reaches, 0, rooms_reflect, 0, 1)
    }

    #[test]
    fn rooms_read_before_the_history_miss_no_room_event_in_between() {
        // Rooms read at 10, history at 20: a join at 15 is in neither.
        let mut feed = feed(20, 10);
        assert!(!feed.is_new(room_event(8)), "in its rooms");
        assert!(feed.is_new(room_event(15)), "not in its rooms, though before the history's end");
        assert!(!feed.is_new(15), "a message the history had");
        assert!(feed.is_new(21));
        assert!(feed.is_new(0), "typing, markers");
    }

    #[test]
    fn rooms_read_after_the_history_see_no_room_event_twice() {
        // Rooms read at 20, history at 10: a join at 15 is in its rooms.
        let mut feed = feed(10, 20);
        assert!(!feed.is_new(room_event(15)), "its rooms had it");
        assert!(feed.is_new(15), "a message after the history");
        assert!(!feed.is_new(15), "once");
        assert!(feed.is_new(room_event(21)));
    }
}
