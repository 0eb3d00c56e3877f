//! Presence on one server: exact counts in memory.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use super::{
    Identity, PresenceSettings, Refused,
    count::CountClock,
    names::OnlineNames,
    notices::{Notice, Notices},
};
use crate::{
    realtime::{
        stream::Events,
        wire::frames::{UserNotice, frame},
    },
    tasks::Tasks,
};

pub struct Local {
    /// Counts change together under one short-held lock; a std Mutex, because
    /// the seat releases them in `Drop`, which cannot await, and no critical
    /// section awaits anything.
    state: Mutex<State>,
    pub(super) counts: Arc<CountClock>,
    notices: Notices,
    settings: PresenceSettings,
}

#[derive(Default)]
struct State {
    connections: usize,
    /// Open tabs per user; a user with none has no entry.
    tabs: HashMap<i64, usize>,
    /// The position of the latest announcement.
    announced: i64,
    names: OnlineNames,
}

impl Local {
    /// Starts the count publisher; it stops with `tasks`.
    pub fn start(settings: PresenceSettings, events: Events, tasks: &Tasks) -> Arc<Self> {
        let counts = CountClock::new(settings, events.clone());
        let notices = Notices::start(events, tasks);
        let local = Arc::new(Self { state: Mutex::default(), counts: counts.clone(), notices, settings });
        let source = local.clone();
        tasks.spawn(counts.run(move || source.state().connections, tasks.stop_token()));
        local
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the counts half-updated
        // (each critical section is plain arithmetic), so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn here(&self) -> usize {
        self.state().connections
    }

    pub fn online_users(&self) -> usize {
        self.state().tabs.len()
    }

    pub fn with_sockets(&self, users: &[i64]) -> std::collections::HashSet<i64> {
        let state = self.state();
        users.iter().copied().filter(|user| state.tabs.contains_key(user)).collect()
    }

    pub fn names_contain(&self, lowercase: &str) -> bool {
        self.state().names.contains(lowercase)
    }

    pub fn online(&self, joining: &str) -> super::Online {
        let mut state = self.state();
        super::Online { frame: state.names.frame_with(joining), position: state.announced }
    }

    pub(super) fn join(&self, who: &Identity) -> Result<usize, Refused> {
        let mut state = self.state();
        let tabs = state.tabs.entry(who.user_id).or_insert(0);
        if *tabs >= self.settings.max_tabs {
            return Err(Refused::TooManyTabs);
        }
        *tabs += 1;
        let first_tab = *tabs == 1;
        state.connections += 1;
        if first_tab {
            self.announce(&mut state, who, true);
        }
        let count = state.connections;
        drop(state);
        self.counts.changed();
        Ok(count)
    }

    pub(super) fn leave(&self, who: &Identity) {
        let mut state = self.state();
        state.connections = state.connections.saturating_sub(1);
        let last_tab = match state.tabs.get_mut(&who.user_id) {
            Some(tabs) if *tabs > 1 => {
                *tabs -= 1;
                false
            }
            Some(_) => {
                state.tabs.remove(&who.user_id);
                true
            }
            None => false,
        };
        if last_tab {
            self.announce(&mut state, who, false);
        }
        drop(state);
        self.counts.changed();
    }

    /// Sends the `user` event (at most so often per user: `notices`).
    /// Called under the state lock, so announcements leave in the order the
    /// counts changed.
    fn announce(&self, state: &mut State, who: &Identity, connected: bool) {
        state.announced += 1;
        state.names.set(&who.username, connected);
        let notice = UserNotice {
            username: &who.username,
            current_users: state.connections,
            online_users: state.tabs.len(),
            connected,
        };
        let frame = frame("user", &notice);
        self.notices.announce(who.user_id, Notice { seq: state.announced, connected, frame });
    }
}
