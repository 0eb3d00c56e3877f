//! The hub: who is connected, the live counts, the event stream every
//! socket follows, and which sockets belong to which session.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::sync::{Notify, broadcast, watch};
use tokio_util::sync::CancellationToken;
use tower_sessions::session::Id as SessionId;
use tungstenite::Utf8Bytes;

use crate::rate::{Rate, TokenBucket};

use super::protocol::{UserNotice, frame};

/// What goes out to every socket, serialized once and shared by reference.
#[derive(Debug, Clone)]
pub enum Event {
    /// A committed chat message; `id` lets a socket skip what its history already held.
    Chat { id: i64, frame: Utf8Bytes },
    /// A `user` join or leave announcement.
    Notice(Utf8Bytes),
}

/// The latest `user count`, with its frame serialized once for all sockets.
#[derive(Debug, Clone)]
pub struct Count {
    pub value: usize,
    pub frame: Utf8Bytes,
}

impl Count {
    fn of(value: usize) -> Self {
        Self { value, frame: frame("user count", &value) }
    }
}

/// Who a connection belongs to.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user_id: i64,
    pub username: Arc<str>,
    pub session: SessionId,
}

#[derive(Debug, Clone, Copy)]
pub struct HubSettings {
    /// How many events a socket may fall behind before it is caught up from
    /// the history (or closed with 1013).
    pub event_backlog: usize,
    pub chat_rate: Rate,
    /// A count is published once joins and leaves pause this long…
    pub count_quiet: Duration,
    /// …or this long after the first unpublished change, if they never pause.
    /// A storm of joins so costs each socket about one frame per this period.
    pub count_max_delay: Duration,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub max_connections: usize,
}

#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

struct Shared {
    /// Counts and registries change together under one short-held lock; a
    /// std Mutex, because the connection guard releases them in `Drop`,
    /// which cannot await, and no critical section awaits anything.
    state: Mutex<State>,
    /// Latest value only: sockets that miss intermediate counts lose nothing.
    count: watch::Sender<Count>,
    /// Woken on every join and leave; the count publisher coalesces them.
    count_changed: Notify,
    events: broadcast::Sender<Event>,
    /// The shared ping clock (see `Beat`); one timer for all sockets.
    beat: watch::Sender<u64>,
    shutdown: CancellationToken,
    settings: HubSettings,
}

#[derive(Default)]
struct State {
    connections: usize,
    online_users: usize,
    users: HashMap<i64, UserState>,
    sessions: HashMap<SessionId, SessionSockets>,
}

struct UserState {
    tabs: usize,
    /// Shared by all the user's tabs, and kept after they close, so opening a
    /// new tab does not refill it.
    bucket: TokenBucket,
}

struct SessionSockets {
    sockets: usize,
    ended: CancellationToken,
}

