//! Search: a [`SearchQuery`] in each engine's words, over the rooms a user
//! may see, newest first. The indexes are the migrations' (20261205300001):
//! on SQLite the FTS5 tables `search_words` and `search_grams`, on
//! PostgreSQL the tsvector columns `messages.words` and `messages.grams`.
//! PostgreSQL's change in the statement that changes the text. SQLite's
//! follow the log (`search_index`): edits and deletes of indexed messages
//! in their own transaction, new messages a moment after they commit (the
//! search route has the indexer catch up first).
//!
//! - Words: each term a phrase of its words (FTS5 `"a b"`, tsquery
//!   `'a' <-> 'b'`), the last one typed also a prefix (`"a"*`, `'a':*`)
//!   when the parser made it one;
//!   exclusions by NOT. Each engine stems and folds them as its index did.
//! - Text without spaces: the phrase of the text's overlapping pairs of
//!   characters finds the candidates; the text itself (ASCII letters in any
//!   case) decides, so `iPhone手机` must be there as written.
//! - Rooms: SQLite names them in the MATCH (the room is a column of the
//!   index), so FTS5 walks only the user's; PostgreSQL filters by them.

use sqlx::{Postgres, QueryBuilder, Sqlite};

use super::{
    Store, StoreError,
    messages::{COLUMNS, ENTRY, FILE_JOIN, Row},
};
use crate::domain::{
    LOBBY, Message,
    search::{SearchQuery, Term, TermKind, fold, fold_letters, unspaced_runs},
};

/// Where to look.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// Every room the user is a member of (the lobby among them), as
    /// memberships stand when the search runs.
    MemberOf(i64),
    /// One room (that the caller has checked the user may see).
    Room(i64),
}

/// A page of results.
#[derive(Debug)]
pub struct Hits {
    /// Newest first.
    pub messages: Vec<Message>,
    /// Whether older ones match too.
    pub more: bool,
}

/// The rooms a user is a member of now: the lobby, and every room of theirs
/// not archived.
const ROOMS_OF: &str = "SELECT m.room_id FROM memberships m JOIN rooms r ON r.id = m.room_id
                        WHERE m.user_id = $1 AND r.archived_at IS NULL AND m.room_id <> 1";

/// A string for either engine's query syntax: inside double quotes (FTS5)
/// or single quotes (tsquery). Tokens are letters and digits only, so this
/// never changes one; it keeps a future caller from breaking out.
fn quoted(token: &str, quote: char) -> String {
    let mut out = String::with_capacity(token.len() + 2);
    out.push(quote);
    for c in token.chars() {
        if c == quote || c == '\\' && quote == '\'' {
            out.push(c);
        }
        out.push(c);
    }
    out.push(quote);
    out
}

/// A word term as an FTS5 phrase.
fn fts5_phrase(term: &Term) -> String {
    let phrase = quoted(&fold_letters(&term.tokens.join(" ")), '"');
    if term.prefix { format!("{phrase}*") } else { phrase }
}

/// The text's pairs of unspaced characters, as a grams phrase for each run.
fn pairs(token: &str) -> Vec<Vec<String>> {
    unspaced_runs(token)
        .iter()
        .map(|run| {
            let chars: Vec<char> = run.chars().collect();
            chars.windows(2).map(|pair| pair.iter().collect()).collect()
        })
        .collect()
}

fn fts5_rooms(rooms: &[i64]) -> String {
    let listed: Vec<String> = rooms.iter().map(|r| format!("\"{r}\"")).collect();
    format!("room_id : ({})", listed.join(" OR "))
}

