//! This node's index of who is where: every socket here (the lobby is
//! everyone's), each user's sockets and rooms, and each room's users here.
//! A delivery to a room walks that room's users here and their sockets,
//! and nothing else: a message to a small room costs every other socket
//! nothing.
//!
//! The follower keeps the rooms in step with the log (a join, a leave, an
//! archive are events of the log, applied in order with the messages), so
//! after a socket is told `room left` nothing more of that room reaches it.
//! A user's rooms are read from the database when a socket of theirs
//! opens, with the log's position they reflect (its greeting's `rooms`);
//! the rooms' events the follower applied after that position (it keeps
//! the last few thousand) are replayed to it, with the frames that told
//! the others, so a join, a leave, a rename or an archive that raced the
//! connect is neither missed nor seen twice. While they have a socket
//! here, the log keeps their rooms.
//!
//! One lock for all of it: deliveries take it shared (many at once), a
//! membership change or a socket arriving or leaving takes it alone. A
//! socket's arrival and the history snapshot it is sent are taken under the
//! same hold, so what the history has and what the inbox gets meet exactly.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard},
};

use tungstenite::Utf8Bytes;

use super::inbox::{Inbox, room_event};
use crate::domain::LOBBY;

#[derive(Default)]
pub struct RoomIndex {
    state: RwLock<State>,
}

#[derive(Default)]
pub(super) struct State {
    sockets: HashMap<u64, (i64, Arc<Inbox>)>,
    users: HashMap<i64, UserHere>,
    rooms: HashMap<i64, HashSet<i64>>,
    next: u64,
    /// The latest rooms' events applied, oldest first.
    recent: VecDeque<Moved>,
}

/// A room's event as applied: at `seq`, in `room`, `change`; `frame` is
/// what those it concerned were told.
struct Moved {
    seq: i64,
    room: i64,
    change: Change,
    frame: Utf8Bytes,
}

enum Change {
    /// This user came into the room (they are told).
    Joined(i64),
    /// This user left it or was removed (they are told).
    Left(i64),
    /// Nobody is in it any more (its members are told).
    Archived,
    /// Its members but `except` are told (a rename, another's join or leave).
    News { except: Option<i64> },
}

/// Rooms' events kept for replay: far more than happen between a
/// connect's read of the database and its arrival here.
const RECENT: usize = 4096;

struct UserHere {
    sockets: Vec<u64>,
    /// The rooms they are in, the lobby aside.
    rooms: HashSet<i64>,
}

/// A socket's place in the index; dropping it takes the socket out.
pub struct Attached {
    index: Arc<RoomIndex>,
    id: u64,
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.index.detach(self.id);
    }
}

impl RoomIndex {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a socket of `user`, whose rooms (the lobby aside) were `rooms`
    /// at log position `at` (what its greeting says), and takes them as the
    /// user's unless sockets of theirs here already keep them. The rooms'
    /// events applied after `at` that concern the user, as the greeting
    /// left them, are replayed into its inbox. Then runs `then` with the
    /// user's rooms, under the same hold (nothing is delivered in between).
    pub fn attach<T>(
        self: &Arc<Self>,
        user: i64,
        rooms: Vec<i64>,
        at: i64,
        inbox: Arc<Inbox>,
        then: impl FnOnce(&HashSet<i64>) -> T,
    ) -> (Attached, T) {
        let mut state = self.write();
        let id = state.next;
        state.next += 1;
        state.sockets.insert(id, (user, inbox.clone()));
        let State { users, rooms: by_room, recent, .. } = &mut *state;
        // The greeting's rooms, moved along the events after them.
        let mut theirs: HashSet<i64> = rooms.into_iter().collect();
        for moved in recent.iter().filter(|m| m.seq > at) {
            let tell = match moved.change {
                Change::Joined(u) if u == user => {
                    theirs.insert(moved.room);
                    true
                }
                Change::Left(u) if u == user => {
                    theirs.remove(&moved.room);
                    true
                }
                Change::Joined(_) | Change::Left(_) => false,
                // Told only if the greeting had it (an archive of a room they
                // were never in says nothing to them).
                Change::Archived => theirs.remove(&moved.room),
                Change::News { except } => except != Some(user) && theirs.contains(&moved.room),
            };
            if tell {
                inbox.push((room_event(moved.seq), moved.frame.clone()));
            }
        }
        let here = users.entry(user).or_insert_with(|| {
            for room in &theirs {
                by_room.entry(*room).or_default().insert(user);
            }
            UserHere { sockets: Vec::new(), rooms: theirs }
        });
        here.sockets.push(id);
        let out = then(&here.rooms);
        (Attached { index: self.clone(), id }, out)
    }

    fn remember(state: &mut State, moved: Moved) {
        if state.recent.len() >= RECENT {
            state.recent.pop_front();
        }
        state.recent.push_back(moved);
    }

