//! Reading the chat log: what followers read by position, what a node
//! starts from, and scrollback (`before`, `around`), room by room.

use super::{Store, StoreError, log::from_millis, on_engine, rooms::RoomEvent};
use crate::domain::{LOBBY, Message};

/// One change of the log as read back: a message (as it is now), or an
/// event of a room (a membership, a rename, an archive).
#[derive(Debug, Clone)]
pub enum LogChange {
    Message(LogEntry),
    Room(RoomEvent),
}

impl LogChange {
    /// Its position in the log.
    pub fn seq(&self) -> i64 {
        match self {
            LogChange::Message(entry) => entry.seq,
            LogChange::Room(event) => event.seq,
        }
    }
}

/// One change of the log, as read back: a message as it is now, at the
/// position of its latest change (its creation, an edit or its deletion).
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub seq: i64,
    pub message: Message,
    /// Deleted: only the id counts (the text is gone).
    pub deleted: bool,
}

#[derive(sqlx::FromRow)]
pub(super) struct Row {
    id: i64,
    room_id: i64,
    seq: i64,
    username: String,
    body: String,
    sent_at: i64,
    mentions: String,
    edited_at: Option<i64>,
    deleted: bool,
}

impl From<Row> for Message {
    fn from(row: Row) -> Self {
        Message {
            id: row.id,
            room: row.room_id,
            username: row.username,
            body: row.body,
            sent_at: from_millis(row.sent_at),
            mentions: row.mentions.split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect(),
            edited_at: row.edited_at.map(from_millis),
        }
    }
}

impl From<Row> for LogEntry {
    fn from(row: Row) -> Self {
        let (seq, deleted) = (row.seq, row.deleted);
        LogEntry { seq, message: Message::from(row), deleted }
    }
}

/// A message's columns, from `messages m` and `users u`.
macro_rules! columns {
    () => {
        "m.id, m.room_id, m.seq, u.username, m.body, m.sent_at, m.mentions, m.edited_at, m.deleted"
    };
}
pub(super) const COLUMNS: &str = columns!();
pub(super) const ENTRY: &str =
    concat!("SELECT ", columns!(), " FROM messages m JOIN users u ON u.id = m.user_id");

/// A page of older messages (scrollback).
#[derive(Debug)]
pub struct Page {
    /// Oldest first.
    pub messages: Vec<Message>,
    /// Whether there are older ones still.
    pub more: bool,
}

