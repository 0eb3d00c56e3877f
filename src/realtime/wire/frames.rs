//! Server frames: `{"event": NAME, "data": VALUE}` text, the shape of a
//! socket.io emit, each serialized once and shared by every socket it goes to.

use serde::{Serialize, Serializer, ser::SerializeStruct};
use tungstenite::Utf8Bytes;

use crate::domain::Message;

/// A message as clients see it: `{"id", "username", "message", "sentAt",
/// "mentions", "editedAt"}` (times in RFC 3339).
pub struct MessageJson<'a>(pub &'a Message);

impl Serialize for MessageJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let rfc3339 = |t: time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
        };
        let mut out = serializer.serialize_struct("Message", 6)?;
        out.serialize_field("id", &m.id)?;
        out.serialize_field("username", &m.username)?;
        out.serialize_field("message", &m.body)?;
        out.serialize_field("sentAt", &rfc3339(m.sent_at))?;
        out.serialize_field("mentions", &m.mentions)?;
        out.serialize_field("editedAt", &m.edited_at.map(rfc3339))?;
        out.end()
    }
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
pub fn message_item(message: &Message) -> Utf8Bytes {
    serde_json::to_string(&MessageJson(message)).unwrap_or_default().into()
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
pub fn edited_frame(seq: i64, message: &Message) -> Utf8Bytes {
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
        message: &message.body,
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
