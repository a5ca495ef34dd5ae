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
//! time. The cache holds at most [`MAX_ENTRIES`] entries (a few hundred bytes each: well under
//! 5 MiB); when full, expired entries go first, then the ones expiring soonest.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::caller::Principal;

/// Entries kept at most.
pub const MAX_ENTRIES: usize = 10_000;

/// A validated token's caller and the window it is valid in (seconds since the epoch, leeway
/// already applied).
struct Entry {
    principal: Principal,
    not_before: u64,
    expires: u64,
}

#[derive(Default)]
pub struct BearerCache {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

/// The cache key of a token: the SHA-256 of its exact bytes.
pub fn fingerprint(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl BearerCache {
    /// The caller of a token validated before, if `now` is inside its window.
    pub fn get(&self, key: &[u8; 32], now: u64) -> Option<Principal> {
        let entries = self.lock();
        let entry = entries.get(key)?;
        (entry.not_before <= now && now < entry.expires).then(|| entry.principal.clone())
    }

    /// Remembers a token that passed every check, valid from `not_before` to `expires`.
    pub fn insert(
        &self,
        key: [u8; 32],
        principal: Principal,
        not_before: u64,
        expires: u64,
        now: u64,
    ) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, e| e.expires > now);
            if entries.len() >= MAX_ENTRIES {
                // Still full of live tokens: drop the eighth that expires soonest.
                let mut by_expiry: Vec<([u8; 32], u64)> =
                    entries.iter().map(|(k, e)| (*k, e.expires)).collect();
                let count = MAX_ENTRIES / 8;
                by_expiry.select_nth_unstable_by_key(count, |(_, expires)| *expires);
                for (k, _) in &by_expiry[..count] {
                    entries.remove(k);
                }
            }
        }
        entries.insert(
            key,
            Entry {
                principal,
                not_before,
                expires,
            },
        );
    }

    /// Forgets everything (the signing keys changed).
    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        cache.insert(key, ann(), 1_000, 2_000, 1_500);
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
        cache.insert(fingerprint("t"), ann(), 0, u64::MAX, 1);
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
            cache.insert(fingerprint(&format!("token-{n}")), ann(), 0, expires, now);
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
            cache.insert(fingerprint(&format!("token-{n}")), ann(), 0, now, now - 1);
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        cache.insert(fingerprint("fresh"), ann(), 0, now + 60, now);
        assert_eq!(cache.len(), 1, "all the expired ones went, and only they");
        assert_eq!(cache.get(&fingerprint("fresh"), now), Some(ann()));
    }
}
