use std::time::Duration;

use tokio::time::Instant;

/// A token bucket: `burst` tokens, refilled continuously at `per_second`.
/// Plain data, no timer: it is topped up lazily when a token is asked for.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub burst: u32,
    pub per_second: f64,
}

impl Rate {
    /// `tokens` topped up for `elapsed` seconds, never past the burst.
    fn refill(self, tokens: f64, elapsed: f64) -> f64 {
        (tokens + elapsed.max(0.0) * self.per_second).min(f64::from(self.burst))
    }

    /// How long, holding `tokens`, until there is a whole one.
    fn until_one(self, tokens: f64) -> Duration {
        if tokens >= 1.0 || self.per_second <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - tokens) / self.per_second)
        }
    }
}

/// A token bucket kept as plain numbers (in the database, shared by every
/// node) rather than held in memory: tokens left, and when they were counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Allowance {
    pub tokens: f64,
    pub updated_ms: i64,
}

impl From<(f64, i64)> for Allowance {
    fn from((tokens, updated_ms): (f64, i64)) -> Self {
        Self { tokens, updated_ms }
    }
}

impl Allowance {
    pub fn full(rate: Rate, now_ms: i64) -> Self {
        Self { tokens: f64::from(rate.burst), updated_ms: now_ms }
    }

    /// How long from `now_ms` until a token is there.
    pub fn wait(&self, rate: Rate, now_ms: i64) -> Duration {
        rate.until_one(rate.refill(self.tokens, (now_ms - self.updated_ms) as f64 / 1000.0))
    }

    /// Takes a token at `now_ms` if one is there. A clock that went back
    /// refills nothing.
    pub fn try_take(&mut self, rate: Rate, now_ms: i64) -> bool {
        let elapsed = (now_ms - self.updated_ms) as f64 / 1000.0;
        self.tokens = rate.refill(self.tokens, elapsed);
        self.updated_ms = self.updated_ms.max(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl TokenBucket {
    pub fn full(rate: Rate) -> Self {
        Self { tokens: f64::from(rate.burst), updated: Instant::now() }
    }

    /// The tokens there are now, counting the refill since the last take.
    fn tokens_now(&self, rate: Rate) -> f64 {
        rate.refill(self.tokens, Instant::now().saturating_duration_since(self.updated).as_secs_f64())
    }

    /// Takes a token if one is there.
    pub fn try_take(&mut self, rate: Rate) -> bool {
        self.tokens = self.tokens_now(rate);
        self.updated = Instant::now();
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Has it refilled completely (so forgetting it changes nothing)?
    pub fn is_full(&self, rate: Rate) -> bool {
        self.tokens_now(rate) >= f64::from(rate.burst)
    }

    /// How long until a token is there.
    pub fn wait(&self, rate: Rate) -> Duration {
        rate.until_one(self.tokens_now(rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate { burst: 20, per_second: 5.0 };

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_refill_rate() {
        let mut bucket = TokenBucket::full(RATE);
        assert_eq!((0..25).filter(|_| bucket.try_take(RATE)).count(), 20);
        assert_eq!(bucket.wait(RATE), Duration::from_millis(200));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!((0..25).filter(|_| bucket.try_take(RATE)).count(), 5);
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert!(bucket.is_full(RATE));
        assert_eq!((0..25).filter(|_| bucket.try_take(RATE)).count(), 20, "never more than the burst");
    }

    #[test]
    fn a_stored_allowance_behaves_the_same() {
        let mut allowance = Allowance::full(RATE, 1_000);
        assert_eq!((0..25).filter(|_| allowance.try_take(RATE, 1_000)).count(), 20);
        assert!(!allowance.try_take(RATE, 1_100), "half a token after 100 ms");
        assert!(allowance.try_take(RATE, 1_300));
        assert!(!allowance.try_take(RATE, 500), "a clock that went back refills nothing");
        assert!(allowance.try_take(RATE, 3_600_000));
        assert!(allowance.tokens <= 19.0);
    }
}
