//! What a search asks for: the query language, checked once, so that a
//! [`SearchQuery`] that exists is one both engines can answer alike.
//!
//! - Words match whatever their case and accents, by their stem
//!   (`deploying` finds `deploy`); the last word typed also as the start of
//!   a word (`depl` finds `deploy`), unless it is one character.
//! - `"quoted words"` match as a phrase; so do words joined by punctuation
//!   (`e-mail`, `alice@example.com`), as the indexes cut them the same way.
//! - `-word` or `-"a phrase"` leaves out the messages that have it.
//! - Text of scripts written without spaces (Chinese, Japanese) matches as
//!   a substring of two characters or more (`服务` finds `部署服务器`).
//!
//! The store turns the terms into each engine's syntax (`store/search.rs`);
//! [`snippet`] marks what matched in a message.
//!
//! - [`porter`]: Porter's stemmer, as SQLite's FTS5 runs it, for the marks.

pub mod porter;
mod snippet;

pub use snippet::{MARK_END, MARK_START, SNIPPET_CHARS, fold, snippet};

/// The longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// A query that can be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    terms: Vec<Term>,
}

/// One thing the query asks for (or against).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub kind: TermKind,
    /// `Words`: the words of a phrase, in order (one for a single word).
    /// `Unspaced`: one run of letters and digits that holds text of a
    /// script written without spaces, matched as a substring.
    pub tokens: Vec<String>,
    /// The last token may also be the start of a word.
    pub prefix: bool,
    /// Messages that match it are left out.
    pub excluded: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermKind {
    Words,
    Unspaced,
}

/// Why a query cannot be run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidQuery {
    #[error("Type something to search for.")]
    Empty,
    #[error("A search is at most 200 characters.")]
    TooLong,
    #[error("Say what to look for, not only what to leave out.")]
    OnlyExclusions,
    #[error("Chinese and Japanese text is found by two characters or more.")]
    ShortUnspaced,
}

/// A character of a script written without spaces between words: CJK
/// ideographs (with their extensions and compatibility forms), hiragana,
/// katakana (not its middle dot, which separates words) and 々〆〇. The
/// migrations of both engines hold the same ranges.
pub fn is_unspaced(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x3041..=0x3096 | 0x309D..=0x309F
        | 0x30A1..=0x30FA | 0x30FC..=0x30FF | 0x31F0..=0x31FF | 0x3005..=0x3007
        | 0xF900..=0xFAFF | 0xFF66..=0xFF9F | 0x20000..=0x3FFFF)
}

/// The letters that PostgreSQL's unaccent folds and SQLite's FTS5 does not
/// (it folds only what Unicode decomposes into an ASCII letter and marks),
/// and what they become: SQLite's migration folds them before indexing
/// (`search_words_source`, the same list), and a query's words the same way.
pub const UNACCENT_LETTERS: [(char, &str); 57] = [
    ('ß', "ss"),
    ('ẞ', "ss"),
    ('æ', "ae"),
    ('Æ', "ae"),
    ('œ', "oe"),
    ('Œ', "oe"),
    ('ø', "o"),
    ('Ø', "o"),
    ('ł', "l"),
    ('Ł', "l"),
    ('đ', "d"),
    ('Đ', "d"),
    ('ð', "d"),
    ('Ð', "d"),
    ('þ', "th"),
    ('Þ', "th"),
    ('ı', "i"),
    ('ħ', "h"),
    ('Ħ', "h"),
    ('ŀ', "l"),
    ('Ŀ', "l"),
    ('ŧ', "t"),
    ('Ŧ', "t"),
    ('ŋ', "n"),
    ('Ŋ', "n"),
    ('ſ', "s"),
    ('ĳ', "ij"),
    ('Ĳ', "ij"),
    ('ﬀ', "ff"),
    ('ﬁ', "fi"),
    ('ﬂ', "fl"),
    ('ﬃ', "ffi"),
    ('ﬄ', "ffl"),
    ('ﬅ', "st"),
    ('ﬆ', "st"),
    ('ё', "е"),
    ('Ё', "е"),
    ('ά', "α"),
    ('έ', "ε"),
    ('ή', "η"),
    ('ί', "ι"),
    ('ό', "ο"),
    ('ύ', "υ"),
    ('ώ', "ω"),
    ('ϊ', "ι"),
    ('ϋ', "υ"),
    ('ΐ', "ι"),
    ('ΰ', "υ"),
    ('Ά', "α"),
    ('Έ', "ε"),
    ('Ή', "η"),
    ('Ί', "ι"),
    ('Ό', "ο"),
    ('Ύ', "υ"),
    ('Ώ', "ω"),
    ('Ϊ', "ι"),
    ('Ϋ', "υ"),
];

/// `text` with [`UNACCENT_LETTERS`] folded.
pub fn fold_letters(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match UNACCENT_LETTERS.iter().find(|(letter, _)| *letter == c) {
            Some((_, folded)) => out.push_str(folded),
            None => out.push(c),
        }
    }
    out
}

/// The runs of unspaced characters in a token.
pub fn unspaced_runs(token: &str) -> Vec<&str> {
    token.split(|c: char| !is_unspaced(c)).filter(|run| !run.is_empty()).collect()
}

/// A chunk of the query as typed: a bare word, or the text between quotes.
struct Chunk<'a> {
    text: &'a str,
    quoted: bool,
    excluded: bool,
}

