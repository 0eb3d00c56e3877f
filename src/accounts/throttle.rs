//! Throttles on logging in and registering, each answered with 429 (and
//! `Retry-After`) before any password is hashed:
//!
//! - **Failed logins per name and client address**: a burst, then one more try
//!   per refill period. Guessing one account's password from one place is
//!   slow, and failures from other addresses never stop the owner logging in
//!   from theirs. Names that do not exist are throttled the same way, so the
//!   answer says nothing about which names exist.
//! - **Attempts per client address** (logins and registrations, right or
//!   wrong): one client cannot buy a stream of argon2 work by trying many
//!   names.
//!
//! The buckets live in the database (`store::throttles`), so they hold for
//! every node of a cluster.

use std::{net::IpAddr, time::Duration};

use crate::{
    rate::Rate,
    store::{Store, StoreError},
};

#[derive(Clone)]
pub struct Throttles {
    store: Store,
    failures: Rate,
    attempts: Rate,
}

/// Why a try is refused for now, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// This name has failed too often from this address.
    Failures(Duration),
    /// This address has tried too often.
    Attempts(Duration),
}

impl Throttled {
    pub fn wait(self) -> Duration {
        match self {
            Throttled::Failures(wait) | Throttled::Attempts(wait) => wait,
        }
    }
}

impl Throttles {
    /// `failure_burst` failures per name and address, then one more per
    /// `failure_refill`; `attempts_per_minute` tries per address.
    pub fn new(store: Store, failure_burst: u32, failure_refill: Duration, attempts_per_minute: u32) -> Self {
        Self {
            store,
            failures: Rate {
                burst: failure_burst.max(1),
                per_second: 1.0 / failure_refill.as_secs_f64().max(0.001),
            },
            attempts: Rate {
                burst: attempts_per_minute.max(1),
                per_second: f64::from(attempts_per_minute.max(1)) / 60.0,
            },
        }
    }

    /// How long a bucket untouched takes to be full again: rows older are pruned.
    pub fn forget_after(&self) -> Duration {
        let refill = |rate: Rate| Duration::from_secs_f64(f64::from(rate.burst) / rate.per_second.max(1e-6));
        refill(self.failures).max(refill(self.attempts))
    }

    /// One login or registration from `client`: takes from its attempts.
    pub async fn attempt(&self, client: IpAddr) -> Result<Result<(), Throttled>, StoreError> {
        Ok(self
            .store
            .throttle_take(&format!("attempts:{client}"), self.attempts)
            .await?
            .map_err(Throttled::Attempts))
    }

    /// May `name` be tried from `client` now? Reads only.
    pub async fn check_failures(
        &self,
        name: &str,
        client: IpAddr,
    ) -> Result<Result<(), Throttled>, StoreError> {
        let wait = self.store.throttle_wait(&failures_key(name, client), self.failures).await?;
        Ok(if wait.is_zero() { Ok(()) } else { Err(Throttled::Failures(wait)) })
    }

    pub async fn failed(&self, name: &str, client: IpAddr) -> Result<(), StoreError> {
        // The answer does not matter: this failure is counted either way.
        let _ = self.store.throttle_take(&failures_key(name, client), self.failures).await?;
        Ok(())
    }

    pub async fn succeeded(&self, name: &str, client: IpAddr) -> Result<(), StoreError> {
        self.store.throttle_clear(&failures_key(name, client)).await
    }
}

/// Names compare without regard to case (as accounts do). A character no
/// username has becomes `?` (junk names share keys, which is harmless: none
/// can log in; and a NUL would not even be stored by PostgreSQL), and the key
/// is capped so a long junk name cannot take much room.
fn failures_key(name: &str, client: IpAddr) -> String {
    let name: String = name
        .trim()
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c.to_ascii_lowercase()
            } else {
                '?'
            }
        })
        .collect();
    format!("failed-login:{name}@{client}")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn throttles() -> Throttles {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        let store = Store::Sqlite(pool);
        store.migrate().await.unwrap();
        Throttles::new(store, 3, Duration::from_secs(30), 5)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn failures_count_per_name_and_address() {
        let t = throttles().await;
        let (here, there) = (ip("10.0.0.1"), ip("10.0.0.2"));
        for _ in 0..3 {
            assert!(t.check_failures("Alice", here).await.unwrap().is_ok());
            t.failed("alice ", here).await.unwrap();
        }
        let refused = t.check_failures("ALICE", here).await.unwrap().unwrap_err();
        assert!(
            matches!(refused, Throttled::Failures(wait) if wait > Duration::from_secs(29)),
            "{refused:?}"
        );
        assert!(
            t.check_failures("alice", there).await.unwrap().is_ok(),
            "the owner, elsewhere, is not stopped"
        );
        assert!(t.check_failures("bob", here).await.unwrap().is_ok(), "other names are not affected");
        t.succeeded("alice", here).await.unwrap();
        assert!(t.check_failures("alice", here).await.unwrap().is_ok(), "a success clears it");
    }

    #[test]
    fn keys_hold_only_what_a_database_stores() {
        let key = failures_key("Al\u{0}ice\u{202e}x", "10.0.0.1".parse().unwrap());
        assert_eq!(key, "failed-login:al?ice?x@10.0.0.1");
    }

    #[tokio::test]
    async fn attempts_count_per_address() {
        let t = throttles().await;
        for _ in 0..5 {
            assert!(t.attempt(ip("10.0.0.1")).await.unwrap().is_ok());
        }
        assert!(matches!(t.attempt(ip("10.0.0.1")).await.unwrap(), Err(Throttled::Attempts(_))));
        assert!(t.attempt(ip("10.0.0.9")).await.unwrap().is_ok());
    }
}
