//! The snippet of a result: the message's text around what matched, each
//! match between [`MARK_START`] and [`MARK_END`] as it is written (a search
//! for `cafe` marks `Café`). The same for both engines: it is worked out
//! here from the text and the query, not by either database.

use std::ops::Range;

use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};

use super::{SearchQuery, Term, TermKind, fold_letters, porter, tokens};

/// Before and after each match.
pub const MARK_START: char = '\u{2}';
pub const MARK_END: char = '\u{3}';
/// The most characters of the message a snippet shows (besides the marks
/// and the … of a cut).
pub const SNIPPET_CHARS: usize = 200;
/// How much of the text before the first match a cut snippet keeps.
const LEAD_CHARS: usize = 60;

/// A word as the indexes compare it: lowercase, accents off, and the
/// letters Unicode does not decompose folded as PostgreSQL's unaccent does.
pub fn fold(word: &str) -> String {
    let stripped: String =
        word.nfd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase).collect();
    fold_letters(&stripped)
}

/// A word of the message: where it is (bytes), folded and stemmed.
struct Word {
    at: Range<usize>,
    folded: String,
    stem: String,
}

fn words_of(text: &str) -> Vec<Word> {
    let base = text.as_ptr() as usize;
    tokens(text)
        .map(|token| {
            let start = token.as_ptr() as usize - base;
            let folded = fold(token);
            let stem = porter::stem(&folded);
            Word { at: start..start + token.len(), folded, stem }
        })
        .collect()
}

/// Does a message word match a query token (the last of a prefix term may
/// also start it)?
fn matches(word: &Word, token: &str, prefix: bool) -> bool {
    let folded = fold(token);
    let stem = porter::stem(&folded);
    word.stem == stem || (prefix && (word.stem.starts_with(&stem) || word.folded.starts_with(&folded)))
}

/// Where each wanted term matches in `text` (byte ranges, unsorted).
fn matched(text: &str, query: &SearchQuery) -> Vec<Range<usize>> {
    let words = words_of(text);
    let lower = text.to_ascii_lowercase();
    let mut found = Vec::new();
    for term in query.terms().iter().filter(|t| !t.excluded) {
        let Term { kind, tokens, prefix, .. } = term;
        match kind {
            TermKind::Words => {
                let n = tokens.len();
                for start in 0..words.len().saturating_sub(n - 1) {
                    let run = &words[start..start + n];
                    let all = run
                        .iter()
                        .zip(tokens)
                        .enumerate()
                        .all(|(i, (word, token))| matches(word, token, *prefix && i == n - 1));
                    if all {
                        found.extend(run.iter().map(|w| w.at.clone()));
                    }
                }
            }
            TermKind::Unspaced => {
                let needle = tokens[0].to_ascii_lowercase();
                found.extend(lower.match_indices(&needle).map(|(at, _)| at..at + needle.len()));
            }
        }
    }
    found
}

/// The snippet of `text` for `query`: all of it when it is short, else
/// [`SNIPPET_CHARS`] from a little before the first match, cut at spaces
/// where it can be and marked with … where it was cut.
pub fn snippet(text: &str, query: &SearchQuery) -> String {
    let mut spans = matched(text, query);
    spans.sort_by_key(|r| (r.start, r.end));
    // Overlapping matches are one mark.
    let mut merged: Vec<Range<usize>> = Vec::new();
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => merged.push(span),
        }
    }
    let window = window(text, merged.first().map(|r| r.start));
    let mut out = String::with_capacity(window.len() + 2 * merged.len() + 8);
    if window.start > 0 {
        out.push('…');
    }
    let mut at = window.start;
    for span in merged {
        let (start, end) = (span.start.max(window.start), span.end.min(window.end));
        if start >= end {
            continue;
        }
        out.push_str(&text[at..start]);
        out.push(MARK_START);
        out.push_str(&text[start..end]);
        out.push(MARK_END);
        at = end;
    }
    out.push_str(&text[at..window.end]);
    if window.end < text.len() {
        out.push('…');
    }
    out
}

/// The bytes of `text` a snippet shows, given where the first match starts.
fn window(text: &str, first: Option<usize>) -> Range<usize> {
    let chars: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    if chars.len() <= SNIPPET_CHARS {
        return 0..text.len();
    }
    let first_char = first.map_or(0, |byte| chars.partition_point(|&i| i < byte));
    let mut start = first_char.saturating_sub(LEAD_CHARS).min(chars.len() - SNIPPET_CHARS);
    // Start after a space when one is near, so no word is cut in two.
    if start > 0 {
        let near = text[chars[start]..].char_indices().take(20).find(|(_, c)| c.is_whitespace());
        if let Some((offset, c)) = near {
            let next = chars[start] + offset + c.len_utf8();
            start = chars.partition_point(|&i| i < next).min(first_char);
        }
    }
    let end = (start + SNIPPET_CHARS).min(chars.len());
    let end_byte = if end == chars.len() { text.len() } else { chars[end] };
    chars[start]..end_byte
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(text: &str, query: &str) -> String {
        snippet(text, &SearchQuery::parse(query).unwrap()).replace(MARK_START, "[").replace(MARK_END, "]")
    }

    #[test]
    fn marks_matches_as_written() {
        assert_eq!(marked("Meet at the Café tonight", "cafe"), "Meet at the [Café] tonight");
        assert_eq!(
            marked("We are deploying now; deployed?", "deploy"),
            "We are [deploying] now; [deployed]?"
        );
        assert_eq!(marked("Deployment of Łódź", "lodz depl"), "[Deployment] of [Łódź]");
        assert_eq!(marked("Die Straße ist lang", "strasse"), "Die [Straße] ist lang");
        assert_eq!(
            marked("the staging server and a server", "\"staging server\""),
            "the [staging] [server] and a server"
        );
        assert_eq!(marked("我们明天部署服务器", "服务"), "我们明天部署[服务]器");
        assert_eq!(marked("new iPhone手机 here", "iphone手机"), "new [iPhone手机] here");
        assert_eq!(marked("keep this, not that", "keep -that"), "[keep] this, not that");
    }

    #[test]
    fn a_long_message_is_cut_around_its_first_match() {
        let text = format!("{} needle {}", "word ".repeat(100), "tail ".repeat(100));
        let s = marked(&text, "needle");
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains("[needle]"));
        let shown = s.chars().filter(|c| !matches!(c, '[' | ']' | '…')).count();
        assert!(shown <= SNIPPET_CHARS, "{shown}");
        // Characters, not bytes: a long text of multibyte letters is cut the same.
        let text = format!("{}部署{}", "服".repeat(300), "务".repeat(300));
        let s = marked(&text, "部署");
        assert!(s.contains("[部署]") && s.chars().count() <= SNIPPET_CHARS + 4);
    }
}