/// Cuts the query into chunks: whitespace separates them, a quote runs to
/// the next quote (or the end), a leading `-` excludes.
fn chunks(raw: &str) -> Vec<Chunk<'_>> {
    let mut found = Vec::new();
    let mut rest = raw;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return found;
        }
        let excluded = rest.len() > 1 && rest.starts_with('-') && !rest[1..].starts_with(char::is_whitespace);
        if excluded {
            rest = &rest[1..];
        }
        if let Some(inner) = rest.strip_prefix('"') {
            let end = inner.find('"').unwrap_or(inner.len());
            found.push(Chunk { text: &inner[..end], quoted: true, excluded });
            rest = inner.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            found.push(Chunk { text: &rest[..end], quoted: false, excluded });
            rest = &rest[end..];
        }
    }
}

/// The runs of letters and digits of a text, as the word indexes cut it.
pub fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty())
}

impl SearchQuery {
    pub fn parse(raw: &str) -> Result<SearchQuery, InvalidQuery> {
        if raw.chars().count() > MAX_QUERY_CHARS {
            return Err(InvalidQuery::TooLong);
        }
        let chunks = chunks(raw);
        let last = chunks.len().saturating_sub(1);
        let mut terms = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let words: Vec<String> = tokens(chunk.text).map(str::to_owned).collect();
            if words.is_empty() {
                continue;
            }
            let excluded = chunk.excluded;
            if words.iter().any(|w| w.chars().any(is_unspaced)) {
                // Unspaced text is matched as substrings, which make no
                // phrase with words: each run stands alone.
                for word in words {
                    if unspaced_runs(&word).iter().any(|run| run.chars().count() < 2) {
                        return Err(InvalidQuery::ShortUnspaced);
                    }
                    let kind =
                        if word.chars().any(is_unspaced) { TermKind::Unspaced } else { TermKind::Words };
                    terms.push(Term { kind, tokens: vec![word], prefix: false, excluded });
                }
            } else {
                // The word being typed: the last one, bare, not excluded,
                // and not one character (the `s` of `it's`), which would
                // be the start of a tenth of all words.
                let prefix = i == last
                    && !chunk.quoted
                    && !excluded
                    && words.last().is_some_and(|w| w.chars().nth(1).is_some());
                terms.push(Term { kind: TermKind::Words, tokens: words, prefix, excluded });
            }
        }
        if terms.is_empty() {
            return Err(InvalidQuery::Empty);
        }
        if terms.iter().all(|t| t.excluded) {
            return Err(InvalidQuery::OnlyExclusions);
        }
        Ok(SearchQuery { terms })
    }

    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// The terms of one kind, wanted (`excluded` false) or not.
    pub fn of(&self, kind: TermKind, excluded: bool) -> impl Iterator<Item = &Term> {
        self.terms.iter().filter(move |t| t.kind == kind && t.excluded == excluded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(tokens: &[&str], prefix: bool, excluded: bool) -> Term {
        Term {
            kind: TermKind::Words,
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            prefix,
            excluded,
        }
    }

    fn unspaced(token: &str, excluded: bool) -> Term {
        Term { kind: TermKind::Unspaced, tokens: vec![token.into()], prefix: false, excluded }
    }

    #[test]
    fn words_phrases_exclusions_and_the_last_word_as_a_prefix() {
        let q = SearchQuery::parse(r#"deploy "staging server" -friday depl"#).unwrap();
        assert_eq!(
            q.terms(),
            &[
                words(&["deploy"], false, false),
                words(&["staging", "server"], false, false),
                words(&["friday"], false, true),
                words(&["depl"], true, false),
            ]
        );
        // Punctuation joins words into a phrase; a quote left open runs to the end.
        let q = SearchQuery::parse(r#"alice@example.com "half open"#).unwrap();
        assert_eq!(
            q.terms(),
            &[words(&["alice", "example", "com"], false, false), words(&["half", "open"], false, false)]
        );
        let q = SearchQuery::parse(r#"-"not this" that"#).unwrap();
        assert_eq!(q.terms(), &[words(&["not", "this"], false, true), words(&["that"], true, false)]);
        // One character typed last is a word, not a start: `it's` is the phrase `it s`.
        assert_eq!(SearchQuery::parse("it's").unwrap().terms(), &[words(&["it", "s"], false, false)]);
        assert_eq!(SearchQuery::parse("plan a").unwrap().terms()[1], words(&["a"], false, false));
        assert_eq!(SearchQuery::parse("pl").unwrap().terms(), &[words(&["pl"], true, false)]);
        // A lone dash is no exclusion, and chunks without letters are dropped.
        assert_eq!(SearchQuery::parse("a - 🎉 b").unwrap().terms().len(), 2);
    }

    #[test]
    fn text_without_spaces_is_a_substring_of_two_characters_or_more() {
        let q = SearchQuery::parse("部署 -服务器 iPhone手机").unwrap();
        assert_eq!(
            q.terms(),
            &[unspaced("部署", false), unspaced("服务器", true), unspaced("iPhone手机", false)]
        );
        assert_eq!(SearchQuery::parse("猫"), Err(InvalidQuery::ShortUnspaced));
        assert_eq!(SearchQuery::parse("a型"), Err(InvalidQuery::ShortUnspaced));
        assert_eq!(unspaced_runs("a你好b世界c"), vec!["你好", "世界"]);
        assert!(!is_unspaced('・') && is_unspaced('ー') && is_unspaced('々') && !is_unspaced('a'));
    }

    #[test]
    fn empty_long_and_exclusion_only_queries_are_refused() {
        assert_eq!(SearchQuery::parse("   "), Err(InvalidQuery::Empty));
        assert_eq!(SearchQuery::parse("?! 🎉"), Err(InvalidQuery::Empty));
        assert_eq!(SearchQuery::parse(&"a".repeat(201)), Err(InvalidQuery::TooLong));
        assert!(SearchQuery::parse(&"é".repeat(200)).is_ok(), "characters, not bytes");
        assert_eq!(SearchQuery::parse("-a -b"), Err(InvalidQuery::OnlyExclusions));
    }
}
