//! Passwords: the validated type, and argon2id hashing off the async workers.

use std::{
    fmt,
    sync::{Arc, Mutex},
};

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier, Version,
    password_hash::{SaltString, rand_core::OsRng},
};
use tokio::sync::{mpsc, oneshot};

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
    #[error("the password hashing threads have stopped")]
    Stopped,
    #[error("could not start a password hashing thread: {0}")]
    Spawn(std::io::Error),
}

/// Hashes and verifies on threads of its own, never on the async workers.
///
/// Why not tokio's blocking pool: each argon2 run allocates its memory cost
/// (19 MiB), and glibc keeps a freed block that size resident in the arena of
/// whichever thread ran it, so hashing spread over the blocking pool's many
/// threads left hundreds of MiB resident. A fixed set of threads bounds that
/// at threads x memory cost. They also run at a lower CPU priority, so a burst
/// of logins queues here while sockets keep their latency.
#[derive(Clone)]
pub struct Hasher {
    jobs: mpsc::Sender<Job>,
    /// Unknown usernames are verified against this hash of a random password,
    /// so the answer for them takes as long as for a real account.
    dummy_hash: Arc<str>,
}

type Job = Box<dyn FnOnce(&Argon2<'static>) + Send>;

/// Hashes waiting for a thread; past this, callers wait to queue.
const QUEUE: usize = 1024;

impl Hasher {
    pub async fn new(cost: &HashCost) -> Result<Self, HashError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(HashError::Params)?;
        let argon2 = Arc::new(Argon2::new(Algorithm::Argon2id, Version::V0x13, params));
        // By default one core is left to the sockets: a burst of logins
        // then barely moves their latency (see BENCHMARKS.md, logins).
        let threads = match cost.concurrency {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1)),
            n => n,
        };
        let (jobs, queue) = mpsc::channel::<Job>(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let (argon2, queue) = (argon2.clone(), queue.clone());
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || hashing_thread(&argon2, &queue))
                .map_err(HashError::Spawn)?;
        }
        let dummy_password = SaltString::generate(&mut OsRng).to_string();
        let dummy_hash = submit(&jobs, move |argon2| hash_with(argon2, dummy_password.as_bytes())).await??;
        Ok(Self { jobs, dummy_hash: dummy_hash.into() })
    }

    /// The argon2id PHC string for a new password.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let password = password.0.clone();
        submit(&self.jobs, move |argon2| hash_with(argon2, password.as_bytes())).await?
    }

    /// Whether `password` matches `phc`; with no stored hash (an unknown
    /// user) it does the same work against the dummy hash and says no.
    pub async fn verify(&self, password: &Password, phc: Option<&str>) -> Result<bool, HashError> {
        let known = phc.is_some();
        let phc = phc.map_or_else(|| self.dummy_hash.clone(), Arc::from);
        let password = password.0.clone();
        let matches = submit(&self.jobs, move |argon2| {
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
}

/// Queues `work` for a hashing thread and waits for its result.
async fn submit<T: Send + 'static>(
    jobs: &mpsc::Sender<Job>,
    work: impl FnOnce(&Argon2<'static>) -> T + Send + 'static,
) -> Result<T, HashError> {
    let (done, result) = oneshot::channel();
    let job: Job = Box::new(move |argon2| {
        let _ = done.send(work(argon2));
    });
    jobs.send(job).await.map_err(|_| HashError::Stopped)?;
    result.await.map_err(|_| HashError::Stopped)
}

/// Takes jobs until every `Hasher` is dropped.
fn hashing_thread(argon2: &Argon2<'static>, queue: &Mutex<mpsc::Receiver<Job>>) {
    lower_priority();
    loop {
        // One thread waits on the queue at a time; the others wait for the lock.
        let job = queue.lock().unwrap_or_else(|p| p.into_inner()).blocking_recv();
        match job {
            Some(job) => job(argon2),
            None => return,
        }
    }
}

/// Nice 19 for the calling thread (Linux sets priority per thread): under
/// contention the socket workers get nearly all the CPU, yet hashing is never
/// starved outright (SCHED_IDLE would be, on a busy machine).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only reads its integer arguments; `0` names the
    // calling thread. Failure leaves the priority as it was, which is fine.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
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
