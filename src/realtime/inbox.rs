//! A socket's inbox: what this node sends one socket and not every socket.
//! The chat log's changes in its user's rooms, typing in them, its user's
//! read markers, rooms joined and left: each pushed by the part that has it
//! (the follower, the typing ticker, the markers), in order.
//!
//! Written without the socket's task when it can be: a frame pushed to an
//! empty inbox whose socket's task is not writing goes straight into the
//! socket's stream (a non-blocking write of the shared frame), and the
//! task is not woken. Otherwise it waits here, and the task is woken to
//! take everything in one go: when the write would block, or the task is
//! writing already (then the frame must wait its turn behind what the task
//! took). Taking claims the socket's write side in the same hold, so a
//! newer frame is never written before older ones taken. The follower
//! corks its pushes for one read of the log ([`Cork`]): each socket's
//! frames of that read go out in one write.
//!
//! What a socket has had of the log ([`Seen`]) is kept here, where both
//! ways apply it: nothing its history or its greeting's rooms had goes out,
//! nothing goes twice, and a socket that fell behind catches up from the
//! last change it was sent.
//!
//! Bounded: a socket whose inbox fills is marked as fallen behind and its
//! frames are dropped; its task then catches up from the history, or
//! closes with 1013 (the client reconnects with `since`). Nothing is held
//! for a slow reader without bound. An empty inbox holds no allocation.
//!
//! Lock order: an inbox's lock, then its stream's gate.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    task::{Context, Poll, Waker},
};

use tungstenite::Utf8Bytes;

use crate::websocket::{Direct, stream::DIRECT_FRAMES};

/// A frame for one socket: its position in the log (0: not of the log,
/// such as typing; negative: a room's event, see [`room_event`]), and the
/// frame, serialized once for everyone it goes to.
pub type Item = (i64, Utf8Bytes);

/// The place of a room's event (a membership, a rename, an archive) at
/// log position `seq` among a socket's items. Such events are not in the
/// history a socket is sent but in the `rooms` of its greeting, which may
/// be read further along the log than its history: the socket skips those
/// its `rooms` already had, and only those.
pub fn room_event(seq: i64) -> i64 {
    -seq
}

/// Frames pushed to inboxes (for the metrics).
pub static PUSHED: AtomicU64 = AtomicU64::new(0);
/// Times an inbox woke its socket's task.
pub static WAKES: AtomicU64 = AtomicU64::new(0);
/// Frames written into a socket's stream by whoever pushed them.
pub static DIRECT: AtomicU64 = AtomicU64::new(0);

pub struct Inbox {
    /// A std Mutex: pushes and takes are short and never await.
    state: Mutex<State>,
    capacity: usize,
}

#[derive(Default)]
struct State {
    items: VecDeque<Item>,
    /// Frames were dropped: the socket must catch up.
    lagged: bool,
    /// A direct write left part of its frames: the task must write the rest.
    flush: bool,
    /// In a [`Cork`]: frames wait here until it is released.
    corked: bool,
    /// The socket's task, waiting.
    waker: Option<Waker>,
    /// The socket's stream, while its task runs.
    direct: Option<Direct>,
    seen: Seen,
}

/// What a socket has had of the log: its history and the changes sent
/// since (`last_sent`), and the rooms' events its greeting's `rooms`
/// reflect (up to `rooms_reflect`). The two were read at different
/// positions, either one further along.
#[derive(Default, Clone, Copy)]
pub struct Seen {
    last_sent: i64,
    rooms_reflect: i64,
}

impl Seen {
    /// Is the item at `seq` news to this socket? Typing and markers (0) are.
    fn is_new(&self, seq: i64) -> bool {
        match seq {
            1.. => seq > self.last_sent,
            0 => true,
            _ => -seq > self.rooms_reflect,
        }
    }

    /// Keeps the news, in order, as sent.
    fn keep_new(&mut self, items: &mut VecDeque<Item>) {
        items.retain(|&(seq, _)| {
            let new = self.is_new(seq);
            if new && seq > 0 {
                self.last_sent = seq;
            }
            new
        });
    }
}

/// What the socket finds in its inbox.
pub enum Taken {
    /// The news, in order (perhaps none: then a direct write's rest is to
    /// be flushed).
    Items(VecDeque<Item>),
    /// It fell further behind than the inbox holds.
    Lagged,
}

