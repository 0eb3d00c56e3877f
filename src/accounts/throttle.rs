//! Failed logins per name: a burst, then one more try per refill period.
//! Past that the answer is 429 before any hashing, so guessing one account's
//! password online is slow, and a flood of guesses cannot buy CPU time.
//! Names that do not exist are throttled the same way, so the answer says
//! nothing about which names exist.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::rate::{Rate, TokenBucket};

#[derive(Clone)]
pub struct LoginThrottle {
    failures: moka::sync::Cache<String, Arc<Mutex<TokenBucket>>>,
    rate: Rate,
}

impl LoginThrottle {
    /// `burst` failures, then one more per `refill`.
    pub fn new(burst: u32, refill: Duration) -> Self {
        let rate = Rate { burst: burst.max(1), per_second: 1.0 / refill.as_secs_f64().max(0.001) };
        // A bucket untouched for a full refill is full again: forget it.
        let forget_after = refill.saturating_mul(rate.burst);
        Self {
            failures: moka::sync::Cache::builder().max_capacity(100_000).time_to_idle(forget_after).build(),
            rate,
        }
    }

    /// Names compare without regard to case (as accounts do); the key is
    /// capped so a long junk name cannot hold much memory.
    fn key(name: &str) -> String {
        name.trim().chars().take(64).collect::<String>().to_ascii_lowercase()
    }

    /// `Err(wait)` when `name` has used up its failed attempts for now.
    pub fn check(&self, name: &str) -> Result<(), Duration> {
        match self.failures.get(&Self::key(name)) {
            Some(bucket) => {
                let wait = bucket.lock().unwrap_or_else(|p| p.into_inner()).wait(self.rate);
                if wait.is_zero() { Ok(()) } else { Err(wait) }
            }
            None => Ok(()),
        }
    }

    pub fn failed(&self, name: &str) {
        let bucket =
            self.failures.get_with(Self::key(name), || Arc::new(Mutex::new(TokenBucket::full(self.rate))));
        bucket.lock().unwrap_or_else(|p| p.into_inner()).try_take(self.rate);
    }

    pub fn succeeded(&self, name: &str) {
        self.failures.invalidate(&Self::key(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_failures_then_a_wait() {
        let throttle = LoginThrottle::new(3, Duration::from_secs(30));
        for _ in 0..3 {
            assert!(throttle.check("Alice").is_ok());
            throttle.failed("alice");
        }
        assert_eq!(throttle.check("ALICE"), Err(Duration::from_secs(30)), "names ignore case");
        assert!(throttle.check("bob").is_ok(), "other names are not affected");
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(throttle.check("alice").is_ok(), "one more try after the refill period");
        throttle.failed("alice");
        assert!(throttle.check("alice").is_err());
        throttle.succeeded("alice");
        assert!(throttle.check("alice").is_ok(), "a success clears it");
    }
}
