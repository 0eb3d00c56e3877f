//! Web Push's tables: the VAPID key pair, subscriptions, and the queue.
//!
//! A push goes through three steps, each a short transaction, each taken by
//! exactly one node of a cluster however many try at once:
//!
//! 1. [`Store::plan_pushes`]: whoever holds `push_cursor`'s row lock reads
//!    the messages after it and, for each member who wants a push for one
//!    (`domain::push::wants_push`) and has a subscription, counts it in
//!    `push_rooms` (user, room): coalescing happens there.
//! 2. [`Store::take_pushes`]: rows of `push_rooms` that are due are locked
//!    (`FOR UPDATE SKIP LOCKED`: two nodes never take the same row), and each
//!    becomes one delivery per live subscription of its user (or nothing, if
//!    the user has a socket open), and is not due again for the window.
//! 3. [`Store::claim_deliveries`]: deliveries due are leased (`FOR UPDATE
//!    SKIP LOCKED` again) to the node that sends them; the outcome deletes
//!    the delivery, its subscription (404, 410), or sets its next attempt.
//!
//! SQLite has one server: its transactions take the write lock at BEGIN,
//! which is all the exclusion it needs.

use std::collections::HashMap;

use time::OffsetDateTime;

use super::{
    Store, StoreError,
    authority::{Actor, Authority},
    log::BeginLog,
    on_engine,
};
use crate::domain::{
    LOBBY, Level, RoomKind,
    push::{Notice, SubscriptionKeys, direct_name, wants_push},
};

/// Why a subscription was not changed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The asker's session ended while the request was on its way.
    #[error("Log in first.")]
    NotAllowed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for PushError {
    fn from(e: sqlx::Error) -> Self {
        PushError::Store(StoreError(e))
    }
}

/// What one planning step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planned {
    /// Another node is planning right now: look again in a moment.
    Busy,
    /// Looked at `messages` new messages (and counted `pushes` of them for
    /// someone); `more` when the read was full and more may follow.
    Done { messages: usize, pushes: usize, more: bool },
}

/// A user's room with pushes waiting that are due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Due {
    pub user_id: i64,
    pub room_id: i64,
}

/// One push to one subscription, leased to this node for sending.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    pub subscription_id: i64,
    pub room_id: i64,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    /// The notice as JSON, not yet encrypted.
    pub payload: String,
    /// Attempts before this one.
    pub attempts: i64,
    /// Unix milliseconds after which it is given up.
    pub expires_at: i64,
}

/// A new message, as planning reads it.
#[derive(sqlx::FromRow)]
struct NewMessage {
    id: i64,
    room_id: i64,
    user_id: i64,
    mentions: String,
    deleted: bool,
    kind: String,
    archived_at: Option<i64>,
}

/// A member of a room with a subscription, and their level there (none:
/// the lobby without a row of theirs).
#[derive(sqlx::FromRow)]
struct Candidate {
    user_id: i64,
    username: String,
    level: Option<String>,
}

/// A room's members who have a subscription (and are not banned).
const ROOM_CANDIDATES: &str = "SELECT m.user_id, u.username, m.level FROM memberships m
     JOIN users u ON u.id = m.user_id
     WHERE m.room_id = $1 AND m.level <> 'nothing' AND u.banned_at IS NULL
       AND EXISTS (SELECT 1 FROM push_subscriptions s WHERE s.user_id = m.user_id)";
/// The lobby's: every account is a member, with a row only for its level.
const LOBBY_CANDIDATES: &str = "SELECT u.id AS user_id, u.username, m.level FROM users u
     LEFT JOIN memberships m ON m.room_id = 1 AND m.user_id = u.id
     WHERE u.banned_at IS NULL AND u.id IN (SELECT user_id FROM push_subscriptions)";

/// What a due row becomes, read in the transaction that takes it.
#[derive(sqlx::FromRow)]
struct Waiting {
    user_id: i64,
    room_id: i64,
    pending: i64,
    message_id: i64,
}

