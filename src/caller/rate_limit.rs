//! Fair use per caller: each signed-in caller may make `CALLER_RATE_LIMIT` requests a second on
//! this instance, with a burst of `CALLER_RATE_BURST` saved up ([`crate::budget::Budget`]).
//! Past it, the request is refused (`429`, with the wait in `Retry-After`) before any key, store
//! or ACS is asked, and other callers are unaffected: one caller cannot take every token this
//! instance can sign.
//!
//! The caller is the authenticated identity (the Entra `oid`/`sub` of this deployment's tenant,
//! the Easy Auth principal id); `AUTH_MODE=none` has no caller and is not limited. The limit is
//! per instance: with N instances a caller can get up to N times it.
//!
//! Memory stays bounded however many callers there are: at most [`MAX_CALLERS`] are tracked,
//! in shards (so concurrent requests rarely wait on each other's lock); when a shard is full, its
//! least recently seen eighth is forgotten. A caller's first refusal writes one log line, and so
//! does its next allowed request (with how many were refused) — not one line per refusal.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::budget::Budget;
use crate::eviction;

/// Callers tracked at most (each about 150 bytes).
pub const MAX_CALLERS: usize = SHARDS * PER_SHARD;
const SHARDS: usize = 16;
const PER_SHARD: usize = 1024;

pub struct CallerLimiter {
    rate: u32,
    burst: u32,
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
}

#[derive(Default)]
struct Shard {
    callers: HashMap<String, Caller>,
    tick: u64,
}

struct Caller {
    budget: Budget,
    last_seen: u64,
    /// Requests refused since this caller was last allowed one.
    refused: u64,
}

impl CallerLimiter {
    /// `rate` requests a second per caller, `burst` at once.
    pub fn new(rate: u32, burst: u32) -> Self {
        CallerLimiter {
            rate,
            burst,
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// Takes one request of `caller`'s, or says how long until one is allowed.
    pub fn check(&self, caller: &str, now: Instant) -> Result<(), Duration> {
        let shard = &self.shards[self.hasher.hash_one(caller) as usize % SHARDS];
        let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        shard.tick += 1;
        let tick = shard.tick;
        if !shard.callers.contains_key(caller) {
            if shard.callers.len() >= PER_SHARD {
                shard.forget_least_recently_seen();
            }
            shard.callers.insert(
                caller.to_owned(),
                Caller {
                    budget: Budget::new(self.rate, self.burst, now),
                    last_seen: tick,
                    refused: 0,
                },
            );
        }
        let entry = shard.callers.get_mut(caller).expect("inserted above");
        entry.last_seen = tick;
        match entry.budget.take(now) {
            Ok(()) => {
                if entry.refused > 0 {
                    tracing::info!(
                        caller_id = caller,
                        refused = entry.refused,
                        "caller no longer rate-limited"
                    );
                    entry.refused = 0;
                }
                Ok(())
            }
            Err(wait) => {
                if entry.refused == 0 {
                    tracing::warn!(
                        caller_id = caller,
                        rate = self.rate,
                        burst = self.burst,
                        "caller rate-limited (CALLER_RATE_LIMIT)"
                    );
                }
                entry.refused += 1;
                Err(wait)
            }
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap().callers.len())
            .sum()
    }
}

impl Shard {
    fn forget_least_recently_seen(&mut self) {
        eviction::drop_smallest(&mut self.callers, PER_SHARD / 8, |c| c.last_seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_caller_has_its_own_budget() {
        let limiter = CallerLimiter::new(5, 3);
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check("ann", now), Ok(()));
        }
        assert_eq!(limiter.check("ann", now), Err(Duration::from_millis(200)));
        assert_eq!(limiter.check("bob", now), Ok(()), "bob is not ann");
        let later = now + Duration::from_millis(200);
        assert_eq!(limiter.check("ann", later), Ok(()));
        assert!(limiter.check("ann", later).is_err());
    }

    #[test]
    fn memory_is_bounded_and_the_least_recently_seen_go_first() {
        let limiter = CallerLimiter::new(1, 1);
        let now = Instant::now();
        // A caller who spent the budget and keeps coming back.
        assert_eq!(limiter.check("regular", now), Ok(()));
        for n in 0..3 * MAX_CALLERS {
            limiter.check(&format!("caller-{n}"), now).unwrap();
            if n % 1000 == 0 {
                assert!(
                    limiter.check("regular", now).is_err(),
                    "still remembered after {n}"
                );
            }
        }
        assert!(limiter.tracked() <= MAX_CALLERS);
        assert!(limiter.tracked() > MAX_CALLERS / 2);
    }
}
