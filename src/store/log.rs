//! The chat log: one order of messages for every node.
//!
//! Positions come from the single `log_head` row, locked by each batch's
//! transaction until it commits. So batches commit one after another in
//! position order, on one node or many, and a reader that asks for
//! `seq > last` never skips a batch that committed late (a sequence could not
//! promise that: its values are taken at insert, not at commit). The lock is
//! also what makes the per-user chat allowance exact across nodes: rows read
//! and written while it is held are serialized with every other batch.

use std::{
    collections::{HashMap, HashSet, hash_map::Entry},
    future::Future,
};

use sqlx::{Postgres, Sqlite, Transaction};

use super::{Store, StoreError};
use crate::{
    domain::{LOBBY, chat::mention_candidates, chat::mentioned},
    notify::{self, Channel},
    rate::{Allowance, Rate},
};

/// A message to append.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub user_id: i64,
    /// Its room (the lobby, or one the author must be a member of).
    pub room: i64,
    pub body: &'a str,
}

/// A batch of messages committed together.
#[derive(Debug, Clone)]
pub struct Batch<'a> {
    /// Unique per batch (random); the same on every attempt at it.
    pub id: String,
    pub messages: Vec<NewMessage<'a>>,
    /// An earlier attempt failed: it may have committed all the same (its
    /// answer lost), so look for it first.
    pub retried: bool,
}

/// What became of one message of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Committed at this position (its id).
    Appended(i64),
    /// The user's allowance (all their tabs, on every node) was used up;
    /// a token is there again this many milliseconds after the batch.
    RateLimited { retry_after_ms: i64 },
    /// The author is not a member of the room (removed, or it was archived,
    /// while the message was on its way): nothing stored.
    NotAMember,
}

impl Store {
    /// Appends a batch in one transaction (group commit). Each message takes
    /// a token from its author's allowance first; the accepted ones get the
    /// next positions, in batch order. A retried batch that had committed
    /// after all gets its first answer back, and is not stored twice.
    #[tracing::instrument(skip_all, fields(messages = batch.messages.len(), retried = batch.retried))]
    pub async fn append(&self, batch: &Batch<'_>, rate: Rate) -> Result<Vec<Outcome>, StoreError> {
        Ok(match self {
            Store::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let outcomes = append_sqlite(&mut tx, batch, rate).await?;
                tx.commit().await?;
                outcomes
            }
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let outcomes = append_postgres(&mut tx, batch, rate).await?;
                tx.commit().await?;
                outcomes
            }
        })
    }

    /// The log's head: the position of its newest change.
    pub async fn log_head(&self) -> Result<i64, StoreError> {
        Ok(super::on_engine!(self, |pool| {
            sqlx::query_scalar("SELECT position FROM log_head WHERE id = 1").fetch_one(pool).await
        })?)
    }

    /// Forgets batches committed before `older_than_ms` (unix milliseconds):
    /// no retry is that late.
    pub async fn prune_batches(&self, older_than_ms: i64) -> Result<(), StoreError> {
        super::on_engine!(self, |pool| {
            sqlx::query("DELETE FROM log_batches WHERE at < $1")
                .bind(older_than_ms)
                .execute(pool)
                .await
                .map(drop)
        })?;
        Ok(())
    }
}

/// What writing the log takes on each engine, so a change can be written
/// once for both: the head, locked until commit, with the time; which
/// `@name`s are users; telling the other nodes that the log grew.
pub(super) trait LogTx: Send {
    /// The head position, locked until the transaction ends (SQLite: the
    /// transaction began IMMEDIATE, so it holds the write lock already), and
    /// now in unix milliseconds (PostgreSQL: the database's clock, the same
    /// for every node).
    fn lock_head(&mut self) -> impl Future<Output = Result<(i64, i64), sqlx::Error>> + Send;
    /// The registered users among lowercase `candidates`, as registered.
    fn registered(
        &mut self,
        candidates: &[String],
    ) -> impl Future<Output = Result<Vec<String>, sqlx::Error>> + Send;
    /// Moves the head to `head` and, on a cluster, tells every node at commit.
    fn advance_head(&mut self, head: i64) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

impl LogTx for Transaction<'static, Sqlite> {
    async fn lock_head(&mut self) -> Result<(i64, i64), sqlx::Error> {
        let head =
            sqlx::query_scalar("SELECT position FROM log_head WHERE id = 1").fetch_one(&mut **self).await?;
        Ok((head, now_millis()))
    }

