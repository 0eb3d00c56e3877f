//! The recent chat, in memory: every connect gets its history from here
//! without a query, and a socket that fell behind is caught up from here.
//!
//! Two views of the same changes:
//!
//! - **changes**: each recent message's latest change (its creation, an
//!   edit or its deletion), in log order, every room's, the newest `KEEP`.
//!   `?since=` and catching up read these, keeping only the rooms the
//!   socket's user is in: a client that upserts by id is then up to date.
//! - **newest**: the lobby's newest messages by id, as they are now, deleted
//!   ones left out: a plain connect's last 50. Deletions can shrink it below
//!   50; the follower then tops it up from the database
//!   ([`History::wants_older`]).

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{RwLock, RwLockReadGuard, RwLockWriteGuard},
};

use tungstenite::Utf8Bytes;

use crate::{
    domain::{LOBBY, Message},
    realtime::wire::frames::{
        chat_message_frame, deleted_frame, deleted_item, edited_frame, history_frame, message_item,
    },
    store::{LogEntry, LogStart},
};

/// How many changes are kept (every room's).
pub const KEEP: usize = 2000;
/// How many changes `?since=` returns at most.
pub const SINCE: usize = 500;
/// How many messages a plain connect gets.
pub const DEFAULT_HISTORY: usize = 50;
/// How many of the newest messages are kept for it (room for deletions).
pub const NEWEST: usize = 2 * DEFAULT_HISTORY;

/// One message's latest change.
struct Change {
    seq: i64,
    id: i64,
    room: i64,
    /// As a history item: the message now, or `{"id","deleted":true}`.
    item: Utf8Bytes,
    /// As the live stream sent it.
    frame: Utf8Bytes,
}

#[derive(Default)]
struct State {
    changes: VecDeque<Change>,
    /// Every change after this position is in `changes` (as the latest of
    /// its message); before it, some may not be.
    floor: i64,
    /// The position of the newest change published.
    head: i64,
    /// Message id → its history item.
    newest: BTreeMap<i64, Utf8Bytes>,
    /// Older messages than those in `newest` may exist.
    older_exist: bool,
    /// The plain history frame, built once per change.
    plain: Option<Utf8Bytes>,
    /// The room of each message in `changes` (a `read` names only the id).
    rooms: HashMap<i64, i64>,
}

pub struct History {
    /// Many readers (every connect), one writer (the follower), short holds.
    state: RwLock<State>,
}

/// A history frame and the position it reaches (live changes after it follow).
pub struct Snapshot {
    pub frame: Utf8Bytes,
    pub last_id: i64,
}