    fn detach(&self, id: u64) {
        let mut state = self.write();
        let Some((user, _)) = state.sockets.remove(&id) else { return };
        let State { users, rooms, .. } = &mut *state;
        if let Some(here) = users.get_mut(&user) {
            here.sockets.retain(|s| *s != id);
            if here.sockets.is_empty() {
                for room in &here.rooms {
                    if let Some(members) = rooms.get_mut(room) {
                        members.remove(&user);
                        if members.is_empty() {
                            rooms.remove(room);
                        }
                    }
                }
                users.remove(&user);
            }
        }
    }

    /// Is `user` (with a socket here) in `room`? The lobby: always.
    pub fn is_member(&self, user: i64, room: i64) -> bool {
        room == LOBBY || self.read().users.get(&user).is_some_and(|u| u.rooms.contains(&room))
    }

    /// Runs `f` with the user's rooms here (`None`: no socket of theirs here).
    pub fn rooms_of<T>(&self, user: i64, f: impl FnOnce(Option<&HashSet<i64>>) -> T) -> T {
        f(self.read().users.get(&user).map(|u| &u.rooms))
    }

    /// At `seq`, news of `room` (a rename, a member joined or left): its
    /// members' sockets here but those of `except` are told `frame`, and so
    /// is a socket whose greeting was read before it.
    pub fn news(&self, seq: i64, room: i64, frame: Utf8Bytes, except: Option<i64>) {
        let mut state = self.write();
        each_in(&state, room, except, |_, inbox| inbox.push((room_event(seq), frame.clone())));
        Self::remember(&mut state, Moved { seq, room, change: Change::News { except }, frame });
    }

    /// Sends `frame` to every socket here of the members of `room` (the
    /// lobby: every socket), but those of `except`.
    pub fn deliver(&self, room: i64, seq: i64, frame: &Utf8Bytes, except: Option<i64>) {
        self.each_in(room, except, |_, inbox| inbox.push((seq, frame.clone())));
    }

    /// Sends `frame` to every socket here of `user`.
    pub fn deliver_user(&self, user: i64, seq: i64, frame: &Utf8Bytes) {
        let state = self.read();
        let Some(here) = state.users.get(&user) else { return };
        for id in &here.sockets {
            if let Some((_, inbox)) = state.sockets.get(id) {
                inbox.push((seq, frame.clone()));
            }
        }
    }

    /// Runs `f` for every socket here in `room` (the lobby: every socket),
    /// but those of `except`, with its user.
    pub fn each_in(&self, room: i64, except: Option<i64>, f: impl FnMut(i64, &Inbox)) {
        each_in(&self.read(), room, except, f);
    }

    /// At `seq`, `user` came into `room`; `frame` tells them (it goes to
    /// their sockets here).
    pub fn joined(&self, seq: i64, user: i64, room: i64, frame: Utf8Bytes) {
        let mut state = self.write();
        let State { users, rooms, sockets, .. } = &mut *state;
        if let Some(here) = users.get_mut(&user) {
            if here.rooms.insert(room) {
                rooms.entry(room).or_default().insert(user);
            }
            push_all(sockets, &here.sockets, room_event(seq), &frame);
        }
        Self::remember(&mut state, Moved { seq, room, change: Change::Joined(user), frame });
    }

    /// At `seq`, `user` left `room` (or was removed); `frame` tells them.
    pub fn left(&self, seq: i64, user: i64, room: i64, frame: Utf8Bytes) {
        let mut state = self.write();
        let State { users, rooms, sockets, .. } = &mut *state;
        if let Some(here) = users.get_mut(&user) {
            here.rooms.remove(&room);
            push_all(sockets, &here.sockets, room_event(seq), &frame);
        }
        if let Some(members) = rooms.get_mut(&room) {
            members.remove(&user);
            if members.is_empty() {
                rooms.remove(&room);
            }
        }
        Self::remember(&mut state, Moved { seq, room, change: Change::Left(user), frame });
    }

    /// At `seq`, `room` was archived: nobody is in it any more, and its
    /// members here are told `frame`.
    pub fn archived(&self, seq: i64, room: i64, frame: Utf8Bytes) {
        let mut state = self.write();
        let State { users, rooms, sockets, .. } = &mut *state;
        for user in rooms.remove(&room).unwrap_or_default() {
            if let Some(here) = users.get_mut(&user) {
                here.rooms.remove(&room);
                push_all(sockets, &here.sockets, room_event(seq), &frame);
            }
        }
        Self::remember(&mut state, Moved { seq, room, change: Change::Archived, frame });
    }

    /// The users here in `room` (the lobby: everyone with a socket here).
    pub fn users_in(&self, room: i64) -> Vec<i64> {
        let state = self.read();
        if room == LOBBY {
            return state.users.keys().copied().collect();
        }
        state.rooms.get(&room).map(|m| m.iter().copied().collect()).unwrap_or_default()
    }

    /// Does `user` have a socket here?
    pub fn is_here(&self, user: i64) -> bool {
        self.read().users.contains_key(&user)
    }
}