    async fn registered(&mut self, candidates: &[String]) -> Result<Vec<String>, sqlx::Error> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query_scalar(
            "SELECT username FROM users WHERE lower(username) IN (SELECT value FROM json_each($1))",
        )
        .bind(serde_json::to_string(candidates).unwrap_or_default())
        .fetch_all(&mut **self)
        .await
    }

    async fn advance_head(&mut self, head: i64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE log_head SET position = $1 WHERE id = 1")
            .bind(head)
            .execute(&mut **self)
            .await
            .map(drop)
    }
}

impl LogTx for Transaction<'static, Postgres> {
    async fn lock_head(&mut self) -> Result<(i64, i64), sqlx::Error> {
        sqlx::query_as(
            "SELECT position, (extract(epoch FROM now()) * 1000)::bigint FROM log_head WHERE id = 1 FOR UPDATE",
        )
        .fetch_one(&mut **self)
        .await
    }

    async fn registered(&mut self, candidates: &[String]) -> Result<Vec<String>, sqlx::Error> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query_scalar("SELECT username FROM users WHERE lower(username) = ANY($1)")
            .bind(candidates)
            .fetch_all(&mut **self)
            .await
    }

    async fn advance_head(&mut self, head: i64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE log_head SET position = $1 WHERE id = 1").bind(head).execute(&mut **self).await?;
        // One notification per change, delivered at commit; the new head is a
        // hint: readers always read by position.
        notify::send(&mut **self, Channel::Log, &head.to_string()).await
    }
}

/// A log transaction: on SQLite it takes the write lock at once (the head
/// is read, then written).
pub(super) trait BeginLog {
    type Tx: LogTx;
    fn begin_log(&self) -> impl std::future::Future<Output = Result<Self::Tx, sqlx::Error>> + Send;
}

