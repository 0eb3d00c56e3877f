//! Presence on a cluster of nodes sharing one PostgreSQL database.
//!
//! Each node counts its own sockets exactly, in memory, as a single server
//! does. What the cluster needs of it goes to the database in batches (group
//! commit, as chat messages do), as the node's heartbeat
//! (`cluster::heartbeat`):
//!
//! - An upgrade asks for a seat and waits for the next batch, which grants it
//!   only if the user has fewer than `max_tabs` sockets on all live nodes
//!   together (decided under the user's lock, so two nodes cannot both grant
//!   the last seat).
//! - A closed socket is counted out here at once and in the next batch there.
//! - A user's first tab anywhere and last tab anywhere are announced by the
//!   batch that makes them so; every node reads the announcements back in
//!   their order and sends them to its sockets (`follow`).
//! - `user count` is this node's exact count plus the other live nodes' as
//!   last read (on their notification, or by polling).
//! - A fenced node (one that cannot write its heartbeat) admits nobody.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::{Notify, oneshot};

use super::{Identity, PresenceSettings, Refused, count::CountClock, names::OnlineNames, notices::Notices};
use crate::{
    cluster::{
        Node,
        heartbeat::{self, Beat, Heartbeat},
    },
    notify::Channel,
    realtime::stream::Events,
    store::{
        StoreError,
        cluster::{Flushed, TabChange},
    },
    tasks::Tasks,
};

pub struct Cluster {
    node: Node,
    /// A std Mutex: seats release in `Drop`; no critical section awaits.
    state: Mutex<State>,
    pub(super) counts: Arc<CountClock>,
    /// The announcements read back, out to this node's sockets (at most so often per user).
    pub(super) notices: Notices,
    settings: PresenceSettings,
    /// Wakes the reader of announcements (a notification, or a gap).
    pub(super) wake: Arc<Notify>,
}

#[derive(Default)]
pub(super) struct State {
    /// Sockets admitted and open here.
    connections: usize,
    tabs: HashMap<i64, usize>,
    /// Upgrades waiting for the next batch, per user.
    waiting: HashMap<i64, Vec<oneshot::Sender<Result<(), Refused>>>>,
    /// Users whose tabs here changed since the last batch.
    dirty: HashSet<i64>,
    /// Connections on the other live nodes, as last read.
    pub(super) elsewhere: usize,
    /// Users online on the cluster, as the latest announcement said.
    pub(super) online: usize,
    /// Their names, and the announcement they reflect.
    pub(super) names: OnlineNames,
    pub(super) announced: i64,
}

impl Cluster {
    /// Reads who is online, and starts the heartbeat, the reader of
    /// announcements and the count publisher (they stop with `tasks`).
    pub async fn start(
        node: &Node,
        settings: PresenceSettings,
        events: Events,
        tasks: &Tasks,
    ) -> Result<Arc<Self>, StoreError> {
        let (announced, online) = node.store().online_snapshot().await?;
        let mut names = OnlineNames::default();
        for name in &online {
            names.set(name, true);
        }
        let state = State { names, announced, online: online.len(), ..State::default() };
        let cluster = Arc::new(Self {
            node: node.clone(),
            state: Mutex::new(state),
            counts: CountClock::new(settings, events.clone()),
            notices: Notices::start(events, tasks),
            settings,
            wake: Arc::new(Notify::new()),
        });
        let source = cluster.clone();
        tasks.spawn(cluster.counts.clone().run(
            move || {
                let state = source.state();
                state.connections + state.elsewhere
            },
            tasks.stop_token(),
        ));
        let wake = cluster.wake.clone();
        node.on(
            Channel::Presence,
            Arc::new(move |_| {
                wake.notify_one();
                Box::pin(async {})
            }),
        );
        let wake = cluster.wake.clone();
        node.after_gap(Arc::new(move || {
            wake.notify_one();
            Box::pin(async {})
        }));
        heartbeat::start(node, cluster.clone());
        tasks.spawn(super::follow::follow(cluster.clone(), announced, tasks.stop_token()));
        Ok(cluster)
    }

    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn node(&self) -> &Node {
        &self.node
    }

    pub fn here(&self) -> usize {
        self.state().connections
    }

    pub fn online_users(&self) -> usize {
        self.state().online
    }

    pub async fn with_sockets(&self, users: &[i64]) -> Result<HashSet<i64>, StoreError> {
        let mut found: HashSet<i64> = self.node.store().with_tabs(users).await?.into_iter().collect();
        let state = self.state();
        found.extend(users.iter().copied().filter(|user| state.tabs.contains_key(user)));
        Ok(found)
    }