fn each_in(state: &State, room: i64, except: Option<i64>, mut f: impl FnMut(i64, &Inbox)) {
    if room == LOBBY {
        for (user, inbox) in state.sockets.values() {
            if Some(*user) != except {
                f(*user, inbox);
            }
        }
        return;
    }
    let Some(members) = state.rooms.get(&room) else { return };
    for user in members {
        if Some(*user) == except {
            continue;
        }
        let Some(here) = state.users.get(user) else { continue };
        for id in &here.sockets {
            if let Some((_, inbox)) = state.sockets.get(id) {
                f(*user, inbox);
            }
        }
    }
}

fn push_all(sockets: &HashMap<u64, (i64, Arc<Inbox>)>, ids: &[u64], seq: i64, frame: &Utf8Bytes) {
    for id in ids {
        if let Some((_, inbox)) = sockets.get(id) {
            inbox.push((seq, frame.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::inbox::Taken;

    fn take(inbox: &Inbox) -> Vec<i64> {
        let waker = std::task::Waker::noop();
        match inbox.poll_take(&mut std::task::Context::from_waker(waker)) {
            std::task::Poll::Ready(Taken::Items(items)) => items.into_iter().map(|i| i.0).collect(),
            _ => vec![],
        }
    }

    #[test]
    fn a_room_reaches_its_members_here_and_nobody_else() {
        let index = Arc::new(RoomIndex::default());
        let (a, b, c) = (Arc::new(Inbox::new(16)), Arc::new(Inbox::new(16)), Arc::new(Inbox::new(16)));
        let (_ga, rooms) = index.attach(1, vec![7], 0, a.clone(), |rooms| rooms.clone());
        assert!(rooms.contains(&7));
        let (_gb, _) = index.attach(2, vec![], 0, b.clone(), |_| ());
        let (gc, _) = index.attach(1, vec![99], 0, c.clone(), |rooms| {
            assert!(!rooms.contains(&99), "kept by the first tab")
        });
        index.deliver(7, 10, &"m".into(), None);
        index.deliver(LOBBY, 11, &"l".into(), None);
        assert_eq!(take(&a), vec![10, 11]);
        assert_eq!(take(&b), vec![11], "not in room 7");
        assert_eq!(take(&c), vec![10, 11], "every tab of a member");

        index.left(12, 1, 7, "left".into());
        assert_eq!(take(&a), vec![room_event(12)], "told, as a room's event");
        index.deliver(7, 13, &"m".into(), None);
        assert_eq!(take(&a), Vec::<i64>::new(), "after leaving, nothing of the room");
        index.joined(14, 2, 7, "joined".into());
        index.deliver(7, 15, &"m".into(), Some(1));
        assert_eq!(take(&b), vec![room_event(14), 15]);
        drop(gc);
        assert!(index.is_here(1));
        index.archived(16, 7, "gone".into());
        assert!(!index.is_member(2, 7));
        assert_eq!(take(&b), vec![room_event(16)]);
    }

    #[test]
    fn a_connect_that_raced_a_join_gets_the_room_and_its_news() {
        let index = Arc::new(RoomIndex::default());
        let elsewhere = Arc::new(Inbox::new(16));
        let (_g, _) = index.attach(9, vec![], 0, elsewhere, |_| ());
        // User 5 read their rooms at position 10; joined room 7 at 11, before arriving.
        index.joined(11, 5, 7, "joined".into());
        let inbox = Arc::new(Inbox::new(16));
        let (_g5, rooms) = index.attach(5, vec![], 10, inbox.clone(), |rooms| rooms.clone());
        assert!(rooms.contains(&7));
        assert_eq!(take(&inbox), vec![room_event(11)], "told of the join");
        let later = Arc::new(Inbox::new(16));
        let (_g6, _) = index.attach(6, vec![], 11, later.clone(), |_| ());
        assert_eq!(take(&later), Vec::<i64>::new(), "nothing of others, nothing already read");
    }

    #[test]
    fn a_connect_that_raced_a_rooms_news_gets_what_its_rooms_lacked_and_nothing_else() {
        let index = Arc::new(RoomIndex::default());
        let (_g, _) = index.attach(9, vec![7, 8], 0, Arc::new(Inbox::new(16)), |_| ());
        // User 5 read their rooms (7) at position 10; then, before arriving:
        index.news(11, 7, "7 renamed".into(), None);
        index.news(12, 8, "8 renamed".into(), None);
        index.news(13, 7, "5 joined 7".into(), Some(5));
        index.archived(14, 8, "8 archived".into());
        index.joined(15, 5, 3, "5 joined 3".into());
        index.news(16, 3, "3 renamed".into(), None);
        index.archived(17, 7, "7 archived".into());
        let inbox = Arc::new(Inbox::new(16));
        let (_g5, rooms) = index.attach(5, vec![7], 10, inbox.clone(), |rooms| rooms.clone());
        assert_eq!(rooms, HashSet::from([3]));
        assert_eq!(
            take(&inbox),
            [11, 15, 16, 17].map(room_event),
            "the news of its rooms, not of room 8 it was never in, nor its own join told to others"
        );
    }
}
