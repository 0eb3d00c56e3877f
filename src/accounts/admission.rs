//! Invite links: who may create an account while registration is by invitation.
//!
//! An invite token is 32 random bytes, shown once (in the link); only its
//! SHA-256 is stored, so the invites table gives nobody a usable link. A
//! token is found by its hash (an index lookup that learns nothing from how
//! much of a guess was right), and the hash found is compared again in
//! constant time.

use std::time::Duration;

use subtle::ConstantTimeEq;

/// How long an invite link works.
pub const INVITE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// A new invite's token, for the link (`/join/TOKEN`); never stored.
pub fn new_invite_token() -> String {
    crate::token::hex(32)
}

/// What is stored of a token: its SHA-256, in hex. Anything that is not a
/// well-formed token hashes to something no invite has.
pub fn token_hash(token: &str) -> String {
    crate::token::hash(token)
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
