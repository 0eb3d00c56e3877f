//! This node's index of who is where: every socket here (the lobby is
//! everyone's), each user's sockets and rooms, and each room's users here.
//! A delivery to a room walks that room's users here and their sockets,
//! and nothing else: a message to a small room costs every other socket
//! nothing.
//!
//! The follower keeps the rooms in step with the log (a join, a leave, an
//! archive are events of the log, applied in order with the messages), so
//! after a socket is told `room left` nothing more of that room reaches it.
//! A user's rooms are read from the database when their first socket here
//! opens, with the log's position they reflect; the membership changes the
//! follower applied after that position (it keeps the last few thousand)
//! are replayed for them, with the frames that told the others, so a join
//! or a leave that raced the connect is neither missed nor seen twice.
//! While they have a socket here, the log keeps their rooms.
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

use super::inbox::Inbox;
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
    /// The latest membership changes applied, oldest first.
    recent: VecDeque<Moved>,
}

/// A membership change as applied: at `seq`, `user` (`None`: everyone, an
/// archive) came into or left `room`; `frame` is what they were told.
struct Moved {
    seq: i64,
    user: Option<i64>,
    room: i64,
    joined: bool,
    frame: Utf8Bytes,
}

/// Membership changes kept for replay: far more than happen between a
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
    /// at log position `at`, unless sockets of theirs here already keep
    /// them; the changes applied after `at` are replayed into its inbox.
    /// Then runs `then` with the user's rooms, under the same hold (nothing
    /// is delivered in between).
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
        let first = !users.contains_key(&user);
        let here =
            users.entry(user).or_insert_with(|| UserHere { sockets: Vec::new(), rooms: HashSet::new() });
        here.sockets.push(id);
        if first {
            here.rooms = rooms.into_iter().collect();
        }
        for moved in recent.iter().filter(|m| m.seq > at && m.user.is_none_or(|u| u == user)) {
            if first {
                if moved.joined {
                    here.rooms.insert(moved.room);
                } else {
                    here.rooms.remove(&moved.room);
                }
            }
            inbox.push((moved.seq, moved.frame.clone()));
        }
        if first {
            for room in &here.rooms {
                by_room.entry(*room).or_default().insert(user);
            }
        }
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
    pub fn each_in(&self, room: i64, except: Option<i64>, mut f: impl FnMut(i64, &Inbox)) {
        let state = self.read();
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

    /// At `seq`, `user` came into `room`; `frame` tells them (it goes to
    /// their sockets here).
    pub fn joined(&self, seq: i64, user: i64, room: i64, frame: Utf8Bytes) {
        let mut state = self.write();
        let State { users, rooms, sockets, .. } = &mut *state;
        if let Some(here) = users.get_mut(&user) {
            if here.rooms.insert(room) {
                rooms.entry(room).or_default().insert(user);
            }
            push_all(sockets, &here.sockets, seq, &frame);
        }
        Self::remember(&mut state, Moved { seq, user: Some(user), room, joined: true, frame });
    }

    /// At `seq`, `user` left `room` (or was removed); `frame` tells them.
    pub fn left(&self, seq: i64, user: i64, room: i64, frame: Utf8Bytes) {
        let mut state = self.write();
        let State { users, rooms, sockets, .. } = &mut *state;
        if let Some(here) = users.get_mut(&user) {
            here.rooms.remove(&room);
            push_all(sockets, &here.sockets, seq, &frame);
        }
        if let Some(members) = rooms.get_mut(&room) {
            members.remove(&user);
            if members.is_empty() {
                rooms.remove(&room);
            }
        }
        Self::remember(&mut state, Moved { seq, user: Some(user), room, joined: false, frame });
    }

    /// At `seq`, `room` was archived: nobody is in it any more, and its
    /// members here are told `frame`.
    pub fn archived(&self, seq: i64, room: i64, frame: Utf8Bytes) {
        let mut state = self.write();
        let State { users, rooms, sockets, .. } = &mut *state;
        for user in rooms.remove(&room).unwrap_or_default() {
            if let Some(here) = users.get_mut(&user) {
                here.rooms.remove(&room);
                push_all(sockets, &here.sockets, seq, &frame);
            }
        }
        Self::remember(&mut state, Moved { seq, user: None, room, joined: false, frame });
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
        assert_eq!(take(&a), vec![12], "told");
        index.deliver(7, 13, &"m".into(), None);
        assert_eq!(take(&a), Vec::<i64>::new(), "after leaving, nothing of the room");
        index.joined(14, 2, 7, "joined".into());
        index.deliver(7, 15, &"m".into(), Some(1));
        assert_eq!(take(&b), vec![14, 15]);
        drop(gc);
        assert!(index.is_here(1));
        index.archived(16, 7, "gone".into());
        assert!(!index.is_member(2, 7));
        assert_eq!(take(&b), vec![16]);
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
        assert_eq!(take(&inbox), vec![11], "told of the join");
        let later = Arc::new(Inbox::new(16));
        let (_g6, _) = index.attach(6, vec![], 11, later.clone(), |_| ());
        assert_eq!(take(&later), Vec::<i64>::new(), "nothing of others, nothing already read");
    }
}
