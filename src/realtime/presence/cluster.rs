//! Presence on a cluster of nodes sharing one PostgreSQL database.
//!
//! Each node counts its own sockets exactly, in memory, as a single server
//! does. What the cluster needs of it goes to the database in batches (group
//! commit, as chat messages do), with the node's heartbeat:
//!
//! - An upgrade asks for a seat and waits for the next batch, which grants it
//!   only if the user has fewer than `max_tabs` sockets on all live nodes
//!   together (decided under the user's lock, so two nodes cannot both grant
//!   the last seat).
//! - A closed socket is counted out here at once and in the next batch there.
//! - A user's first tab anywhere and last tab anywhere are announced by the
//!   batch that makes them so; every node reads the announcements back in
//!   their order and sends them to its sockets.
//! - `user count` is this node's exact count plus the other live nodes' as
//!   last read (on their notification, or by polling).
//! - Every node counts out nodes whose heartbeat is older than `NODE_TTL`.
//!   A node that could not write its heartbeat for that long fences itself:
//!   it closes its sockets (their clients reconnect to other nodes) and
//!   admits none until the database answers again.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::oneshot,
    time::{Instant, MissedTickBehavior},
};
use tokio_util::sync::CancellationToken;

use super::{CountClock, Identity, PresenceSettings, Refused};
use crate::{
    cluster::{Timing, Wakeups},
    realtime::{
        protocol::{UserNotice, close, frame},
        revocation::Revocation,
        stream::{Event, Events},
    },
    store::cluster::{Announcement, ClusterStore, Flushed, TabChange},
};

/// Announcements older than this are pruned; a node away longer starts afresh.
const KEEP_ANNOUNCEMENTS: Duration = Duration::from_secs(600);
/// How many announcements one read takes at most.
const READ_BATCH: usize = 512;
/// The least time between two reads of the announcements and counts: in a
/// storm every node's batch notifies every other node, and one read per
/// spacing serves them all (counts go out on a 30 ms trailing edge anyway).
const READ_SPACING: Duration = Duration::from_millis(20);

pub struct Cluster {
    store: ClusterStore,
    /// This node's id in the `nodes` table; a new one if it was counted out.
    node: AtomicI64,
    name: String,
    /// A std Mutex: seats release in `Drop`; no critical section awaits.
    state: Mutex<State>,
    pub(super) counts: Arc<CountClock>,
    events: Events,
    settings: PresenceSettings,
    timing: Timing,
    wake: Arc<Wakeups>,
    /// Wakes the flusher: a seat is asked for, or one was given back.
    flush_now: tokio::sync::Notify,
    /// Set while this node cannot reach the database for its heartbeat.
    fenced: AtomicBool,
    /// To close this node's sockets when it fences itself.
    revocation: Revocation,
}

#[derive(Default)]
struct State {
    /// Sockets admitted and open here.
    connections: usize,
    tabs: HashMap<i64, usize>,
    /// Upgrades waiting for the next batch, per user.
    waiting: HashMap<i64, Vec<oneshot::Sender<Result<(), Refused>>>>,
    /// Users whose tabs here changed since the last batch.
    dirty: HashSet<i64>,
    /// Connections on the other live nodes, as last read.
    elsewhere: usize,
    /// Users online on the cluster, as the latest announcement said.
    online: usize,
    /// Their names, and the announcement they reflect.
    names: super::OnlineNames,
    announced: i64,
}

