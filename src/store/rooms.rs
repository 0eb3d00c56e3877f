//! Rooms and memberships. Every change of membership (a room made with its
//! first members, a join, a leave or a removal), every rename and every
//! archive is an event of the chat log: it takes the next position under
//! the log's lock, in the transaction that makes it (`room_events`). Every
//! node's follower applies it in order with the messages, so no message
//! after a removal reaches the removed member on any node, and one after a
//! join reaches the new member everywhere.
//!
//! The lobby (room 1) has every account as a member without a row each; a
//! membership row for it only holds a user's level and read marker there.
//!
//! Who may see a room is answered here, once, for every read path that goes
//! through the database ([`Store::can_see`], and [`Store::room_for`] with
//! the same rule): the lobby and open rooms are visible to everyone, private
//! and direct rooms to their members only, archived rooms to nobody. To
//! anyone else a room is exactly like an id never used.

use std::collections::HashMap;

use super::{
    BeginExclusive, Store, StoreError,
    authority::{Actor, Authority},
    log::{BeginLog, LogTx},
    on_engine,
};
use crate::domain::{LOBBY, Level, RoomKind, RoomName, RoomView, Topic, Username};

/// What happened to a room, as an event of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomChange {
    /// The room was made, with this user among its first members.
    Created,
    Joined,
    /// Left, or removed.
    Left,
    /// Renamed, or its topic changed.
    Updated,
    Archived,
}

impl RoomChange {
    fn as_str(self) -> &'static str {
        match self {
            RoomChange::Created => "created",
            RoomChange::Joined => "joined",
            RoomChange::Left => "left",
            RoomChange::Updated => "updated",
            RoomChange::Archived => "archived",
        }
    }

    fn stored(text: &str) -> RoomChange {
        match text {
            "created" => RoomChange::Created,
            "joined" => RoomChange::Joined,
            "left" => RoomChange::Left,
            "archived" => RoomChange::Archived,
            _ => RoomChange::Updated,
        }
    }
}

/// A room as it is now, without anything of one user's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomFacts {
    pub id: i64,
    pub kind: RoomKind,
    pub name: Option<String>,
    pub topic: String,
    pub created_by: Option<i64>,
    pub members: i64,
    /// A direct room's members' names (empty for the others).
    pub people: Vec<String>,
    /// Its newest message (0: none).
    pub last_id: i64,
}

/// An event of a room, as read back from the log.
#[derive(Debug, Clone)]
pub struct RoomEvent {
    pub seq: i64,
    pub change: RoomChange,
    /// Who joined or left (id, name).
    pub user: Option<(i64, String)>,
    pub room: RoomFacts,
}

/// Why a change to a room was refused.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    /// No such room, or one this user may not see: the same answer.
    #[error("There is no such room.")]
    NotFound,
    #[error("Only the room's creator or an admin may do that.")]
    Forbidden,
    /// What the room's kind does not allow (the lobby, a direct room).
    #[error("{0}")]
    Refused(&'static str),
    #[error("A room with that name exists already. Choose another name.")]
    NameTaken,
    #[error("There is no user named {0}.")]
    UnknownUser(String),
    #[error("{0} is in as many rooms as anyone may be. Leave one first.")]
    TooManyRooms(String),
    /// Rooms made too fast; a new one may be made in this many seconds.
    #[error("You have made many rooms in the last minute. Try again in {0} seconds.")]
    TooFast(u64),
    #[error("Only admins may make rooms here.")]
    AdminsOnly,
    /// The asker's session ended while the request was on its way.
    #[error("Log in first.")]
    NotAllowed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for RoomError {
    fn from(e: sqlx::Error) -> Self {
        RoomError::Store(StoreError(e))
    }
}

/// The limits on rooms, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct RoomLimits {
    /// Rooms one user may be in, the lobby aside (`MAX_ROOMS_PER_USER`).
    pub max_rooms: i64,
    /// Only admins make open and private rooms (`ROOM_CREATION=admins`).
    pub admins_only: bool,
    /// Open and private rooms one user may make a minute.
    pub per_minute: i64,
}

const LOBBY_REFUSES: &str = "The lobby is everyone's: it cannot be left, renamed or archived.";
const DIRECT_REFUSES: &str = "A direct conversation has no name, and nobody joins, leaves or is added to it.";

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A room's name index, as each engine names it when a name is taken.
const NAME: super::Unique = super::Unique { index: "rooms_name_key", sqlite_column: None };

