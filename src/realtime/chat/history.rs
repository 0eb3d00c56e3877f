//! The recent messages, in memory: every connect gets its history from here
//! without a query, and a socket that fell behind is caught up from here.

use std::{collections::VecDeque, sync::RwLock};

use tungstenite::Utf8Bytes;

use crate::{
    realtime::protocol::{chat_data, chat_message_frame, history_frame},
    store::LogEntry,
};

/// How many messages `?since=` may return, and so how many are kept.
pub const KEEP: usize = 500;
/// How many a plain connect gets.
pub const DEFAULT_HISTORY: usize = 50;

/// The newest `KEEP` messages as their `chat message` frames, oldest first.
pub struct History {
    /// Many readers (every connect), one writer (the sequencer), short holds.
    recent: RwLock<VecDeque<(i64, Utf8Bytes)>>,
}

/// A history frame and the id of its newest message (0 if empty).
pub struct Snapshot {
    pub frame: Utf8Bytes,
    pub last_id: i64,
}

impl History {
    /// The history as a node starts: the newest entries of the log, oldest first.
    pub fn from_log(entries: Vec<LogEntry>) -> Self {
        Self::new(entries.into_iter().map(|e| (e.seq, chat_message_frame(&e.message))))
    }

    pub fn new(oldest_first: impl IntoIterator<Item = (i64, Utf8Bytes)>) -> Self {
        let mut recent: VecDeque<_> = oldest_first.into_iter().collect();
        while recent.len() > KEEP {
            recent.pop_front();
        }
        Self { recent: RwLock::new(recent) }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, VecDeque<(i64, Utf8Bytes)>> {
        self.recent.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The position of the newest message kept (0: none).
    pub fn newest(&self) -> i64 {
        self.read().back().map_or(0, |(id, _)| *id)
    }

    pub fn push(&self, id: i64, frame: Utf8Bytes) {
        let mut recent = self.recent.write().unwrap_or_else(|p| p.into_inner());
        if recent.len() == KEEP {
            recent.pop_front();
        }
        recent.push_back((id, frame));
    }

    /// The `chat history` frame: the last 50, or with `since` the ones after
    /// it (the newest 500 of them, so the history always ends where the live
    /// stream begins and no message falls between).
    pub fn snapshot(&self, since: Option<i64>) -> Snapshot {
        let recent = self.read();
        let skip = match since {
            None => recent.len().saturating_sub(DEFAULT_HISTORY),
            Some(since) => recent.partition_point(|(id, _)| *id <= since),
        };
        // Live messages after the newest kept one are sent, whatever `since` said.
        let last_id = recent.back().map_or(0, |(id, _)| *id);
        let frame = history_frame(recent.iter().skip(skip).map(|(_, frame)| chat_data(frame)));
        Snapshot { frame, last_id }
    }

    /// The frames after `id`, for a socket that fell behind; `None` when
    /// some of them are no longer kept (the socket must reconnect).
    pub fn after(&self, id: i64) -> Option<Vec<(i64, Utf8Bytes)>> {
        let recent = self.read();
        let start = recent.partition_point(|(m, _)| *m <= id);
        let complete = match recent.front() {
            Some((oldest, _)) => start > 0 || *oldest == id + 1,
            None => true,
        };
        complete.then(|| recent.iter().skip(start).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::protocol::{ChatMessage, chat_message_frame};

    fn message(id: i64) -> (i64, Utf8Bytes) {
        let m = ChatMessage {
            id,
            username: "u".into(),
            message: format!("m{id}"),
            sent_at: time::OffsetDateTime::UNIX_EPOCH,
            mentions: vec![],
            edited_at: None,
        };
        (id, chat_message_frame(&m))
    }

    fn ids(frame: &Utf8Bytes) -> Vec<i64> {
        let v: serde_json::Value = serde_json::from_str(frame.as_str()).unwrap();
        assert_eq!(v["event"], "chat history");
        v["data"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect()
    }

    #[test]
    fn last_fifty_by_default_and_exactly_the_missed_with_since() {
        let history = History::new((1..=120).map(message));
        let snap = history.snapshot(None);
        assert_eq!(ids(&snap.frame), (71..=120).collect::<Vec<_>>());
        assert_eq!(snap.last_id, 120);
        assert_eq!(ids(&history.snapshot(Some(117)).frame), vec![118, 119, 120]);
        assert_eq!(ids(&history.snapshot(Some(120)).frame), Vec::<i64>::new());
        assert_eq!(history.snapshot(Some(500)).last_id, 120, "a since beyond the newest skips nothing later");
    }

    #[test]
    fn keeps_the_newest_five_hundred() {
        let history = History::new((1..=10).map(message));
        for id in 11..=600 {
            let (id, frame) = message(id);
            history.push(id, frame);
        }
        assert_eq!(ids(&history.snapshot(Some(0)).frame), (101..=600).collect::<Vec<_>>());
        assert!(history.after(99).is_none(), "101 and on are kept, 100 is not");
        assert_eq!(history.after(100).unwrap().len(), 500);
        assert_eq!(history.after(598).unwrap().iter().map(|m| m.0).collect::<Vec<_>>(), vec![599, 600]);
        assert_eq!(history.after(600).unwrap().len(), 0);
    }

    #[test]
    fn empty_history() {
        let history = History::new([]);
        assert_eq!(ids(&history.snapshot(None).frame), Vec::<i64>::new());
        assert_eq!(history.after(0).unwrap().len(), 0);
    }
}