impl Hub {
    /// Creates the hub and starts its two clocks (count publisher, ping beat);
    /// both stop at shutdown.
    pub fn start(settings: HubSettings) -> Self {
        let (events, _) = broadcast::channel(settings.event_backlog.max(16));
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            count: watch::Sender::new(Count::of(0)),
            count_changed: Notify::new(),
            events,
            beat: watch::Sender::new(0),
            shutdown: CancellationToken::new(),
            settings,
        });
        tokio::spawn(publish_counts(shared.clone()));
        tokio::spawn(beat(shared.clone()));
        Self { shared }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the counts half-updated
        // (each critical section is plain arithmetic), so a poisoned lock is usable.
        self.shared.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Follow the event stream. Subscribe before taking the history snapshot,
    /// so nothing committed in between is missed.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    pub fn counts(&self) -> watch::Receiver<Count> {
        self.shared.count.subscribe()
    }

    pub fn beats(&self) -> watch::Receiver<u64> {
        self.shared.beat.subscribe()
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.clone()
    }

    /// Open authenticated connections right now.
    pub fn connections(&self) -> usize {
        self.state().connections
    }

    pub fn has_room(&self) -> bool {
        self.connections() < self.shared.settings.max_connections
    }

    /// Counts a new connection in. The returned guard counts it out when
    /// dropped, on every path a connection can end by, including a panic.
    /// The token is cancelled when the connection's session ends; the count
    /// is the true one including this connection (the published one may lag).
    pub fn join(&self, who: Identity) -> (Presence, CancellationToken, Count) {
        let mut state = self.state();
        state.connections += 1;
        let first_tab = {
            let user = state.users.entry(who.user_id).or_insert_with(|| UserState {
                tabs: 0,
                bucket: TokenBucket::full(self.shared.settings.chat_rate),
            });
            user.tabs += 1;
            user.tabs == 1
        };
        if first_tab {
            state.online_users += 1;
        }
        let session = state
            .sessions
            .entry(who.session)
            .or_insert_with(|| SessionSockets { sockets: 0, ended: CancellationToken::new() });
        session.sockets += 1;
        let ended = session.ended.clone();
        if first_tab {
            self.announce(&state, &who.username, true);
        }
        let count = Count::of(state.connections);
        drop(state);
        self.shared.count_changed.notify_one();
        (Presence { hub: self.clone(), who }, ended, count)
    }

    fn leave(&self, who: &Identity) {
        let mut state = self.state();
        state.connections = state.connections.saturating_sub(1);
        let last_tab = match state.users.get_mut(&who.user_id) {
            Some(user) => {
                user.tabs = user.tabs.saturating_sub(1);
                user.tabs == 0
            }
            None => false,
        };
        if last_tab {
            state.online_users = state.online_users.saturating_sub(1);
        }
        if let Some(session) = state.sessions.get_mut(&who.session) {
            session.sockets = session.sockets.saturating_sub(1);
            if session.sockets == 0 {
                state.sessions.remove(&who.session);
            }
        }
        if last_tab {
            self.announce(&state, &who.username, false);
        }
        drop(state);
        self.shared.count_changed.notify_one();
    }

    /// Sends the `user` event. Called under the state lock so announcements
    /// leave in the order the counts changed.
    fn announce(&self, state: &State, username: &str, connected: bool) {
        let notice = UserNotice {
            username,
            current_users: state.connections,
            online_users: state.online_users,
            connected,
        };
        // No receivers is fine: nobody to tell.
        let _ = self.shared.events.send(Event::Notice(frame("user", &notice)));
    }

    /// Takes one chat token from the user's bucket (all tabs share it).
    pub fn take_chat_token(&self, user_id: i64) -> bool {
        let rate = self.shared.settings.chat_rate;
        let mut state = self.state();
        let user = state
            .users
            .entry(user_id)
            .or_insert_with(|| UserState { tabs: 0, bucket: TokenBucket::full(rate) });
        user.bucket.try_take(rate)
    }

    /// Sends a committed event to every socket.
    pub fn publish(&self, event: Event) {
        let _ = self.shared.events.send(event);
    }

    /// Closes every socket of this session (logout, expiry) with 4401.
    pub fn end_session(&self, session: &SessionId) {
        if let Some(entry) = self.state().sessions.remove(session) {
            entry.ended.cancel();
        }
    }

    /// The sessions that have live sockets, for the expiry check.
    pub fn live_sessions(&self) -> Vec<SessionId> {
        self.state().sessions.keys().copied().collect()
    }

    /// Forgets rate buckets of users with no open tab whose bucket has refilled.
    pub fn forget_idle_users(&self) {
        let rate = self.shared.settings.chat_rate;
        self.state().users.retain(|_, user| user.tabs > 0 || !user.bucket.is_full(rate));
    }

    /// Starts the shutdown: every socket closes with 1001.
    pub fn shut_down(&self) {
        self.shared.shutdown.cancel();
    }
}

/// Counts a connection for as long as it lives.
pub struct Presence {
    hub: Hub,
    who: Identity,
}

impl Presence {
    pub fn identity(&self) -> &Identity {
        &self.who
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.hub.leave(&self.who);
    }
}

/// Publishes the count on a trailing edge: when joins and leaves pause for
/// `count_quiet`, or `count_max_delay` after the first change if they do not.
/// Every publish costs one frame per socket, so a storm of N joins costs each
/// socket a handful of frames instead of N, and the true count still goes out
/// within `count_quiet` of the last change.
async fn publish_counts(shared: Arc<Shared>) {
    let HubSettings { count_quiet, count_max_delay, .. } = shared.settings;
    loop {
        tokio::select! {
            _ = shared.count_changed.notified() => {}
            _ = shared.shutdown.cancelled() => return,
        }
        let deadline = tokio::time::Instant::now() + count_max_delay;
        loop {
            let quiet_until = (tokio::time::Instant::now() + count_quiet).min(deadline);
            tokio::select! {
                _ = shared.count_changed.notified() => {
                    if tokio::time::Instant::now() >= deadline {
                        break;
                    }
                }
                _ = tokio::time::sleep_until(quiet_until) => break,
                _ = shared.shutdown.cancelled() => return,
            }
        }
        // Always publish, even a value equal to the last one published: a
        // socket that joined since was sent its own exact count, which may
        // differ (2 → join: 3 → leave: 2). Each socket skips a value it has.
        let value = shared.state.lock().unwrap_or_else(|p| p.into_inner()).connections;
        shared.count.send_replace(Count::of(value));
    }
}

/// The ping clock. Odd beats say "ping now", even beats say "whoever has not
/// answered the last ping is gone"; the even beat comes `ping_timeout` after
/// the odd one. One timer serves every socket.
async fn beat(shared: Arc<Shared>) {
    let HubSettings { ping_interval, ping_timeout, .. } = shared.settings;
    let until_next_ping = ping_interval.saturating_sub(ping_timeout);
    loop {
        for wait in [until_next_ping, ping_timeout] {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shared.shutdown.cancelled() => return,
            }
            shared.beat.send_modify(|beat| *beat += 1);
        }
    }
}

/// What a beat asks of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    Ping,
    Check,
}

impl Beat {
    pub fn of(n: u64) -> Self {
        if n % 2 == 1 { Beat::Ping } else { Beat::Check }
    }
}
