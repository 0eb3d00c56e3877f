//! The live half: the session-gated WebSocket, the user count, joins and
//! leaves, and durable chat. [`Realtime`] is its interface: the web layer
//! opens a socket with [`Realtime::open`] and hands it the connection;
//! everything else is inside.
//!
//! - [`connection`]: the task that owns one socket.
//! - [`presence`]: counts and announcements (one server, or a cluster).
//! - [`revocation`]: ended sessions close their sockets.
//! - [`chat`]: the log's writer, its follower, and the recent history.
//! - [`stream`]: the event stream every socket follows.
//! - [`index`]: who is where on this node: each room's sockets here.
//! - [`inbox`]: each socket's own queue, for what concerns it and not all.
//! - [`typing`]: who is typing, throttled and coalesced.
//! - [`markers`]: each user's read marker, stored and shown to their tabs.
//! - [`beat`]: the one ping clock.
//! - [`allowance`]: each user's chat allowance on this node.
//! - [`wire`]: the frames on the wire.

pub mod allowance;
pub mod beat;
pub mod chat;
pub mod connection;
pub mod inbox;
pub mod index;
pub mod markers;
pub mod presence;
pub mod revocation;
pub mod stream;
pub mod typing;
pub mod wire;

use std::{sync::Arc, time::Duration};

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::{
    cluster::Peers,
    domain::LOBBY,
    notify::Channel,
    rate::Rate,
    search_indexer::WriteTurns,
    sessions::{OnEnding, SessionPolicy, Sessions},
    store::{Store, StoreError},
    tasks::Tasks,
};
use allowance::ChatAllowance;
use chat::{
    follower::{Follower, Published},
    history::History,
    writer::Writer,
};
pub use connection::Opened;
use inbox::Inbox;
use index::RoomIndex;
use presence::{Identity, Presence, PresenceSettings};
use revocation::Revocation;
use stream::Events;
use wire::frames::{read_marker_frame, rooms_frame};

#[derive(Debug, Clone, Copy)]
pub struct RealtimeSettings {
    pub presence: PresenceSettings,
    /// How many events a socket may fall behind before it is caught up from
    /// the history (or closed with 1013).
    pub event_backlog: usize,
    pub chat_rate: Rate,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// The most sockets this node holds.
    pub max_connections: usize,
    /// A write to a socket that takes longer than this ends it.
    pub send_timeout: Duration,
    /// Under load, the chat log is read (and published) at most once per this.
    pub fanout_window: Duration,
    /// How long after sending a message its author may edit it.
    pub edit_window: Duration,
    /// How often live sockets' sessions are checked for expiry (and, being
    /// open, kept from idling out).
    pub session_check_interval: Duration,
    pub session_policy: SessionPolicy,
}

/// How long a change made here waits for this node's sockets to be given
/// it ([`Realtime::caught_up`]); past that it is answered all the same.
const CAUGHT_UP_WITHIN: Duration = Duration::from_secs(1);

/// Why a socket was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// This node holds all the sockets it may (`MAX_CONNECTIONS`, the open-file limit).
    #[error("this node is full")]
    Full,
    #[error("this account has too many open connections")]
    TooManyTabs,
    /// The database (or the cluster) cannot be reached, or this node is fenced.
    #[error("the server cannot take connections right now")]
    Unavailable,
}

/// The live half, to the layers above. One pointer: cheap to clone and
/// small to hold (every socket's task holds one for its whole life).
#[derive(Clone)]
pub struct Realtime(Arc<Shared>);

/// What every socket shares. Private: the order in which a socket is
/// admitted is this module's to keep (`open`).
struct Shared {
    store: Store,
    presence: Presence,
    revocation: Revocation,
    events: Events,
    /// Who is where here: what the follower, typing and markers deliver through.
    index: Arc<RoomIndex>,
    writer: Writer,
    history: Arc<History>,
    allowance: ChatAllowance,
    typing: typing::Typing,
    markers: markers::ReadMarkers,
    /// One permit per socket this node may hold (`max_connections`).
    permits: Arc<Semaphore>,
    /// Cancelled at shutdown: every socket closes with 1001.
    shutdown: CancellationToken,
    settings: RealtimeSettings,
    /// How far the follower has published, for shutdown and for changes
    /// made here that must reach this node's sockets before their answer.
    published: Published,
    /// Wakes the follower: changes committed here outside the writer.
    wake: Arc<Notify>,
    /// This node's name in the cluster (`None`: a single server).
    node_name: Option<String>,
}

