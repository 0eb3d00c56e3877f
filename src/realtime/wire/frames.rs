//! Server frames: `{"event": NAME, "data": VALUE}` text, the shape of a
//! socket.io emit, each serialized once and shared by every socket it goes to.

use serde::{Serialize, Serializer, ser::SerializeStruct};
use tungstenite::Utf8Bytes;

use crate::domain::{Attachment, Message, RoomView};

/// A message as clients see it: `{"id", "room", "username", "message",
/// "sentAt", "mentions", "editedAt"}` (times in RFC 3339), and `"files"`
/// when it carries any (an upload's message).
pub struct MessageJson<'a>(pub &'a Message);

/// A file as a message carries it: `{"id", "name", "type", "size", "url",
/// "width", "height", "thumbnail"}` (the size in pixels and the thumbnail's
/// URL for images, else null).
pub struct FileJson<'a>(pub &'a Attachment);

impl Serialize for FileJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let mut out = serializer.serialize_struct("File", 8)?;
        out.serialize_field("id", &f.id)?;
        out.serialize_field("name", f.name.as_str())?;
        out.serialize_field("type", f.kind.mime())?;
        out.serialize_field("size", &f.size)?;
        out.serialize_field("url", &f.url())?;
        out.serialize_field("width", &f.width)?;
        out.serialize_field("height", &f.height)?;
        out.serialize_field("thumbnail", &f.thumbnail_url())?;
        out.end()
    }
}

impl Serialize for MessageJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let rfc3339 = |t: time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
        };
        let mut out = serializer.serialize_struct("Message", 8)?;
        out.serialize_field("id", &m.id)?;
        out.serialize_field("room", &m.room)?;
        out.serialize_field("username", &m.username)?;
        out.serialize_field("message", &m.body)?;
        out.serialize_field("sentAt", &rfc3339(m.sent_at))?;
        out.serialize_field("mentions", &m.mentions)?;
        out.serialize_field("editedAt", &m.edited_at.map(rfc3339))?;
        if m.files.is_empty() {
            out.skip_field("files")?;
        } else {
            let files: Vec<FileJson<'_>> = m.files.iter().map(FileJson).collect();
            out.serialize_field("files", &files)?;
        }
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

/// A deleted message as a history item: `{"id":ID,"room":ROOM,"deleted":true}`.
pub fn deleted_item(id: i64, room: i64) -> Utf8Bytes {
    format!(r#"{{"id":{id},"room":{room},"deleted":true}}"#).into()
}

/// The `chat message` frame around a message item.
pub fn chat_message_frame(item: &str) -> Utf8Bytes {
    format!(r#"{{"event":"chat message","data":{item}}}"#).into()
}

/// `message edited`: `{"seq","id","room","message","editedAt","mentions"}`.
pub fn edited_frame(seq: i64, message: &Message) -> Utf8Bytes {
    #[derive(Serialize)]
    struct Edited<'a> {
        seq: i64,
        id: i64,
        room: i64,
        message: &'a str,
        #[serde(rename = "editedAt", with = "time::serde::rfc3339::option")]
        edited_at: Option<time::OffsetDateTime>,
        mentions: &'a [String],
    }
    let edited = Edited {
        seq,
        id: message.id,
        room: message.room,
        message: &message.body,
        edited_at: message.edited_at,
        mentions: &message.mentions,
    };
    frame("message edited", &edited)
}

/// `message deleted`: `{"seq","id","room"}`.
pub fn deleted_frame(seq: i64, id: i64, room: i64) -> Utf8Bytes {
    #[derive(Serialize)]
    struct Deleted {
        seq: i64,
        id: i64,
        room: i64,
    }
    frame("message deleted", &Deleted { seq, id, room })
}

/// A room as one user sees it, the contract's `ROOM`: `{"id", "name",
/// "kind", "topic", "people", "members", "member", "level", "lastId",
/// "lastRead", "unread", "mentions"}`.
pub struct RoomJson<'a>(pub &'a RoomView);

impl Serialize for RoomJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut out = serializer.serialize_struct("Room", 12)?;
        out.serialize_field("id", &r.id)?;
        out.serialize_field("name", &r.name)?;
        out.serialize_field("kind", r.kind.as_str())?;
        out.serialize_field("topic", &r.topic)?;
        out.serialize_field("people", &r.people)?;
        out.serialize_field("members", &r.members)?;
        out.serialize_field("member", &r.member)?;
        out.serialize_field("level", r.level.as_str())?;
        out.serialize_field("lastId", &r.last_id)?;
        out.serialize_field("lastRead", &r.last_read)?;
        out.serialize_field("unread", &r.unread)?;
        out.serialize_field("mentions", &r.mentions)?;
        out.end()
    }
}

/// `rooms`: every room of the user's list, as on GET /api/rooms.
pub fn rooms_frame(rooms: &[RoomView]) -> Utf8Bytes {
    let rooms: Vec<RoomJson<'_>> = rooms.iter().map(RoomJson).collect();
    frame("rooms", &rooms)
}

/// `room joined` / `room updated`: the room.
pub fn room_frame(event: &str, room: &RoomView) -> Utf8Bytes {
    frame(event, &RoomJson(room))
}

/// `room updated`: the room's own fields (`{"id", "name", "kind", "topic",
/// "people", "members", "lastId"}`); what is each member's (level, marker,
/// unread counts) is theirs to keep.
pub fn room_updated_frame(room: &RoomView) -> Utf8Bytes {
    #[derive(Serialize)]
    struct Updated<'a> {
        id: i64,
        name: &'a Option<String>,
        kind: &'a str,
        topic: &'a str,
        people: &'a Option<Vec<String>>,
        members: i64,
        #[serde(rename = "lastId")]
        last_id: i64,
    }
    frame(
        "room updated",
        &Updated {
            id: room.id,
            name: &room.name,
            kind: room.kind.as_str(),
            topic: &room.topic,
            people: &room.people,
            members: room.members,
            last_id: room.last_id,
        },
    )
}

/// `room left`: `{"room"}`.
pub fn room_left_frame(room: i64) -> Utf8Bytes {
    #[derive(Serialize)]
    struct Left {
        room: i64,
    }
    frame("room left", &Left { room })
}

/// `member joined` / `member left`: `{"room", "username"}`.
pub fn member_frame(event: &str, room: i64, username: &str) -> Utf8Bytes {
    #[derive(Serialize)]
    struct Member<'a> {
        room: i64,
        username: &'a str,
    }
    frame(event, &Member { room, username })
}

/// `read marker`: `{"lastRead", "room"}`.
pub fn read_marker_frame(room: i64, last_read: i64) -> Utf8Bytes {
    #[derive(Serialize)]
    struct Marker {
        #[serde(rename = "lastRead")]
        last_read: i64,
        room: i64,
    }
    frame("read marker", &Marker { last_read, room })
}

/// `typing`: `{"username", "room"}`.
pub fn typing_frame(username: &str, room: i64) -> Utf8Bytes {
    #[derive(Serialize)]
    struct Typing<'a> {
        username: &'a str,
        room: i64,
    }
    frame("typing", &Typing { username, room })
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
