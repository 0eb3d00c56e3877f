//! Which sockets belong to which session, so ending a session closes them.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU16, Ordering},
    },
};

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tower_sessions::{SessionStore, session::Id as SessionId};

use crate::{
    realtime::protocol::close,
    store::DatabaseSessions,
    web::activity::{SessionPolicy, pushed_expiry},
};

#[derive(Default)]
pub struct Registry {
    /// Session → its live sockets. A std Mutex: `Watch` releases in `Drop`.
    sessions: Mutex<HashMap<SessionId, Entry>>,
}

struct Entry {
    sockets: usize,
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

impl Registry {
    fn entries(&self) -> MutexGuard<'_, HashMap<SessionId, Entry>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn watch(self: &Arc<Self>, session: SessionId) -> Watch {
        let mut entries = self.entries();
        let entry = entries.entry(session).or_insert_with(|| Entry {
            sockets: 0,
            ended: Arc::new(Ended {
                token: CancellationToken::new(),
                code: AtomicU16::new(close::SESSION_ENDED),
            }),
        });
        entry.sockets += 1;
        Watch { registry: self.clone(), session, ended: entry.ended.clone() }
    }

    /// Closes every socket of `session` with `code`.
    pub fn end(&self, session: &SessionId, code: u16) {
        if let Some(entry) = self.entries().remove(session) {
            entry.ended.code.store(code, Ordering::Relaxed);
            entry.ended.token.cancel();
        }
    }

    /// Closes every socket here with `code` (a node fencing itself).
    pub fn end_all(&self, code: u16) {
        for (_, entry) in self.entries().drain() {
            entry.ended.code.store(code, Ordering::Relaxed);
            entry.ended.token.cancel();
        }
    }

    /// The sessions that have sockets here.
    pub fn live(&self) -> Vec<SessionId> {
        self.entries().keys().copied().collect()
    }

    fn unregister(&self, session: &SessionId, ended: &Arc<Ended>) {
        let mut entries = self.entries();
        if let Some(entry) = entries.get_mut(session)
            && Arc::ptr_eq(&entry.ended, ended)
        {
            entry.sockets -= 1;
            if entry.sockets == 0 {
                entries.remove(session);
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

/// Checks each session with sockets here against the database itself and
/// closes those that are gone or expired; the others, being in use, are
/// kept from idling out. A database that does not answer gives no verdict:
/// the sessions stay, and the next sweep tries again.
pub async fn sweep(registry: &Registry, store: &DatabaseSessions, policy: &SessionPolicy) {
    for session in registry.live() {
        match store.load(&session).await {
            Ok(Some(mut record)) if record.expiry_date > time::OffsetDateTime::now_utc() => {
                if let Some(expiry) = pushed_expiry(&record, policy) {
                    record.expiry_date = expiry;
                    if let Err(e) = store.save(&record).await {
                        tracing::debug!(error = %e, "could not keep a session with open sockets alive");
                    }
                }
            }
            Ok(_) => registry.end(&session, close::SESSION_ENDED),
            Err(e) => {
                tracing::warn!(error = %e, "could not check sessions");
                return;
            }
        }
    }
}
