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
}

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
            _ => {
                Err(bad("There is no such event: the client sends \"chat message\", \"typing\" or \"read\"."))
            }
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

    pub fn message(&self) -> &'static str {
        match self {
            Self::BadRequest(words) => words,
            Self::InvalidMessage => {
                "A message is 1 to 1000 characters, with something to see (after trimming spaces)."
            }
            Self::RateLimited => "You are sending messages too fast. Wait a moment.",
            Self::Unavailable => "The message could not be saved. Please send it again.",
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
    fn chat_text_is_normalized_and_cleaned() {
        assert_eq!(ChatText::parse("e\u{301}cole").unwrap().as_str(), "\u{e9}cole", "NFC");
        assert_eq!(ChatText::parse("a\u{0}b\u{1b}[31mc").unwrap().as_str(), "ab[31mc", "NUL and ESC go");
        assert_eq!(ChatText::parse("line one\nline\ttwo").unwrap().as_str(), "line one\nline\ttwo");
        assert_eq!(ChatText::parse("pay \u{202E}drocer").unwrap().as_str(), "pay drocer", "no override");
        assert_eq!(ChatText::parse("\u{2067}x\u{2069}").unwrap().as_str(), "x", "no isolates");
        for invisible in [
            "\u{200B}\u{200B}",
            "\u{FEFF}",
            "\u{2060} \u{200D}",
            "\u{3164}",
            "\u{202E}",
            "\u{0}\u{7}",
            "\u{301}",
        ] {
            assert_eq!(ChatText::parse(invisible), Err(Refusal::InvalidMessage), "{invisible:?}");
        }
        assert!(ChatText::parse("🙂").is_ok());
        assert!(ChatText::parse("日本").is_ok());
    }

    #[test]
    fn typing_and_read_frames() {
        assert_eq!(ClientEvent::parse(r#"{"event":"typing"}"#), Ok(ClientEvent::Typing));
        assert_eq!(ClientEvent::parse(r#"{"event":"typing","data":null}"#), Ok(ClientEvent::Typing));
        assert_eq!(ClientEvent::parse(r#"{"event":"read","data":42}"#), Ok(ClientEvent::Read(42)));
        for bad in [
            r#"{"event":"typing","data":"x"}"#,
            r#"{"event":"read","data":-1}"#,
            r#"{"event":"read","data":"7"}"#,
            r#"{"event":"read","data":1.5}"#,
        ] {
            assert_eq!(ClientEvent::parse(bad).unwrap_err().code(), "bad_request", "{bad}");
        }
    }

    #[test]
    fn mention_candidates_follow_the_rule() {
        assert_eq!(mention_candidates("hi @Alice and @bob."), vec!["alice", "bob"]);
        assert_eq!(mention_candidates("@bob- @bob @Bob"), vec!["bob"], "each once");
        assert_eq!(mention_candidates("mail me@example.com"), vec!["example.com"], "a name may hold dots");
        assert_eq!(mention_candidates("@ab @x @"), Vec::<String>::new(), "too short to be a name");
        assert_eq!(mention_candidates("@a.b.c-..."), vec!["a.b.c"]);
        assert_eq!(mention_candidates("é@carol!"), vec!["carol"]);
    }

    #[test]
    fn refusals_are_in_our_words() {
        for (bad, words) in [
            ("not json", "one JSON object"),
            (r#"{"data":"x"}"#, "no \"event\" name"),
            (r#"{"event":"nope","data":"x"}"#, "no such event"),
            (r#"{"event":"chat message","data":5}"#, "takes the message as a string"),
        ] {
            let refusal = ClientEvent::parse(bad).unwrap_err();
            assert!(refusal.message().contains(words), "{bad}: {}", refusal.message());
            assert!(
                !refusal.message().contains("line") && !refusal.message().contains("column"),
                "no parser words"
            );
        }
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
            mentions: vec![],
            edited_at: None,
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