impl Realtime {
    /// Starts the live half on `store`, alone or as one node of a cluster
    /// (`peers`); its background work runs in `tasks`. `sessions` are read
    /// when sweeping (and written to keep those with sockets alive).
    pub async fn start(
        store: &Store,
        peers: &Peers,
        sessions: Sessions,
        settings: RealtimeSettings,
        write_turns: WriteTurns,
        tasks: &Tasks,
    ) -> Result<Self, StoreError> {
        let events = Events::new(settings.event_backlog);
        let start = store.log_start(chat::history::KEEP, chat::history::NEWEST).await?;
        let position = start.head;
        let history = Arc::new(History::from_log(start));
        let index = Arc::new(RoomIndex::default());
        let typing = typing::Typing::start(index.clone(), peers.clone(), tasks);
        let markers = markers::ReadMarkers::start(store.clone(), index.clone(), peers.clone(), tasks);
        let presence = Presence::start(settings.presence, events.clone(), peers, tasks).await?;
        let revocation = Revocation::new(sessions, settings.session_policy);

        // The follower wakes on this node's commits and other nodes'
        // notifications; alone, something else writing the same file (a
        // second server by mistake) is picked up within a second.
        let wake = Arc::new(Notify::new());
        let poll = match peers.node() {
            Some(node) => node.timing().poll,
            None => Duration::from_secs(1),
        };
        if let Some(node) = peers.node() {
            let log = wake.clone();
            node.on(
                Channel::Log,
                Arc::new(move |_| {
                    log.notify_one();
                    Box::pin(async {})
                }),
            );
            let log = wake.clone();
            node.after_gap(Arc::new(move || {
                log.notify_one();
                Box::pin(async {})
            }));
            // A node that cannot reach the database closes its sockets;
            // their clients reconnect to the other nodes.
            let mut fenced = node.fenced();
            let fencing = revocation.clone();
            tasks.spawn(async move {
                while fenced.changed().await.is_ok() {
                    if *fenced.borrow_and_update() {
                        fencing.end_all_here(wire::close::GOING_AWAY);
                    }
                }
            });
        }
        let published = Follower {
            store: store.clone(),
            history: history.clone(),
            index: index.clone(),
            wake: wake.clone(),
            poll,
            window: settings.fanout_window,
            presence: presence.clone(),
        }
        .start(position, tasks);
        let writer = Writer::start(store.clone(), write_turns, settings.chat_rate, wake.clone(), 4096, tasks);
        let allowance = ChatAllowance::new(settings.chat_rate);
        let shutdown = CancellationToken::new();
        beat::start(settings.ping_interval, settings.ping_timeout, events.clone(), shutdown.clone(), tasks);
        tasks.spawn(sweep_sessions(
            revocation.clone(),
            allowance.clone(),
            settings.session_check_interval,
            tasks.stop_token(),
        ));
        Ok(Self(Arc::new(Shared {
            store: store.clone(),
            presence,
            revocation,
            events,
            index,
            writer,
            history,
            allowance,
            typing,
            markers,
            permits: Arc::new(Semaphore::new(settings.max_connections.min(Semaphore::MAX_PERMITS))),
            shutdown,
            settings,
            published,
            wake,
            node_name: peers.node().map(|node| node.name().to_owned()),
        })))
    }

    /// Admits a socket for `who`, or says why not. In this order, which the
    /// contract depends on: a permit (the node's ceiling), the user's read
    /// marker, the event stream (subscribed before anything is read, so
    /// nothing published in between is missed), who is online (this user
    /// included; taken before the seat, so the user's join is announced
    /// after it, once, to everyone), the seat (the count), and the session's watch (registered after the
    /// session was loaded: a logout in between is remembered, and the watch
    /// starts out ended).
    pub async fn open(&self, who: Identity, since: Option<i64>) -> Result<Opened, Refused> {
        let shared = &self.0;
        let Ok(permit) = shared.permits.clone().try_acquire_owned() else {
            tracing::warn!(
                connections = shared.presence.here(),
                "connection ceiling reached: upgrade refused"
            );
            return Err(Refused::Full);
        };
        let (user, session) = (who.user_id, who.session);
        // Their markers this node took and has not written yet go first, so
        // the rooms read next are not behind what their other tabs were told.
        shared.markers.write_now(user).await;
        // The user's rooms, with the log's position they reflect: the index
        // replays what changed since, so a join racing this is not missed.
        let (at, rooms) = shared.store.rooms_for(user, &who.username).await.map_err(|e| {
            tracing::warn!(error = %e, "could not read a user's rooms");
            Refused::Unavailable
        })?;
        let member_of: Vec<i64> = rooms.iter().filter(|r| r.member && r.id != LOBBY).map(|r| r.id).collect();
        shared.markers.known(user, rooms.iter().filter(|r| r.member).map(|r| (r.id, r.last_read)));
        let lobby_read = rooms.iter().find(|r| r.id == LOBBY).map_or(0, |r| r.last_read);
        let events = shared.events.subscribe();
        let online = shared.presence.online(&who.username);
        let (seat, count) = shared.presence.admit(who).await?;
        let watch = shared.revocation.watch(session, user);
        // From here the inbox gets everything after the history snapshot,
        // which is taken under the same hold.
        let inbox = Arc::new(Inbox::new(shared.settings.event_backlog));
        let (attached, snapshot) = shared.index.attach(user, member_of, at, inbox.clone(), |theirs| {
            let snapshot = shared.history.snapshot(since, |room| room == LOBBY || theirs.contains(&room));
            // Under the same hold: nothing is delivered before it knows.
            inbox.seen(snapshot.last_id, at);
            snapshot
        });
        let greeting = vec![
            count.frame.clone(),
            online.frame,
            rooms_frame(&rooms),
            read_marker_frame(LOBBY, lobby_read),
            snapshot.frame,
        ];
        Ok(Opened {
            realtime: self.clone(),
            events,
            inbox,
            attached,
            seat,
            count,
            session: watch,
            permit,
            greeting,
            online_reflects: online.position,
        })
    }