/// One user's view of rooms: `$1` the user, `$2` their name among a
/// message's mentions (see [`mentioning`]), `$3` how far unread counts go.
/// The lobby's members are every account.
const VIEW: &str = "
WITH mine AS (SELECT room_id, level, last_read FROM memberships WHERE user_id = $1),
     listed AS (SELECT 1 AS id
                UNION SELECT room_id FROM mine
                UNION SELECT id FROM rooms WHERE kind = 'open' AND archived_at IS NULL)
SELECT r.id, r.kind, r.name, r.topic, r.created_by, r.members,
       (r.id = 1 OR m.room_id IS NOT NULL) AS member,
       m.level AS level,
       coalesce(m.last_read, 0) AS last_read,
       r.last_id,
       CASE WHEN (r.id = 1 OR m.room_id IS NOT NULL) AND r.last_id > coalesce(m.last_read, 0) THEN
           (SELECT count(*) FROM (SELECT 1 FROM messages x
               WHERE x.room_id = r.id AND x.id > coalesce(m.last_read, 0) AND x.user_id <> $1 AND NOT x.deleted
               LIMIT $3) AS u)
       ELSE 0 END AS unread,
       CASE WHEN (r.id = 1 OR m.room_id IS NOT NULL) AND r.last_id > coalesce(m.last_read, 0) THEN
           (SELECT count(*) FROM (SELECT 1 FROM messages x
               WHERE x.room_id = r.id AND x.id > coalesce(m.last_read, 0) AND x.user_id <> $1 AND NOT x.deleted
                 AND (',' || x.mentions || ',') LIKE $2 ESCAPE '\\'
               LIMIT $3) AS n)
       ELSE 0 END AS mentioned
FROM listed l JOIN rooms r ON r.id = l.id LEFT JOIN mine m ON m.room_id = r.id
WHERE r.archived_at IS NULL";

/// The `LIKE` pattern that finds `username` in a message's mentions (its
/// names, comma-separated): a `_` in a name is a wildcard to `LIKE`, so it
/// is escaped, or `b_b` would count the mentions of `bob`.
fn mentioning(username: &str) -> String {
    format!("%,{},%", username.replace('_', "\\_"))
}

/// Unread messages are counted up to this many per room (a page shows
/// "99+" past it): a greeting in hundreds of rooms reads short index
/// ranges, never whole rooms.
pub const UNREAD_CAP: i64 = 100;

#[derive(sqlx::FromRow)]
struct ViewRow {
    id: i64,
    kind: String,
    name: Option<String>,
    topic: String,
    created_by: Option<i64>,
    members: i64,
    member: bool,
    level: Option<String>,
    last_read: i64,
    last_id: i64,
    unread: i64,
    mentioned: i64,
}

impl ViewRow {
    fn view(self, people: Option<Vec<String>>) -> RoomView {
        let kind = RoomKind::stored(&self.kind);
        RoomView {
            id: self.id,
            kind,
            name: self.name,
            topic: self.topic,
            people,
            members: self.members,
            member: self.member,
            level: self.level.and_then(|l| l.parse().ok()).unwrap_or_else(|| kind.default_level(self.id)),
            last_id: self.last_id,
            last_read: self.last_read,
            unread: self.unread,
            mentions: self.mentioned,
            created_by: self.created_by,
        }
    }
}

/// Inserts a room event at position `$seq` in transaction `$tx`.
macro_rules! room_event {
    ($tx:ident, $seq:expr, $room:expr, $change:expr, $user:expr, $at:expr) => {
        sqlx::query("INSERT INTO room_events (seq, room_id, kind, user_id, at) VALUES ($1, $2, $3, $4, $5)")
            .bind($seq)
            .bind($room)
            .bind($change.as_str())
            .bind($user)
            .bind($at)
            .execute(&mut *$tx)
            .await?
    };
}

/// What is known of a room inside a change's transaction.
#[derive(sqlx::FromRow)]
struct RoomRow {
    kind: String,
    created_by: Option<i64>,
    archived_at: Option<i64>,
}

const ROOM_ROW: &str = "SELECT kind, created_by, archived_at FROM rooms WHERE id = $1";
const IS_MEMBER: &str = "SELECT EXISTS (SELECT 1 FROM memberships WHERE room_id = $1 AND user_id = $2)";
const ROOMS_OF: &str = "SELECT count(*) FROM memberships m JOIN rooms r ON r.id = m.room_id
                        WHERE m.user_id = $1 AND m.room_id <> 1 AND r.archived_at IS NULL";
