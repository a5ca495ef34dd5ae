//! A token bucket: what the service may spend per second on something that costs — reads of
//! Key Vault or the member store for ids nobody has, or requests of one caller — with a burst
//! saved up for quiet moments. Past it, the request is told how long until the next one would
//! be allowed (a `Retry-After`), and nothing is spent.
//!
//! A leaf module: the key cache, the role cache and the caller limiter each keep their own.

use std::time::Duration;

use tokio::time::Instant;

/// `rate` per second, up to `burst` saved (a full bucket to start with).
#[derive(Debug, Clone)]
pub struct Budget {
    tokens: f64,
    capacity: f64,
    rate: f64,
    updated: Instant,
}

impl Budget {
    /// `rate` per second (at least 1), `burst` at once (at least 1).
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        let capacity = f64::from(burst.max(1));
        Budget {
            tokens: capacity,
            capacity,
            rate: f64::from(rate.max(1)),
            updated: now,
        }
    }

    /// Takes one, or says how long until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }

    /// Whether the bucket is full again at `now` (nothing spent that has not come back).
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.capacity
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.updated = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let start = Instant::now();
        let mut budget = Budget::new(2, 4, start);
        for _ in 0..4 {
            assert_eq!(budget.take(start), Ok(()));
        }
        assert_eq!(budget.take(start), Err(Duration::from_millis(500)));
        // Half a token back after 250 ms: the wait is for the other half.
        let quarter = start + Duration::from_millis(250);
        assert_eq!(budget.take(quarter), Err(Duration::from_millis(250)));
        assert!(!budget.is_full(start));
        let later = start + Duration::from_millis(500);
        assert_eq!(budget.take(later), Ok(()));
        assert!(budget.take(later).is_err());
        // Refills up to the burst, never past it.
        let much_later = later + Duration::from_secs(60);
        assert!(budget.is_full(much_later));
        for _ in 0..4 {
            assert_eq!(budget.take(much_later), Ok(()));
        }
        assert!(budget.take(much_later).is_err());
    }

    #[test]
    fn zero_means_one() {
        let now = Instant::now();
        let mut budget = Budget::new(0, 0, now);
        assert_eq!(budget.take(now), Ok(()));
        assert_eq!(budget.take(now), Err(Duration::from_secs(1)));
    }
}
