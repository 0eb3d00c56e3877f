//! One task per socket. It owns the socket and waits on everything that can
//! concern it in one `select!`: a frame from the client, an event for all, a
//! new count, a ping beat, the answer to a message it sent, the end of its
//! session, and server shutdown. The `Seat` it holds counts it out however
//! the task ends.

use std::{collections::VecDeque, future::Future, pin::Pin, time::Duration};

use tokio::{
    net::TcpStream,
    sync::broadcast::{
        self,
        error::{RecvError, TryRecvError},
    },
};
use tungstenite::Utf8Bytes;

use crate::{
    rate::{Rate, TokenBucket},
    store::{Change, ChangeError},
    websocket::{Incoming, ReadError, Socket},
};

use super::{
    Realtime,
    beat::Beat,
    chat::sequencer::NotSent,
    presence::{Count, Identity, Online, Seat},
    protocol::{ChatText, ClientEvent, Refusal, close},
    revocation::Watch,
    stream::Event,
};

/// A client's socket, over the TCP connection it upgraded.
pub type WebSocket = Socket<TcpStream>;

/// What the upgrade handler settled before the socket opened.
pub struct Opened {
    /// Subscribed before the seat was taken, so this socket hears its own join.
    pub events: broadcast::Receiver<Event>,
    pub seat: Seat,
    /// The true count, this connection included.
    pub count: Count,
    /// Tells the socket when its session ends.
    pub session: Watch,
    /// The id of the last message the client showed.
    pub since: Option<i64>,
    /// This node's room for one more socket, given back when it ends.
    pub permit: tokio::sync::OwnedSemaphorePermit,
    /// Who was online before this socket took its seat.
    pub online: Online,
    /// The user's read marker, shared by their tabs here.
    pub marker: tokio::sync::watch::Receiver<i64>,
}

/// Refused frames a client may send in a burst, and per second after, before
/// it is closed for flooding (1008).
const REFUSALS: Rate = Rate { burst: 30, per_second: 2.0 };
/// How long we wait for the client's Close after sending ours.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(1);
/// Events written before one flush when a backlog is waiting.
const FLUSH_BATCH: usize = 64;
/// Answers a socket waits for at once. Past that it waits for the oldest
/// before reading on: only a client flooding faster than its database can
/// commit gets here.
const IN_FLIGHT: usize = 32;

/// The database's answer to a message, an edit or a delete this socket
/// sent: nothing to say, or the refusal to send. The socket reads and
/// writes on meanwhile; the message itself reaches everyone (this socket
/// too) through the event stream once committed.
type Answer = Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send>>;

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