const IS_ADMIN: &str =
    "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND role = 'admin' AND banned_at IS NULL)";
/// The newest message of a room: where a new member's marker starts.
const NEWEST: &str = "SELECT last_id FROM rooms WHERE id = $1";

impl Store {
    /// Every room `user` is a member of (the lobby first), then every open
    /// room they are not in, as they see them; with the log's position they
    /// reflect (read together, in one snapshot).
    pub async fn rooms_for(&self, user: i64, username: &str) -> Result<(i64, Vec<RoomView>), StoreError> {
        let sql =
            format!("{VIEW} ORDER BY (r.id <> 1), (m.room_id IS NULL), lower(coalesce(r.name, '')), r.id");
        // One snapshot throughout: SQLite's read transactions always are;
        // PostgreSQL's need repeatable read.
        let snapshot = match self {
            Store::Sqlite(_) => "SELECT 1",
            Store::Postgres(_) => "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        };
        let pattern = mentioning(username);
        let (head, rows, people) = on_engine!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(snapshot).execute(&mut *tx).await?;
            let head: i64 =
                sqlx::query_scalar("SELECT position FROM log_head WHERE id = 1").fetch_one(&mut *tx).await?;
            let rows: Vec<ViewRow> =
                sqlx::query_as(&sql).bind(user).bind(&pattern).bind(UNREAD_CAP).fetch_all(&mut *tx).await?;
            let people: Vec<(i64, String)> = sqlx::query_as(
                "SELECT m2.room_id, u.username FROM memberships m1
                 JOIN rooms r ON r.id = m1.room_id AND r.kind = 'direct'
                 JOIN memberships m2 ON m2.room_id = m1.room_id AND m2.user_id <> m1.user_id
                 JOIN users u ON u.id = m2.user_id
                 WHERE m1.user_id = $1 ORDER BY lower(u.username)",
            )
            .bind(user)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>((head, rows, people))
        })?;
        let mut by_room: HashMap<i64, Vec<String>> = HashMap::new();
        for (room, name) in people {
            by_room.entry(room).or_default().push(name);
        }
        let rooms = rows
            .into_iter()
            .map(|row| {
                let people = (row.kind == "direct").then(|| by_room.remove(&row.id).unwrap_or_default());
                row.view(people)
            })
            .collect();
        Ok((head, rooms))
    }

    /// May `user` see `room` now? The one question every read path asks.
    pub async fn can_see(&self, user: i64, room: i64) -> Result<bool, StoreError> {
        const SEE: &str = "SELECT EXISTS (SELECT 1 FROM rooms r WHERE r.id = $1 AND r.archived_at IS NULL
             AND (r.id = 1 OR r.kind = 'open'
                  OR EXISTS (SELECT 1 FROM memberships m WHERE m.room_id = r.id AND m.user_id = $2)))";
        Ok(on_engine!(self, |pool| sqlx::query_scalar(SEE).bind(room).bind(user).fetch_one(pool).await)?)
    }

    /// Is `user` a member of `room` now? The lobby has everyone; an archived
    /// room nobody. What is only for members (a room's files) asks this: it
    /// is [`Store::can_see`] without the open rooms' visitors.
    pub async fn is_member(&self, user: i64, room: i64) -> Result<bool, StoreError> {
        const MEMBER: &str = "SELECT EXISTS (SELECT 1 FROM rooms r WHERE r.id = $1 AND r.archived_at IS NULL
             AND (r.id = 1 OR EXISTS (SELECT 1 FROM memberships m WHERE m.room_id = r.id AND m.user_id = $2)))";
        Ok(on_engine!(self, |pool| sqlx::query_scalar(MEMBER).bind(room).bind(user).fetch_one(pool).await)?)
    }

    /// Room `room` as `user` sees it; `None` if they may not see it (no
    /// such room, a private or direct room they are not in, an archived one).
    pub async fn room_for(
        &self,
        user: i64,
        username: &str,
        room: i64,
    ) -> Result<Option<RoomView>, StoreError> {
        let sql = format!("{VIEW} AND r.id = $4");
        let (row, people) = on_engine!(self, |pool| {
            let row: Option<ViewRow> = sqlx::query_as(&sql)
                .bind(user)
                .bind(mentioning(username))
                .bind(UNREAD_CAP)
                .bind(room)
                .fetch_optional(pool)
                .await?;
            let people: Vec<String> = match &row {
                Some(row) if row.kind == "direct" => {
                    sqlx::query_scalar(
                        "SELECT u.username FROM memberships m JOIN users u ON u.id = m.user_id
                         WHERE m.room_id = $1 AND m.user_id <> $2 ORDER BY lower(u.username)",
                    )
                    .bind(room)
                    .bind(user)
                    .fetch_all(pool)
                    .await?
                }
                _ => Vec::new(),
            };
            Ok::<_, sqlx::Error>((row, people))
        })?;
        Ok(row.map(|row| {
            let people = (row.kind == "direct").then_some(people);
            row.view(people)
        }))
    }

    /// The room a message is in (`None`: no such message).
    pub async fn room_of_message(&self, id: i64) -> Result<Option<i64>, StoreError> {
        Ok(on_engine!(self, |pool| {
            sqlx::query_scalar("SELECT room_id FROM messages WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// The members of a room `user` may see, by name, sorted without regard to case.
    pub async fn room_members(&self, user: i64, room: i64) -> Result<Vec<String>, RoomError> {
        if !self.can_see(user, room).await? {
            return Err(RoomError::NotFound);
        }
        let sql = if room == LOBBY {
            "SELECT username FROM users WHERE banned_at IS NULL ORDER BY lower(username)"
        } else {
            "SELECT u.username FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.room_id = $1 ORDER BY lower(u.username)"
        };
        Ok(on_engine!(self, |pool| sqlx::query_scalar(sql).bind(room).fetch_all(pool).await)?)
    }

    /// Makes an open or private room; its creator is a member, and so are
    /// `people` (a private room's). Returns its id.
    pub async fn create_room(
        &self,
        by: Actor,
        kind: RoomKind,
        name: &RoomName,
        topic: &Topic,
        people: &[Username],
        limits: RoomLimits,
    ) -> Result<i64, RoomError> {
        let Actor::User { user: creator, .. } = by else { return Err(RoomError::NotAllowed) };
        let now = now_secs();
        on_engine!(self, |pool| {
            let mut tx = pool.begin_log().await?;
            tx.acting(by).await?;
            let admin: bool = sqlx::query_scalar(IS_ADMIN).bind(creator).fetch_one(&mut *tx).await?;
            if limits.admins_only && !admin {
                return Err(RoomError::AdminsOnly);
            }
            let recent: Vec<i64> = sqlx::query_scalar(
                "SELECT created_at FROM rooms WHERE created_by = $1 AND kind <> 'direct' AND created_at > $2
                 ORDER BY created_at",
            )
            .bind(creator)
            .bind(now - 60)
            .fetch_all(&mut *tx)
            .await?;
            if recent.len() as i64 >= limits.per_minute {
                let oldest = recent.first().copied().unwrap_or(now);
                return Err(RoomError::TooFast((oldest + 60 - now).max(1) as u64));
            }
            let mut members = vec![(creator, String::new())];
            if kind == RoomKind::Private {
                for name in people {
                    let found: Option<i64> = sqlx::query_scalar(
                        "SELECT id FROM users WHERE lower(username) = lower($1) AND banned_at IS NULL",
                    )
                    .bind(name.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(id) = found else { return Err(RoomError::UnknownUser(name.to_string())) };
                    if !members.iter().any(|(m, _)| *m == id) {
                        members.push((id, name.to_string()));
                    }
                }
            }
            for (member, name) in &members {
                let rooms: i64 = sqlx::query_scalar(ROOMS_OF).bind(member).fetch_one(&mut *tx).await?;
                if rooms >= limits.max_rooms {
                    let who = if *member == creator { "You are".to_owned() } else { name.clone() };
                    return Err(RoomError::TooManyRooms(who));
                }
            }
            let (head, now_ms) = tx.lock_head().await?;
            let created: Result<i64, sqlx::Error> = sqlx::query_scalar(
                "INSERT INTO rooms (kind, name, topic, created_by, created_at, members)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(kind.as_str())
            .bind(name.as_str())
            .bind(topic.as_str())
            .bind(creator)
            .bind(now)
            .bind(members.len() as i64)
            .fetch_one(&mut *tx)
            .await;
            let room = match created {
                Err(e) if super::violates(&e, &NAME) => return Err(RoomError::NameTaken),
                other => other?,
            };
            let mut seq = head;
            for (member, _) in &members {
                seq += 1;
                sqlx::query(
                    "INSERT INTO memberships (room_id, user_id, level, last_read, joined_at) VALUES ($1, $2, $3, 0, $4)",
                )
                .bind(room)
                .bind(member)
                .bind(kind.default_level(room).as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                room_event!(tx, seq, room, RoomChange::Created, Some(*member), now_ms);
            }
            tx.advance_head(seq).await?;
            tx.commit().await?;
            Ok(room)
        })
    }

    /// The direct room of `by` and `people` (1 to 7 others): the one they
    /// have, or a new one. Returns its id and whether it was made now.
    pub async fn direct_room(
        &self,
        by: Actor,
        people: &[Username],
        limits: RoomLimits,
    ) -> Result<(i64, bool), RoomError> {
        let Actor::User { user: asker, .. } = by else { return Err(RoomError::NotAllowed) };
        let now = now_secs();
        let made = on_engine!(self, |pool| {
            let mut tx = pool.begin_log().await?;
            tx.acting(by).await?;
            let mut members = vec![(asker, String::new())];
            for name in people {
                let found: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM users WHERE lower(username) = lower($1) AND banned_at IS NULL",
                )
                .bind(name.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                let Some(id) = found else { return Err(RoomError::UnknownUser(name.to_string())) };
                if !members.iter().any(|(m, _)| *m == id) {
                    members.push((id, name.to_string()));
                }
            }
            let mut ids: Vec<i64> = members.iter().map(|(id, _)| *id).collect();
            ids.sort_unstable();
            let key = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            let existing: Option<i64> =
                sqlx::query_scalar("SELECT id FROM rooms WHERE direct_key = $1 AND kind = 'direct'")
                    .bind(&key)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(room) = existing {
                return Ok((room, false));
            }
            for (member, name) in &members {
                let rooms: i64 = sqlx::query_scalar(ROOMS_OF).bind(member).fetch_one(&mut *tx).await?;
                if rooms >= limits.max_rooms {
                    let who = if *member == asker { "You are".to_owned() } else { name.clone() };
                    return Err(RoomError::TooManyRooms(who));
                }
            }
            let (head, now_ms) = tx.lock_head().await?;
            let room: i64 = sqlx::query_scalar(
                "INSERT INTO rooms (kind, name, topic, direct_key, created_by, created_at, members)
                 VALUES ('direct', NULL, '', $1, $2, $3, $4) RETURNING id",
            )
            .bind(&key)
            .bind(asker)
            .bind(now)
            .bind(members.len() as i64)
            .fetch_one(&mut *tx)
            .await?;
            let mut seq = head;
            for (member, _) in &members {
                seq += 1;
                sqlx::query(
                    "INSERT INTO memberships (room_id, user_id, level, last_read, joined_at) VALUES ($1, $2, 'all', 0, $3)",
                )
                .bind(room)
                .bind(member)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                room_event!(tx, seq, room, RoomChange::Created, Some(*member), now_ms);
            }
            tx.advance_head(seq).await?;
            tx.commit().await?;
            Ok((room, true))
        });
        match made {
            // Made at the same moment by another request: it is theirs too.
            Err(RoomError::Store(StoreError(e))) if is_unique(&e) => {
                let key_room = self.direct_room(by, people, limits);
                Box::pin(key_room).await
            }
            other => other,
        }
    }

    /// `by` joins an open room. Joining starts their marker at its newest
    /// message. The lobby, or a room they are in: nothing to do.
    pub async fn join_room(&self, by: Actor, room: i64, limits: RoomLimits) -> Result<(), RoomError> {
        let Actor::User { user, .. } = by else { return Err(RoomError::NotAllowed) };
        if room == LOBBY {
            return Ok(());
        }
        on_engine!(self, |pool| {
            let mut tx = pool.begin_log().await?;
            tx.acting(by).await?;
            let found: Option<RoomRow> = sqlx::query_as(ROOM_ROW).bind(room).fetch_optional(&mut *tx).await?;
            let Some(found) = found.filter(|r| r.archived_at.is_none()) else {
                return Err(RoomError::NotFound);
            };
            let member: bool =
                sqlx::query_scalar(IS_MEMBER).bind(room).bind(user).fetch_one(&mut *tx).await?;
            if member {
                return Ok(());
            }
            if found.kind != "open" {
                return Err(RoomError::NotFound);
            }
            let rooms: i64 = sqlx::query_scalar(ROOMS_OF).bind(user).fetch_one(&mut *tx).await?;
            if rooms >= limits.max_rooms {
                return Err(RoomError::TooManyRooms("You are".to_owned()));
            }
            tx.add_member(room, user, RoomKind::Open).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// `by` adds `target` to a private room they are a member of.
    pub async fn add_member(
        &self,
        by: Actor,
        room: i64,
        target: &Username,
        limits: RoomLimits,
    ) -> Result<(), RoomError> {
        let Actor::User { user, .. } = by else { return Err(RoomError::NotAllowed) };
        on_engine!(self, |pool| {
            let mut tx = pool.begin_log().await?;
            tx.acting(by).await?;
            let found = tx.visible(room, user).await?;
            if room == LOBBY || found.kind != "private" {
                return Err(RoomError::Refused(
                    "People are added to private rooms only; anyone joins an open room.",
                ));
            }
            if !sqlx::query_scalar::<_, bool>(IS_MEMBER).bind(room).bind(user).fetch_one(&mut *tx).await? {
                return Err(RoomError::NotFound);
            }
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM users WHERE lower(username) = lower($1) AND banned_at IS NULL",
            )
            .bind(target.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(target_id) = found else { return Err(RoomError::UnknownUser(target.to_string())) };
            if sqlx::query_scalar::<_, bool>(IS_MEMBER).bind(room).bind(target_id).fetch_one(&mut *tx).await?
            {
                return Ok(());
            }
            let rooms: i64 = sqlx::query_scalar(ROOMS_OF).bind(target_id).fetch_one(&mut *tx).await?;
            if rooms >= limits.max_rooms {
                return Err(RoomError::TooManyRooms(target.to_string()));
            }
            tx.add_member(room, target_id, RoomKind::Private).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// `target` stops being a member: by leaving (`by` is them), or removed
    /// by the room's creator or an admin. Not the lobby, not a direct room.
    pub async fn remove_member(&self, by: Actor, room: i64, target: i64) -> Result<(), RoomError> {
        let Actor::User { user, .. } = by else { return Err(RoomError::NotAllowed) };
        on_engine!(self, |pool| {
            let mut tx = pool.begin_log().await?;
            tx.acting(by).await?;
            let found = tx.visible(room, user).await?;
            if room == LOBBY {
                return Err(RoomError::Refused(LOBBY_REFUSES));
            }
            if found.kind == "direct" {
                return Err(RoomError::Refused(DIRECT_REFUSES));
            }
            if target != user {
                let admin: bool = sqlx::query_scalar(IS_ADMIN).bind(user).fetch_one(&mut *tx).await?;
                if found.created_by != Some(user) && !admin {
                    return Err(RoomError::Forbidden);
                }
            }
            let gone = sqlx::query("DELETE FROM memberships WHERE room_id = $1 AND user_id = $2")
                .bind(room)
                .bind(target)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if gone == 0 {
                // Leaving an open room one is not in changes nothing.
                return if target == user { Ok(()) } else { Err(RoomError::NotFound) };
            }
            sqlx::query("UPDATE rooms SET members = members - 1 WHERE id = $1")
                .bind(room)
                .execute(&mut *tx)
                .await?;
            tx.append_event(room, RoomChange::Left, Some(target)).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Renames a room or changes its topic: its creator or an admin.
    pub async fn update_room(
        &self,
        by: Actor,
        room: i64,
        name: Option<&RoomName>,
        topic: Option<&Topic>,
    ) -> Result<(), RoomError> {
        let Actor::User { user, .. } = by else { return Err(RoomError::NotAllowed) };
        on_engine!(self, |pool| {
            let mut tx = pool.begin_log().await?;
            tx.acting(by).await?;
            let found = tx.visible(room, user).await?;
            if name.is_some() && room == LOBBY {
                return Err(RoomError::Refused(LOBBY_REFUSES));
            }
            if found.kind == "direct" {
                return Err(RoomError::Refused(DIRECT_REFUSES));
            }
            let admin: bool = sqlx::query_scalar(IS_ADMIN).bind(user).fetch_one(&mut *tx).await?;
            if found.created_by != Some(user) && !admin {
                return Err(RoomError::Forbidden);
            }
            if let Some(name) = name {
                let renamed = sqlx::query("UPDATE rooms SET name = $1 WHERE id = $2")
                    .bind(name.as_str())
                    .bind(room)
                    .execute(&mut *tx)
                    .await;
                match renamed {
                    Err(e) if super::violates(&e, &NAME) => return Err(RoomError::NameTaken),
                    other => other?,
                };
            }
            if let Some(topic) = topic {
                sqlx::query("UPDATE rooms SET topic = $1 WHERE id = $2")
                    .bind(topic.as_str())
                    .bind(room)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.append_event(room, RoomChange::Updated, None).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Archives a room: its creator or an admin. It disappears from every
    /// list and every member's tabs; its messages stay.
    pub async fn archive_room(&self, by: Actor, room: i64) -> Result<(), RoomError> {
        let Actor::User { user, .. } = by else { return Err(RoomError::NotAllowed) };
        on_engine!(self, |pool| {
            let mut tx = pool.begin_log().await?;
            tx.acting(by).await?;
            let admin: bool = sqlx::query_scalar(IS_ADMIN).bind(user).fetch_one(&mut *tx).await?;
            // Admins archive any room they can name on /admin, seen or not.
            let found = if admin { tx.existing(room).await? } else { tx.visible(room, user).await? };
            if room == LOBBY {
                return Err(RoomError::Refused(LOBBY_REFUSES));
            }
            if found.kind == "direct" {
                return Err(RoomError::Refused("A direct conversation cannot be archived."));
            }
            if found.created_by != Some(user) && !admin {
                return Err(RoomError::Forbidden);
            }
            sqlx::query("UPDATE rooms SET archived_at = $1 WHERE id = $2")
                .bind(now_secs())
                .bind(room)
                .execute(&mut *tx)
                .await?;
            tx.append_event(room, RoomChange::Archived, None).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Sets `by`'s notification level in a room they are a member of.
    pub async fn set_level(&self, by: Actor, room: i64, level: Level) -> Result<(), RoomError> {
        let Actor::User { user, .. } = by else { return Err(RoomError::NotAllowed) };
        on_engine!(self, |pool| {
            let mut tx = pool.begin_exclusive().await?;
            tx.acting(by).await?;
            let changed = if room == LOBBY {
                sqlx::query(
                    "INSERT INTO memberships (room_id, user_id, level, last_read, joined_at) VALUES (1, $1, $2, 0, 0)
                     ON CONFLICT (room_id, user_id) DO UPDATE SET level = excluded.level",
                )
                .bind(user)
                .bind(level.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected()
            } else {
                sqlx::query(
                    "UPDATE memberships SET level = $1 WHERE room_id = $2 AND user_id = $3
                       AND room_id IN (SELECT id FROM rooms WHERE archived_at IS NULL)",
                )
                .bind(level.as_str())
                .bind(room)
                .bind(user)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            };
            if changed == 0 {
                return Err(RoomError::NotFound);
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Every room that is not archived, for the admin page: id, name (or
    /// the direct room's people), kind and members.
    pub async fn all_rooms(&self) -> Result<Vec<(i64, String, RoomKind, i64)>, StoreError> {
        let rows: Vec<(i64, Option<String>, String, i64)> = on_engine!(self, |pool| {
            sqlx::query_as(
                "SELECT r.id, r.name, r.kind, r.members
                 FROM rooms r WHERE r.archived_at IS NULL AND r.kind <> 'direct' ORDER BY r.id",
            )
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, name, kind, n)| (id, name.unwrap_or_default(), RoomKind::stored(&kind), n))
            .collect())
    }

    /// The rooms' events after `position`, at most `limit`, with each room
    /// as it is now.
    pub(super) async fn room_events_after(
        &self,
        position: i64,
        limit: usize,
    ) -> Result<Vec<RoomEvent>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            seq: i64,
            room_id: i64,
            kind: String,
            user_id: Option<i64>,
            username: Option<String>,
            room_kind: String,
            name: Option<String>,
            topic: String,
            created_by: Option<i64>,
            members: i64,
            last_id: i64,
        }
        const EVENTS: &str = "
            SELECT e.seq, e.room_id, e.kind, e.user_id, u.username,
                   r.kind AS room_kind, r.name, r.topic, r.created_by,
                   r.members, r.last_id
            FROM room_events e JOIN rooms r ON r.id = e.room_id LEFT JOIN users u ON u.id = e.user_id
            WHERE e.seq > $1 ORDER BY e.seq LIMIT $2";
        let (rows, people): (Vec<Row>, Vec<(i64, String)>) = on_engine!(self, |pool| {
            let rows: Vec<Row> =
                sqlx::query_as(EVENTS).bind(position).bind(limit as i64).fetch_all(pool).await?;
            // A direct room's members, for the rooms among these (rare).
            let mut people = Vec::new();
            let mut direct: Vec<i64> =
                rows.iter().filter(|r| r.room_kind == "direct").map(|r| r.room_id).collect();
            direct.dedup();
            for room in direct {
                let names: Vec<String> = sqlx::query_scalar(
                    "SELECT u.username FROM memberships m JOIN users u ON u.id = m.user_id
                     WHERE m.room_id = $1 ORDER BY lower(u.username)",
                )
                .bind(room)
                .fetch_all(pool)
                .await?;
                people.extend(names.into_iter().map(|n| (room, n)));
            }
            Ok::<_, sqlx::Error>((rows, people))
        })?;
        Ok(rows
            .into_iter()
            .map(|row| RoomEvent {
                seq: row.seq,
                change: RoomChange::stored(&row.kind),
                user: row.user_id.zip(row.username),
                room: RoomFacts {
                    id: row.room_id,
                    kind: RoomKind::stored(&row.room_kind),
                    name: row.name,
                    topic: row.topic,
                    created_by: row.created_by,
                    members: row.members,
                    people: people
                        .iter()
                        .filter(|(r, _)| *r == row.room_id)
                        .map(|(_, n)| n.clone())
                        .collect(),
                    last_id: row.last_id,
                },
            })
            .collect())
    }
}

/// A change on behalf of `by` goes on only while their session is live
/// (checked in the change's own transaction).
trait Acting: Authority {
    fn acting(&mut self, by: Actor) -> impl Future<Output = Result<(), RoomError>> + Send {
        async move { if self.still_logged_in(by).await? { Ok(()) } else { Err(RoomError::NotAllowed) } }
    }
}

impl<T: Authority> Acting for T {}

fn is_unique(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// The few queries shared by the changes above, on either engine.
trait LogQueries: Send {
    /// A room that is not archived, or `NotFound`.
    fn existing(&mut self, room: i64) -> impl Future<Output = Result<RoomRow, RoomError>> + Send;
    /// A room as `user` may see it, or `NotFound`.
    fn visible(&mut self, room: i64, user: i64) -> impl Future<Output = Result<RoomRow, RoomError>> + Send;
    /// Appends one room's event at the head of the log.
    fn append_event(
        &mut self,
        room: i64,
        change: RoomChange,
        user: Option<i64>,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Adds `user` to `room` with the level its kind calls for and the
    /// marker at its newest message, as a `joined` event of the log.
    fn add_member(
        &mut self,
        room: i64,
        user: i64,
        kind: RoomKind,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

macro_rules! log_queries {
    ($db:ty) => {
        impl LogQueries for sqlx::Transaction<'static, $db> {
            async fn existing(&mut self, room: i64) -> Result<RoomRow, RoomError> {
                let found: Option<RoomRow> = sqlx::query_as(ROOM_ROW).bind(room).fetch_optional(&mut **self).await?;
                found.filter(|r| r.archived_at.is_none()).ok_or(RoomError::NotFound)
            }

            async fn visible(&mut self, room: i64, user: i64) -> Result<RoomRow, RoomError> {
                let found = self.existing(room).await?;
                if found.kind == "open" || room == LOBBY {
                    return Ok(found);
                }
                let member: bool = sqlx::query_scalar(IS_MEMBER).bind(room).bind(user).fetch_one(&mut **self).await?;
                if member { Ok(found) } else { Err(RoomError::NotFound) }
            }

            async fn add_member(&mut self, room: i64, user: i64, kind: RoomKind) -> Result<(), sqlx::Error> {
                let newest: i64 = sqlx::query_scalar(NEWEST).bind(room).fetch_one(&mut **self).await?;
                sqlx::query(
                    "INSERT INTO memberships (room_id, user_id, level, last_read, joined_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(room)
                .bind(user)
                .bind(kind.default_level(room).as_str())
                .bind(newest)
                .bind(now_secs())
                .execute(&mut **self)
                .await?;
                sqlx::query("UPDATE rooms SET members = members + 1 WHERE id = $1").bind(room).execute(&mut **self).await?;
                self.append_event(room, RoomChange::Joined, Some(user)).await
            }

            async fn append_event(&mut self, room: i64, change: RoomChange, user: Option<i64>) -> Result<(), sqlx::Error> {
                let (head, now_ms) = self.lock_head().await?;
                sqlx::query("INSERT INTO room_events (seq, room_id, kind, user_id, at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(head + 1)
                    .bind(room)
                    .bind(change.as_str())
                    .bind(user)
                    .bind(now_ms)
                    .execute(&mut **self)
                    .await?;
                self.advance_head(head + 1).await
            }
        }
    };
}
log_queries!(sqlx::Sqlite);
log_queries!(sqlx::Postgres);