/// The notice for a due row (a `Waiting`) in transaction `$tx`, if it is
/// still to be pushed: the user is still a member (never a member removed
/// since), not at `nothing`, and the newest message is there to show. A
/// macro, as the statements run on either engine's transaction.
macro_rules! notice_for {
    ($tx:ident, $row:expr) => {{
        let row: &Waiting = $row;
        let found: Option<(String, bool, String, String, Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT m.body, m.deleted, u.username, r.kind, r.name, r.archived_at
             FROM messages m JOIN users u ON u.id = m.user_id JOIN rooms r ON r.id = m.room_id
             WHERE m.id = $1 AND m.room_id = $2",
        )
        .bind(row.message_id)
        .bind(row.room_id)
        .fetch_optional(&mut *$tx)
        .await?;
        match found {
            Some((body, false, author, kind, name, None)) => {
                let kind = RoomKind::stored(&kind);
                let membership: Option<String> =
                    sqlx::query_scalar("SELECT level FROM memberships WHERE room_id = $1 AND user_id = $2")
                        .bind(row.room_id)
                        .bind(row.user_id)
                        .fetch_optional(&mut *$tx)
                        .await?;
                let level = match membership {
                    Some(level) => level.parse().unwrap_or(kind.default_level(row.room_id)),
                    None if row.room_id == LOBBY => kind.default_level(LOBBY),
                    None => Level::Nothing,
                };
                if level == Level::Nothing {
                    None
                } else {
                    let room_name = if kind == RoomKind::Direct {
                        let others: Vec<String> = sqlx::query_scalar(
                            "SELECT u.username FROM memberships m JOIN users u ON u.id = m.user_id
                             WHERE m.room_id = $1 AND m.user_id <> $2 ORDER BY lower(u.username)",
                        )
                        .bind(row.room_id)
                        .bind(row.user_id)
                        .fetch_all(&mut *$tx)
                        .await?;
                        direct_name(&others)
                    } else {
                        name.unwrap_or_default()
                    };
                    Some(Notice::new(row.room_id, room_name, author, &body, row.pending))
                }
            }
            // Deleted, in an archived room, or gone.
            _ => None,
        }
    }};
}

impl Store {
    /// The VAPID key pair (private, public; base64url). The first call ever
    /// stores `made`; every later one, on any node, gets that pair back.
    pub async fn push_keys(&self, made: (String, String)) -> Result<(String, String), StoreError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        Ok(on_engine!(self, |pool| {
            sqlx::query(
                "INSERT INTO push_keys (id, private_key, public_key, created_at) VALUES (1, $1, $2, $3)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&made.0)
            .bind(&made.1)
            .bind(now)
            .execute(pool)
            .await?;
            sqlx::query_as("SELECT private_key, public_key FROM push_keys WHERE id = 1").fetch_one(pool).await
        })?)
    }