impl Inbox {
    pub fn new(capacity: usize) -> Self {
        Self { state: Mutex::default(), capacity: capacity.max(16) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The socket's history reaches `history_reaches`, and its greeting's
    /// rooms reflect the log up to `rooms_reflect`: items up to them are
    /// not news to it.
    pub fn seen(&self, history_reaches: i64, rooms_reflect: i64) {
        self.state().seen = Seen { last_sent: history_reaches, rooms_reflect };
    }

    /// The socket's task runs: frames may go straight into its stream when
    /// the task is not writing.
    pub fn connect(&self, direct: Direct) {
        self.state().direct = Some(direct);
    }

    /// The socket's task ends: nothing is written directly any more.
    pub fn disconnect(&self) {
        self.state().direct = None;
    }

    /// The newest change of the log the socket was sent.
    pub fn last_sent(&self) -> i64 {
        self.state().seen.last_sent
    }

    /// The socket was sent the log's changes up to `seq` (catching up).
    pub fn sent(&self, seq: i64) {
        let mut state = self.state();
        state.seen.last_sent = state.seen.last_sent.max(seq);
    }

    /// Adds a frame: written at once if the inbox is empty and the task not
    /// writing, else queued and the task woken.
    pub fn push(&self, item: Item) {
        PUSHED.fetch_add(1, Relaxed);
        let waker = {
            let mut state = self.state();
            if state.lagged {
                return;
            }
            let State { items, direct, seen, flush, lagged, .. } = &mut *state;
            match direct.as_ref().filter(|_| items.is_empty()).and_then(Direct::free) {
                Some(free) => {
                    if !seen.is_new(item.0) {
                        return;
                    }
                    if item.0 > 0 {
                        seen.last_sent = item.0;
                    }
                    DIRECT.fetch_add(1, Relaxed);
                    if free.send(std::iter::once(&item.1)) {
                        return;
                    }
                    *flush = true;
                }
                None => queue(items, lagged, self.capacity, item),
            }
            state.waker.take()
        };
        wake(waker);
    }

    /// Adds a frame to be written when `cork` is released, if the task is
    /// not writing; if it is, the task is woken now, as by [`push`], so a
    /// busy socket's inbox fills no faster than without a cork. A write's
    /// worth (or half the inbox) goes at once.
    ///
    /// [`push`]: Self::push
    pub fn push_corked(self: &Arc<Self>, item: Item, cork: &mut Cork) {
        PUSHED.fetch_add(1, Relaxed);
        let waker = {
            let mut state = self.state();
            if state.lagged {
                return;
            }
            let State { items, lagged, .. } = &mut *state;
            queue(items, lagged, self.capacity, item);
            if !state.direct.as_ref().is_some_and(Direct::is_free) {
                state.waker.take()
            } else if state.items.len() >= DIRECT_FRAMES.min(self.capacity / 2) {
                send_waiting(&mut state)
            } else {
                if !state.corked {
                    state.corked = true;
                    cork.0.push(self.clone());
                }
                None
            }
        };
        wake(waker);
    }

    /// The end of a cork: what waits is written at once if the task is not
    /// writing, else the task is woken.
    fn uncork(&self) {
        let waker = {
            let mut state = self.state();
            state.corked = false;
            if state.items.is_empty() && !state.lagged {
                // Taken by the task meanwhile.
                return;
            }
            send_waiting(&mut state)
        };
        wake(waker);
    }

    /// Takes everything waiting, or waits for something. What is taken the
    /// task writes: it owns the socket's write side from here.
    pub fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Taken> {
        let mut state = self.state();
        if state.lagged {
            state.lagged = false;
            state.flush = false;
            state.claim();
            return Poll::Ready(Taken::Lagged);
        }
        if state.items.is_empty() && !state.flush {
            if !state.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                state.waker = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        state.flush = false;
        state.claim();
        let State { items, seen, .. } = &mut *state;
        let mut taken = std::mem::take(items);
        seen.keep_new(&mut taken);
        Poll::Ready(Taken::Items(taken))
    }

    /// Takes what is there now, if anything.
    pub fn try_take(&self) -> Option<Taken> {
        match self.poll_take(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(taken) => Some(taken),
            Poll::Pending => None,
        }
    }

    /// Waits for, and takes, what comes (cancel-safe: nothing is taken
    /// unless it is returned).
    pub async fn take(&self) -> Taken {
        std::future::poll_fn(|cx| self.poll_take(cx)).await
    }
}

#[cfg(test)]
impl Inbox {
    fn lagged_for_test(&self) {
        self.state().lagged = true;
    }
}

impl State {
    fn claim(&self) {
        if let Some(direct) = &self.direct {
            direct.claim();
        }
    }
}

/// Writes what waits if the task is not writing; else (or if the write
/// left a rest) the task is to be woken.
fn send_waiting(state: &mut State) -> Option<Waker> {
    let State { items, direct, seen, flush, lagged, .. } = state;
    if let Some(free) = direct.as_ref().filter(|_| !*lagged).and_then(Direct::free) {
        let mut taken = std::mem::take(items);
        seen.keep_new(&mut taken);
        DIRECT.fetch_add(taken.len() as u64, Relaxed);
        if taken.is_empty() || free.send(taken.iter().map(|(_, frame)| frame)) {
            return None;
        }
        *flush = true;
    }
    state.waker.take()
}

/// Queues `item`, or drops everything if the inbox is full.
fn queue(items: &mut VecDeque<Item>, lagged: &mut bool, capacity: usize, item: Item) {
    if items.len() >= capacity {
        *lagged = true;
        *items = VecDeque::new();
    } else {
        items.push_back(item);
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        WAKES.fetch_add(1, Relaxed);
        waker.wake();
    }
}

/// The frames of one read of the log, held back until it is all pushed:
/// then each socket's go out in one write (or its task is woken once).
#[derive(Default)]
pub struct Cork(Vec<Arc<Inbox>>);

impl Cork {
    pub fn release(&mut self) {
        for inbox in self.0.drain(..) {
            inbox.uncork();
        }
    }
}

impl Drop for Cork {
    fn drop(&mut self) {
        self.release();
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_come_out_in_order_and_a_full_inbox_says_lagged() {
        let inbox = Inbox::new(16);
        inbox.push((1, "a".into()));
        inbox.push((2, "b".into()));
        let Taken::Items(items) = inbox.take().await else { panic!("items") };
        assert_eq!(items.iter().map(|i| i.0).collect::<Vec<_>>(), vec![1, 2]);
        for seq in 0..20 {
            inbox.push((seq, "x".into()));
        }
        assert!(matches!(inbox.take().await, Taken::Lagged));
        inbox.push((30, "y".into()));
        let Taken::Items(items) = inbox.take().await else { panic!("items after catching up") };
        assert_eq!(items.len(), 1);
    }

    fn seqs(taken: Option<Taken>) -> Vec<i64> {
        match taken {
            Some(Taken::Items(items)) => items.iter().map(|i| i.0).collect(),
            Some(Taken::Lagged) => panic!("lagged"),
            None => Vec::new(),
        }
    }

    #[test]
    fn rooms_read_before_the_history_miss_no_room_event_in_between() {
        // Rooms read at 10, history at 20: a join at 15 is in neither.
        let inbox = Inbox::new(16);
        inbox.seen(20, 10);
        for seq in [room_event(8), room_event(15), 15, 21, 0, 21] {
            inbox.push((seq, "x".into()));
        }
        assert_eq!(seqs(inbox.try_take()), vec![room_event(15), 21, 0], "the news, once");
    }

    #[test]
    fn rooms_read_after_the_history_see_no_room_event_twice() {
        // Rooms read at 20, history at 10: a join at 15 is in its rooms.
        let inbox = Inbox::new(16);
        inbox.seen(10, 20);
        for seq in [room_event(15), 15, 15, room_event(21)] {
            inbox.push((seq, "x".into()));
        }
        assert_eq!(seqs(inbox.try_take()), vec![15, room_event(21)]);
    }

    async fn connected() -> (Inbox, crate::websocket::Stream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let stream = crate::websocket::Stream::new(listener.accept().await.unwrap().0);
        let inbox = Inbox::new(16);
        inbox.seen(10, 10);
        inbox.connect(stream.direct());
        (inbox, stream, client)
    }

    /// What the client has received: the texts of the frames (short ones).
    async fn received(client: &mut tokio::net::TcpStream) -> Vec<String> {
        use tokio::io::AsyncReadExt;
        let mut texts = Vec::new();
        let mut buf = vec![0; 4096];
        let n = tokio::time::timeout(std::time::Duration::from_millis(100), client.read(&mut buf))
            .await
            .map_or(0, Result::unwrap);
        let mut bytes = &buf[..n];
        while let [_, len, rest @ ..] = bytes {
            let (text, after) = rest.split_at(usize::from(*len));
            texts.push(String::from_utf8(text.to_vec()).unwrap());
            bytes = after;
        }
        texts
    }

    #[tokio::test]
    async fn a_frame_goes_straight_to_the_socket_only_while_its_task_is_not_writing() {
        let (inbox, stream, mut client) = connected().await;
        inbox.push((11, "greeting pending".into()));
        assert_eq!(seqs(inbox.try_take()), vec![11], "queued: the task writes its greeting first");
        stream.release();
        inbox.push((12, "a".into()));
        inbox.push((12, "a again".into()));
        inbox.push((room_event(9), "in its rooms".into()));
        inbox.push((0, "typing".into()));
        assert!(inbox.try_take().is_none(), "written, not queued");
        assert_eq!(received(&mut client).await, ["a", "typing"], "the news, once");
    }

    #[tokio::test]
    async fn what_the_task_took_goes_before_anything_newer() {
        let (inbox, stream, mut client) = connected().await;
        stream.release();
        inbox.lagged_for_test();
        assert!(matches!(inbox.try_take(), Some(Taken::Lagged)));
        inbox.push((13, "newer".into()));
        assert_eq!(seqs(inbox.try_take()), vec![13], "queued behind the catching up");
        stream.release();
        inbox.push((14, "b".into()));
        assert_eq!(received(&mut client).await, ["b"]);
        assert_eq!(inbox.last_sent(), 14);
    }

    #[tokio::test]
    async fn a_cork_sends_each_sockets_frames_in_one_write_when_released() {
        let (inbox, stream, mut client) = connected().await;
        stream.release();
        let inbox = Arc::new(inbox);
        let mut cork = Cork::default();
        inbox.push_corked((11, "one".into()), &mut cork);
        inbox.push((room_event(12), "a room's news".into()));
        inbox.push_corked((13, "two".into()), &mut cork);
        assert!(received(&mut client).await.is_empty(), "nothing before the cork is released");
        cork.release();
        assert_eq!(received(&mut client).await, ["one", "a room's news", "two"]);
        assert!(inbox.try_take().is_none());
    }
}