    /// Waits until this node's sockets have been given every change of the
    /// log committed so far (at most `CAUGHT_UP_WITHIN`). A change to rooms
    /// (committed by the store, not the writer) is answered after it: by
    /// then the user's sockets here are in the rooms they were told they
    /// joined, and out of those they were told they left, so a tab can write
    /// to a room the moment it is made or joined and is refused one it was
    /// removed from. Other nodes follow within their notification's latency.
    pub async fn caught_up(&self) {
        let shared = &self.0;
        let head = match shared.store.log_head().await {
            Ok(head) => head,
            Err(e) => {
                tracing::debug!(error = %e, "could not read the log's head");
                return;
            }
        };
        shared.wake.notify_one();
        if !shared.published.clone().reach(head, CAUGHT_UP_WITHIN).await {
            tracing::warn!(head, "a change was answered before this node's sockets were given it");
        }
    }

    /// The part that closes sockets when sessions end, to register with
    /// `sessions::Endings`.
    pub fn endings(&self) -> Arc<dyn OnEnding> {
        Arc::new(self.0.revocation.clone())
    }

    /// Checks the sessions of this node's sockets against the database now
    /// (after a gap in the notifications).
    pub async fn sweep(&self) {
        self.0.revocation.sweep().await;
    }

    /// Open authenticated connections on this node.
    pub fn connections_here(&self) -> usize {
        self.0.presence.here()
    }

    /// This node's name in the cluster (`None`: a single server).
    pub fn node_name(&self) -> Option<&str> {
        self.0.node_name.as_deref()
    }

    /// Users with a socket open, on the whole cluster.
    pub fn online_users(&self) -> usize {
        self.0.presence.online_users()
    }

    /// Which of `users` have a socket open, on any node (for Web Push: only
    /// a user with none is pushed).
    pub async fn with_sockets(&self, users: &[i64]) -> Result<std::collections::HashSet<i64>, StoreError> {
        self.0.presence.with_sockets(users).await
    }

    /// The log's position this node has published to its sockets, to
    /// follow: it moves after every change read back, on every node.
    pub fn published(&self) -> tokio::sync::watch::Receiver<i64> {
        self.0.published.watch()
    }

    /// Is this user (by name, in any case) online anywhere?
    pub fn is_online(&self, username: &str) -> bool {
        self.0.presence.is_online(username)
    }

    /// Sends an upload's message: its file (stored already) with an
    /// optional caption, in the room's order like any message (see
    /// [`Writer::post_file`]).
    pub async fn post_file(
        &self,
        user_id: i64,
        room: i64,
        caption: Option<&crate::domain::ChatText>,
        file: &crate::store::NewFile,
        per_hour: u32,
    ) -> Result<crate::store::UploadOutcome, StoreError> {
        let caption = caption.map_or("", |text| text.as_str());
        self.0.writer.post_file(user_id, room, caption, file, per_hour).await
    }

    /// How long after sending a message its author may edit it.
    pub fn edit_window(&self) -> Duration {
        self.0.settings.edit_window
    }

    pub fn settings(&self) -> &RealtimeSettings {
        &self.0.settings
    }

    /// The first half of shutdown: commit what is queued and publish it, then
    /// close every socket with 1001 and wait for them to go; all within `budget`.
    pub async fn close_sockets(&self, budget: Duration) {
        let shared = &self.0;
        let deadline = tokio::time::Instant::now() + budget;
        // What this node committed goes out before the goodbye.
        let committed = tokio::time::timeout_at(deadline, shared.writer.flush()).await.unwrap_or(0);
        if !shared.published.clone().reach(committed, budget / 2).await {
            tracing::warn!(committed, "shutting down before this node's last messages were read back");
        }
        // Cancelled first: a socket that subscribes after the event was
        // published sees the token instead.
        shared.shutdown.cancel();
        shared.events.publish(stream::Event::Shutdown);
        while shared.presence.here() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The second half: the writer commits what came meanwhile, and stops.
    pub async fn finish_writes(&self, budget: Duration) {
        self.0.writer.finish(budget).await;
    }
}

/// Logout closes a session's sockets at once; this catches the rest:
/// sessions that expired, or were ended where no notification reached us.
async fn sweep_sessions(
    revocation: Revocation,
    allowance: ChatAllowance,
    every: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        revocation.sweep().await;
        allowance.forget_full();
    }
}