    /// Keeps a subscription for `by`'s session, checked live in the same
    /// transaction. An endpoint subscribed before (by any session) moves to
    /// this one, its pending pushes dropped; the same again changes nothing.
    pub async fn subscribe_push(
        &self,
        by: Actor,
        endpoint: &str,
        keys: &SubscriptionKeys,
    ) -> Result<(), PushError> {
        let Actor::User { user, session } = by else { return Err(PushError::NotAllowed) };
        let now = OffsetDateTime::now_utc().unix_timestamp();
        on_engine!(self, |pool| {
            let mut tx = pool.begin_log().await?;
            if !tx.still_logged_in(by).await? {
                return Err(PushError::NotAllowed);
            }
            sqlx::query(
                "DELETE FROM push_subscriptions WHERE endpoint = $1
                 AND NOT (session_id = $2 AND p256dh = $3 AND auth = $4)",
            )
            .bind(endpoint)
            .bind(session.to_string())
            .bind(keys.p256dh())
            .bind(keys.auth())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO push_subscriptions (endpoint, p256dh, auth, user_id, session_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (endpoint) DO NOTHING",
            )
            .bind(endpoint)
            .bind(keys.p256dh())
            .bind(keys.auth())
            .bind(user)
            .bind(session.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<(), PushError>(())
        })
    }

    /// Deletes one of `by`'s subscriptions (none: nothing to do).
    pub async fn unsubscribe_push(&self, by: Actor, endpoint: &str) -> Result<(), PushError> {
        let Actor::User { user, .. } = by else { return Err(PushError::NotAllowed) };
        on_engine!(self, |pool| {
            let mut tx = pool.begin_log().await?;
            if !tx.still_logged_in(by).await? {
                return Err(PushError::NotAllowed);
            }
            sqlx::query("DELETE FROM push_subscriptions WHERE endpoint = $1 AND user_id = $2")
                .bind(endpoint)
                .bind(user)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<(), PushError>(())
        })
    }

    /// How many subscriptions `user` has (for tests and the page's state).
    pub async fn push_subscriptions_of(&self, user: i64) -> Result<i64, StoreError> {
        Ok(on_engine!(self, |pool| {
            sqlx::query_scalar("SELECT count(*) FROM push_subscriptions WHERE user_id = $1")
                .bind(user)
                .fetch_one(pool)
                .await
        })?)
    }

    /// Step 1: the messages after the cursor (at most `limit`), counted for
    /// the members they are pushed to; the cursor moves past them. One
    /// transaction, under the cursor's lock; [`Planned::Busy`] when another
    /// node holds it.
    #[tracing::instrument(skip_all)]
    pub async fn plan_pushes(&self, limit: usize) -> Result<Planned, StoreError> {
        let lock = self.skip_locked();
        let cursor_sql = format!("SELECT position FROM push_cursor WHERE id = 1{lock}");
        Ok(on_engine!(self, |pool| {
            let mut tx = pool.begin_log().await?;
            let Some(cursor): Option<i64> = sqlx::query_scalar(&cursor_sql).fetch_optional(&mut *tx).await?
            else {
                return Ok(Planned::Busy);
            };
            let messages: Vec<NewMessage> = sqlx::query_as(
                "SELECT m.id, m.room_id, m.user_id, m.mentions, m.deleted, r.kind, r.archived_at
                 FROM messages m JOIN rooms r ON r.id = m.room_id
                 WHERE m.id > $1 ORDER BY m.id LIMIT $2",
            )
            .bind(cursor)
            .bind(limit as i64)
            .fetch_all(&mut *tx)
            .await?;
            let Some(last) = messages.last().map(|m| m.id) else {
                return Ok(Planned::Done { messages: 0, pushes: 0, more: false });
            };
            // Who wants what: (user, room) → (messages, the newest).
            let mut candidates: HashMap<i64, Vec<Candidate>> = HashMap::new();
            let mut counted: HashMap<(i64, i64), (i64, i64)> = HashMap::new();
            for message in messages.iter().filter(|m| !m.deleted && m.archived_at.is_none()) {
                let room = message.room_id;
                if let std::collections::hash_map::Entry::Vacant(slot) = candidates.entry(room) {
                    let sql = if room == LOBBY { LOBBY_CANDIDATES } else { ROOM_CANDIDATES };
                    slot.insert(sqlx::query_as(sql).bind(room).fetch_all(&mut *tx).await?);
                }
                let kind = RoomKind::stored(&message.kind);
                for candidate in &candidates[&room] {
                    if candidate.user_id == message.user_id {
                        continue;
                    }
                    let level: Level = match candidate.level.as_deref().map(str::parse) {
                        Some(Ok(level)) => level,
                        _ => kind.default_level(room),
                    };
                    let mentioned = message
                        .mentions
                        .split(',')
                        .any(|name| name.eq_ignore_ascii_case(&candidate.username));
                    if wants_push(kind, level, mentioned) {
                        let entry = counted.entry((candidate.user_id, room)).or_insert((0, 0));
                        *entry = (entry.0 + 1, message.id);
                    }
                }
            }
            for ((user, room), (count, newest)) in &counted {
                sqlx::query(
                    "INSERT INTO push_rooms (user_id, room_id, pending, message_id, due_at) VALUES ($1, $2, $3, $4, 0)
                     ON CONFLICT (user_id, room_id)
                     DO UPDATE SET pending = push_rooms.pending + excluded.pending, message_id = excluded.message_id",
                )
                .bind(user)
                .bind(room)
                .bind(count)
                .bind(newest)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("UPDATE push_cursor SET position = $1 WHERE id = 1")
                .bind(last)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<Planned, sqlx::Error>(Planned::Done {
                messages: messages.len(),
                pushes: counted.len(),
                more: messages.len() == limit,
            })
        })?)
    }

    /// The users' rooms whose pushes are due at `now` (unix ms), oldest
    /// first: whose presence to ask before [`Store::take_pushes`].
    pub async fn due_pushes(&self, now: i64, limit: usize) -> Result<Vec<Due>, StoreError> {
        Ok(on_engine!(self, |pool| {
            sqlx::query_as(
                "SELECT user_id, room_id FROM push_rooms WHERE pending > 0 AND due_at <= $1
                 ORDER BY due_at LIMIT $2",
            )
            .bind(now)
            .bind(limit as i64)
            .fetch_all(pool)
            .await
        })?)
    }

    /// Step 2: takes the due rows of the users in `online` (whether each has
    /// a socket open anywhere, as asked just before): a user with a socket
    /// open sees the messages there, and their waiting pushes are dropped;
    /// for the others, one delivery of the notice per live subscription,
    /// given up `retry_for` after now, and the room is not due again for
    /// `window`. Rows of users not asked about are left for the next round.
    /// Returns how many deliveries were queued.
    #[tracing::instrument(skip_all)]
    pub async fn take_pushes(
        &self,
        now: i64,
        limit: usize,
        online: &HashMap<i64, bool>,
        window: std::time::Duration,
        retry_for: std::time::Duration,
    ) -> Result<usize, StoreError> {
        let lock = self.skip_locked();
        let due_sql = format!(
            "SELECT user_id, room_id, pending, message_id FROM push_rooms
             WHERE pending > 0 AND due_at <= $1 ORDER BY due_at LIMIT $2{lock}"
        );
        let live_sql = format!(
            "SELECT s.id FROM push_subscriptions s JOIN {} t ON t.id = s.session_id
             WHERE s.user_id = $1 AND t.expiry_date > $2",
            self.session_table()
        );
        let next_due = now + window.as_millis() as i64;
        let expires = now + retry_for.as_millis() as i64;
        Ok(on_engine!(self, |pool| {
            let mut tx = pool.begin_log().await?;
            let rows: Vec<Waiting> =
                sqlx::query_as(&due_sql).bind(now).bind(limit as i64).fetch_all(&mut *tx).await?;
            let mut queued = 0;
            for row in rows {
                let Some(&has_socket) = online.get(&row.user_id) else { continue };
                let notice = if has_socket { None } else { notice_for!(tx, &row) };
                let subscriptions: Vec<i64> = match &notice {
                    Some(_) => {
                        sqlx::query_scalar(&live_sql)
                            .bind(row.user_id)
                            .bind(OffsetDateTime::now_utc())
                            .fetch_all(&mut *tx)
                            .await?
                    }
                    None => Vec::new(),
                };
                let pushed = notice.is_some() && !subscriptions.is_empty();
                sqlx::query(
                    "UPDATE push_rooms SET pending = 0, due_at = CASE WHEN $3 THEN $4 ELSE due_at END
                     WHERE user_id = $1 AND room_id = $2",
                )
                .bind(row.user_id)
                .bind(row.room_id)
                .bind(pushed)
                .bind(next_due)
                .execute(&mut *tx)
                .await?;
                let Some(notice) = notice else { continue };
                let payload = notice.to_json();
                for subscription in subscriptions {
                    sqlx::query(
                        "INSERT INTO push_deliveries (subscription_id, room_id, payload, next_at, expires_at)
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(subscription)
                    .bind(row.room_id)
                    .bind(&payload)
                    .bind(now)
                    .bind(expires)
                    .execute(&mut *tx)
                    .await?;
                    queued += 1;
                }
            }
            tx.commit().await?;
            Ok::<usize, sqlx::Error>(queued)
        })?)
    }

    /// Step 3: leases up to `limit` deliveries due at `now` to this node
    /// until `lease_until` (a node that dies while sending leaves them to be
    /// taken again after it). Deliveries past their time are given up.
    #[tracing::instrument(skip_all)]
    pub async fn claim_deliveries(
        &self,
        now: i64,
        limit: usize,
        lease_until: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let lock = match self {
            Store::Sqlite(_) => "",
            Store::Postgres(_) => " FOR UPDATE OF d SKIP LOCKED",
        };
        let sql = format!(
            "SELECT d.id, d.subscription_id, d.room_id, s.endpoint, s.p256dh, s.auth, d.payload, d.attempts,
                    d.expires_at
             FROM push_deliveries d JOIN push_subscriptions s ON s.id = d.subscription_id
             WHERE d.next_at <= $1 AND d.lease_until <= $1 AND d.expires_at > $1
             ORDER BY d.next_at LIMIT $2{lock}"
        );
        Ok(on_engine!(self, |pool| {
            let mut tx = pool.begin_log().await?;
            let claimed: Vec<Delivery> =
                sqlx::query_as(&sql).bind(now).bind(limit as i64).fetch_all(&mut *tx).await?;
            for delivery in &claimed {
                sqlx::query(
                    "UPDATE push_deliveries SET lease_until = $2, attempts = attempts + 1 WHERE id = $1",
                )
                .bind(delivery.id)
                .bind(lease_until)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<Vec<Delivery>, sqlx::Error>(claimed)
        })?)
    }

    /// A delivery is done with: sent, or given up.
    pub async fn delivery_done(&self, id: i64) -> Result<(), StoreError> {
        on_engine!(self, |pool| {
            sqlx::query("DELETE FROM push_deliveries WHERE id = $1").bind(id).execute(pool).await.map(drop)
        })?;
        Ok(())
    }

    /// A delivery failed: tried again at `next_at` (unix ms).
    pub async fn delivery_later(&self, id: i64, next_at: i64) -> Result<(), StoreError> {
        on_engine!(self, |pool| {
            sqlx::query("UPDATE push_deliveries SET next_at = $2, lease_until = 0 WHERE id = $1")
                .bind(id)
                .bind(next_at)
                .execute(pool)
                .await
                .map(drop)
        })?;
        Ok(())
    }

    /// The push service says the subscription is gone (404, 410): deleted,
    /// with whatever was still to be sent to it.
    pub async fn subscription_gone(&self, id: i64) -> Result<(), StoreError> {
        on_engine!(self, |pool| {
            sqlx::query("DELETE FROM push_subscriptions WHERE id = $1").bind(id).execute(pool).await.map(drop)
        })?;
        Ok(())
    }

    /// Forgets deliveries given up while nobody was sending (a server down
    /// past their time).
    pub async fn forget_expired_deliveries(&self, now: i64) -> Result<(), StoreError> {
        on_engine!(self, |pool| {
            sqlx::query("DELETE FROM push_deliveries WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await
                .map(drop)
        })?;
        Ok(())
    }

    /// PostgreSQL's clause for taking rows no other node holds (SQLite's
    /// transaction holds the write lock already).
    fn skip_locked(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "",
            Store::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        }
    }
}