impl History {
    /// The history as a node starts, from the newest of the log.
    pub fn from_log(tail: LogStart) -> Self {
        let full = tail.changes.len() >= KEEP;
        let mut state = State {
            floor: if full { tail.changes.first().map_or(0, |c| c.seq - 1) } else { 0 },
            head: tail.head,
            older_exist: tail.newest.len() >= NEWEST,
            ..State::default()
        };
        for entry in &tail.changes {
            let item = item_of(entry);
            let frame = if entry.deleted {
                deleted_frame(entry.seq, entry.message.id, entry.message.room)
            } else {
                chat_message_frame(&item)
            };
            let (id, room) = (entry.message.id, entry.message.room);
            state.rooms.insert(id, room);
            state.changes.push_back(Change { seq: entry.seq, id, room, item, frame });
        }
        for entry in &tail.newest {
            state.newest.insert(entry.message.id, item_of(entry));
        }
        Self { state: RwLock::new(state) }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The position of the newest change published (0: none).
    pub fn newest(&self) -> i64 {
        self.read().head
    }

    /// The room of a recent message (`None`: not a recent one).
    pub fn room_of(&self, id: i64) -> Option<i64> {
        self.read().rooms.get(&id).copied()
    }

    /// Takes in a change read from the log (in log order); returns the
    /// frame to publish. A message the stream never announced here (created
    /// and edited before this node read it) goes out as a `chat message`.
    pub fn apply(&self, entry: &LogEntry) -> Utf8Bytes {
        let mut state = self.write();
        let (id, room) = (entry.message.id, entry.message.room);
        let item = item_of(entry);
        let frame = if entry.deleted {
            deleted_frame(entry.seq, id, room)
        } else if entry.message.edited_at.is_some() && id <= state.head {
            edited_frame(entry.seq, &entry.message)
        } else {
            chat_message_frame(&item)
        };
        if let Some(at) = state.changes.iter().rposition(|c| c.id == id) {
            state.changes.remove(at);
        }
        state.rooms.insert(id, room);
        state.changes.push_back(Change {
            seq: entry.seq,
            id,
            room,
            item: item.clone(),
            frame: frame.clone(),
        });
        while state.changes.len() > KEEP {
            if let Some(oldest) = state.changes.pop_front() {
                state.floor = oldest.seq;
                state.rooms.remove(&oldest.id);
            }
        }
        state.head = state.head.max(entry.seq);
        if room != LOBBY {
            return frame;
        }
        if entry.deleted {
            state.newest.remove(&id);
        } else {
            let below_window =
                state.older_exist && state.newest.first_key_value().is_some_and(|(oldest, _)| id < *oldest);
            if !below_window {
                state.newest.insert(id, item);
            }
            while state.newest.len() > NEWEST {
                state.newest.pop_first();
                state.older_exist = true;
            }
        }
        state.plain = None;
        frame
    }

    /// After deletions: the messages before which to fetch how many more,
    /// if the plain history is short of them and older ones exist.
    pub fn wants_older(&self) -> Option<(Option<i64>, usize)> {
        let state = self.read();
        (state.older_exist && state.newest.len() < DEFAULT_HISTORY)
            .then(|| (state.newest.first_key_value().map(|(id, _)| *id), NEWEST - state.newest.len()))
    }

    /// Older messages from the database (oldest first); `more`: still older exist.
    pub fn add_older(&self, older: &[Message], more: bool) {
        let mut state = self.write();
        for message in older {
            state.newest.entry(message.id).or_insert_with(|| message_item(message));
        }
        state.older_exist = more;
        state.plain = None;
    }

    /// The `chat history` frame: the lobby's newest 50 messages as they are
    /// now, or with `since` every change after it in the rooms `visible`
    /// accepts (at most the newest 500), so the history always ends where
    /// the live stream begins and nothing falls between.
    pub fn snapshot(&self, since: Option<i64>, visible: impl Fn(i64) -> bool) -> Snapshot {
        let state = self.read();
        let last_id = state.head;
        let Some(since) = since else {
            if let Some(frame) = &state.plain {
                return Snapshot { frame: frame.clone(), last_id };
            }
            drop(state);
            let mut state = self.write();
            let skip = state.newest.len().saturating_sub(DEFAULT_HISTORY);
            let frame = history_frame(state.newest.values().skip(skip).map(|item| item.as_str()));
            state.plain = Some(frame.clone());
            return Snapshot { frame, last_id: state.head };
        };
        let start = state.changes.partition_point(|c| c.seq <= since);
        let seen: Vec<&Change> = state.changes.iter().skip(start).filter(|c| visible(c.room)).collect();
        let newest = &seen[seen.len().saturating_sub(SINCE)..];
        let frame = history_frame(newest.iter().map(|c| c.item.as_str()));
        Snapshot { frame, last_id }
    }

    /// The frames after `position` in the rooms `visible` accepts, for a
    /// socket that fell behind; `None` when some of them are no longer kept
    /// (the socket must reconnect).
    pub fn after(&self, position: i64, visible: impl Fn(i64) -> bool) -> Option<Vec<(i64, Utf8Bytes)>> {
        let state = self.read();
        if position < state.floor {
            return None;
        }
        let start = state.changes.partition_point(|c| c.seq <= position);
        Some(
            state
                .changes
                .iter()
                .skip(start)
                .filter(|c| visible(c.room))
                .map(|c| (c.seq, c.frame.clone()))
                .collect(),
        )
    }
}

fn item_of(entry: &LogEntry) -> Utf8Bytes {
    if entry.deleted {
        deleted_item(entry.message.id, entry.message.room)
    } else {
        message_item(&entry.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, seq: i64, text: &str, edited: bool, deleted: bool) -> LogEntry {
        let message = Message {
            id,
            room: LOBBY,
            username: "u".into(),
            body: text.into(),
            sent_at: time::OffsetDateTime::UNIX_EPOCH,
            mentions: vec![],
            edited_at: edited.then_some(time::OffsetDateTime::UNIX_EPOCH),
            files: vec![],
        };
        LogEntry { seq, message, deleted }
    }

    fn created(id: i64) -> LogEntry {
        entry(id, id, &format!("m{id}"), false, false)
    }

    fn history_of(ids: impl IntoIterator<Item = i64>) -> History {
        let history = History::from_log(LogStart { head: 0, changes: vec![], newest: vec![] });
        for id in ids {
            history.apply(&created(id));
        }
        history
    }

    fn items(frame: &Utf8Bytes) -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(frame.as_str()).unwrap();
        assert_eq!(v["event"], "chat history");
        v["data"].as_array().unwrap().clone()
    }

    fn ids(frame: &Utf8Bytes) -> Vec<i64> {
        items(frame).iter().map(|m| m["id"].as_i64().unwrap()).collect()
    }

    #[test]
    fn last_fifty_by_default_and_exactly_the_missed_with_since() {
        let history = history_of(1..=120);
        let snap = history.snapshot(None, |_| true);
        assert_eq!(ids(&snap.frame), (71..=120).collect::<Vec<_>>());
        assert_eq!(snap.last_id, 120);
        assert_eq!(ids(&history.snapshot(Some(117), |_| true).frame), vec![118, 119, 120]);
        assert_eq!(ids(&history.snapshot(Some(120), |_| true).frame), Vec::<i64>::new());
        assert_eq!(
            history.snapshot(Some(500), |_| true).last_id,
            120,
            "a since beyond the newest skips nothing later"
        );
    }

    #[test]
    fn keeps_the_newest_changes_and_since_gives_at_most_five_hundred() {
        let history = history_of(1..=2100);
        assert_eq!(ids(&history.snapshot(Some(0), |_| true).frame), (1601..=2100).collect::<Vec<_>>());
        assert!(history.after(99, |_| true).is_none(), "101 and on are kept, 100 is not");
        assert_eq!(history.after(100, |_| true).unwrap().len(), 2000);
        assert_eq!(
            history.after(2098, |_| true).unwrap().iter().map(|m| m.0).collect::<Vec<_>>(),
            vec![2099, 2100]
        );
        assert_eq!(history.after(2100, |_| true).unwrap().len(), 0);
    }

    #[test]
    fn since_and_catching_up_keep_to_the_rooms_asked_for() {
        let history = history_of([]);
        for (id, room) in [(1, LOBBY), (2, 7), (3, 8), (4, LOBBY), (5, 7)] {
            let mut e = created(id);
            e.message.room = room;
            history.apply(&e);
        }
        let mine = |room: i64| room == LOBBY || room == 7;
        assert_eq!(ids(&history.snapshot(Some(0), mine).frame), vec![1, 2, 4, 5]);
        assert_eq!(history.after(2, mine).unwrap().iter().map(|c| c.0).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(ids(&history.snapshot(None, mine).frame), vec![1, 4], "a plain connect: the lobby's");
        assert_eq!(history.room_of(3), Some(8));
        assert_eq!(history.room_of(9), None);
    }

    #[test]
    fn edits_and_deletes_move_a_message_to_its_latest_change() {
        let history = history_of(1..=10);
        let edit = history.apply(&entry(4, 11, "m4 fixed", true, false));
        assert!(edit.as_str().starts_with(r#"{"event":"message edited","data":{"seq":11,"id":4"#), "{edit}");
        let delete = history.apply(&entry(6, 12, "", false, true));
        assert_eq!(delete.as_str(), r#"{"event":"message deleted","data":{"seq":12,"id":6,"room":1}}"#);

        // Since 9: 10 as created, then 4 as edited, then 6 as deleted.
        let since = items(&history.snapshot(Some(9), |_| true).frame);
        assert_eq!(since.iter().map(|m| m["id"].as_i64().unwrap()).collect::<Vec<_>>(), vec![10, 4, 6]);
        assert_eq!(since[1]["message"], "m4 fixed");
        assert_eq!(since[2], serde_json::json!({"id": 6, "room": 1, "deleted": true}));
        // Since 3: each message once, as it is now.
        assert_eq!(ids(&history.snapshot(Some(3), |_| true).frame), vec![5, 7, 8, 9, 10, 4, 6]);

        // A plain connect: in id order, edited text, the deleted one left out.
        let plain = items(&history.snapshot(None, |_| true).frame);
        assert_eq!(
            plain.iter().map(|m| m["id"].as_i64().unwrap()).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5, 7, 8, 9, 10]
        );
        assert_eq!(plain[3]["message"], "m4 fixed");
        assert_eq!(
            history.after(10, |_| true).unwrap().iter().map(|c| c.0).collect::<Vec<_>>(),
            vec![11, 12]
        );
    }

    #[test]
    fn a_message_edited_before_it_was_announced_is_announced_as_new() {
        let history = history_of(1..=3);
        let frame = history.apply(&entry(4, 5, "m4 fixed", true, false));
        assert!(frame.as_str().starts_with(r#"{"event":"chat message","data":{"id":4"#), "{frame}");
    }

    #[test]
    fn deletions_ask_for_older_messages_to_fill_the_plain_history() {
        let history = history_of(1..=150);
        assert_eq!(history.wants_older(), None);
        for (k, id) in (51..=111).enumerate() {
            history.apply(&entry(id, 151 + k as i64, "", false, true));
        }
        let (before, count) = history.wants_older().expect("short of 50");
        assert_eq!(before, Some(112));
        assert_eq!(count, NEWEST - 39);
        let older: Vec<Message> = (1..=50).map(|id| created(id).message).collect();
        history.add_older(&older, false);
        assert_eq!(history.wants_older(), None);
        assert_eq!(ids(&history.snapshot(None, |_| true).frame).len(), 50);
    }

    #[test]
    fn empty_history() {
        let history = history_of([]);
        assert_eq!(ids(&history.snapshot(None, |_| true).frame), Vec::<i64>::new());
        assert_eq!(history.after(0, |_| true).unwrap().len(), 0);
    }
}
