//! One task per socket. It owns the socket and waits on everything that can
//! concern it in one `select!`: a frame from the client, the event stream
//! (announcements, the count, the ping clock and shutdown), its inbox (its
//! rooms' changes, typing, its user's markers), the answer to something it
//! sent, and the end of its session. The `Seat` it holds counts it out, and
//! its place in the room index goes, however the task ends.
//!
//! - [`feed`]: what the event stream brings, written to the socket.
//! - [`client`]: what the client sends, and the answers that come back later.
//! - [`goodbye`]: closing, with the closing handshake.

mod client;
mod feed;
mod goodbye;

use std::{collections::VecDeque, future::Future, sync::Arc, time::Duration};

use tokio::{net::TcpStream, sync::broadcast};
use tungstenite::Utf8Bytes;

#[cfg(feature = "autobahn")]
pub use goodbye::echo;
use goodbye::goodbye;

use super::{
    Realtime,
    inbox::Inbox,
    index::Attached,
    presence::{Count, Seat},
    revocation::Watch,
    stream::Event,
    wire::close,
};
use crate::{
    rate::TokenBucket,
    websocket::{ReadError, Socket},
};
use client::{Answer, REFUSALS};
use feed::Feed;

/// A client's socket, over the TCP connection it upgraded.
pub type WebSocket = Socket<TcpStream>;

/// A socket admitted by [`Realtime::open`], to run once the upgrade is done.
pub struct Opened {
    pub(super) realtime: Realtime,
    /// Subscribed before the seat was taken, so this socket hears its own join.
    pub(super) events: broadcast::Receiver<Event>,
    /// What is for this socket alone; filled from the moment it was attached.
    pub(super) inbox: Arc<Inbox>,
    /// Its place in the room index, taken out when the socket ends.
    pub(super) attached: Attached,
    pub(super) seat: Seat,
    /// The true count, this connection included.
    pub(super) count: Count,
    /// Tells the socket when its session ends.
    pub(super) session: Watch,
    /// This node's room for one more socket, given back when it ends.
    pub(super) permit: tokio::sync::OwnedSemaphorePermit,
    /// The first frames, in the contract's order: the count, who is online,
    /// the rooms, the lobby's read marker, the history.
    pub(super) greeting: Vec<Utf8Bytes>,
    /// The position the history reaches, the announcement who is online
    /// reflects, and the position of the log the rooms reflect: live
    /// frames up to them are skipped.
    pub(super) history_reaches: i64,
    pub(super) online_reflects: i64,
    pub(super) rooms_reflect: i64,
}

/// How long we wait for the client's Close after sending ours.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(1);

/// Why the task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client closed: the answering Close is queued and must go out.
    ClientClosed,
    /// The client went away (EOF, reset, failed write).
    Gone,
    /// We close with this code.
    Close(u16, &'static str),
}

/// How every socket ends at shutdown.
const GOING_AWAY: End = End::Close(close::GOING_AWAY, "server shutting down");

impl Opened {
    /// The socket's task. Its future is held by every socket for its whole
    /// life and is as large as its largest state, so it is kept small: the
    /// state is set up here, outside it, and captured once (an `async fn`
    /// would keep its arguments and the locals made from them side by side),
    /// and every path that runs once or rarely is boxed.
    pub fn run(self, mut socket: WebSocket) -> impl Future<Output = ()> + Send {
        let Opened {
            realtime,
            events,
            inbox,
            attached,
            seat,
            count,
            session,
            permit,
            greeting,
            history_reaches,
            online_reflects,
            rooms_reflect,
        } = self;
        let send_timeout = realtime.0.settings.send_timeout;
        let user_id = seat.identity().user_id;
        let mut feed =
            Feed::new(events, history_reaches, online_reflects, rooms_reflect, count.value, user_id);
        // Queued here, written by the task; then the live stream.
        for frame in greeting {
            socket.queue_text(frame);
        }
        async move {
            if flush(&mut socket, send_timeout).await.is_err() {
                return;
            }
            let who = seat.identity();
            // Registered once, not once per loop turn (polled by reference).
            let session_ended = session.ended();
            tokio::pin!(session_ended);
            let mut refusals = TokenBucket::full(REFUSALS);
            // Oldest first; empty (no allocation) while the client sends nothing.
            let mut answers: VecDeque<Answer> = VecDeque::new();
            // Shutdown comes through the event stream; this socket may have
            // subscribed just after it went by.
            let mut step = if realtime.0.shutdown.is_cancelled() { Err(GOING_AWAY) } else { Ok(()) };

            while step.is_ok() {
                // In this order, and no further than the first that is ready: a
                // wake for a delivery polls the client's side (a readiness flag)
                // and the event stream, nothing else. The client's frames come
                // first so a stream of deliveries never starves them; each
                // delivery drains what is waiting, so the rest get their turn.
                step = tokio::select! {
                    biased;
                    frame = socket.next() => {
                        feed.answered();
                        match frame {
                            Some(Ok(incoming)) => {
                                Box::pin(client::on_frame(&mut socket, incoming, &realtime, who, &mut refusals, &mut answers)).await
                            }
                            Some(Err(e)) => Err(read_failed(&e)),
                            None => Err(End::Gone),
                        }
                    }
                    event = feed.next() => Box::pin(feed.write(&mut socket, event, &realtime)).await,
                    taken = inbox.take() => Box::pin(feed.write_inbox(&mut socket, taken, &realtime)).await,
                    answer = client::next_answer(&mut answers), if !answers.is_empty() => match answer {
                        Ok(()) => Ok(()),
                        Err(refusal) => Box::pin(client::refuse(&mut socket, refusal, &mut refusals, send_timeout)).await,
                    },
                    _ = &mut session_ended => Err(End::Close(session.code(), "session ended")),
                };
            }
            let end = step.expect_err("the loop ends on an end");
            // At shutdown everything committed was in the inboxes before the
            // goodbye was published: what this socket has not written yet
            // goes out first.
            if end == GOING_AWAY
                && let Some(taken) = inbox.try_take()
            {
                let _ = Box::pin(feed.write_inbox(&mut socket, taken, &realtime)).await;
            }
            let user_id = who.user_id;
            // Counted out now: what follows is only the goodbye.
            drop(attached);
            drop(seat);
            drop(session);
            drop(permit);
            Box::pin(goodbye(&mut socket, end, send_timeout)).await;
            tracing::debug!(user.id = user_id, ?end, "connection ended");
        }
    }
}

/// Queues one text frame and writes it out.
async fn send(socket: &mut WebSocket, frame: Utf8Bytes, send_timeout: Duration) -> Result<(), End> {
    socket.queue_text(frame);
    flush(socket, send_timeout).await
}

/// Writes out what is queued. A client that does not read for
/// `send_timeout` is stuck or gone.
async fn flush(socket: &mut WebSocket, send_timeout: Duration) -> Result<(), End> {
    match tokio::time::timeout(send_timeout, socket.flush()).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(End::Gone),
    }
}

/// How a read that failed ends the socket: a client that broke the protocol
/// is told so with a close frame (the browser would otherwise see 1006 and
/// no reason); one that went away is just gone.
pub fn read_failed(error: &ReadError) -> End {
    match error {
        ReadError::Violation(violation) => End::Close(violation.close_code(), violation.reason()),
        ReadError::Io(_) => End::Gone,
    }
}
