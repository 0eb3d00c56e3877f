//! How sessions end. An ending is decided once, where the change is made
//! (in the transaction that deletes the sessions), and every node carries
//! it out the same way: forget cached copies, close the sockets.

use tower_sessions::session::Id;

/// Why the sessions end; it decides how their sockets close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Logged out, ended from the account page, expired, or ended by a
    /// password change elsewhere: the socket's page goes home.
    Ended,
    /// The session goes on under a new id (its password was changed in it):
    /// its sockets reconnect with the new cookie.
    Renewed,
    /// The account is banned.
    Banned,
    /// Nothing closes: the account changed (a role, a ban lifted), and any
    /// copy of it must be forgotten.
    AccountChanged,
}

/// Sessions ended all at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub reason: Reason,
    /// These sessions…
    pub sessions: Vec<Id>,
    /// …and every session of this user…
    pub user: Option<i64>,
    /// …but this one.
    pub except: Option<Id>,
}

impl Ending {
    /// These sessions end.
    pub fn sessions(reason: Reason, sessions: &[Id]) -> Self {
        Self { reason, sessions: sessions.to_vec(), user: None, except: None }
    }

    /// Every session of `user` ends (`sessions`: those known to end), but `except`.
    pub fn user(reason: Reason, user: i64, sessions: Vec<Id>, except: Option<Id>) -> Self {
        Self { reason, sessions, user: Some(user), except }
    }

    /// The account changed (a role, a ban lifted): forget any copy of it.
    pub fn account_changed(user: i64) -> Self {
        Self::user(Reason::AccountChanged, user, Vec::new(), None)
    }
}
