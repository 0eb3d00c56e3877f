//! Changes to messages already in the log: edits and deletes. Each is a
//! change of the log like a new message: it takes the next position (under
//! the same lock as a batch, so all changes keep one order on every node),
//! and the message's `seq` moves there. A reader asking for `seq > last`
//! gets each message once, as it is now, in the order of its latest change.

use std::time::Duration;

use super::{
    Store, StoreError,
    log::{ALLOWANCE, BeginLog, LogTx, SAVE_ALLOWANCE},
    on_engine,
};
use crate::{
    domain::{Role, chat::mention_candidates},
    rate::{Allowance, Rate},
};

/// A change someone asked for.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// The author rewrites a message they sent less than `window` ago.
    Edit { id: i64, by: i64, text: &'a str, window: Duration },
    /// The author, or an admin, takes a message away.
    Delete { id: i64, by: i64 },
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("there is no such message")]
    NotFound,
    #[error("the change is not allowed")]
    Forbidden,
    #[error("the user's chat allowance is used up")]
    RateLimited(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ChangeError {
    fn from(e: sqlx::Error) -> Self {
        ChangeError::Store(StoreError(e))
    }
}

/// What is known of a message and of the person changing it.
struct Facts {
    author: i64,
    sent_at_ms: i64,
    deleted: bool,
    role: Role,
}

/// Message `m` is in the lobby or in a room (not archived) that user `$2`
/// is a member of. A message anywhere else is, to them, no message at all:
/// changing it is `NotFound`, exactly as for an id never used.
const IN_ONES_ROOMS: &str =
    "(m.room_id = 1 OR EXISTS (SELECT 1 FROM memberships s JOIN rooms r ON r.id = s.room_id
     WHERE s.room_id = m.room_id AND s.user_id = $2 AND r.archived_at IS NULL))";

/// May this change be made (`now_ms`: the log's clock)?
fn allowed(change: &Change<'_>, facts: &Facts, now_ms: i64) -> Result<(), ChangeError> {
    if facts.deleted {
        return Err(ChangeError::NotFound);
    }
    let ok = match *change {
        Change::Edit { by, window, .. } => {
            by == facts.author && now_ms - facts.sent_at_ms <= window.as_millis() as i64
        }
        Change::Delete { by, .. } => by == facts.author || facts.role == Role::Admin,
    };
    if ok { Ok(()) } else { Err(ChangeError::Forbidden) }
}

impl Store {
    /// Would the change be allowed now? A plain read that takes no lock, so
    /// refusing a change (all a member flooding others' messages can get)
    /// costs the writers nothing. [`Store::change`] checks again, under the
    /// log's lock.
    pub async fn check_change(&self, change: Change<'_>) -> Result<(), ChangeError> {
        let (id, by) = match change {
            Change::Edit { id, by, .. } | Change::Delete { id, by } => (id, by),
        };
        let facts = format!(
            "SELECT m.user_id, m.sent_at, m.deleted, u.role FROM messages m, users u
             WHERE m.id = $1 AND u.id = $2 AND {IN_ONES_ROOMS}"
        );
        type Row = (i64, i64, bool, String);
        let (row, now): (Option<Row>, i64) = match self {
            Store::Sqlite(pool) => {
                let row = sqlx::query_as(&facts).bind(id).bind(by).fetch_optional(pool).await?;
                (row, super::log::now_millis())
            }
            // The log's clock is the database's: the same for every node.
            Store::Postgres(pool) => {
                let now = sqlx::query_scalar("SELECT (extract(epoch FROM now()) * 1000)::bigint");
                (
                    sqlx::query_as(&facts).bind(id).bind(by).fetch_optional(pool).await?,
                    now.fetch_one(pool).await?,
                )
            }
        };
        let Some((author, sent_at_ms, deleted, role)) = row else { return Err(ChangeError::NotFound) };
        allowed(&change, &Facts { author, sent_at_ms, deleted, role: Role::stored(&role) }, now)
    }

