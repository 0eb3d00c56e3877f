//! Which sockets belong to which session (and user), so ending a session,
//! or all of a user's, closes them.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU16, Ordering},
    },
};

use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tower_sessions::session::Id as SessionId;

use crate::realtime::wire::close;

#[derive(Default)]
pub struct Registry {
    /// Session → its live sockets, and the sessions ended lately. A std
    /// Mutex: `Watch` releases in `Drop`.
    sessions: Mutex<Registered>,
}

#[derive(Default)]
struct Registered {
    live: HashMap<SessionId, Entry>,
    /// Sessions ended in the last `REMEMBER_ENDED`, with their close code: an
    /// upgrade that loaded its session just before the session ended
    /// registers just after, and must be told at once.
    ended: HashMap<SessionId, (Instant, u16)>,
    /// Users banned in the last `REMEMBER_ENDED`, likewise (until unbanned).
    banned: HashMap<i64, (Instant, u16)>,
}

/// Longer than any upgrade takes between loading its session and registering.
const REMEMBER_ENDED: std::time::Duration = std::time::Duration::from_secs(60);

struct Entry {
    sockets: usize,
    user_id: i64,
    ended: Arc<Ended>,
}

/// Cancelled when the session ends; `code` says how its sockets close.
struct Ended {
    token: CancellationToken,
    code: AtomicU16,
}

/// One socket's registration. The future it gives resolves when the
/// session ends; dropping it unregisters the socket.
pub struct Watch {
    registry: Arc<Registry>,
    session: SessionId,
    ended: Arc<Ended>,
}

impl Ended {
    fn new(code: u16) -> Arc<Self> {
        Arc::new(Self { token: CancellationToken::new(), code: AtomicU16::new(code) })
    }

    fn end(&self, code: u16) {
        self.code.store(code, Ordering::Relaxed);
        self.token.cancel();
    }
}

impl Registry {
    fn sessions(&self) -> MutexGuard<'_, Registered> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn watch(self: &Arc<Self>, session: SessionId, user_id: i64) -> Watch {
        let mut sessions = self.sessions();
        if let Some((_, code)) = sessions.ended.get(&session).or_else(|| sessions.banned.get(&user_id)) {
            // Ended while this socket was being opened.
            let ended = Ended::new(*code);
            ended.end(*code);
            return Watch { registry: self.clone(), session, ended };
        }
        let entry = sessions.live.entry(session).or_insert_with(|| Entry {
            sockets: 0,
            user_id,
            ended: Ended::new(close::SESSION_ENDED),
        });
        entry.sockets += 1;
        Watch { registry: self.clone(), session, ended: entry.ended.clone() }
    }

    /// Closes every socket of `session` with `code`, including any still
    /// being opened.
    pub fn end(&self, session: &SessionId, code: u16) {
        let mut sessions = self.sessions();
        let now = Instant::now();
        sessions.ended.retain(|_, (at, _)| now.duration_since(*at) < REMEMBER_ENDED);
        sessions.ended.insert(*session, (now, code));
        if let Some(entry) = sessions.live.remove(session) {
            entry.ended.end(code);
        }
    }

    /// Closes every socket of `user_id` but those of session `except`. A
    /// ban (no `except`) is remembered, for sockets being opened meanwhile.
    pub fn end_user(&self, user_id: i64, code: u16, except: Option<SessionId>) {
        let mut sessions = self.sessions();
        let now = Instant::now();
        if except.is_none() {
            sessions.banned.retain(|_, (at, _)| now.duration_since(*at) < REMEMBER_ENDED);
            sessions.banned.insert(user_id, (now, code));
        }
        let theirs: Vec<SessionId> = sessions
            .live
            .iter()
            .filter(|(session, entry)| entry.user_id == user_id && Some(**session) != except)
            .map(|(session, _)| *session)
            .collect();
        for session in theirs {
            if let Some(entry) = sessions.live.remove(&session) {
                entry.ended.end(code);
            }
        }
    }

    /// The user was unbanned: new sockets of theirs are welcome again.
    pub fn welcome_user(&self, user_id: i64) {
        self.sessions().banned.remove(&user_id);
    }

    /// Closes every socket here with `code` (shutdown, or a node fencing
    /// itself): the sessions themselves live on.
    pub fn end_all(&self, code: u16) {
        for (_, entry) in self.sessions().live.drain() {
            entry.ended.end(code);
        }
    }

    /// The sessions that have sockets here.
    pub fn live(&self) -> Vec<SessionId> {
        self.sessions().live.keys().copied().collect()
    }

    fn unregister(&self, session: &SessionId, ended: &Arc<Ended>) {
        let mut sessions = self.sessions();
        if let Some(entry) = sessions.live.get_mut(session)
            && Arc::ptr_eq(&entry.ended, ended)
        {
            entry.sockets -= 1;
            if entry.sockets == 0 {
                sessions.live.remove(session);
            }
        }
    }
}

impl Watch {
    /// Resolves when the session ends (registered once, polled by reference).
    pub fn ended(&self) -> WaitForCancellationFutureOwned {
        self.ended.token.clone().cancelled_owned()
    }

    /// The close code of the ending (valid once `ended` resolved).
    pub fn code(&self) -> u16 {
        self.ended.code.load(Ordering::Relaxed)
    }

    pub fn session(&self) -> &SessionId {
        &self.session
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.registry.unregister(&self.session, &self.ended);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_session_ended_before_its_socket_registered_is_ended_at_once() {
        let registry = Arc::new(Registry::default());
        let session = SessionId::default();
        registry.end(&session, close::SESSION_ENDED);
        let watch = registry.watch(session, 1);
        tokio::time::timeout(std::time::Duration::from_millis(100), watch.ended())
            .await
            .expect("ended at once");
        assert_eq!(watch.code(), close::SESSION_ENDED);
        assert!(registry.live().is_empty());
    }

    #[tokio::test]
    async fn ending_closes_that_sessions_sockets_only() {
        let registry = Arc::new(Registry::default());
        let (a, b) = (SessionId::default(), SessionId::default());
        let (wa, wb) = (registry.watch(a, 1), registry.watch(b, 2));
        registry.end(&a, 4403);
        wa.ended().await;
        assert_eq!(wa.code(), 4403);
        assert!(!wb.ended.token.is_cancelled());
        drop(wb);
        assert!(registry.live().is_empty(), "the last socket gone, the entry goes too");
    }

    #[tokio::test]
    async fn ending_a_user_closes_their_other_sessions_and_a_ban_holds() {
        let registry = Arc::new(Registry::default());
        let (keep, other, stranger) = (SessionId::default(), SessionId::default(), SessionId::default());
        let (wk, wo, ws) = (registry.watch(keep, 1), registry.watch(other, 1), registry.watch(stranger, 2));
        registry.end_user(1, close::SESSION_ENDED, Some(keep));
        wo.ended().await;
        assert!(!wk.ended.token.is_cancelled(), "the session that asked stays");
        assert!(!ws.ended.token.is_cancelled(), "other users are not touched");
        let again = registry.watch(SessionId::default(), 1);
        assert!(!again.ended.token.is_cancelled(), "a password change is not a ban");

        registry.end_user(1, close::BANNED, None);
        wk.ended().await;
        again.ended().await;
        assert_eq!(wk.code(), close::BANNED);
        let late = registry.watch(SessionId::default(), 1);
        assert!(late.ended.token.is_cancelled(), "a socket opened just after a ban is closed at once");
        registry.welcome_user(1);
        assert!(!registry.watch(SessionId::default(), 1).ended.token.is_cancelled());
    }
}