impl BeginLog for sqlx::SqlitePool {
    type Tx = sqlx::Transaction<'static, Sqlite>;
    async fn begin_log(&self) -> Result<Self::Tx, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginLog for sqlx::PgPool {
    type Tx = sqlx::Transaction<'static, sqlx::Postgres>;
    async fn begin_log(&self) -> Result<Self::Tx, sqlx::Error> {
        self.begin().await
    }
}

const EARLIER_ATTEMPT: &str = "SELECT outcomes FROM log_batches WHERE id = $1";
const RECORD_BATCH: &str = "INSERT INTO log_batches (id, outcomes, at) VALUES ($1, $2, $3)";
/// Each room's newest message, kept on the room so a greeting in hundreds
/// of rooms looks for unread messages only where there are any; followed by
/// the list of rooms a batch wrote to.
const NEWEST_IN_ROOMS: &str =
    "UPDATE rooms SET last_id = (SELECT max(id) FROM messages WHERE room_id = rooms.id) WHERE id IN";
/// One user's chat allowance (messages, and edits: see `edits.rs`).
pub(super) const ALLOWANCE: &str = "SELECT tokens, updated_at FROM chat_allowance WHERE user_id = $1";
pub(super) const SAVE_ALLOWANCE: &str =
    "INSERT INTO chat_allowance (user_id, tokens, updated_at) VALUES ($1, $2, $3)
     ON CONFLICT (user_id) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at";

/// Every `@name` candidate of the accepted messages, once.
fn all_candidates(accepted: &[(i64, &NewMessage<'_>)]) -> Vec<String> {
    let mut all: Vec<String> = accepted.iter().flat_map(|(_, m)| mention_candidates(m.body)).collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// The registered names a text mentions, comma-separated, in order of first
/// mention (`registered` holds the candidates that exist, as registered).
pub(super) fn mentions(text: &str, registered: &[String]) -> String {
    mentioned(text, registered).join(",")
}

/// "41,42,r150,43": each message's position, or "r" and the wait for refused.
fn encode_outcomes(outcomes: &[Outcome]) -> String {
    let parts: Vec<String> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Appended(id) => id.to_string(),
            Outcome::RateLimited { retry_after_ms } => format!("r{retry_after_ms}"),
            Outcome::NotAMember => "n".to_owned(),
        })
        .collect();
    parts.join(",")
}

fn decode_outcomes(text: &str) -> Vec<Outcome> {
    text.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| match part.strip_prefix('r') {
            Some(wait) => Outcome::RateLimited { retry_after_ms: wait.parse().unwrap_or(0) },
            None if part == "n" => Outcome::NotAMember,
            None => part.parse().map_or(Outcome::RateLimited { retry_after_ms: 0 }, Outcome::Appended),
        })
        .collect()
}

async fn append_sqlite(
    tx: &mut Transaction<'static, Sqlite>,
    batch: &Batch<'_>,
    rate: Rate,
) -> Result<Vec<Outcome>, sqlx::Error> {
    // BEGIN IMMEDIATE took the write lock: nothing else writes until commit,
    // so an earlier attempt at this batch either committed before, or never.
    if batch.retried {
        let earlier: Option<String> =
            sqlx::query_scalar(EARLIER_ATTEMPT).bind(&batch.id).fetch_optional(&mut **tx).await?;
        if let Some(outcomes) = earlier {
            return Ok(decode_outcomes(&outcomes));
        }
    }
    let (head, now) = tx.lock_head().await?;
    let batch_id = &batch.id;
    let batch = &batch.messages;
    let mut allowances = HashMap::new();
    for message in batch {
        if let Entry::Vacant(slot) = allowances.entry(message.user_id) {
            let stored: Option<(f64, i64)> =
                sqlx::query_as(ALLOWANCE).bind(message.user_id).fetch_optional(&mut **tx).await?;
            slot.insert(stored.map(Allowance::from));
        }
    }
    let (rooms, users) = rooms_and_authors(batch);
    let members: HashSet<(i64, i64)> = if rooms.is_empty() {
        HashSet::new()
    } else {
        let json = |ids: &[i64]| serde_json::to_string(ids).unwrap_or_default();
        sqlx::query_as(
            "SELECT m.room_id, m.user_id FROM memberships m JOIN rooms r ON r.id = m.room_id
             WHERE r.archived_at IS NULL AND m.room_id IN (SELECT value FROM json_each($1))
               AND m.user_id IN (SELECT value FROM json_each($2))",
        )
        .bind(json(&rooms))
        .bind(json(&users))
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect()
    };
    let (outcomes, accepted, allowances) = decide(batch, head, now, rate, allowances, &members);
    let registered = tx.registered(&all_candidates(&accepted)).await?;
    for (id, message) in &accepted {
        sqlx::query(
            "INSERT INTO messages (id, room_id, user_id, body, sent_at, seq, mentions)
             VALUES ($1, $6, $2, $3, $4, $1, $5)",
        )
        .bind(id)
        .bind(message.user_id)
        .bind(message.body)
        .bind(now)
        .bind(mentions(message.body, &registered))
        .bind(message.room)
        .execute(&mut **tx)
        .await?;
    }
    if !accepted.is_empty() {
        let rooms: Vec<i64> = accepted.iter().map(|(_, m)| m.room).collect();
        sqlx::query(&format!("{NEWEST_IN_ROOMS} (SELECT value FROM json_each($1))"))
            .bind(serde_json::to_string(&rooms).unwrap_or_default())
            .execute(&mut **tx)
            .await?;
    }
    for (user_id, allowance) in allowances {
        sqlx::query(SAVE_ALLOWANCE)
            .bind(user_id)
            .bind(allowance.tokens)
            .bind(allowance.updated_ms)
            .execute(&mut **tx)
            .await?;
    }
    tx.advance_head(head + accepted.len() as i64).await?;
    sqlx::query(RECORD_BATCH)
        .bind(batch_id)
        .bind(encode_outcomes(&outcomes))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(outcomes)
}

async fn append_postgres(
    tx: &mut Transaction<'static, Postgres>,
    batch: &Batch<'_>,
    rate: Rate,
) -> Result<Vec<Outcome>, sqlx::Error> {
    // The row lock on log_head is held until commit: batches from every node
    // queue here, so they commit in position order (and an earlier attempt
    // at this batch either committed before we got the lock, or never will).
    // The database's clock stamps the batch, so times agree across nodes.
    let (head, now) = tx.lock_head().await?;
    if batch.retried {
        let earlier: Option<String> =
            sqlx::query_scalar(EARLIER_ATTEMPT).bind(&batch.id).fetch_optional(&mut **tx).await?;
        if let Some(outcomes) = earlier {
            return Ok(decode_outcomes(&outcomes));
        }
    }
    let batch_id = &batch.id;
    let batch = &batch.messages;
    let users: Vec<i64> = batch.iter().map(|m| m.user_id).collect();
    let stored: Vec<(i64, f64, i64)> =
        sqlx::query_as("SELECT user_id, tokens, updated_at FROM chat_allowance WHERE user_id = ANY($1)")
            .bind(&users)
            .fetch_all(&mut **tx)
            .await?;
    let mut allowances: HashMap<i64, Option<Allowance>> = users.iter().map(|u| (*u, None)).collect();
    for (user_id, tokens, updated_ms) in stored {
        allowances.insert(user_id, Some(Allowance::from((tokens, updated_ms))));
    }
    let asked: Vec<(i64, i64)> =
        batch.iter().filter(|m| m.room != LOBBY).map(|m| (m.room, m.user_id)).collect();
    let members: HashSet<(i64, i64)> = if asked.is_empty() {
        HashSet::new()
    } else {
        let (rooms, users): (Vec<i64>, Vec<i64>) = asked.into_iter().unzip();
        sqlx::query_as(
            "SELECT m.room_id, m.user_id FROM memberships m JOIN rooms r ON r.id = m.room_id
             WHERE r.archived_at IS NULL
               AND (m.room_id, m.user_id) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))",
        )
        .bind(&rooms)
        .bind(&users)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect()
    };
    let (outcomes, accepted, allowances) = decide(batch, head, now, rate, allowances, &members);
    if !accepted.is_empty() {
        let ids: Vec<i64> = accepted.iter().map(|(id, _)| *id).collect();
        let rooms: Vec<i64> = accepted.iter().map(|(_, m)| m.room).collect();
        let authors: Vec<i64> = accepted.iter().map(|(_, m)| m.user_id).collect();
        let bodies: Vec<&str> = accepted.iter().map(|(_, m)| m.body).collect();
        let registered = tx.registered(&all_candidates(&accepted)).await?;
        let named: Vec<String> = accepted.iter().map(|(_, m)| mentions(m.body, &registered)).collect();
        sqlx::query(
            "INSERT INTO messages (id, room_id, user_id, body, sent_at, seq, mentions)
             SELECT id, room_id, user_id, body, $4, id, mentions
             FROM unnest($1::bigint[], $6::bigint[], $2::bigint[], $3::text[], $5::text[])
               AS t (id, room_id, user_id, body, mentions)",
        )
        .bind(&ids)
        .bind(&authors)
        .bind(&bodies)
        .bind(now)
        .bind(&named)
        .bind(&rooms)
        .execute(&mut **tx)
        .await?;
        sqlx::query(&format!("{NEWEST_IN_ROOMS} (SELECT unnest($1::bigint[]))"))
            .bind(&rooms)
            .execute(&mut **tx)
            .await?;
    }
    let (users, tokens, updated): (Vec<i64>, Vec<f64>, Vec<i64>) =
        allowances.into_iter().map(|(u, a)| (u, a.tokens, a.updated_ms)).collect();
    sqlx::query(
        "INSERT INTO chat_allowance (user_id, tokens, updated_at)
         SELECT * FROM unnest($1::bigint[], $2::float8[], $3::bigint[])
         ON CONFLICT (user_id) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at",
    )
    .bind(&users)
    .bind(&tokens)
    .bind(&updated)
    .execute(&mut **tx)
    .await?;
    if !accepted.is_empty() {
        // One notification per batch, delivered at commit: a notifying commit
        // takes a cluster-wide lock, so never one per message.
        tx.advance_head(head + accepted.len() as i64).await?;
    }
    sqlx::query(RECORD_BATCH)
        .bind(batch_id)
        .bind(encode_outcomes(&outcomes))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(outcomes)
}

