//! Revocation: when a session ends (logout, expiry, a ban, a password
//! change, an "end" on the account page), every socket opened with it
//! closes, on every node.
//!
//! An ending made here is carried out here at once (`sessions::Endings`,
//! where this registers itself); on a cluster every node, this one too, also
//! hears it from the database, which announced it in the transaction that
//! made it. A periodic sweep catches the rest: sessions that expired, and,
//! after a node missed notifications, sessions ended meanwhile.

mod registry;

use std::sync::Arc;

use tower_sessions::session::Id as SessionId;

use registry::Registry;
pub use registry::Watch;

use super::wire::close;
use crate::{
    domain::Ending,
    sessions::{OnEnding, SessionPolicy, Sessions, sweep},
};

/// Cheap to clone.
#[derive(Clone)]
pub struct Revocation {
    registry: Arc<Registry>,
    /// Read from the database itself, never the cache, when sweeping.
    sessions: Sessions,
    policy: SessionPolicy,
}

impl Revocation {
    pub fn new(sessions: Sessions, policy: SessionPolicy) -> Self {
        Self { registry: Arc::default(), sessions, policy }
    }

    /// Registers a socket of `session` (of `user_id`); it is told when the session ends.
    pub fn watch(&self, session: SessionId, user_id: i64) -> Watch {
        self.registry.watch(session, user_id)
    }

    /// Closes every socket here with `code` (shutdown, or a node fencing itself).
    pub fn end_all_here(&self, code: u16) {
        self.registry.end_all(code);
    }

    /// Checks every session with a socket here against the database and
    /// closes the sockets of those that are gone or expired.
    pub async fn sweep(&self) {
        match sweep::sweep(&self.sessions, &self.policy, self.registry.live()).await {
            Ok(gone) => {
                for session in gone {
                    self.registry.end(&session, close::SESSION_ENDED);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not check sessions"),
        }
    }
}

#[async_trait::async_trait]
impl OnEnding for Revocation {
    /// Closes the sockets of the ending here (an account that only changed
    /// closes nothing, and a ban lifted welcomes the user back).
    async fn ended(&self, ending: &Ending) {
        let code = close::for_reason(ending.reason);
        if let Some(code) = code {
            for session in &ending.sessions {
                self.registry.end(session, code);
            }
        }
        if let Some(user) = ending.user {
            match code {
                None => self.registry.welcome_user(user),
                Some(code) => self.registry.end_user(user, code, ending.except),
            }
        }
    }
}