/// An operand of a tsquery, as the index's words were made. PostgreSQL's
/// index keeps a two-letter word that ends in s or y out of the stemmer with
/// a 0 after it (as SQLite's FTS5 stems no word shorter than three bytes:
/// see the migration's `lobby_words`).
#[derive(Debug, PartialEq, Eq)]
enum PgOperand {
    /// Through `to_tsquery('lobby_search', …)`: folded and stemmed there.
    Parsed(String),
    /// A tsquery literal, folded here and never stemmed: the start of a
    /// two-letter word ending in s or y (`us` typed last must find `us`
    /// and `user`, not every word starting with the stem `u`).
    Literal(String),
}

fn pg_operand(token: &str, prefix: bool) -> PgOperand {
    let mut chars = token.chars();
    let short_s_or_y =
        matches!((chars.next(), chars.next(), chars.next()), (Some(_), Some('s' | 'S' | 'y' | 'Y'), None));
    match (prefix, short_s_or_y) {
        (true, true) => PgOperand::Literal(format!("{}:*", quoted(&fold(token), '\''))),
        (true, false) => PgOperand::Parsed(format!("{}:*", quoted(token, '\''))),
        (false, true) => PgOperand::Parsed(quoted(&format!("{token}0"), '\'')),
        (false, false) => PgOperand::Parsed(quoted(token, '\'')),
    }
}

/// A word term as a tsquery expression: its operands, each followed by the
/// next (`tsquery_phrase`, the `<->` of the tsquery syntax).
fn push_pg_phrase(sql: &mut QueryBuilder<'_, Postgres>, term: &Term) {
    let last = term.tokens.len() - 1;
    sql.push("tsquery_phrase(".repeat(last));
    for (i, token) in term.tokens.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        match pg_operand(token, term.prefix && i == last) {
            PgOperand::Parsed(text) => sql.push("to_tsquery('lobby_search', ").push_bind(text).push(")"),
            PgOperand::Literal(text) => sql.push("CAST(").push_bind(text).push(" AS tsquery)"),
        };
        if i > 0 {
            sql.push(")");
        }
    }
}

/// The terms joined by `op` (`&&` or `||`), in parentheses.
fn push_pg_terms<'t>(sql: &mut QueryBuilder<'_, Postgres>, terms: impl Iterator<Item = &'t Term>, op: &str) {
    sql.push("(");
    for (i, term) in terms.enumerate() {
        if i > 0 {
            sql.push(format!(" {op} "));
        }
        push_pg_phrase(sql, term);
    }
    sql.push(")");
}

/// An unspaced term as a tsquery of its pairs (a literal: no parser).
fn pg_grams(term: &Term) -> String {
    let runs: Vec<String> = pairs(&term.tokens[0])
        .iter()
        .map(|run| {
            let pairs: Vec<String> = run.iter().map(|p| quoted(p, '\'')).collect();
            format!("({})", pairs.join(" <-> "))
        })
        .collect();
    runs.join(" & ")
}

/// ASCII letters in lowercase, the rest as it is: what an unspaced term
/// must be found as, on both engines.
fn lower_ascii(token: &str) -> String {
    token.to_ascii_lowercase()
}

