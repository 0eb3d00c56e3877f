//! The wire format: `{"event": NAME, "data": VALUE}` text frames, the shape
//! of a socket.io emit. Server frames are serialized once and shared.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use tungstenite::Utf8Bytes;

/// Close codes of the contract.
pub mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const UNSUPPORTED: u16 = 1003;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const TRY_AGAIN_LATER: u16 = 1013;
    pub const SESSION_ENDED: u16 = 4401;
}

/// The largest frame a client may send.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;

/// What a client may send.
#[derive(Debug, Deserialize)]
#[serde(tag = "event", content = "data", deny_unknown_fields)]
pub enum ClientEvent {
    #[serde(rename = "chat message")]
    ChatMessage(String),
}

impl ClientEvent {
    pub fn parse(text: &str) -> Result<Self, Refusal> {
        serde_json::from_str(text).map_err(|e| Refusal::BadRequest(e.to_string()))
    }
}

/// Why a client frame was refused; the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    BadRequest(String),
    InvalidMessage,
    RateLimited,
    /// The message could not be saved (the database failed); nothing was sent.
    Unavailable,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::InvalidMessage => "invalid_message",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
        }
    }

    pub fn message(&self) -> Cow<'static, str> {
        match self {
            Self::BadRequest(detail) => {
                Cow::Owned(format!("Expected {{\"event\": \"chat message\", \"data\": \"text\"}}: {detail}"))
            }
            Self::InvalidMessage => {
                Cow::Borrowed("A message is 1 to 1000 characters (after trimming spaces).")
            }
            Self::RateLimited => Cow::Borrowed("You are sending messages too fast. Wait a moment."),
            Self::Unavailable => Cow::Borrowed("The message could not be saved. Please send it again."),
        }
    }

    pub fn frame(&self) -> Utf8Bytes {
        #[derive(Serialize)]
        struct ErrorData<'a> {
            code: &'a str,
            message: &'a str,
        }
        frame("error", &ErrorData { code: self.code(), message: &self.message() })
    }
}

/// A chat message text: trimmed, 1 to 1000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatText(String);

impl ChatText {
    pub const MAX_CHARS: usize = 1000;

    pub fn parse(raw: &str) -> Result<Self, Refusal> {
        let text = raw.trim();
        let chars = text.chars().count();
        if (1..=Self::MAX_CHARS).contains(&chars) {
            Ok(Self(text.to_owned()))
        } else {
            Err(Refusal::InvalidMessage)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A committed chat message as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct ChatMessage {
    pub id: i64,
    pub username: String,
    pub message: String,
    #[serde(rename = "sentAt", with = "time::serde::rfc3339")]
    pub sent_at: time::OffsetDateTime,
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

const CHAT_PREFIX: &str = r#"{"event":"chat message","data":"#;

/// The `chat message` frame of a committed message.
pub fn chat_message_frame(message: &ChatMessage) -> Utf8Bytes {
    let frame = frame("chat message", message);
    debug_assert!(frame.as_str().starts_with(CHAT_PREFIX));
    frame
}

/// The `data` part of a `chat message` frame, so history frames are built
/// from pieces serialized once instead of re-serializing every message.
pub fn chat_data(frame: &str) -> &str {
    frame.strip_prefix(CHAT_PREFIX).and_then(|rest| rest.strip_suffix('}')).unwrap_or("null")
}

/// `{"event":"chat history","data":[...]}` from message data pieces.
pub fn history_frame<'a>(messages: impl Iterator<Item = &'a str>) -> Utf8Bytes {
    let mut out = String::from(r#"{"event":"chat history","data":["#);
    for (i, data) in messages.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(data);
    }
    out.push_str("]}");
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_one_client_event() {
        match ClientEvent::parse(r#"{"event":"chat message","data":"hi"}"#) {
            Ok(ClientEvent::ChatMessage(text)) => assert_eq!(text, "hi"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_everything_else_as_bad_request() {
        for bad in [
            "",
            "not json",
            "[]",
            "{}",
            r#"{"event":"chat message"}"#,
            r#"{"event":"chat message","data":5}"#,
            r#"{"event":"chat message","data":["a"]}"#,
            r#"{"event":"nope","data":"x"}"#,
            r#"{"event":"chat message","data":"x","extra":1}"#,
        ] {
            let refusal = ClientEvent::parse(bad).unwrap_err();
            assert_eq!(refusal.code(), "bad_request", "{bad}");
        }
    }

    #[test]
    fn chat_text_is_trimmed_and_bounded_in_characters() {
        assert_eq!(ChatText::parse("  hi \n").unwrap().as_str(), "hi");
        assert_eq!(ChatText::parse("   "), Err(Refusal::InvalidMessage));
        assert!(ChatText::parse(&"é".repeat(1000)).is_ok(), "characters, not bytes");
        assert_eq!(ChatText::parse(&"a".repeat(1001)), Err(Refusal::InvalidMessage));
    }

    #[test]
    fn frames_have_the_socket_io_shape() {
        assert_eq!(frame("user count", &3).as_str(), r#"{"event":"user count","data":3}"#);
        let err = Refusal::RateLimited.frame();
        let v: serde_json::Value = serde_json::from_str(err.as_str()).unwrap();
        assert_eq!(v["event"], "error");
        assert_eq!(v["data"]["code"], "rate_limited");
        let msg = ChatMessage {
            id: 7,
            username: "a<b>".into(),
            message: "\"quoted\"".into(),
            sent_at: time::macros::datetime!(2026-11-22 10:00:00.5 UTC),
        };
        let live = chat_message_frame(&msg);
        assert_eq!(chat_data(live.as_str()), serde_json::to_string(&msg).unwrap());
        let history = history_frame([chat_data(live.as_str())].into_iter());
        let v: serde_json::Value = serde_json::from_str(history.as_str()).unwrap();
        assert_eq!(v["data"][0]["id"], 7);
        assert_eq!(v["data"][0]["message"], "\"quoted\"");
        assert_eq!(v["data"][0]["sentAt"], "2026-11-22T10:00:00.5Z");
    }

    proptest! {
        #[test]
        fn any_text_frame_parses_or_is_refused_without_panicking(s in ".{0,200}") {
            let _ = ClientEvent::parse(&s);
        }

        #[test]
        fn any_string_payload_is_accepted_by_the_parser(text in ".{0,300}") {
            let json = serde_json::json!({"event": "chat message", "data": text}).to_string();
            prop_assert!(matches!(ClientEvent::parse(&json), Ok(ClientEvent::ChatMessage(t)) if t == text));
        }

        #[test]
        fn chat_text_never_exceeds_the_limit(text in "\\PC{0,1200}") {
            if let Ok(t) = ChatText::parse(&text) {
                prop_assert!(t.as_str().chars().count() <= 1000);
                prop_assert!(!t.as_str().is_empty());
            }
        }
    }
}