impl Cluster {
    /// Joins the cluster as a new node and starts its tasks (they stop at `stop`).
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        store: ClusterStore,
        name: String,
        settings: PresenceSettings,
        timing: Timing,
        events: Events,
        wake: Arc<Wakeups>,
        revocation: Revocation,
        stop: CancellationToken,
    ) -> Result<Arc<Self>, crate::store::StoreError> {
        let node = store.register(&name).await?;
        let (announced, online) = store.online_snapshot().await?;
        tracing::info!(node, %name, "joined the cluster");
        let counts = CountClock::new(settings, events.clone());
        let mut names = super::OnlineNames::default();
        for name in &online {
            names.set(name, true);
        }
        let state = State { names, announced, online: online.len(), ..State::default() };
        let cluster = Arc::new(Self {
            store,
            node: AtomicI64::new(node),
            name,
            state: Mutex::new(state),
            counts: counts.clone(),
            events,
            settings,
            timing,
            wake,
            flush_now: tokio::sync::Notify::new(),
            fenced: AtomicBool::new(false),
            revocation,
        });
        let source = cluster.clone();
        tokio::spawn(counts.run(
            move || {
                let state = source.state();
                state.connections + state.elsewhere
            },
            stop.clone(),
        ));
        tokio::spawn(cluster.clone().heartbeat(stop.clone()));
        tokio::spawn(cluster.clone().follow(announced, stop));
        Ok(cluster)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn node(&self) -> i64 {
        self.node.load(Ordering::Relaxed)
    }

    pub fn here(&self) -> usize {
        self.state().connections
    }

    pub fn online_users(&self) -> usize {
        self.state().online
    }

    pub fn names_contain(&self, lowercase: &str) -> bool {
        self.state().names.contains(lowercase)
    }

    pub fn online(&self) -> super::Online {
        let mut state = self.state();
        super::Online { frame: state.names.frame(), position: state.announced }
    }

    /// Asks the next batch for a seat; the count includes it.
    pub(super) async fn join(&self, who: &Identity) -> Result<usize, Refused> {
        if self.fenced.load(Ordering::Relaxed) {
            return Err(Refused::Unavailable);
        }
        let (granted, grant) = oneshot::channel();
        self.state().waiting.entry(who.user_id).or_default().push(granted);
        self.flush_now.notify_one();
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
        self.flush_now.notify_one();
    }

    /// The heartbeat: a batch whenever seats are asked for or given back, and
    /// at least once per `heartbeat` regardless; then a look for dead nodes.
    async fn heartbeat(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.timing.heartbeat);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_written = Instant::now();
        let mut last_reap = Instant::now();
        let mut last_prune = Instant::now();
        loop {
            tokio::select! {
                _ = self.flush_now.notified() => {}
                _ = tick.tick() => {}
                _ = stop.cancelled() => break,
            }
            let started = Instant::now();
            match self.flush().await {
                Ok(()) => {
                    last_written = started;
                    if self.fenced.swap(false, Ordering::Relaxed) {
                        tracing::info!(
                            node = self.node(),
                            "the database answers again: admitting connections"
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not write the heartbeat");
                    if last_written.elapsed() >= self.timing.node_ttl {
                        self.fence();
                    }
                    // Do not spin against a database that is down.
                    tokio::time::sleep(self.timing.heartbeat / 4).await;
                    continue;
                }
            }
            if last_reap.elapsed() >= self.timing.heartbeat {
                last_reap = Instant::now();
                match self.store.reap(self.node()).await {
                    Ok(0) => {}
                    Ok(_) => self.wake.presence.notify_one(),
                    Err(e) => tracing::warn!(error = %e, "could not look for dead nodes"),
                }
            }
            if last_prune.elapsed() >= KEEP_ANNOUNCEMENTS / 10 {
                last_prune = Instant::now();
                if let Err(e) = self.store.prune_announcements(KEEP_ANNOUNCEMENTS).await {
                    tracing::debug!(error = %e, "could not prune announcements");
                }
            }
        }
        self.leave_cluster().await;
    }

    /// One batch: what changed here since the last, and the seats asked for.
    async fn flush(&self) -> Result<(), FlushError> {
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
        let outcome = self.store.flush(self.node(), connections, &changes, self.settings.max_tabs).await;
        let granted = match outcome {
            Ok(Flushed::Granted(granted)) => granted,
            Ok(Flushed::CountedOut) => {
                self.restore(&changes, waiting, Refused::Unavailable);
                self.rejoin().await?;
                return Err(FlushError::CountedOut);
            }
            Err(e) => {
                self.restore(&changes, waiting, Refused::Unavailable);
                return Err(e.into());
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
        Ok(())
    }

    /// A batch failed: its changes are still to be written, and its waiting
    /// upgrades are refused (the client retries).
    fn restore(
        &self,
        changes: &[TabChange],
        waiting: HashMap<i64, Vec<oneshot::Sender<Result<(), Refused>>>>,
        why: Refused,
    ) {
        self.state().dirty.extend(changes.iter().map(|c| c.user_id));
        for answer in waiting.into_values().flatten() {
            let _ = answer.send(Err(why));
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

    /// Another node counted this one out (it could not heartbeat in time):
    /// its sockets are no longer counted anywhere, so close them, and join
    /// again as a new node.
    async fn rejoin(&self) -> Result<(), FlushError> {
        tracing::warn!(node = self.node(), "this node was counted out by the cluster");
        self.fence();
        let node = self.store.register(&self.name).await?;
        self.node.store(node, Ordering::Relaxed);
        let mut state = self.state();
        let users: Vec<i64> = state.tabs.keys().copied().collect();
        state.dirty.extend(users);
        tracing::info!(node, "joined the cluster again");
        Ok(())
    }

    /// Closes every socket here and admits none until the next heartbeat.
    fn fence(&self) {
        if !self.fenced.swap(true, Ordering::Relaxed) {
            tracing::error!(node = self.node(), "cannot reach the database: closing this node's sockets");
            self.revocation.end_all_here(close::GOING_AWAY);
        }
    }

    /// At shutdown: this node's users with no tab elsewhere are announced as
    /// left, and upgrades still waiting for a seat are refused.
    async fn leave_cluster(&self) {
        self.fenced.store(true, Ordering::Relaxed);
        let waiting = std::mem::take(&mut self.state().waiting);
        for answer in waiting.into_values().flatten() {
            let _ = answer.send(Err(Refused::Unavailable));
        }
        if let Err(e) = self.store.deregister(self.node()).await {
            tracing::warn!(error = %e, "could not leave the cluster; the others will count this node out");
        }
    }

    /// Reads the announcements and the other nodes' counts, on notification
    /// and by polling, and sends the announcements to this node's sockets.
    async fn follow(self: Arc<Self>, mut position: i64, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = self.wake.presence.notified() => {}
                _ = tokio::time::sleep(self.timing.poll) => {}
                _ = stop.cancelled() => return,
            }
            match self.store.announcements_after(position, READ_BATCH).await {
                Ok(announcements) => {
                    if announcements.len() == READ_BATCH {
                        self.wake.presence.notify_one();
                    }
                    for announcement in announcements {
                        position = announcement.seq;
                        let mut state = self.state();
                        state.online = announcement.online_users.max(0) as usize;
                        state.names.set(&announcement.username, announcement.connected);
                        state.announced = announcement.seq;
                        // Published under the lock: a socket's snapshot and the
                        // stream then agree on which announcements it reflects.
                        self.events.publish(notice(&announcement));
                    }
                }
                Err(e) => tracing::debug!(error = %e, "could not read announcements"),
            }
            match self.store.elsewhere(self.node()).await {
                Ok(elsewhere) => {
                    let mut state = self.state();
                    if state.elsewhere != elsewhere.connections {
                        state.elsewhere = elsewhere.connections;
                        drop(state);
                        self.counts.changed();
                    }
                }
                Err(e) => tracing::debug!(error = %e, "could not read the other nodes' counts"),
            }
            tokio::time::sleep(READ_SPACING).await;
        }
    }
}

fn notice(announcement: &Announcement) -> Event {
    let notice = UserNotice {
        username: &announcement.username,
        current_users: announcement.current_users.max(0) as usize,
        online_users: announcement.online_users.max(0) as usize,
        connected: announcement.connected,
    };
    Event::Notice { seq: announcement.seq, frame: frame("user", &notice) }
}

#[derive(Debug, thiserror::Error)]
enum FlushError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("this node was counted out and joined again")]
    CountedOut,
}
