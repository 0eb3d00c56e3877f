//! Random tokens from the operating system's generator: batch ids, users'
//! session keys, and anything else that must not be guessed or repeat.

use argon2::password_hash::rand_core::{OsRng, RngCore};

/// `bytes` random bytes as lowercase hex.
pub fn hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    OsRng.fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
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
