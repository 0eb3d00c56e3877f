//! Passwords: the validated type, and argon2id hashing off the async workers.

use std::{fmt, sync::Arc};

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier, Version,
    password_hash::{SaltString, rand_core::OsRng},
};
use tokio::sync::Semaphore;

use crate::config::HashCost;

/// A password of 8 to 1024 bytes. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

pub const PASSWORD_RULE: &str = "Passwords are 8 to 1024 bytes long.";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{PASSWORD_RULE}")]
pub struct InvalidPassword;

impl Password {
    pub fn parse(raw: String) -> Result<Self, InvalidPassword> {
        if (8..=1024).contains(&raw.len()) { Ok(Self(raw)) } else { Err(InvalidPassword) }
    }

    /// A submitted login password is checked against the hash whatever its
    /// length (only its own bytes can match), but capped so nobody can make
    /// the server hash megabytes.
    pub fn for_login(raw: String) -> Self {
        let mut raw = raw;
        if raw.len() > 1024 {
            raw.clear();
        }
        Self(raw)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("the argon2 settings are invalid: {0}")]
    Params(argon2::Error),
    #[error("password hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
    #[error("the hashing task was lost: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Hashes and verifies on tokio's blocking pool, at most `permits` at a time,
/// so a burst of logins queues here instead of starving the sockets.
#[derive(Clone)]
pub struct Hasher {
    argon2: Arc<Argon2<'static>>,
    permits: Arc<Semaphore>,
    /// Unknown usernames are verified against this hash of a random password,
    /// so the answer for them takes as long as for a real account.
    dummy_hash: Arc<str>,
}

impl Hasher {
    pub async fn new(cost: &HashCost) -> Result<Self, HashError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(HashError::Params)?;
        let argon2 = Arc::new(Argon2::new(Algorithm::Argon2id, Version::V0x13, params));
        let permits = match cost.concurrency {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let dummy_password = SaltString::generate(&mut OsRng).to_string();
        let dummy_hash = {
            let argon2 = argon2.clone();
            tokio::task::spawn_blocking(move || hash_with(&argon2, dummy_password.as_bytes())).await??
        };
        Ok(Self { argon2, permits: Arc::new(Semaphore::new(permits)), dummy_hash: dummy_hash.into() })
    }

    /// The argon2id PHC string for a new password.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let password = password.0.clone();
        self.run(move |argon2| hash_with(argon2, password.as_bytes())).await?
    }

    /// Whether `password` matches `phc`; with no stored hash (an unknown
    /// user) it does the same work against the dummy hash and says no.
    pub async fn verify(&self, password: &Password, phc: Option<&str>) -> Result<bool, HashError> {
        let known = phc.is_some();
        let phc = phc.map_or_else(|| self.dummy_hash.clone(), Arc::from);
        let password = password.0.clone();
        let matches = self
            .run(move |argon2| {
                let parsed = PasswordHash::new(&phc).map_err(HashError::Hash)?;
                match argon2.verify_password(password.as_bytes(), &parsed) {
                    Ok(()) => Ok(true),
                    Err(argon2::password_hash::Error::Password) => Ok(false),
                    Err(e) => Err(HashError::Hash(e)),
                }
            })
            .await??;
        Ok(known && matches)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        // The semaphore is never closed, so acquire cannot fail.
        let _permit = self.permits.acquire().await.ok();
        let argon2 = self.argon2.clone();
        Ok(tokio::task::spawn_blocking(move || work(&argon2)).await?)
    }
}

fn hash_with(argon2: &Argon2<'_>, password: &[u8]) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2.hash_password(password, &salt).map_err(HashError::Hash)?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> HashCost {
        HashCost { memory_kib: 64, iterations: 1, parallelism: 1, concurrency: 1 }
    }

    #[test]
    fn length_rules() {
        assert!(Password::parse("1234567".into()).is_err());
        assert!(Password::parse("12345678".into()).is_ok());
        assert!(Password::parse("x".repeat(1024)).is_ok());
        assert!(Password::parse("x".repeat(1025)).is_err());
        assert_eq!(format!("{:?}", Password::parse("secret-pass".into()).unwrap()), "Password(***)");
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let hasher = Hasher::new(&cheap()).await.unwrap();
        let pw = Password::parse("correct horse".into()).unwrap();
        let phc = hasher.hash(&pw).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(hasher.verify(&pw, Some(&phc)).await.unwrap());
        let wrong = Password::for_login("wrong horse".into());
        assert!(!hasher.verify(&wrong, Some(&phc)).await.unwrap());
        assert!(!hasher.verify(&pw, None).await.unwrap());
    }
}