impl Store {
    /// Up to `limit` messages matching `query` in `scope` with ids below
    /// `before`, newest first, and whether older ones match too. Deleted
    /// messages are never found; edited ones by their text now.
    pub async fn search(
        &self,
        query: &SearchQuery,
        scope: Scope,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Hits, StoreError> {
        let before = before.unwrap_or(i64::MAX);
        let rows = match self {
            Store::Sqlite(pool) => {
                // One read transaction: the rooms and the search see one snapshot.
                let mut tx = pool.begin().await?;
                let rooms = match scope {
                    Scope::Room(room) => vec![room],
                    Scope::MemberOf(user) => {
                        let mut rooms: Vec<i64> =
                            sqlx::query_scalar(ROOMS_OF).bind(user).fetch_all(&mut *tx).await?;
                        rooms.push(LOBBY);
                        rooms
                    }
                };
                let rows = sqlite_search(query, &rooms, before, limit)
                    .build_query_as::<Row>()
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                rows
            }
            // Planned for its own words each time: a prepared statement
            // would go to a generic plan after five runs, one that cannot
            // tell a rare word from `the:*` (p99 of prefixes 29 → 61 ms).
            Store::Postgres(pool) => {
                postgres_search(query, scope, before, limit)
                    .build_query_as::<Row>()
                    .persistent(false)
                    .fetch_all(pool)
                    .await?
            }
        };
        let more = rows.len() > limit;
        Ok(Hits { messages: rows.into_iter().take(limit).map(Message::from).collect(), more })
    }
}

/// SQLite: FTS5 finds the candidates newest first (the index walks its
/// rowids backwards), in the rooms named; the rest of the terms filter them.
fn sqlite_search<'a>(
    query: &'a SearchQuery,
    rooms: &[i64],
    before: i64,
    limit: usize,
) -> QueryBuilder<'a, Sqlite> {
    let words: Vec<String> = query.of(TermKind::Words, false).map(fts5_phrase).collect();
    let not_words: Vec<String> = query.of(TermKind::Words, true).map(fts5_phrase).collect();
    let grams: Vec<String> = query
        .of(TermKind::Unspaced, false)
        .flat_map(|t| pairs(&t.tokens[0]))
        .map(|run| quoted(&run.join(" "), '"'))
        .collect();
    let mut sql = QueryBuilder::new("");
    // Each FTS5 expression: the rooms, then the terms of its column.
    let words_match = (!words.is_empty()).then(|| {
        let mut expr = format!("{} AND words : (({})", fts5_rooms(rooms), words.join(" AND "));
        if !not_words.is_empty() {
            expr.push_str(&format!(" NOT ({})", not_words.join(" OR ")));
        }
        expr.push(')');
        expr
    });
    let (index, expr) = match words_match {
        Some(expr) => ("search_words", expr),
        None => ("search_grams", format!("{} AND grams : ({})", fts5_rooms(rooms), grams.join(" AND "))),
    };
    sql.push(format!(
        "SELECT {COLUMNS} FROM {index} s CROSS JOIN messages m ON m.id = s.rowid\n         CROSS JOIN users u ON u.id = m.user_id {FILE_JOIN} WHERE {index} MATCH "
    ))
        .push_bind(expr)
        .push(" AND s.rowid < ")
        .push_bind(before)
        .push(" AND NOT m.deleted");
    if index == "search_words" && !grams.is_empty() {
        sql.push(" AND m.id IN (SELECT rowid FROM search_grams WHERE search_grams MATCH ")
            .push_bind(format!("grams : ({})", grams.join(" AND ")))
            .push(")");
    }
    if index == "search_grams" && !not_words.is_empty() {
        sql.push(" AND m.id NOT IN (SELECT rowid FROM search_words WHERE search_words MATCH ")
            .push_bind(format!("words : ({})", not_words.join(" OR ")))
            .push(")");
    }
    for term in query.of(TermKind::Unspaced, false) {
        sql.push(" AND instr(lower(m.body), ").push_bind(lower_ascii(&term.tokens[0])).push(") > 0");
    }
    for term in query.of(TermKind::Unspaced, true) {
        sql.push(" AND instr(lower(m.body), ").push_bind(lower_ascii(&term.tokens[0])).push(") = 0");
    }
    sql.push(" ORDER BY s.rowid DESC LIMIT ").push_bind(limit as i64 + 1);
    sql
}

