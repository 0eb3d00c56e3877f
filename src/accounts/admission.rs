//! Who may create an account: the registration mode, and invite links.
//!
//! An invite token is 32 random bytes, shown once (in the link); only its
//! SHA-256 is stored, so the invites table gives nobody a usable link. A
//! token is found by its hash (an index lookup that learns nothing from how
//! much of a guess was right), and the hash found is compared again in
//! constant time.

use std::{fmt, str::FromStr, time::Duration};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How long an invite link works.
pub const INVITE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegistrationMode {
    /// Anyone may register.
    #[default]
    Open,
    /// Only with a valid invite link.
    Invite,
    /// Nobody (but the very first account, so there is always an admin).
    Closed,
}

impl RegistrationMode {
    pub const ALL: [RegistrationMode; 3] = [Self::Open, Self::Invite, Self::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Invite => "invite",
            Self::Closed => "closed",
        }
    }

    /// What the admin page says of it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Open => "Open: anyone may register",
            Self::Invite => "By invitation: only with an invite link",
            Self::Closed => "Closed: nobody may register",
        }
    }
}

impl fmt::Display for RegistrationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the registration mode is open, invite or closed, not {0:?}")]
pub struct UnknownMode(pub String);

impl FromStr for RegistrationMode {
    type Err = UnknownMode;
    fn from_str(text: &str) -> Result<Self, UnknownMode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "open" => Ok(Self::Open),
            "invite" => Ok(Self::Invite),
            "closed" => Ok(Self::Closed),
            _ => Err(UnknownMode(text.to_owned())),
        }
    }
}

/// A new invite's token, for the link (`/join/TOKEN`); never stored.
pub fn new_invite_token() -> String {
    crate::token::hex(32)
}

/// What is stored of a token: its SHA-256, in hex. Anything that is not a
/// well-formed token hashes to something no invite has.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Is `stored` the hash of `token`? In constant time.
pub fn token_matches(token: &str, stored: &str) -> bool {
    token_hash(token).as_bytes().ct_eq(stored.as_bytes()).into()
}

/// A token looks like one of ours (64 hex digits): anything else is refused
/// before any lookup.
pub fn plausible_token(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_in_any_case_and_nothing_else() {
        assert_eq!("Invite".parse(), Ok(RegistrationMode::Invite));
        assert_eq!(" closed ".parse(), Ok(RegistrationMode::Closed));
        assert!("sometimes".parse::<RegistrationMode>().is_err());
    }

    #[test]
    fn tokens_hash_and_match() {
        let token = new_invite_token();
        assert!(plausible_token(&token));
        let stored = token_hash(&token);
        assert_ne!(stored, token);
        assert!(token_matches(&token, &stored));
        assert!(!token_matches(&new_invite_token(), &stored));
        assert!(!plausible_token("../etc/passwd"));
    }
}