    /// Makes the change, if allowed, at the next position; returns it. Edits,
    /// and deletes by the author, take a token from the author's chat
    /// allowance (an admin clearing messages is not held back).
    pub async fn change(&self, change: Change<'_>, rate: Rate) -> Result<i64, ChangeError> {
        let (id, by) = match change {
            Change::Edit { id, by, .. } | Change::Delete { id, by } => (id, by),
        };
        on_engine!(self, |pool| {
            let mut tx = pool.begin_log().await?;
            let (head, now) = tx.lock_head().await?;
            let message: Option<(i64, i64, bool)> = sqlx::query_as(&format!(
                "SELECT m.user_id, m.sent_at, m.deleted FROM messages m WHERE m.id = $1 AND {IN_ONES_ROOMS}"
            ))
            .bind(id)
            .bind(by)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((author, sent_at_ms, deleted)) = message else { return Err(ChangeError::NotFound) };
            let role: Option<String> = sqlx::query_scalar("SELECT role FROM users WHERE id = $1")
                .bind(by)
                .fetch_optional(&mut *tx)
                .await?;
            let role = role.as_deref().map_or(Role::Member, Role::stored);
            allowed(&change, &Facts { author, sent_at_ms, deleted, role }, now)?;
            if !(matches!(change, Change::Delete { .. }) && role == Role::Admin && by != author) {
                let stored: Option<(f64, i64)> =
                    sqlx::query_as(ALLOWANCE).bind(by).fetch_optional(&mut *tx).await?;
                let mut allowance = stored.map_or_else(|| Allowance::full(rate, now), Allowance::from);
                if !allowance.try_take(rate, now) {
                    return Err(ChangeError::RateLimited(allowance.wait(rate, now)));
                }
                sqlx::query(SAVE_ALLOWANCE)
                    .bind(by)
                    .bind(allowance.tokens)
                    .bind(allowance.updated_ms)
                    .execute(&mut *tx)
                    .await?;
            }
            let position = head + 1;
            match change {
                Change::Edit { text, .. } => {
                    let registered = tx.registered(&mention_candidates(text)).await?;
                    sqlx::query("UPDATE messages SET body = $1, mentions = $2, edited_at = $3, seq = $4 WHERE id = $5")
                        .bind(text)
                        .bind(super::log::mentions(text, &registered))
                        .bind(now)
                        .bind(position)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::Delete { .. } => {
                    sqlx::query(
                        "UPDATE messages SET body = '', mentions = '', deleted = $1, seq = $2 WHERE id = $3",
                    )
                    .bind(true)
                    .bind(position)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.advance_head(position).await?;
            tx.commit().await?;
            Ok(position)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn facts(author: i64, role: Role) -> Facts {
        Facts { author, sent_at_ms: 1_000_000, deleted: false, role }
    }

    #[test]
    fn the_author_edits_within_the_window_only() {
        let edit = |by| Change::Edit { id: 1, by, text: "x", window: 15 * MINUTE };
        let in_time = 1_000_000 + 14 * 60_000;
        let late = 1_000_000 + 16 * 60_000;
        assert!(allowed(&edit(7), &facts(7, Role::Member), in_time).is_ok());
        assert!(matches!(allowed(&edit(7), &facts(7, Role::Member), late), Err(ChangeError::Forbidden)));
        assert!(matches!(allowed(&edit(8), &facts(7, Role::Admin), in_time), Err(ChangeError::Forbidden)));
    }

    #[test]
    fn the_author_or_an_admin_deletes() {
        let delete = |by| Change::Delete { id: 1, by };
        assert!(allowed(&delete(7), &facts(7, Role::Member), 0).is_ok());
        assert!(allowed(&delete(8), &facts(7, Role::Admin), 0).is_ok());
        assert!(matches!(allowed(&delete(8), &facts(7, Role::Member), 0), Err(ChangeError::Forbidden)));
        let gone = Facts { deleted: true, ..facts(7, Role::Member) };
        assert!(matches!(allowed(&delete(7), &gone, 0), Err(ChangeError::NotFound)));
    }
}
