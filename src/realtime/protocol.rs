//! The wire format: `{"event": NAME, "data": VALUE}` text frames, the shape
//! of a socket.io emit. Server frames are serialized once and shared.

use serde::Serialize;
use tungstenite::Utf8Bytes;
use unicode_normalization::UnicodeNormalization;

/// Close codes of the contract.
pub mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const UNSUPPORTED: u16 = 1003;
    pub const INVALID_DATA: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const TRY_AGAIN_LATER: u16 = 1013;
    pub const SESSION_ENDED: u16 = 4401;
    /// The session goes on under a new id (its password was changed here):
    /// reconnect, with the new cookie.
    pub const SESSION_RENEWED: u16 = 4409;
    pub const BANNED: u16 = 4403;
}

/// The largest frame a client may send.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;

/// What a client may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// `{"event": "chat message", "data": "text"}`
    ChatMessage(String),
    /// `{"event": "typing"}`: the user is typing.
    Typing,
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
            ("chat message", Some(Value::String(text))) => Ok(ClientEvent::ChatMessage(text)),
            ("chat message", _) => Err(bad("\"chat message\" takes the message as a string.")),
            ("typing", None | Some(Value::Null)) => Ok(ClientEvent::Typing),
            ("typing", _) => Err(bad("\"typing\" takes no data.")),
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
    RateLimited,
    /// The message could not be saved (the database failed); nothing was sent.
    Unavailable,
    /// An edit or delete this user may not make.
    Forbidden(&'static str),
    /// An edit or delete of a message that does not exist (or is deleted).
    NotFound,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::InvalidMessage => "invalid_message",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound => "not_found",
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            Self::BadRequest(words) => words,
            Self::InvalidMessage => {
                "A message is 1 to 1000 characters, with something to see (after trimming spaces)."
            }
            Self::RateLimited => "You are sending messages too fast. Wait a moment.",
            Self::Unavailable => "The message could not be saved. Please send it again.",
            Self::Forbidden(words) => words,
            Self::NotFound => "There is no such message (it may have been deleted).",
        }
    }

    pub fn frame(&self) -> Utf8Bytes {
        #[derive(Serialize)]
        struct ErrorData<'a> {
            code: &'a str,
            message: &'a str,
        }
        frame("error", &ErrorData { code: self.code(), message: self.message() })
    }
}

/// A chat message text: NFC-normalized, cleaned of what could hide or
/// disguise text (control characters but newline and tab, bidirectional
/// overrides and isolates), trimmed, 1 to 1000 characters, and with at least
/// one character that shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatText(String);

impl ChatText {
    pub const MAX_CHARS: usize = 1000;

    pub fn parse(raw: &str) -> Result<Self, Refusal> {
        let cleaned: String = raw.nfc().filter(|c| !is_removed(*c)).collect();
        let text = cleaned.trim();
        let chars = text.chars().count();
        if (1..=Self::MAX_CHARS).contains(&chars) && text.chars().any(is_visible) {
            Ok(Self(text.to_owned()))
        } else {
            Err(Refusal::InvalidMessage)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Control characters (but newline and tab), and the bidirectional
/// embeddings, overrides and isolates, which can make text read other than
/// it is (U+202A–U+202E, U+2066–U+2069).
fn is_removed(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Does this character show? Letters, numbers, punctuation, symbols and
/// spacing marks do, but not the few letters and symbols drawn as blanks.
fn is_visible(c: char) -> bool {
    use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};
    let blank = matches!(c, '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2800}');
    let shows = matches!(
        c.general_category_group(),
        GeneralCategoryGroup::Letter
            | GeneralCategoryGroup::Number
            | GeneralCategoryGroup::Punctuation
            | GeneralCategoryGroup::Symbol
    ) || c.general_category() == GeneralCategory::SpacingMark;
    shows && !blank
}

/// A committed chat message as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct ChatMessage {
    pub id: i64,
    pub username: String,
    pub message: String,
    #[serde(rename = "sentAt", with = "time::serde::rfc3339")]
    pub sent_at: time::OffsetDateTime,
    /// The existing users the text names as `@name`, as registered, each
    /// once, in order of first mention.
    pub mentions: Vec<String>,
    #[serde(rename = "editedAt", with = "time::serde::rfc3339::option")]
    pub edited_at: Option<time::OffsetDateTime>,
}

/// The `@name` candidates in a text: the run of username characters after
/// each `@`, without a trailing `.` or `-`, lowercased, each once, in order
/// of first mention. Which are existing users is for the database to say.
pub fn mention_candidates(text: &str) -> Vec<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    let mut found: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let after = &rest[at + 1..];
        let end = after.find(|c: char| !is_name(c)).unwrap_or(after.len());
        let name = after[..end].trim_end_matches(['.', '-']).to_ascii_lowercase();
        if (3..=32).contains(&name.len()) && !found.contains(&name) {
            found.push(name);
        }
        rest = &after[end..];
    }
    found
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct UserNotice<'a> {
    pub username: &'a str,
    #[serde(rename = "currentUsers")]
    pub current_users: usize,
    #[serde(rename = "onlineUsers")]
    pub online_users: usize,
    pub connected: bool,
}

/// `{"event": event, "data": data}`, serialized once.
pub fn frame(event: &str, data: &impl Serialize) -> Utf8Bytes {
    #[derive(Serialize)]
    struct Frame<'a, T> {
        event: &'a str,
        data: &'a T,
    }
    // Our data types are plain structs and numbers: serializing them cannot fail.
    serde_json::to_string(&Frame { event, data }).unwrap_or_default().into()
}

/// A message as a history item (and the `data` of its `chat message`):
/// serialized once, shared by every frame that carries it.
pub fn message_item(message: &ChatMessage) -> Utf8Bytes {
    serde_json::to_string(message).unwrap_or_default().into()
}

/// A deleted message as a history item: `{"id":ID,"deleted":true}`.
pub fn deleted_item(id: i64) -> Utf8Bytes {
    format!(r#"{{"id":{id},"deleted":true}}"#).into()
}

/// The `chat message` frame around a message item.
pub fn chat_message_frame(item: &str) -> Utf8Bytes {
    format!(r#"{{"event":"chat message","data":{item}}}"#).into()
}

/// `message edited`: `{"seq","id","message","editedAt","mentions"}`.
pub fn edited_frame(seq: i64, message: &ChatMessage) -> Utf8Bytes {
    #[derive(Serialize)]
    struct Edited<'a> {
        seq: i64,
        id: i64,
        message: &'a str,
        #[serde(rename = "editedAt", with = "time::serde::rfc3339::option")]
        edited_at: Option<time::OffsetDateTime>,
        mentions: &'a [String],
    }
    let edited = Edited {
        seq,
        id: message.id,
        message: &message.message,
        edited_at: message.edited_at,
        mentions: &message.mentions,
    };
    frame("message edited", &edited)
}

/// `message deleted`: `{"seq","id"}`.
pub fn deleted_frame(seq: i64, id: i64) -> Utf8Bytes {
    #[derive(Serialize)]
    struct Deleted {
        seq: i64,
        id: i64,
    }
    frame("message deleted", &Deleted { seq, id })
}

/// `{"event":"chat history","data":[...]}` from items.
pub fn history_frame<'a>(items: impl Iterator<Item = &'a str>) -> Utf8Bytes {
    let mut out = String::from(r#"{"event":"chat history","data":["#);
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push_str("]}");
    out.into()
}
