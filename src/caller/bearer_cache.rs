//! Access tokens already validated, remembered until they expire.
//!
//! A browser app sends the same bearer token with every request until it expires (an hour,
//! typically), and verifying its RS256 signature again each time cost two thirds of the
//! throughput. So a token that passed every check is remembered — keyed by the SHA-256 of its
//! exact bytes, holding the caller it proved — and used only:
//! - while its own `nbf`/`exp` (with the same leeway as validation) still hold, and
//! - until the signing keys change: a JWKS refresh that removes or replaces a key forgets every
//!   entry, so a token signed with a withdrawn key is not accepted from memory.
//!
//! A token that failed is never remembered, so an invalid token is checked (and refused) every
//! time. A token verified with a key that a concurrent refresh withdrew is not remembered either:
//! every refresh that forgets bumps a generation, and a token is kept only if the generation it
//! was verified under is still current.
//!
//! The cache holds at most [`MAX_ENTRIES`] entries and [`MAX_BYTES`] of what they keep (ids and
//! names are the caller's: Entra allows 256-character display names, a kilobyte of emoji), so
//! it stays under 5 MiB whatever the tokens say; when full, expired entries go first, then the
//! ones expiring soonest.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::caller::Principal;
use crate::eviction;

/// Entries kept at most.
pub const MAX_ENTRIES: usize = 10_000;
/// What the entries may keep, counted as [`cost`] says.
pub const MAX_BYTES: usize = 4 * 1024 * 1024;
/// What an entry costs beyond its strings: the key, the entry, the map's slot.
const ENTRY_OVERHEAD: usize = 128;

/// A validated token's caller and the window it is valid in (seconds since the epoch, leeway
/// already applied).
struct Entry {
    principal: Principal,
    not_before: u64,
    expires: u64,
}

#[derive(Default)]
pub struct BearerCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<[u8; 32], Entry>,
    /// The cost of every entry.
    bytes: usize,
    /// Bumped by every [`BearerCache::clear`].
    generation: u64,
}

/// What an entry of `principal` costs.
fn cost(principal: &Principal) -> usize {
    ENTRY_OVERHEAD
        + principal.id.len()
        + principal.name.as_ref().map_or(0, String::len)
        + principal.client_app.as_ref().map_or(0, String::len)
}

