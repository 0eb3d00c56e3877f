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
use unicode_normalization::UnicodeNormalization;

use crate::config::HashCost;

/// A password as it is hashed: NFKC-normalized, so the same password typed
/// on another keyboard or system (composed or decomposed accents, full-width
/// digits) is the same password. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Password {
    normalized: String,
    /// At login: the password exactly as typed, when normalizing changed it.
    /// Accounts made before normalization hashed it as typed.
    as_typed: Option<String>,
}

/// Characters (Unicode code points, after normalization) a new password has.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=256;

/// Why a new password was refused: each says so in words a person can act on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidPassword {
    #[error("Passwords are 8 to 256 characters long.")]
    Length,
    #[error("That password is one of the most common ones, which are tried first. Choose another.")]
    Common,
    #[error("The password must not contain your username.")]
    ContainsUsername,
}

/// The most common passwords (see the file's head for its source).
static COMMON: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
    std::sync::LazyLock::new(|| {
        include_str!("common-passwords.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect()
    });

/// The most a login password is looked at: beyond this nobody's password
/// can be, and hashing megabytes would be a way to load the server.
/// (256 characters of at most 4 bytes each.)
const LOGIN_CAP_BYTES: usize = 1024;

impl Password {
    /// A new password for `username`, if it follows the rules.
    pub fn new(raw: &str, username: &super::Username) -> Result<Self, InvalidPassword> {
        let normalized: String = raw.nfkc().collect();
        if !PASSWORD_CHARS.contains(&normalized.chars().count()) {
            return Err(InvalidPassword::Length);
        }
        let folded = normalized.to_lowercase();
        if COMMON.contains(folded.as_str()) {
            return Err(InvalidPassword::Common);
        }
        if folded.contains(&username.as_str().to_lowercase()) {
            return Err(InvalidPassword::ContainsUsername);
        }
        Ok(Self { normalized, as_typed: None })
    }

    /// A submitted login password: checked against the hash whatever it is
    /// (only the right one matches), but capped.
    pub fn for_login(raw: String) -> Self {
        let raw = if raw.len() > LOGIN_CAP_BYTES { String::new() } else { raw };
        let normalized: String = raw.nfkc().collect();
        let as_typed = (normalized != raw).then_some(raw);
        Self { normalized, as_typed }
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

    /// Passwords waiting for a hashing thread.
    pub fn queued(&self) -> usize {
        QUEUE - self.jobs.capacity()
    }

    /// The argon2id PHC string for a new password.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let password = password.normalized.clone();
        submit(&self.jobs, move |argon2| hash_with(argon2, password.as_bytes())).await?
    }

    /// Whether `password` matches `phc`; with no stored hash (an unknown
    /// user) it does the same work against the dummy hash and says no. A
    /// password that normalizing changed is also tried as typed (accounts
    /// from before normalization).
    pub async fn verify(&self, password: &Password, phc: Option<&str>) -> Result<bool, HashError> {
        let known = phc.is_some();
        let phc = phc.map_or_else(|| self.dummy_hash.clone(), Arc::from);
        let candidates: Vec<String> =
            std::iter::once(password.normalized.clone()).chain(password.as_typed.clone()).collect();
        let matches = submit(&self.jobs, move |argon2| {
            let parsed = PasswordHash::new(&phc).map_err(HashError::Hash)?;
            for candidate in &candidates {
                match argon2.verify_password(candidate.as_bytes(), &parsed) {
                    Ok(()) => return Ok(true),
                    Err(argon2::password_hash::Error::Password) => {}
                    Err(e) => return Err(HashError::Hash(e)),
                }
            }
            Ok(false)
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

    fn alice() -> crate::domain::Username {
        crate::domain::Username::parse("alice").unwrap()
    }

    #[test]
    fn the_rules_count_characters_after_normalizing() {
        assert_eq!(Password::new("short", &alice()).unwrap_err(), InvalidPassword::Length);
        assert_eq!(
            Password::new("éééé", &alice()).unwrap_err(),
            InvalidPassword::Length,
            "4 characters, 8 bytes"
        );
        assert!(Password::new("éééééééé", &alice()).is_ok(), "8 characters");
        assert!(Password::new(&"x7".repeat(128), &alice()).is_ok());
        assert_eq!(Password::new(&"x7".repeat(129), &alice()).unwrap_err(), InvalidPassword::Length);
        // Full-width digits are the same password as ASCII ones.
        let full_width = Password::new("ｑｗｅｒｔｙ１２３４", &alice()).unwrap_err();
        assert_eq!(full_width, InvalidPassword::Common, "qwerty1234 in full width");
        assert_eq!(format!("{:?}", Password::new("secret pass phrase", &alice()).unwrap()), "Password(***)");
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_a_password_or_a_reason(raw in "\\PC{0,300}") {
            match Password::new(&raw, &alice()) {
                Ok(p) => proptest::prop_assert!(PASSWORD_CHARS.contains(&p.normalized.chars().count())),
                Err(reason) => proptest::prop_assert!(!reason.to_string().is_empty()),
            }
            let _ = Password::for_login(raw);
        }
    }

    #[test]
    fn common_passwords_and_the_username_are_refused() {
        for common in ["password", "12345678", "Password", "iloveyou", "sunshine"] {
            assert_eq!(Password::new(common, &alice()).unwrap_err(), InvalidPassword::Common, "{common}");
        }
        assert!(COMMON.len() >= 10_000, "a list of at least 10,000");
        assert_eq!(
            Password::new("my alice password!", &alice()).unwrap_err(),
            InvalidPassword::ContainsUsername
        );
        assert_eq!(Password::new("xxALICExx1", &alice()).unwrap_err(), InvalidPassword::ContainsUsername);
        assert!(Password::new("correct horse battery", &alice()).is_ok());
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let hasher = Hasher::new(&cheap()).await.unwrap();
        let pw = Password::new("correct horse", &alice()).unwrap();
        let phc = hasher.hash(&pw).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(hasher.verify(&pw, Some(&phc)).await.unwrap());
        let wrong = Password::for_login("wrong horse".into());
        assert!(!hasher.verify(&wrong, Some(&phc)).await.unwrap());
        assert!(!hasher.verify(&pw, None).await.unwrap());
    }
}
