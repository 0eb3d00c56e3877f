//! Chat text and messages: what a message may say, and who it mentions.

use unicode_normalization::UnicodeNormalization;

/// A chat message text: NFC-normalized, cleaned of what could hide or
/// disguise text (control characters but newline and tab, bidirectional
/// overrides and isolates), trimmed, 1 to 1000 characters, and with at least
/// one character that shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatText(String);

/// A text that breaks the rules of [`ChatText`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("A message is 1 to 1000 characters, with something to see (after trimming spaces).")]
pub struct InvalidText;

impl ChatText {
    pub const MAX_CHARS: usize = 1000;

    pub fn parse(raw: &str) -> Result<Self, InvalidText> {
        let cleaned: String = raw.nfc().filter(|c| !is_removed(*c)).collect();
        let text = cleaned.trim();
        let chars = text.chars().count();
        if (1..=Self::MAX_CHARS).contains(&chars) && text.chars().any(is_visible) {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidText)
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

/// A committed chat message, as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: i64,
    /// The room it was sent to.
    pub room: i64,
    pub username: String,
    pub body: String,
    pub sent_at: time::OffsetDateTime,
    /// The existing users the text names as `@name`, as registered, each
    /// once, in order of first mention.
    pub mentions: Vec<String>,
    pub edited_at: Option<time::OffsetDateTime>,
    /// The files it carries (an upload's message: one).
    pub files: Vec<super::Attachment>,
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

/// The registered names among a text's candidates, in order of first
/// mention (`registered` holds the candidates that exist, as registered).
pub fn mentioned<'a>(text: &str, registered: &'a [String]) -> Vec<&'a str> {
    mention_candidates(text)
        .iter()
        .filter_map(|c| registered.iter().find(|r| r.eq_ignore_ascii_case(c)).map(String::as_str))
        .collect()
}