/// PostgreSQL: the GIN indexes find the candidates in the user's rooms;
/// newest first.
fn postgres_search<'a>(
    query: &'a SearchQuery,
    scope: Scope,
    before: i64,
    limit: usize,
) -> QueryBuilder<'a, Postgres> {
    const FOLD_ASCII: &str = "translate(m.body, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')";
    let grams: Vec<String> = query.of(TermKind::Unspaced, false).map(pg_grams).collect();
    let mut sql = QueryBuilder::new(format!("{ENTRY} WHERE NOT m.deleted AND m.id < "));
    sql.push_bind(before);
    match scope {
        Scope::Room(room) => sql.push(" AND m.room_id = ").push_bind(room),
        Scope::MemberOf(user) => sql
            .push(format!(
                " AND (m.room_id = {LOBBY} OR m.room_id = ANY (ARRAY (SELECT m2.room_id FROM memberships m2
                   JOIN rooms r ON r.id = m2.room_id WHERE r.archived_at IS NULL AND m2.user_id = "
            ))
            .push_bind(user)
            .push(")))"),
    };
    let (wanted, unwanted) =
        (query.of(TermKind::Words, false).count(), query.of(TermKind::Words, true).count());
    if wanted > 0 {
        sql.push(" AND m.words @@ ");
        push_pg_terms(&mut sql, query.of(TermKind::Words, false), "&&");
    }
    if unwanted > 0 {
        sql.push(" AND NOT m.words @@ ");
        push_pg_terms(&mut sql, query.of(TermKind::Words, true), "||");
    }
    if !grams.is_empty() {
        sql.push(" AND m.grams @@ ").push_bind(grams.join(" & ")).push("::tsquery");
    }
    for term in query.of(TermKind::Unspaced, false) {
        sql.push(format!(" AND strpos({FOLD_ASCII}, ")).push_bind(lower_ascii(&term.tokens[0])).push(") > 0");
    }
    for term in query.of(TermKind::Unspaced, true) {
        sql.push(format!(" AND strpos({FOLD_ASCII}, ")).push_bind(lower_ascii(&term.tokens[0])).push(") = 0");
    }
    sql.push(" ORDER BY m.id DESC LIMIT ").push_bind(limit as i64 + 1);
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> SearchQuery {
        SearchQuery::parse(text).unwrap()
    }

    #[test]
    fn terms_in_fts5_words() {
        let q = q(r#"deploy "staging server" -friday depl"#);
        let words: Vec<String> = q.of(TermKind::Words, false).map(fts5_phrase).collect();
        assert_eq!(words, vec![r#""deploy""#, r#""staging server""#, r#""depl"*"#]);
        assert_eq!(fts5_rooms(&[1, 7]), r#"room_id : ("1" OR "7")"#);
    }

    #[test]
    fn tsquery_operands() {
        use PgOperand::*;
        let operands = |text: &str| -> Vec<PgOperand> {
            let q = q(text);
            let words = q.terms().iter().filter(|t| t.kind == TermKind::Words).cloned().collect::<Vec<_>>();
            words
                .iter()
                .flat_map(|t| {
                    let last = t.tokens.len() - 1;
                    t.tokens.iter().enumerate().map(move |(i, w)| pg_operand(w, t.prefix && i == last))
                })
                .collect()
        };
        assert_eq!(
            operands(r#"us "as is" it's -vs depl"#),
            [
                Parsed("'us0'".into()),
                Parsed("'as0'".into()),
                Parsed("'is0'".into()),
                Parsed("'it'".into()),
                Parsed("'s'".into()),
                Parsed("'vs0'".into()),
                Parsed("'depl':*".into())
            ]
        );
        // The last word typed, two letters ending in s or y: as typed, not its stem.
        assert_eq!(operands("deploy ÚS"), [Parsed("'deploy'".into()), Literal("'us':*".into())]);
        assert_eq!(quoted("a'b", '\''), "'a''b'");
    }

    #[test]
    fn unspaced_text_as_pairs() {
        let q = q("服务器 iPhone手机");
        let grams: Vec<String> = q.of(TermKind::Unspaced, false).map(pg_grams).collect();
        assert_eq!(grams, vec!["('服务' <-> '务器')", "('手机')"]);
        assert_eq!(pairs("a你好b世界杯"), vec![vec!["你好"], vec!["世界", "界杯"]]);
    }
}
