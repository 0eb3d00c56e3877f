//! Random tokens from the operating system's generator: batch ids, users'
//! session keys, and anything else that must not be guessed or repeat; and
//! the hash under which a token is stored when the token itself must not be.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

/// `bytes` random bytes as lowercase hex.
pub fn hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    OsRng.fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// What is stored of a token that must not be (an invite, a sign-in's
/// state, a session id beside its row): its SHA-256, in lowercase hex.
pub fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_hex_and_differ() {
        let (a, b) = (super::hex(16), super::hex(16));
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
