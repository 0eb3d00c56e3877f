//! What a user may do: a member chats; an admin also runs the community
//! (`/admin`, deleting anyone's message). The first account is an admin.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Member,
    Admin,
}

impl Role {
    /// As stored in `users.role`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }

    /// A stored role; anything unknown is a member (never more than that).
    pub fn stored(text: &str) -> Role {
        if text == "admin" { Role::Admin } else { Role::Member }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