/// The cache key of a token: the SHA-256 of its exact bytes.
pub fn fingerprint(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl BearerCache {
    /// The caller of a token validated before, if `now` is inside its window.
    pub fn get(&self, key: &[u8; 32], now: u64) -> Option<Principal> {
        let state = self.lock();
        let entry = state.entries.get(key)?;
        (entry.not_before <= now && now < entry.expires).then(|| entry.principal.clone())
    }

    /// The generation a token about to be verified is verified under (read it before reading
    /// the signing key).
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Remembers a token that passed every check, valid from `not_before` to `expires` — unless
    /// the keys changed since `generation` (then the key it was verified with may be withdrawn).
    pub fn insert(
        &self,
        key: [u8; 32],
        principal: Principal,
        window: (u64, u64),
        now: u64,
        generation: u64,
    ) {
        let (not_before, expires) = window;
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        let cost = cost(&principal);
        if let Some(old) = state.entries.remove(&key) {
            state.bytes -= self::cost(&old.principal);
        }
        if state.entries.len() >= MAX_ENTRIES || state.bytes + cost > MAX_BYTES {
            state.entries.retain(|_, e| e.expires > now);
            state.recount();
            while !state.entries.is_empty()
                && (state.entries.len() >= MAX_ENTRIES || state.bytes + cost > MAX_BYTES)
            {
                // Still full of live tokens: drop the eighth that expires soonest.
                let count = (state.entries.len() / 8).max(1);
                eviction::drop_smallest(&mut state.entries, count, |e| e.expires);
                state.recount();
            }
        }
        state.bytes += cost;
        state.entries.insert(
            key,
            Entry {
                principal,
                not_before,
                expires,
            },
        );
    }

    /// Forgets everything (the signing keys changed), and makes verifications in flight not be
    /// remembered.
    pub fn clear(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.entries.clear();
        state.bytes = 0;
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// What the entries keep, as [`MAX_BYTES`] counts it.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl State {
    fn recount(&mut self) {
        self.bytes = self.entries.values().map(|e| cost(&e.principal)).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann() -> Principal {
        Principal {
            id: "oid-ann".into(),
            name: Some("Ann".into()),
            client_app: None,
            document_admin: false,
        }
    }

    #[test]
    fn used_only_inside_the_window() {
        let cache = BearerCache::default();
        let key = fingerprint("token-a");
        cache.insert(key, ann(), (1_000, 2_000), 1_500, 0);
        assert_eq!(cache.get(&key, 1_000), Some(ann()));
        assert_eq!(cache.get(&key, 1_999), Some(ann()));
        assert_eq!(cache.get(&key, 2_000), None, "expired");
        assert_eq!(cache.get(&key, 999), None, "not yet valid");
        assert_eq!(cache.get(&fingerprint("token-b"), 1_500), None);
        assert_eq!(
            cache.get(&fingerprint("token-a "), 1_500),
            None,
            "exact bytes"
        );
    }

    #[test]
    fn cleared_on_a_key_change() {
        let cache = BearerCache::default();
        cache.insert(fingerprint("t"), ann(), (0, u64::MAX), 1, 0);
        assert!(!cache.is_empty());
        cache.clear();
        assert!(cache.is_empty());
        assert_eq!(cache.get(&fingerprint("t"), 1), None);
    }

    #[test]
    fn never_grows_past_its_bound() {
        let cache = BearerCache::default();
        let now = 10_000;
        // Some expired, most live.
        for n in 0..MAX_ENTRIES + 500 {
            let expires = if n % 10 == 0 {
                now - 1
            } else {
                now + 1_000 + n as u64
            };
            cache.insert(
                fingerprint(&format!("token-{n}")),
                ann(),
                (0, expires),
                now,
                0,
            );
            assert!(cache.len() <= MAX_ENTRIES);
        }
        // The live token expiring last is still there.
        let last = fingerprint(&format!("token-{}", MAX_ENTRIES + 499));
        assert_eq!(cache.get(&last, now), Some(ann()));
    }

    #[test]
    fn a_full_cache_first_forgets_every_token_expired_by_now() {
        let cache = BearerCache::default();
        let now = 10_000;
        // Full, every entry expiring exactly now: none can be used any more (`now < expires`).
        for n in 0..MAX_ENTRIES {
            cache.insert(
                fingerprint(&format!("token-{n}")),
                ann(),
                (0, now),
                now - 1,
                0,
            );
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        cache.insert(fingerprint("fresh"), ann(), (0, now + 60), now, 0);
        assert_eq!(cache.len(), 1, "all the expired ones went, and only they");
        assert_eq!(cache.get(&fingerprint("fresh"), now), Some(ann()));
    }

    #[test]
    fn a_verification_overtaken_by_a_key_change_is_not_remembered() {
        let cache = BearerCache::default();
        let before = cache.generation();
        // A refresh withdraws keys while a token signed with one of them is being verified.
        cache.clear();
        cache.insert(
            fingerprint("signed-with-a-withdrawn-key"),
            ann(),
            (0, 2_000),
            1,
            before,
        );
        assert!(cache.is_empty());
        let now = cache.generation();
        cache.insert(fingerprint("signed-after"), ann(), (0, 2_000), 1, now);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn an_entry_costs_what_it_keeps() {
        let full = Principal {
            id: "i".repeat(10),
            name: Some("n".repeat(20)),
            client_app: Some("c".repeat(30)),
            document_admin: true,
        };
        assert_eq!(cost(&full), ENTRY_OVERHEAD + 60);
        let bare = Principal {
            name: None,
            client_app: None,
            ..full
        };
        assert_eq!(cost(&bare), ENTRY_OVERHEAD + 10);
    }

    #[test]
    fn a_token_validated_again_is_counted_once() {
        let cache = BearerCache::default();
        let key = fingerprint("validated-twice");
        cache.insert(key, ann(), (0, 100), 1, 0);
        cache.insert(key, ann(), (0, 100), 1, 0);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.bytes(), cost(&ann()));
    }

    #[test]
    fn a_full_cache_drops_the_expired_first_then_an_eighth() {
        // Entries of exactly 4 KiB: MAX_BYTES of them still fit.
        let sized = |n: usize| Principal {
            id: format!("{n:0>width$}", width = 4096 - ENTRY_OVERHEAD),
            name: None,
            client_app: None,
            document_admin: false,
        };
        assert_eq!(cost(&sized(0)), 4096);
        let fits = MAX_BYTES / 4096;
        assert!(fits < MAX_ENTRIES);
        let cache = BearerCache::default();
        // One token valid for long, the rest expiring at 10.
        cache.insert(fingerprint("long-lived"), sized(0), (0, 1_000), 1, 0);
        for n in 1..fits {
            // The last one arrives after the others expired: they are not swept while the
            // cache is not over its bound (sweeping costs a pass over every entry).
            let now = if n == fits - 1 { 20 } else { 1 };
            cache.insert(fingerprint(&format!("t{n}")), sized(n), (0, 10), now, 0);
        }
        assert_eq!(cache.len(), fits, "exactly MAX_BYTES fits");
        assert_eq!(cache.bytes(), MAX_BYTES);
        // Full at 20: the expired go, and only they.
        cache.insert(fingerprint("late"), sized(fits), (0, 1_000), 20, 0);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&fingerprint("long-lived"), 20).is_some());
        // Full of live tokens: the eighth that expires soonest goes each time, never all.
        for n in 0..fits - 2 {
            let window = (0, 2_000 + n as u64);
            cache.insert(fingerprint(&format!("filler{n}")), sized(n), window, 30, 0);
        }
        assert_eq!(cache.bytes(), MAX_BYTES);
        cache.insert(fingerprint("one-more"), sized(0), (0, 5_000), 30, 0);
        assert_eq!(cache.len(), fits - fits / 8 + 1, "an eighth made room");
        for n in 0..fits {
            let window = (0, 2_000 + n as u64);
            cache.insert(fingerprint(&format!("live{n}")), sized(n), window, 30, 0);
        }
        assert!(
            cache.len() >= fits * 7 / 8 && cache.len() <= fits,
            "{}",
            cache.len()
        );
        let newest = fingerprint(&format!("live{}", fits - 1));
        assert!(cache.get(&newest, 30).is_some());
    }

    #[test]
    fn eviction_stops_as_soon_as_the_new_entry_fits() {
        // Eight entries of an eighth of MAX_BYTES each fill the cache exactly.
        let eighth = |n: usize| Principal {
            // `n` is one digit here.
            id: format!("{n}{}", "x".repeat(MAX_BYTES / 8 - ENTRY_OVERHEAD - 1)),
            name: None,
            client_app: None,
            document_admin: false,
        };
        let cache = BearerCache::default();
        for n in 0..8 {
            cache.insert(
                fingerprint(&format!("t{n}")),
                eighth(n),
                (0, 100 + n as u64),
                1,
                0,
            );
        }
        assert_eq!((cache.len(), cache.bytes()), (8, MAX_BYTES));
        // One more: the one expiring soonest goes, and the new one fits exactly.
        cache.insert(fingerprint("t8"), eighth(8), (0, 200), 1, 0);
        assert_eq!((cache.len(), cache.bytes()), (8, MAX_BYTES));
        assert!(cache.get(&fingerprint("t0"), 1).is_none());
        assert!(cache.get(&fingerprint("t1"), 1).is_some());
    }

    #[test]
    fn what_entries_keep_is_bounded_too() {
        let cache = BearerCache::default();
        // Entra's longest display name: 256 characters, here of 4-byte emoji.
        let long_name = Principal {
            id: "00000000-0000-0000-0000-000000000000".into(),
            name: Some("😀".repeat(256)),
            client_app: Some("11111111-1111-1111-1111-111111111111".into()),
            document_admin: false,
        };
        for n in 0..MAX_ENTRIES {
            cache.insert(
                fingerprint(&format!("token-{n}")),
                long_name.clone(),
                (0, 10_000 + n as u64),
                1,
                0,
            );
            assert!(cache.bytes() <= MAX_BYTES, "{} after {n}", cache.bytes());
        }
        assert!(cache.len() < MAX_ENTRIES, "the bytes bound the count");
        assert!(
            cache.len() > MAX_BYTES / (2 * cost(&long_name)),
            "{}",
            cache.len()
        );
        // The live token expiring last is kept.
        let last = fingerprint(&format!("token-{}", MAX_ENTRIES - 1));
        assert_eq!(cache.get(&last, 1), Some(long_name));
    }
}
