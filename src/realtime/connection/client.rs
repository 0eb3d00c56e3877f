//! What the client sends: each frame read and acted on; messages, edits and
//! deletes queued to the writer, their answers awaited while the socket
//! reads and writes on; refusals told, or a flooding client closed.

use std::{collections::VecDeque, future::Future, pin::Pin, time::Duration};

use super::{End, WebSocket, flush, send};
use crate::{
    domain::ChatText,
    rate::{Rate, TokenBucket},
    realtime::{
        Realtime,
        chat::writer::NotSent,
        presence::Identity,
        wire::{ClientEvent, Refusal, close},
    },
    store::{Change, ChangeError},
    websocket::Incoming,
};

/// Refused frames a client may send in a burst, and per second after, before
/// it is closed for flooding (1008).
pub(super) const REFUSALS: Rate = Rate { burst: 30, per_second: 2.0 };
/// Answers a socket waits for at once. Past that it waits for the oldest
/// before reading on: only a client flooding faster than its database can
/// commit gets here.
const IN_FLIGHT: usize = 32;

/// The database's answer to a message, an edit or a delete this socket
/// sent: nothing to say, or the refusal to send. The socket reads and
/// writes on meanwhile; the message itself reaches everyone (this socket
/// too) through the event stream once committed.
pub(super) type Answer = Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send>>;

pub(super) async fn on_frame(
    socket: &mut WebSocket,
    incoming: Incoming,
    realtime: &Realtime,
    who: &Identity,
    refusals: &mut TokenBucket,
    answers: &mut VecDeque<Answer>,
) -> Result<(), End> {
    let send_timeout = realtime.0.settings.send_timeout;
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
        Ok(ClientEvent::ChatMessage { .. }
            | ClientEvent::Edit { .. }
            | ClientEvent::Delete { .. }
            | ClientEvent::Read(_))
    ) {
        while answers.len() >= IN_FLIGHT {
            let oldest = answers.pop_front().expect("not empty");
            if let Err(refusal) = oldest.await {
                refuse(socket, refusal, refusals, send_timeout).await?;
            }
        }
    }
    let outcome = match event {
        Ok(ClientEvent::ChatMessage { room, text }) => {
            post(realtime, who, room, &text).await.map(|answer| answers.push_back(answer))
        }
        Ok(ClientEvent::Typing { room }) if realtime.0.index.is_member(who.user_id, room) => {
            realtime.0.typing.typed(who.user_id, room, &who.username);
            Ok(())
        }
        Ok(ClientEvent::Typing { .. }) => Err(Refusal::NoSuchRoom),
        Ok(ClientEvent::Edit { id, text }) => {
            answers.push_back(changing(realtime, who, id, Some(text)));
            Ok(())
        }
        Ok(ClientEvent::Delete { id }) => {
            answers.push_back(changing(realtime, who, id, None));
            Ok(())
        }
        Ok(ClientEvent::Read(id)) => {
            answers.push_back(reading(realtime, who, id));
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
pub(super) async fn refuse(
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
pub(super) async fn next_answer(answers: &mut VecDeque<Answer>) -> Result<(), Refusal> {
    std::future::poll_fn(|cx| {
        let oldest = answers.front_mut().expect("polled only when an answer is due");
        let answer = std::task::ready!(oldest.as_mut().poll(cx));
        answers.pop_front();
        std::task::Poll::Ready(answer)
    })
    .await
}

/// Validates and rate-limits a message, and queues it to be committed;
/// the answer comes later. It reaches the room's sockets, this one
/// included, through their inboxes once committed; and it moves its
/// sender's marker in the room to it.
async fn post(realtime: &Realtime, who: &Identity, room: i64, raw: &str) -> Result<Answer, Refusal> {
    // Not in the room: said at once, nothing stored (the commit checks again).
    if !realtime.0.index.is_member(who.user_id, room) {
        return Err(Refusal::NoSuchRoom);
    }
    let text = ChatText::parse(raw)?;
    realtime.0.allowance.try_take(who.user_id).map_err(Refusal::RateLimited)?;
    let saved = realtime.0.writer.submit(who.user_id, room, text).await;
    let (realtime, user) = (realtime.clone(), who.user_id);
    Ok(Box::pin(async move {
        match saved.outcome().await {
            Ok(id) => {
                realtime.0.markers.read(user, room, id);
                Ok(())
            }
            Err(NotSent::RateLimited(wait)) => Err(Refusal::RateLimited(wait)),
            Err(NotSent::NotAMember) => Err(Refusal::NoSuchRoom),
            Err(NotSent::NotSaved) => Err(Refusal::Unavailable),
        }
    }))
}

/// A `read`: the user has seen message `id`, which moves their marker in
/// its room (never past the newest message: a marker names something read).
/// A message of a room they are not in moves nothing and is `not_found`,
/// exactly as an id that names no message.
fn reading(realtime: &Realtime, who: &Identity, id: i64) -> Answer {
    let (realtime, user) = (realtime.clone(), who.user_id);
    Box::pin(async move {
        let id = id.min(realtime.0.history.newest());
        let room = match realtime.0.history.room_of(id) {
            Some(room) => Some(room),
            // An older message: asked of the database.
            None => match realtime.0.store.room_of_message(id).await {
                Ok(room) => room,
                Err(e) => {
                    tracing::debug!(error = %e, "could not find a read message's room");
                    return Ok(());
                }
            },
        };
        match room {
            Some(room) if realtime.0.index.is_member(user, room) => {
                realtime.0.markers.read(user, room, id);
                Ok(())
            }
            _ => Err(Refusal::NotFound),
        }
    })
}

/// An edit or delete, made while the socket goes on (they are rare, and
/// each is a transaction of its own).
fn changing(realtime: &Realtime, who: &Identity, id: i64, text: Option<String>) -> Answer {
    let (realtime, who) = (realtime.clone(), who.clone());
    Box::pin(async move { change(&realtime, &who, id, text.as_deref()).await })
}

/// An edit (`text`) or a delete of message `id`; everyone, this socket
/// included, sees it when the follower reads it back. A refused one counts
/// against the user's chat allowance, as a message does (all their tabs and
/// reconnects together); with none left, it is not even looked at.
async fn change(realtime: &Realtime, who: &Identity, id: i64, text: Option<&str>) -> Result<(), Refusal> {
    let allowance = &realtime.0.allowance;
    if let Some(wait) = allowance.wait(who.user_id) {
        return Err(Refusal::RateLimited(wait));
    }
    let refused = |refusal: Refusal| {
        let _ = allowance.try_take(who.user_id);
        Err(refusal)
    };
    let text = match text.map(ChatText::parse).transpose() {
        Ok(text) => text,
        Err(invalid) => return refused(invalid.into()),
    };
    let change = match &text {
        Some(text) => {
            Change::Edit { id, by: who.user_id, text: text.as_str(), window: realtime.0.settings.edit_window }
        }
        None => Change::Delete { id, by: who.user_id },
    };
    match realtime.0.writer.change(change).await {
        Ok(_) => Ok(()),
        Err(ChangeError::NotFound) => refused(Refusal::NotFound),
        Err(ChangeError::Forbidden) => refused(Refusal::Forbidden(match change {
            Change::Edit { .. } => "Only the author may edit a message, and only soon after sending it.",
            Change::Delete { .. } => "Only the author or an admin may delete a message.",
        })),
        Err(ChangeError::RateLimited(wait)) => Err(Refusal::RateLimited(wait)),
        Err(ChangeError::Store(e)) => {
            tracing::warn!(error = %e, "a message change was not saved");
            Err(Refusal::Unavailable)
        }
    }
}
