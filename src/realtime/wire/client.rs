//! What a client sends, read into events; and why a frame was refused.

use serde::Serialize;
use tungstenite::Utf8Bytes;

use super::frames::frame;
use crate::domain::LOBBY;

/// What a client may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// `{"event": "chat message", "data": "text"}` (to the lobby), or
    /// `{"data": {"room": ID, "message": "text"}}`.
    ChatMessage { room: i64, text: String },
    /// `{"event": "typing"}` (in the lobby), or `{"data": {"room": ID}}`.
    Typing { room: i64 },
    /// `{"event": "read", "data": ID}`: the user has seen the messages up to ID.
    Read(i64),
    /// `{"event": "edit message", "data": {"id": ID, "message": "text"}}`
    Edit { id: i64, text: String },
    /// `{"event": "delete message", "data": {"id": ID}}`
    Delete { id: i64 },
}

/// A message id in `data.id`, a whole number above 0.
fn message_id(data: &serde_json::Map<String, serde_json::Value>) -> Option<i64> {
    data.get("id")?.as_i64().filter(|id| *id > 0)
}

/// A room id in `data.room`, a whole number above 0.
fn room_id(data: &serde_json::Map<String, serde_json::Value>) -> Option<i64> {
    data.get("room")?.as_i64().filter(|id| *id > 0)
}

const CHAT_SHAPE: &str = "\"chat message\" takes the message as a string (to the lobby), or {\"room\": a room id, \"message\": the text}.";
const TYPING_SHAPE: &str = "\"typing\" takes no data (the lobby), or {\"room\": a room id}.";
const EDIT_SHAPE: &str = "\"edit message\" takes {\"id\": a message id, \"message\": the new text}.";
const DELETE_SHAPE: &str = "\"delete message\" takes {\"id\": a message id}.";

/// The shape every client frame has, in words for a refusal.
const FRAME_SHAPE: &str = "A frame is one JSON object: {\"event\": NAME, \"data\": VALUE}.";

impl ClientEvent {
    /// Reads a client frame; a refusal says, in our words, what was wrong.
    pub fn parse(text: &str) -> Result<Self, Refusal> {
        let bad = |words: &'static str| Refusal::BadRequest(words);
        let Ok(serde_json::Value::Object(mut frame)) = serde_json::from_str(text) else {
            return Err(bad(FRAME_SHAPE));
        };
        let Some(serde_json::Value::String(event)) = frame.remove("event") else {
            return Err(bad("The frame has no \"event\" name (a string)."));
        };
        let data = frame.remove("data");
        if !frame.is_empty() {
            return Err(bad(FRAME_SHAPE));
        }
        use serde_json::Value;
        match (event.as_str(), data) {
            ("chat message", Some(Value::String(text))) => Ok(ClientEvent::ChatMessage { room: LOBBY, text }),
            ("chat message", Some(Value::Object(data))) if data.len() == 2 => {
                match (room_id(&data), data.get("message")) {
                    (Some(room), Some(Value::String(text))) => {
                        Ok(ClientEvent::ChatMessage { room, text: text.clone() })
                    }
                    _ => Err(bad(CHAT_SHAPE)),
                }
            }
            ("chat message", _) => Err(bad(CHAT_SHAPE)),
            ("typing", None | Some(Value::Null)) => Ok(ClientEvent::Typing { room: LOBBY }),
            ("typing", Some(Value::Object(data))) if data.len() == 1 => match room_id(&data) {
                Some(room) => Ok(ClientEvent::Typing { room }),
                None => Err(bad(TYPING_SHAPE)),
            },
            ("typing", _) => Err(bad(TYPING_SHAPE)),
            ("read", Some(Value::Number(id))) if id.as_i64().is_some_and(|id| id >= 0) => {
                Ok(ClientEvent::Read(id.as_i64().unwrap_or(0)))
            }
            ("read", _) => Err(bad("\"read\" takes a message id (a whole number).")),
            ("edit message", Some(Value::Object(data))) if data.len() == 2 => {
                match (message_id(&data), data.get("message")) {
                    (Some(id), Some(Value::String(text))) => Ok(ClientEvent::Edit { id, text: text.clone() }),
                    _ => Err(bad(EDIT_SHAPE)),
                }
            }
            ("edit message", _) => Err(bad(EDIT_SHAPE)),
            ("delete message", Some(Value::Object(data))) if data.len() == 1 => match message_id(&data) {
                Some(id) => Ok(ClientEvent::Delete { id }),
                None => Err(bad(DELETE_SHAPE)),
            },
            ("delete message", _) => Err(bad(DELETE_SHAPE)),
            _ => Err(bad(
                "There is no such event: the client sends \"chat message\", \"typing\", \"read\", \"edit message\" or \"delete message\".",
            )),
        }
    }
}

/// Why a client frame was refused; the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The frame was not one the protocol has; the words say how.
    BadRequest(&'static str),
    InvalidMessage,
    /// Over the chat allowance: the next message would be accepted after this.
    RateLimited(std::time::Duration),
    /// The message could not be saved (the database failed); nothing was sent.
    Unavailable,
    /// An edit or delete this user may not make.
    Forbidden(&'static str),
    /// An edit or delete of a message that does not exist (or is deleted).
    NotFound,
    /// A room that does not exist, or that this user is not in.
    NoSuchRoom,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::InvalidMessage => "invalid_message",
            Self::RateLimited(_) => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound | Self::NoSuchRoom => "not_found",
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            Self::BadRequest(words) => words,
            Self::InvalidMessage => {
                "A message is 1 to 1000 characters, with something to see (after trimming spaces)."
            }
            Self::RateLimited(_) => "You are sending messages too fast. Wait a moment.",
            Self::Unavailable => "The message could not be saved. Please send it again.",
            Self::Forbidden(words) => words,
            Self::NotFound => "There is no such message (it may have been deleted).",
            Self::NoSuchRoom => "There is no such room, or you are not in it.",
        }
    }

    pub fn frame(&self) -> Utf8Bytes {
        #[derive(Serialize)]
        struct ErrorData<'a> {
            code: &'a str,
            message: &'a str,
            /// When the next message would be accepted (`rate_limited` only).
            #[serde(rename = "retryAfterMs", skip_serializing_if = "Option::is_none")]
            retry_after_ms: Option<u64>,
        }
        // Rounded up, and at least 1: never sooner than true.
        let retry_after_ms = match self {
            Self::RateLimited(wait) => Some((wait.as_micros().div_ceil(1000) as u64).max(1)),
            _ => None,
        };
        frame("error", &ErrorData { code: self.code(), message: self.message(), retry_after_ms })
    }
}

impl From<crate::domain::InvalidText> for Refusal {
    fn from(_: crate::domain::InvalidText) -> Self {
        Refusal::InvalidMessage
    }
}