    pub fn names_contain(&self, lowercase: &str) -> bool {
        self.state().names.contains(lowercase)
    }

    pub fn online(&self, joining: &str) -> super::Online {
        let mut state = self.state();
        super::Online { frame: state.names.frame_with(joining), position: state.announced }
    }

    /// Asks the next batch for a seat; the count includes it.
    pub(super) async fn join(&self, who: &Identity) -> Result<usize, Refused> {
        if self.node.is_fenced() {
            return Err(Refused::Unavailable);
        }
        let (granted, grant) = oneshot::channel();
        self.state().waiting.entry(who.user_id).or_default().push(granted);
        self.node.beat_soon();
        grant.await.map_err(|_| Refused::Unavailable)??;
        let state = self.state();
        Ok(state.connections + state.elsewhere)
    }

    pub(super) fn leave(&self, who: &Identity) {
        let mut state = self.state();
        state.connections = state.connections.saturating_sub(1);
        if let Some(tabs) = state.tabs.get_mut(&who.user_id) {
            *tabs = tabs.saturating_sub(1);
            if *tabs == 0 {
                state.tabs.remove(&who.user_id);
            }
        }
        state.dirty.insert(who.user_id);
        drop(state);
        self.counts.changed();
        self.node.beat_soon();
    }

    /// A batch failed: its changes are still to be written, and its waiting
    /// upgrades are refused (the client retries).
    fn restore(
        &self,
        changes: &[TabChange],
        waiting: HashMap<i64, Vec<oneshot::Sender<Result<(), Refused>>>>,
    ) {
        self.state().dirty.extend(changes.iter().map(|c| c.user_id));
        for answer in waiting.into_values().flatten() {
            let _ = answer.send(Err(Refused::Unavailable));
        }
    }

    fn release(state: &mut State, user_id: i64) {
        state.connections = state.connections.saturating_sub(1);
        if let Some(tabs) = state.tabs.get_mut(&user_id) {
            *tabs -= 1;
            if *tabs == 0 {
                state.tabs.remove(&user_id);
            }
        }
        state.dirty.insert(user_id);
    }
}

#[async_trait::async_trait]
impl Heartbeat for Cluster {
    /// One batch: what changed here since the last, and the seats asked for.
    async fn beat(&self, node: i64) -> Result<Beat, StoreError> {
        let (changes, mut waiting, connections) = {
            let mut state = self.state();
            let waiting = std::mem::take(&mut state.waiting);
            let mut users: HashSet<i64> = std::mem::take(&mut state.dirty);
            users.extend(waiting.keys().copied());
            let changes: Vec<TabChange> = users
                .into_iter()
                .map(|user_id| TabChange {
                    user_id,
                    held: state.tabs.get(&user_id).copied().unwrap_or(0),
                    wanted: waiting.get(&user_id).map_or(0, Vec::len),
                })
                .collect();
            (changes, waiting, state.connections)
        };
        let outcome = self.node.store().flush(node, connections, &changes, self.settings.max_tabs).await;
        let granted = match outcome {
            Ok(Flushed::Granted(granted)) => granted,
            Ok(Flushed::CountedOut) => {
                self.restore(&changes, waiting);
                return Ok(Beat::CountedOut);
            }
            Err(e) => {
                self.restore(&changes, waiting);
                return Err(e);
            }
        };
        let mut state = self.state();
        for (user_id, answers) in waiting.iter_mut() {
            let grant = granted.get(user_id).copied().unwrap_or(0);
            if grant > 0 {
                *state.tabs.entry(*user_id).or_insert(0) += grant;
                state.connections += grant;
            }
            for (i, answer) in answers.drain(..).enumerate() {
                let verdict = if i < grant { Ok(()) } else { Err(Refused::TooManyTabs) };
                if answer.send(verdict).is_err() && i < grant {
                    // The upgrade gave up while waiting: give the seat back.
                    Self::release(&mut state, *user_id);
                }
            }
        }
        drop(state);
        self.counts.changed();
        Ok(Beat::Written)
    }

    /// Counted out and joined again: every user with a tab here is written anew.
    fn rejoined(&self) {
        let mut state = self.state();
        let users: Vec<i64> = state.tabs.keys().copied().collect();
        state.dirty.extend(users);
    }

    /// Upgrades still waiting for a seat are refused.
    fn leaving(&self) {
        let waiting = std::mem::take(&mut self.state().waiting);
        for answer in waiting.into_values().flatten() {
            let _ = answer.send(Err(Refused::Unavailable));
        }
    }
}