/// The rooms other than the lobby that a batch's messages go to, and their
/// authors, each once.
fn rooms_and_authors(batch: &[NewMessage<'_>]) -> (Vec<i64>, Vec<i64>) {
    let mut rooms: Vec<i64> = batch.iter().filter(|m| m.room != LOBBY).map(|m| m.room).collect();
    let mut users: Vec<i64> = batch.iter().filter(|m| m.room != LOBBY).map(|m| m.user_id).collect();
    for ids in [&mut rooms, &mut users] {
        ids.sort_unstable();
        ids.dedup();
    }
    (rooms, users)
}

/// Takes each message's token from its author's allowance, in batch order,
/// and numbers the accepted ones from `head + 1`; a message to a room other
/// than the lobby goes only if its author is in `members` (room, user).
/// Returns the outcomes, the accepted messages with their positions, and
/// the allowances to store.
#[allow(clippy::type_complexity)]
fn decide<'b, 'a>(
    batch: &'b [NewMessage<'a>],
    head: i64,
    now_ms: i64,
    rate: Rate,
    stored: HashMap<i64, Option<Allowance>>,
    members: &HashSet<(i64, i64)>,
) -> (Vec<Outcome>, Vec<(i64, &'b NewMessage<'a>)>, HashMap<i64, Allowance>) {
    let mut allowances: HashMap<i64, Allowance> = stored
        .into_iter()
        .map(|(user, allowance)| (user, allowance.unwrap_or_else(|| Allowance::full(rate, now_ms))))
        .collect();
    let mut next = head;
    let mut accepted = Vec::with_capacity(batch.len());
    let outcomes = batch
        .iter()
        .map(|message| {
            if message.room != LOBBY && !members.contains(&(message.room, message.user_id)) {
                return Outcome::NotAMember;
            }
            let allowance =
                allowances.entry(message.user_id).or_insert_with(|| Allowance::full(rate, now_ms));
            if allowance.try_take(rate, now_ms) {
                next += 1;
                accepted.push((next, message));
                Outcome::Appended(next)
            } else {
                Outcome::RateLimited { retry_after_ms: allowance.wait(rate, now_ms).as_millis() as i64 }
            }
        })
        .collect();
    (outcomes, accepted, allowances)
}

pub(crate) fn now_millis() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

pub(crate) fn from_millis(millis: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_round_trip() {
        let outcomes =
            vec![Outcome::Appended(41), Outcome::RateLimited { retry_after_ms: 150 }, Outcome::Appended(42)];
        assert_eq!(encode_outcomes(&outcomes), "41,r150,42");
        assert_eq!(decode_outcomes(&encode_outcomes(&outcomes)), outcomes);
        assert_eq!(decode_outcomes(""), vec![]);
    }
}
