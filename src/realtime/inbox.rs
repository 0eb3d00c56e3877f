//! A socket's inbox: what this node sends one socket and not every socket.
//! The chat log's changes in its user's rooms, typing in them, its user's
//! read markers, rooms joined and left: each pushed by the part that has it
//! (the follower, the typing ticker, the markers), in order, and taken by
//! the socket's task in one go when it is woken.
//!
//! Bounded: a socket whose inbox fills is marked as fallen behind and its
//! frames are dropped; its task then catches up from the history, or
//! closes with 1013 (the client reconnects with `since`). Nothing is held
//! for a slow reader without bound. An empty inbox holds no allocation.

use std::{
    collections::VecDeque,
    sync::{Mutex, MutexGuard},
    task::{Context, Poll, Waker},
};

use tungstenite::Utf8Bytes;

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
    /// The socket's task, waiting.
    waker: Option<Waker>,
}

/// What the socket finds in its inbox.
pub enum Taken {
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

    /// Adds a frame and wakes the socket.
    pub fn push(&self, item: Item) {
        let waker = {
            let mut state = self.state();
            if state.lagged {
                return;
            }
            if state.items.len() >= self.capacity {
                state.lagged = true;
                state.items = VecDeque::new();
            } else {
                state.items.push_back(item);
            }
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Takes everything waiting, or waits for something.
    pub fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Taken> {
        let mut state = self.state();
        if state.lagged {
            state.lagged = false;
            return Poll::Ready(Taken::Lagged);
        }
        if state.items.is_empty() {
            if !state.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                state.waker = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        Poll::Ready(Taken::Items(std::mem::take(&mut state.items)))
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
}