impl Store {
    /// Up to `limit` messages of `room` with ids below `before` (none: the
    /// newest), oldest first; whether older ones exist. Walks the
    /// (room, id) index backwards.
    pub async fn messages_before(
        &self,
        room: i64,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let sql = format!(
            "{ENTRY} WHERE m.room_id = $1 AND m.id < $2 AND NOT m.deleted ORDER BY m.id DESC LIMIT $3"
        );
        let rows: Vec<Row> = on_engine!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(room)
                .bind(before.unwrap_or(i64::MAX))
                .bind(limit as i64 + 1)
                .fetch_all(pool)
                .await
        })?;
        let more = rows.len() > limit;
        let messages = rows.into_iter().take(limit).rev().map(Message::from).collect();
        Ok(Page { messages, more })
    }

    /// Message `around` of `room` with up to `limit / 2` on each side (more
    /// on one side when the other has fewer), oldest first; whether older
    /// ones exist. `None` when the room has no such message (or it was deleted).
    pub async fn messages_around(
        &self,
        room: i64,
        around: i64,
        limit: usize,
    ) -> Result<Option<Page>, StoreError> {
        let older = format!(
            "{ENTRY} WHERE m.room_id = $1 AND m.id <= $2 AND NOT m.deleted ORDER BY m.id DESC LIMIT $3"
        );
        let newer =
            format!("{ENTRY} WHERE m.room_id = $1 AND m.id > $2 AND NOT m.deleted ORDER BY m.id LIMIT $3");
        let (older, newer): (Vec<Row>, Vec<Row>) = on_engine!(self, |pool| {
            let older =
                sqlx::query_as(&older).bind(room).bind(around).bind(limit as i64 + 1).fetch_all(pool).await?;
            let newer =
                sqlx::query_as(&newer).bind(room).bind(around).bind(limit as i64).fetch_all(pool).await?;
            Ok::<_, sqlx::Error>((older, newer))
        })?;
        if older.first().is_none_or(|m| m.id != around) {
            return Ok(None);
        }
        // Half each side; what one side lacks, the other may use.
        let after = newer.len().min(limit.saturating_sub(1) / 2).max(limit.saturating_sub(older.len()));
        let after = after.min(newer.len());
        let before = (limit - after).min(older.len());
        let more = older.len() > before;
        let mut messages: Vec<Message> = older.into_iter().take(before).rev().map(Message::from).collect();
        messages.extend(newer.into_iter().take(after).map(Message::from));
        Ok(Some(Page { messages, more }))
    }

    /// The changes after `position`, in log order, at most `limit`:
    /// messages as they are now (at their latest change) and rooms' events,
    /// which share the log's positions.
    pub async fn log_after(&self, position: i64, limit: usize) -> Result<Vec<LogChange>, StoreError> {
        let sql = format!("{ENTRY} WHERE m.seq > $1 ORDER BY m.seq LIMIT $2");
        let rows: Vec<Row> = on_engine!(self, |pool| {
            sqlx::query_as(&sql).bind(position).bind(limit as i64).fetch_all(pool).await
        })?;
        let events = self.room_events_after(position, limit).await?;
        // Each read stops at its own limit: beyond the lower of the two
        // ends, one of them may be missing changes, so the merge stops there.
        let end = [(&rows.len(), rows.last().map(|r| r.seq)), (&events.len(), events.last().map(|e| e.seq))]
            .into_iter()
            .filter(|(n, _)| **n == limit)
            .filter_map(|(_, last)| last)
            .min()
            .unwrap_or(i64::MAX);
        let mut changes: Vec<LogChange> = rows
            .into_iter()
            .map(|row| LogChange::Message(LogEntry::from(row)))
            .chain(events.into_iter().map(LogChange::Room))
            .filter(|change| change.seq() <= end)
            .collect();
        changes.sort_by_key(LogChange::seq);
        Ok(changes)
    }

    /// What a node starts from: the log's head; the newest `changes` changes
    /// of messages up to it, in log order, every room's (deleted messages
    /// included); and the lobby's newest `messages` messages up to it, oldest
    /// first (deleted ones left out). Anything changed after the head is read
    /// later by position.
    pub async fn log_start(&self, changes: usize, messages: usize) -> Result<LogStart, StoreError> {
        let by_seq = format!("{ENTRY} WHERE m.seq <= $1 ORDER BY m.seq DESC LIMIT $2");
        let by_id = format!(
            "{ENTRY} WHERE m.seq <= $1 AND m.room_id = {LOBBY} AND NOT m.deleted ORDER BY m.id DESC LIMIT $2"
        );
        let (head, changed, newest): (i64, Vec<Row>, Vec<Row>) = on_engine!(self, |pool| {
            let head =
                sqlx::query_scalar("SELECT position FROM log_head WHERE id = 1").fetch_one(pool).await?;
            let changed = sqlx::query_as(&by_seq).bind(head).bind(changes as i64).fetch_all(pool).await?;
            let newest = sqlx::query_as(&by_id).bind(head).bind(messages as i64).fetch_all(pool).await?;
            Ok::<_, sqlx::Error>((head, changed, newest))
        })?;
        Ok(LogStart {
            head,
            changes: changed.into_iter().rev().map(LogEntry::from).collect(),
            newest: newest.into_iter().rev().map(LogEntry::from).collect(),
        })
    }
}

/// Where the log stands as a node starts (see [`Store::log_start`]).
#[derive(Debug)]
pub struct LogStart {
    pub head: i64,
    /// In log order.
    pub changes: Vec<LogEntry>,
    /// Oldest first.
    pub newest: Vec<LogEntry>,
}
