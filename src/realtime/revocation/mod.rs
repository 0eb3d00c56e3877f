//! Revocation: when a session ends (logout, expiry, a ban, a password
//! change, an "end" on the account page), every socket opened with it
//! closes. One interface, two implementations:
//!
//! - [`Revocation::Local`]: one server. The handler that ends a session
//!   closes its sockets here at once; a periodic sweep catches expiry.
//! - [`Revocation::Cluster`]: many nodes. Deleting a session row also
//!   notifies every node, in the same transaction (`store::sessions`); each
//!   node closes its sockets of it and forgets any cached copy
//!   ([`ClusterRevocation::heard`]). A node whose listener missed
//!   notifications forgets every cached session and sweeps its sessions
//!   against the database as soon as it listens again.

mod cluster;
mod registry;

use std::sync::Arc;

pub use cluster::ClusterRevocation;
pub use registry::{Registry, Watch};
use tower_sessions::session::Id as SessionId;

use crate::{accounts::UserCache, session_cache::Sessions, store::Ending, web::activity::SessionPolicy};

#[derive(Clone)]
pub enum Revocation {
    Local(Arc<Core>),
    Cluster(Arc<ClusterRevocation>),
}

/// What both have: the sockets of each session here, the sessions (read
/// from the database itself, never a cache, when sweeping; written through
/// the cache, so it agrees), and how long sessions live (an open socket keeps
/// its session from idling out).
pub struct Core {
    registry: Arc<Registry>,
    sessions: Sessions,
    /// Cached accounts: an ending that names a user forgets theirs.
    users: UserCache,
    policy: SessionPolicy,
}

impl Core {
    pub fn new(sessions: Sessions, users: UserCache, policy: SessionPolicy) -> Self {
        Self { registry: Arc::default(), sessions, users, policy }
    }

    /// Carries out an ending here: forgets the sessions and the account it
    /// names, and closes their sockets (code 0 closes nothing: the account
    /// changed, and a ban may have been lifted).
    pub(super) async fn apply(&self, ending: &Ending) {
        for session in &ending.sessions {
            self.sessions.forget(session);
            if ending.code != 0 {
                self.registry.end(session, ending.code);
            }
        }
        if let Some(user) = ending.user {
            self.users.forget(user).await;
            match ending.code {
                0 => self.registry.welcome_user(user),
                code => self.registry.end_user(user, code, ending.except),
            }
        }
    }
}

impl Revocation {
    fn core(&self) -> &Core {
        match self {
            Revocation::Local(core) => core,
            Revocation::Cluster(cluster) => cluster.core(),
        }
    }

    /// Registers a socket of `session` (of `user_id`); it is told when the session ends.
    pub fn watch(&self, session: SessionId, user_id: i64) -> Watch {
        self.core().registry.watch(session, user_id)
    }

    /// Carries out an ending on this node at once. On a cluster every node
    /// (this one too) also hears of it from the database, which announced it
    /// in the transaction that made it.
    pub async fn apply(&self, ending: &Ending) {
        self.core().apply(ending).await;
    }

    /// Closes this node's sockets of `session` with `code`. On a cluster the
    /// other nodes hear of it from the database (the row's deletion notifies).
    pub fn end_here(&self, session: &SessionId, code: u16) {
        self.core().registry.end(session, code);
    }

    /// Closes every socket here with `code` (shutdown, or a node fencing itself).
    pub fn end_all_here(&self, code: u16) {
        self.core().registry.end_all(code);
    }

    /// Checks every session with a socket here against the database and
    /// closes the sockets of those that are gone or expired.
    pub async fn sweep(&self) {
        let core = self.core();
        registry::sweep(&core.registry, &core.sessions, &core.policy).await;
    }
}
