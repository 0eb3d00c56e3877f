//! Rooms: what they are called, what kinds there are, and how loudly each
//! member wants to hear of them.

use std::{fmt, str::FromStr};

use super::ChatText;

/// The first release's one chat: open, everyone's, never left or renamed.
pub const LOBBY: i64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomKind {
    /// Listed to every user; anyone joins and leaves.
    Open,
    /// Does not exist for anyone outside it; members add people.
    Private,
    /// 2 to 8 people, no name; the same people always find the same room.
    Direct,
}

impl RoomKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Open => "open",
            RoomKind::Private => "private",
            RoomKind::Direct => "direct",
        }
    }

    /// A stored kind; anything unknown is private (shown to nobody outside).
    pub fn stored(text: &str) -> RoomKind {
        match text {
            "open" => RoomKind::Open,
            "direct" => RoomKind::Direct,
            _ => RoomKind::Private,
        }
    }

    /// The level a new member starts at.
    pub fn default_level(self, room: i64) -> Level {
        match self {
            RoomKind::Open => Level::Mentions,
            _ if room == LOBBY => Level::Mentions,
            RoomKind::Private | RoomKind::Direct => Level::All,
        }
    }
}

/// The most people in a direct room, the asker included.
pub const DIRECT_MAX: usize = 8;

/// A room's name: 1 to 32 ASCII letters, digits, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomName(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("A room's name is 1 to 32 characters: letters, digits, - and _.")]
pub struct InvalidRoomName;

impl RoomName {
    pub fn parse(raw: &str) -> Result<Self, InvalidRoomName> {
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_');
        if (1..=32).contains(&raw.len()) && raw.chars().all(ok) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidRoomName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A room's topic: up to 200 characters under the chat text rules (empty: none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("A topic is up to 200 characters of text.")]
pub struct InvalidTopic;

impl Topic {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, InvalidTopic> {
        if raw.trim().is_empty() {
            return Ok(Self(String::new()));
        }
        let text = ChatText::parse(raw).map_err(|_| InvalidTopic)?;
        if text.as_str().chars().count() > Self::MAX_CHARS {
            return Err(InvalidTopic);
        }
        Ok(Self(text.as_str().to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How loudly a member hears of a room (for notifications).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    All,
    Mentions,
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("A level is all, mentions or nothing.")]
pub struct InvalidLevel;

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::All => "all",
            Level::Mentions => "mentions",
            Level::Nothing => "nothing",
        }
    }
}

impl FromStr for Level {
    type Err = InvalidLevel;
    fn from_str(text: &str) -> Result<Self, InvalidLevel> {
        match text {
            "all" => Ok(Level::All),
            "mentions" => Ok(Level::Mentions),
            "nothing" => Ok(Level::Nothing),
            _ => Err(InvalidLevel),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A room as one user sees it (the `ROOM` of the contract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomView {
    pub id: i64,
    pub kind: RoomKind,
    /// `None` for a direct room.
    pub name: Option<String>,
    pub topic: String,
    /// A direct room's other members (`None` for the others).
    pub people: Option<Vec<String>>,
    pub members: i64,
    pub member: bool,
    pub level: Level,
    /// The room's newest message (0: none).
    pub last_id: i64,
    pub last_read: i64,
    /// Messages by others after `last_read` (counted up to a cap).
    pub unread: i64,
    /// Those of them that mention this user.
    pub mentions: i64,
    /// Who made it (`None`: the lobby, made by nobody).
    pub created_by: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_ascii_words() {
        for ok in ["a", "general", "ops-2026", "team_b", &"x".repeat(32)] {
            assert!(RoomName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", " ", "two words", "café", &"x".repeat(33), "a/b", "#general"] {
            assert_eq!(RoomName::parse(bad), Err(InvalidRoomName), "{bad:?}");
        }
    }

    #[test]
    fn topics_follow_the_chat_text_rules() {
        assert_eq!(Topic::parse("  ").unwrap().as_str(), "");
        assert_eq!(Topic::parse(" Week 3: graphs ").unwrap().as_str(), "Week 3: graphs");
        assert!(Topic::parse(&"x".repeat(201)).is_err());
        assert!(Topic::parse("\u{202E}\u{200B}").is_err(), "nothing to see");
    }

    #[test]
    fn levels_default_by_kind() {
        assert_eq!(RoomKind::Open.default_level(5), Level::Mentions);
        assert_eq!(RoomKind::Private.default_level(5), Level::All);
        assert_eq!(RoomKind::Direct.default_level(5), Level::All);
        assert_eq!(RoomKind::Open.default_level(LOBBY), Level::Mentions);
        assert_eq!("nothing".parse(), Ok(Level::Nothing));
        assert!("loud".parse::<Level>().is_err());
    }
}
