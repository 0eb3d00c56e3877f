//! An account, as the rest of the server knows it.

use std::fmt;

use super::Role;

#[derive(Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    /// Unix seconds; `None`: not banned.
    pub banned_at: Option<i64>,
    /// The argon2id PHC string of the password; `None`: the account was
    /// made through a provider and its owner has set no password.
    pub password_hash: Option<String>,
    /// Random, replaced when the password changes (and at a ban): sessions
    /// carry it, so a password change ends them, and a session row reveals
    /// nothing that a guessed password could be tested against.
    pub session_key: String,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn is_banned(&self) -> bool {
        self.banned_at.is_some()
    }

    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }
}

/// Secrets stay out of logs.
impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("banned", &self.is_banned())
            .finish()
    }
}
