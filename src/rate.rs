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

impl TokenBucket {
    pub fn full(rate: Rate) -> Self {
        Self { tokens: f64::from(rate.burst), updated: Instant::now() }
    }

    /// Takes a token if one is there.
    pub fn try_take(&mut self, rate: Rate) -> bool {
        let now = Instant::now();
        let refill = now.saturating_duration_since(self.updated).as_secs_f64() * rate.per_second;
        self.tokens = (self.tokens + refill).min(f64::from(rate.burst));
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Has it refilled completely (so forgetting it changes nothing)?
    pub fn is_full(&self, rate: Rate) -> bool {
        let refill = Instant::now().saturating_duration_since(self.updated).as_secs_f64() * rate.per_second;
        self.tokens + refill >= f64::from(rate.burst)
    }

    /// How long until a token is there, counting the refill since it was last used.
    pub fn wait(&self, rate: Rate) -> Duration {
        let refill = Instant::now().saturating_duration_since(self.updated).as_secs_f64() * rate.per_second;
        let tokens = (self.tokens + refill).min(f64::from(rate.burst));
        if tokens >= 1.0 || rate.per_second <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - tokens) / rate.per_second)
        }
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
}
