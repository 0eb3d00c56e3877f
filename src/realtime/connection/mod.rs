//! One task per socket. It owns the socket and waits on everything that can
//! concern it in one `select!`: a frame from the client, the event stream
//! (chat, announcements, typing, the count, the ping clock and shutdown all
//! come through it), the answer to a message it sent, the user's read
//! marker, and the end of its session. The `Seat` it holds counts it out
//! however the task ends.
//!
//! - [`feed`]: what the event stream brings, written to the socket.
//! - [`client`]: what the client sends, and the answers that come back later.
//! - [`goodbye`]: closing, with the closing handshake.

mod client;
mod feed;
mod goodbye;

use std::{collections::VecDeque, future::Future, time::Duration};

use tokio::{net::TcpStream, sync::broadcast};
use tungstenite::Utf8Bytes;

#[cfg(feature = "autobahn")]
pub use goodbye::echo;
use goodbye::goodbye;

use super::{
    Realtime,
    presence::{Count, Online, Seat},
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
    pub(super) seat: Seat,
    /// The true count, this connection included.
    pub(super) count: Count,
    /// Tells the socket when its session ends.
    pub(super) session: Watch,
    /// The id of the last message the client showed.
    pub(super) since: Option<i64>,
    /// This node's room for one more socket, given back when it ends.
    pub(super) permit: tokio::sync::OwnedSemaphorePermit,
    /// Who was online before this socket took its seat.
    pub(super) online: Online,
    /// The user's read marker, shared by their tabs here.
    pub(super) marker: tokio::sync::watch::Receiver<i64>,
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
        let Opened { realtime, events, seat, count, session, since, permit, online, mut marker } = self;
        let send_timeout = realtime.0.settings.send_timeout;
        let snapshot = realtime.0.history.snapshot(since);
        let mut feed =
            Feed::new(events, snapshot.last_id, online.position, count.value, seat.identity().user_id);
        // The order of the contract: the count, who is online, the read marker,
        // the history; then the live stream. Queued here, written by the task.
        let last_read = *marker.borrow_and_update();
        for frame in [count.frame, online.frame, feed::read_marker_frame(last_read), snapshot.frame] {
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
                    answer = client::next_answer(&mut answers), if !answers.is_empty() => match answer {
                        Ok(()) => Ok(()),
                        Err(refusal) => Box::pin(client::refuse(&mut socket, refusal, &mut refusals, send_timeout)).await,
                    },
                    // The user's own marker: only their tabs share this watch.
                    Ok(()) = marker.changed() => {
                        let last_read = *marker.borrow_and_update();
                        Box::pin(send(&mut socket, feed::read_marker_frame(last_read), send_timeout)).await
                    }
                    _ = &mut session_ended => Err(End::Close(session.code(), "session ended")),
                };
            }
            let end = step.expect_err("the loop ends on an end");
            let user_id = who.user_id;
            // Counted out now: what follows is only the goodbye.
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