/// The socket's task. Its future is held by every socket for its whole
/// life and is as large as its largest state, so it is kept small: the
/// state is set up here, outside it, and captured once (an `async fn`
/// would keep its arguments and the locals made from them side by side),
/// and every path that runs once or rarely is boxed.
pub fn run(mut socket: WebSocket, realtime: Realtime, opened: Opened) -> impl Future<Output = ()> + Send {
    let Opened { events, seat, count, session, since, permit, online, mut marker } = opened;
    let send_timeout = realtime.settings.send_timeout;
    let snapshot = realtime.history.snapshot(since);
    let mut feed = Feed {
        events,
        last_sent: snapshot.last_id,
        last_notice: online.position,
        count_sent: count.value,
        awaiting_pong: None,
        user_id: seat.identity().user_id,
    };
    // The order of the contract: the count, who is online, the read marker,
    // the history; then the live stream. Queued here, written by the task.
    let last_read = *marker.borrow_and_update();
    for frame in [count.frame, online.frame, read_marker_frame(last_read), snapshot.frame] {
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
        let mut step = if realtime.shutdown.is_cancelled() { Err(GOING_AWAY) } else { Ok(()) };

        while step.is_ok() {
            // In this order, and no further than the first that is ready: a
            // wake for a delivery polls the client's side (a readiness flag)
            // and the event stream, nothing else. The client's frames come
            // first so a stream of deliveries never starves them; each
            // delivery drains what is waiting, so the rest get their turn.
            step = tokio::select! {
                biased;
                frame = socket.next() => {
                    feed.awaiting_pong = None;
                    match frame {
                        Some(Ok(incoming)) => {
                            Box::pin(on_frame(&mut socket, incoming, &realtime, who, &mut refusals, &mut answers)).await
                        }
                        Some(Err(e)) => Err(read_failed(&e)),
                        None => Err(End::Gone),
                    }
                }
                event = feed.events.recv() => Box::pin(feed.write(&mut socket, event, &realtime)).await,
                answer = next_answer(&mut answers), if !answers.is_empty() => match answer {
                    Ok(()) => Ok(()),
                    Err(refusal) => Box::pin(refuse(&mut socket, refusal, &mut refusals, send_timeout)).await,
                },
                // The user's own marker: only their tabs share this watch.
                Ok(()) = marker.changed() => {
                    let last_read = *marker.borrow_and_update();
                    Box::pin(send(&mut socket, read_marker_frame(last_read), send_timeout)).await
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

/// How every socket ends at shutdown.
const GOING_AWAY: End = End::Close(close::GOING_AWAY, "server shutting down");

/// The end of a socket: with a close code, the closing handshake.
pub async fn goodbye(socket: &mut WebSocket, end: End, send_timeout: Duration) {
    let ending: std::borrow::Cow<'static, str> = match end {
        End::Close(code, _) => code.to_string().into(),
        End::ClientClosed => "client".into(),
        End::Gone => "gone".into(),
    };
    metrics::counter!(crate::metrics::SOCKET_CLOSES, "code" => ending).increment(1);
    let (code, reason) = match end {
        End::Close(code, reason) => (code, reason),
        End::ClientClosed => {
            let _ = flush(socket, send_timeout).await;
            return;
        }
        End::Gone => return,
    };
    socket.queue_close(code, reason);
    if flush(socket, send_timeout).await.is_ok() {
        // The closing handshake: read (and drop) what the client still sends
        // until its Close. Closing with unread data would make the kernel
        // reset the connection, and a reset can overtake our close frame, so
        // the client would never learn the code.
        let drained = async {
            while let Some(Ok(incoming)) = socket.next().await {
                if incoming == Incoming::Close {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_HANDSHAKE, drained).await;
    }
}

/// The conformance endpoint's socket (the `autobahn` feature): every text and
/// binary message echoed, and every way of ending the same as a chat socket's.
#[cfg(feature = "autobahn")]
pub async fn echo(mut socket: WebSocket, send_timeout: Duration) {
    let end = loop {
        let sent = match socket.next().await {
            Some(Ok(Incoming::Text(text))) => {
                socket.queue_text(text.into());
                flush(&mut socket, send_timeout).await
            }
            Some(Ok(Incoming::Binary(data))) => {
                socket.queue_binary(data.into());
                flush(&mut socket, send_timeout).await
            }
            // The pong is queued.
            Some(Ok(Incoming::Ping)) => flush(&mut socket, send_timeout).await,
            Some(Ok(Incoming::Pong)) => Ok(()),
            Some(Ok(Incoming::Close)) => break End::ClientClosed,
            Some(Err(e)) => break read_failed(&e),
            None => break End::Gone,
        };
        if let Err(end) = sent {
            break end;
        }
    };
    goodbye(&mut socket, end, send_timeout).await;
}

async fn on_frame(
    socket: &mut WebSocket,
    incoming: Incoming,
    realtime: &Realtime,
    who: &Identity,
    refusals: &mut TokenBucket,
    answers: &mut VecDeque<Answer>,
) -> Result<(), End> {
    let send_timeout = realtime.settings.send_timeout;
    let text = match incoming {
        Incoming::Text(text) => text,
        Incoming::Binary(_) => return Err(End::Close(close::UNSUPPORTED, "binary frames are not accepted")),
        Incoming::Close => return Err(End::ClientClosed),
        // The socket has queued the pong.
        Incoming::Ping => return flush(socket, send_timeout).await,
        // Only shows the client is alive.
        Incoming::Pong => return Ok(()),
    };
    let event = ClientEvent::parse(&text);
    if matches!(
        event,
        Ok(ClientEvent::ChatMessage(_) | ClientEvent::Edit { .. } | ClientEvent::Delete { .. })
    ) {
        while answers.len() >= IN_FLIGHT {
            let oldest = answers.pop_front().expect("not empty");
            if let Err(refusal) = oldest.await {
                refuse(socket, refusal, refusals, send_timeout).await?;
            }
        }
    }
    let outcome = match event {
        Ok(ClientEvent::ChatMessage(raw)) => {
            post(realtime, who, &raw).await.map(|answer| answers.push_back(answer))
        }
        Ok(ClientEvent::Typing) => {
            realtime.typing.typed(who.user_id, &who.username);
            Ok(())
        }
        Ok(ClientEvent::Edit { id, text }) => {
            answers.push_back(changing(realtime, who, id, Some(text)));
            Ok(())
        }
        Ok(ClientEvent::Delete { id }) => {
            answers.push_back(changing(realtime, who, id, None));
            Ok(())
        }
        // Never past the newest message: a marker names something read.
        Ok(ClientEvent::Read(id)) => {
            realtime.markers.read(who.user_id, id.min(realtime.history.newest()));
            Ok(())
        }
        Err(refusal) => Err(refusal),
    };
    match outcome {
        Ok(()) => Ok(()),
        Err(refusal) => refuse(socket, refusal, refusals, send_timeout).await,
    }
}

/// Tells the client a frame of its was refused, unless it keeps sending
/// refused frames: then it is closed (1008).
async fn refuse(
    socket: &mut WebSocket,
    refusal: Refusal,
    refusals: &mut TokenBucket,
    send_timeout: Duration,
) -> Result<(), End> {
    metrics::counter!(crate::metrics::REFUSED_FRAMES, "code" => refusal.code()).increment(1);
    if !refusals.try_take(REFUSALS) {
        return Err(End::Close(close::POLICY, "too many refused frames"));
    }
    send(socket, refusal.frame(), send_timeout).await
}

/// The oldest answer, once it comes (cancel-safe: until then it stays queued).
async fn next_answer(answers: &mut VecDeque<Answer>) -> Result<(), Refusal> {
    std::future::poll_fn(|cx| {
        let oldest = answers.front_mut().expect("polled only when an answer is due");
        let answer = std::task::ready!(oldest.as_mut().poll(cx));
        answers.pop_front();
        std::task::Poll::Ready(answer)
    })
    .await
}

/// `{"event":"read marker","data":{"lastRead":ID}}`
fn read_marker_frame(last_read: i64) -> Utf8Bytes {
    #[derive(serde::Serialize)]
    struct Marker {
        #[serde(rename = "lastRead")]
        last_read: i64,
    }
    super::protocol::frame("read marker", &Marker { last_read })
}

/// Validates and rate-limits a message, and queues it to be committed;
/// the answer comes later. It reaches everyone, this socket included,
/// through the event stream once committed.
async fn post(realtime: &Realtime, who: &Identity, raw: &str) -> Result<Answer, Refusal> {
    let text = ChatText::parse(raw)?;
    if !realtime.limits.try_take(who.user_id) {
        return Err(Refusal::RateLimited);
    }
    let saved = realtime.sequencer.submit(who.user_id, text).await;
    Ok(Box::pin(async move {
        match saved.outcome().await {
            Ok(_) => Ok(()),
            Err(NotSent::RateLimited) => Err(Refusal::RateLimited),
            Err(NotSent::NotSaved) => Err(Refusal::Unavailable),
        }
    }))
}

/// An edit or delete, made while the socket goes on (they are rare, and
/// each is a transaction of its own).
fn changing(realtime: &Realtime, who: &Identity, id: i64, text: Option<String>) -> Answer {
    let (realtime, who) = (realtime.clone(), who.clone());
    Box::pin(async move { change(&realtime, &who, id, text.as_deref()).await })
}

/// An edit (`text`) or a delete of message `id`; everyone, this socket
/// included, sees it when the tail reads it back.
async fn change(realtime: &Realtime, who: &Identity, id: i64, text: Option<&str>) -> Result<(), Refusal> {
    let text = text.map(ChatText::parse).transpose()?;
    let change = match &text {
        Some(text) => {
            Change::Edit { id, by: who.user_id, text: text.as_str(), window: realtime.settings.edit_window }
        }
        None => Change::Delete { id, by: who.user_id },
    };
    match realtime.sequencer.change(change).await {
        Ok(_) => Ok(()),
        Err(ChangeError::NotFound) => Err(Refusal::NotFound),
        Err(ChangeError::Forbidden) => Err(Refusal::Forbidden(match change {
            Change::Edit { .. } => "Only the author may edit a message, and only soon after sending it.",
            Change::Delete { .. } => "Only the author or an admin may delete a message.",
        })),
        Err(ChangeError::RateLimited) => Err(Refusal::RateLimited),
        Err(ChangeError::Store(e)) => {
            tracing::warn!(error = %e, "a message change was not saved");
            Err(Refusal::Unavailable)
        }
    }
}

/// This socket's place in the event stream: the receiver it follows, and
/// what it was last sent of each kind, so nothing goes out twice.
struct Feed {
    events: broadcast::Receiver<Event>,
    /// The newest chat message sent (history included).
    last_sent: i64,
    /// The last announcement this socket's `online users` reflected.
    last_notice: i64,
    count_sent: usize,
    /// The beat of a ping not answered yet.
    awaiting_pong: Option<u64>,
    /// Whose socket: typing ticks never tell a user of themselves.
    user_id: i64,
}

impl Feed {
    /// Writes `first` and whatever else is already waiting (up to
    /// `FLUSH_BATCH`), then flushes once: a backlog costs one write.
    async fn write(
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
                    Err(RecvError::Lagged(_)) => self.catch_up(socket, realtime).await?,
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
        tokio::time::timeout(realtime.settings.send_timeout, write).await.unwrap_or(Err(End::Gone))
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
            // Already in the history this socket was sent.
            Event::Chat { seq, .. } if seq <= self.last_sent => return Ok(()),
            Event::Chat { seq, frame } => {
                self.last_sent = seq;
                frame
            }
            Event::Notice { seq, .. } if seq <= self.last_notice => return Ok(()),
            Event::Notice { seq, frame } => {
                self.last_notice = seq;
                frame
            }
            Event::Typing(tick) => match tick.frame_for(self.user_id) {
                Some(frame) => frame.clone(),
                None => return Ok(()),
            },
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

    /// The socket fell further behind than the event stream keeps: send the
    /// messages it missed from the history, or close it with 1013 if even
    /// the history no longer has them (the client reconnects with `since`).
    /// What it may have missed besides: the count, and shutdown.
    async fn catch_up(&mut self, socket: &mut WebSocket, realtime: &Realtime) -> Result<(), End> {
        metrics::counter!(crate::metrics::CATCH_UPS).increment(1);
        if realtime.shutdown.is_cancelled() {
            return Err(GOING_AWAY);
        }
        let Some(missed) = realtime.history.after(self.last_sent) else {
            return Err(End::Close(close::TRY_AGAIN_LATER, "fell too far behind"));
        };
        for (id, frame) in missed {
            self.last_sent = id;
            socket.feed(frame).await.map_err(|_| End::Gone)?;
        }
        self.feed(socket, Event::Count(realtime.presence.count())).await
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
