//! A per-tenant cache in front of a remote [`KeySource`], so Key Vault is asked rarely and its
//! outages do not become ours.
//!
//! For each tenant:
//! - **fresh** for `ttl` after a successful fetch: served from memory;
//! - then the **next request refreshes** it. Requests that arrive while that refresh is in flight
//!   are served the cached key; there is never more than one fetch per tenant (single-flight);
//! - a failed refresh keeps the last good key in service (**stale-if-error**) for up to
//!   `max_stale` after it was fetched, and further refreshes back off (1 s, 2 s, 4 s … 60 s);
//! - with no usable key, requests wait for the one fetch (never longer than `fetch_timeout`) and
//!   fail as unavailable, with a `Retry-After` from the backoff;
//! - "not found" is remembered for `negative_ttl`, so a flood of requests for an unknown tenant
//!   does not become a flood of Key Vault calls;
//! - reads for tenants without a usable key (unknown, never fetched, negative entry expired) draw
//!   on a **miss budget** of `miss_rate` reads per second (burst twice that) per instance: past
//!   it, the request gets "unavailable" with a `Retry-After` and the vault is not called, so one
//!   caller sending random tenant ids cannot push more than that at a vault that throttles every
//!   client of it together. Refreshes of tenants that have a key draw on a budget of their own
//!   (and serve the cached key while it is spent), so misses never starve them;
//! - tenant ids that differ only in ASCII case share one slot (Key Vault secret names are
//!   case-insensitive), so 200 spellings of a real id are one read, not 200;
//! - at most `MAX_SLOTS` slots; when full, the least recently used eighth goes, tenants without
//!   a key before those with one — never all negative entries at once.
//!
//! Fetches run in their own task: a request that gives up (client disconnect) does not cancel the
//! fetch the other requests are waiting for. Time is `tokio::time`, so tests drive it with a
//! paused clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::time::Instant;

use crate::budget::Budget;
use crate::domain::TenantId;
use crate::keys::{FetchError, KeyError, KeyFuture, KeySource, TenantKey, TenantKeys};

/// How long keys stay fresh, usable and absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    pub ttl: Duration,
    pub max_stale: Duration,
    pub negative_ttl: Duration,
    pub fetch_timeout: Duration,
    /// Reads per second for tenants without a usable key (`KEY_VAULT_MISS_RATE`); refreshes get
    /// the same again, separately.
    pub miss_rate: u32,
}

/// Slots kept at most; past it the least recently used eighth is dropped.
const MAX_SLOTS: usize = 10_000;
/// How often (in slots added) expired negative entries are swept out.
const SWEEP_EVERY: usize = 256;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

type Fetch<V> = Shared<BoxFuture<'static, Result<V, KeyError>>>;

pub struct CachedKeys<S: KeySource> {
    source: Arc<S>,
    policy: CachePolicy,
    /// Read-locked on every request, write-locked only to add a tenant. Keyed by the tenant id
    /// in lower case.
    slots: RwLock<HashMap<String, Arc<Entry<S::Value>>>>,
    /// Vault reads for tenants without a usable key, and refreshes of those with one.
    misses: Mutex<Budget>,
    refreshes: Mutex<Budget>,
    /// The clock `Entry::last_used` counts from.
    epoch: Instant,
}

/// A slot and when it was last asked for (milliseconds since `epoch`; no lock on the hot path).
struct Entry<V> {
    slot: Arc<RwLock<Slot<V>>>,
    last_used: AtomicU64,
}

struct Slot<V> {
    /// The last key fetched, and when.
    key: Option<(V, Instant)>,
    /// The source said "not found"; believed until then.
    absent_until: Option<Instant>,
    /// After failures, no new fetch starts before this.
    retry_at: Option<Instant>,
    failures: u32,
    in_flight: Option<Fetch<V>>,
}

impl<V> Default for Slot<V> {
    fn default() -> Self {
        Slot {
            key: None,
            absent_until: None,
            retry_at: None,
            failures: 0,
            in_flight: None,
        }
    }
}

impl<V: Clone> Slot<V> {
    /// The cached key if it was fetched less than `max_age` ago: `ttl` asks for a fresh key,
    /// `max_stale` for one that may still serve.
    fn key_younger_than(&self, now: Instant, max_age: Duration) -> Option<V> {
        self.key
            .as_ref()
            .filter(|(_, fetched)| now < *fetched + max_age)
            .map(|(key, _)| key.clone())
    }
}

impl<S: KeySource> CachedKeys<S> {
    pub fn new(source: S, policy: CachePolicy) -> Self {
        let now = Instant::now();
        CachedKeys {
            source: Arc::new(source),
            policy,
            slots: RwLock::new(HashMap::new()),
            misses: Mutex::new(Budget::new(policy.miss_rate, 2 * policy.miss_rate, now)),
            refreshes: Mutex::new(Budget::new(policy.miss_rate, 2 * policy.miss_rate, now)),
            epoch: now,
        }
    }

    /// The value for `tenant`: cached, or fetched once for everyone asking.
    pub async fn lookup(&self, tenant: &TenantId) -> Result<S::Value, KeyError> {
        let now = Instant::now();
        // A tenant never seen is a miss: it takes a slot only if the miss budget allows a read,
        // so a flood of made-up ids costs neither vault reads nor memory.
        let (slot, prepaid) = match self.existing_slot(tenant) {
            Some(slot) => (slot, false),
            None => {
                if let Err(wait) = lock(&self.misses).take(now) {
                    return Err(KeyError::Unavailable {
                        retry_after: wait.max(Duration::from_secs(1)),
                    });
                }
                (self.slot(tenant), true)
            }
        };
        // The hot path: a fresh key, under a read lock that concurrent requests share.
        if let Some(key) = read(&slot).key_younger_than(now, self.policy.ttl) {
            return Ok(key);
        }
        let fetch = {
            let mut state = write(&slot);
            // Re-checked under the write lock: another request may have refreshed it meanwhile.
            if let Some(key) = state.key_younger_than(now, self.policy.ttl) {
                return Ok(key);
            }
            if state.absent_until.is_some_and(|until| now < until) {
                return Err(KeyError::UnknownTenant);
            }
            let stale = state.key_younger_than(now, self.policy.max_stale);
            match (&state.in_flight, state.retry_at) {
                // Someone is refreshing: the cached key serves meanwhile, else wait with them.
                (Some(fetch), _) => match stale {
                    Some(key) => return Ok(key),
                    None => fetch.clone(),
                },
                // Backing off after a failure: no new fetch yet.
                (None, Some(retry_at)) if now < retry_at => {
                    return stale.ok_or(KeyError::Unavailable {
                        retry_after: retry_at - now,
                    });
                }
                (None, _) => {
                    // A read for a tenant with a usable key is a refresh; without, a miss.
                    let budget = if stale.is_some() {
                        &self.refreshes
                    } else {
                        &self.misses
                    };
                    let allowed = if prepaid {
                        Ok(())
                    } else {
                        lock(budget).take(now)
                    };
                    if let Err(wait) = allowed {
                        return stale.ok_or(KeyError::Unavailable {
                            retry_after: wait.max(Duration::from_secs(1)),
                        });
                    }
                    let fetch = self.start_fetch(tenant.clone(), Arc::clone(&slot));
                    state.in_flight = Some(fetch.clone());
                    fetch
                }
            }
        };
        fetch.await
    }

    /// Starts the one fetch for `tenant` in its own task; its outcome is recorded in the slot
    /// and shared by every request waiting on it.
    fn start_fetch(&self, tenant: TenantId, slot: Arc<RwLock<Slot<S::Value>>>) -> Fetch<S::Value> {
        let source = Arc::clone(&self.source);
        let policy = self.policy;
        let task = tokio::spawn(async move {
            let fetched =
                match tokio::time::timeout(policy.fetch_timeout, source.fetch(&tenant)).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::warn!(
                            tenant_id = tenant.as_str(),
                            timeout_ms = policy.fetch_timeout.as_millis() as u64,
                            "key store read timed out"
                        );
                        Err(FetchError::Unavailable)
                    }
                };
            record(&tenant, &slot, &policy, fetched)
        });
        async move {
            task.await.unwrap_or(Err(KeyError::Unavailable {
                retry_after: FIRST_BACKOFF,
            }))
        }
        .boxed()
        .shared()
    }

    /// The slot of `tenant` if it has one (marked as used now).
    fn existing_slot(&self, tenant: &TenantId) -> Option<Arc<RwLock<Slot<S::Value>>>> {
        let now = self.millis(Instant::now());
        let mut lower = String::new();
        let key = slot_key(tenant, &mut lower);
        let slots = read(&self.slots);
        let entry = slots.get(key)?;
        entry.last_used.store(now, Ordering::Relaxed);
        Some(Arc::clone(&entry.slot))
    }

    /// The slot of `tenant`, added if it has none (called after [`Self::existing_slot`] found
    /// none; another request may have added it since, which `entry` below takes care of).
    fn slot(&self, tenant: &TenantId) -> Arc<RwLock<Slot<S::Value>>> {
        let now = self.millis(Instant::now());
        let mut lower = String::new();
        let key = slot_key(tenant, &mut lower);
        let mut slots = write(&self.slots);
        if !slots.contains_key(key) {
            if slots.len() % SWEEP_EVERY == SWEEP_EVERY - 1 {
                forget_expired_negatives(&mut slots, Instant::now());
            }
            if slots.len() >= MAX_SLOTS {
                evict_least_recently_used(&mut slots);
            }
        }
        let entry = slots.entry(key.to_owned()).or_insert_with(|| {
            Arc::new(Entry {
                slot: Arc::default(),
                last_used: AtomicU64::new(now),
            })
        });
        Arc::clone(&entry.slot)
    }

    fn millis(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }
}

/// The map key of a tenant: its id in lower case (borrowed when it already is).
fn slot_key<'a>(tenant: &'a TenantId, lower: &'a mut String) -> &'a str {
    let name = tenant.as_str();
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        *lower = name.to_ascii_lowercase();
        lower.as_str()
    } else {
        name
    }
}

/// Drops tenants known not to exist whose "not found" has expired (they would be read again
/// anyway), so the map holds about `miss_rate × negative_ttl` of them, not `MAX_SLOTS`.
fn forget_expired_negatives<V>(slots: &mut HashMap<String, Arc<Entry<V>>>, now: Instant) {
    slots.retain(|_, entry| {
        let slot = read(&entry.slot);
        slot.key.is_some()
            || slot.in_flight.is_some()
            || slot.absent_until.is_none_or(|until| now < until)
    });
}

/// Drops the least recently used eighth of the slots, tenants without a key first; a slot with
/// a fetch in flight stays (requests are waiting on it).
fn evict_least_recently_used<V>(slots: &mut HashMap<String, Arc<Entry<V>>>) {
    let mut candidates: Vec<(bool, u64, String)> = slots
        .iter()
        .filter_map(|(key, entry)| {
            let slot = read(&entry.slot);
            (slot.in_flight.is_none()).then(|| {
                let used = entry.last_used.load(Ordering::Relaxed);
                (slot.key.is_some(), used, key.clone())
            })
        })
        .collect();
    let count = (slots.len() / 8).max(1);
    if candidates.len() > count {
        candidates.select_nth_unstable(count);
        candidates.truncate(count);
    }
    for (_, _, key) in candidates {
        slots.remove(&key);
    }
}

/// The locks guard plain data that every writer leaves consistent, so a panic elsewhere while one
/// was held (poisoning) is no reason to stop serving keys.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Applies a fetch outcome to the slot and decides what the waiting requests get.
fn record<V: Clone>(
    tenant: &TenantId,
    slot: &RwLock<Slot<V>>,
    policy: &CachePolicy,
    fetched: Result<V, FetchError>,
) -> Result<V, KeyError> {
    let now = Instant::now();
    let mut state = write(slot);
    state.in_flight = None;
    match fetched {
        Ok(key) => {
            state.key = Some((key.clone(), now));
            state.absent_until = None;
            state.retry_at = None;
            state.failures = 0;
            Ok(key)
        }
        Err(FetchError::NotFound) => {
            // Deleted or disabled: stop signing with any old key at once.
            state.key = None;
            state.absent_until = Some(now + policy.negative_ttl);
            state.retry_at = None;
            state.failures = 0;
            Err(KeyError::UnknownTenant)
        }
        Err(FetchError::Denied | FetchError::Unavailable) => {
            let backoff = FIRST_BACKOFF
                .saturating_mul(1 << state.failures.min(6))
                .min(MAX_BACKOFF);
            state.failures = state.failures.saturating_add(1);
            state.retry_at = Some(now + backoff);
            match state.key_younger_than(now, policy.max_stale) {
                Some(key) => {
                    let age = now - state.key.as_ref().map_or(now, |(_, at)| *at);
                    tracing::warn!(
                        tenant_id = tenant.as_str(),
                        key_age_seconds = age.as_secs(),
                        retry_in_seconds = backoff.as_secs(),
                        "key refresh failed; serving the last good key"
                    );
                    Ok(key)
                }
                None => Err(KeyError::Unavailable {
                    retry_after: backoff,
                }),
            }
        }
    }
}

impl<S: KeySource<Value = TenantKey>> TenantKeys for CachedKeys<S> {
    fn key<'a>(&'a self, tenant: &'a TenantId) -> KeyFuture<'a> {
        Box::pin(self.lookup(tenant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hmac::Mac;

    /// A source that answers from a script, optionally after a delay, and counts its calls.
    #[derive(Default)]
    struct ScriptedSource {
        answers: Mutex<VecDeque<(Duration, Result<&'static str, FetchError>)>>,
        calls: AtomicUsize,
    }

    impl ScriptedSource {
        fn then(self, answer: Result<&'static str, FetchError>) -> Self {
            self.after(Duration::ZERO, answer)
        }

        fn after(self, delay: Duration, answer: Result<&'static str, FetchError>) -> Self {
            self.answers.lock().unwrap().push_back((delay, answer));
            self
        }
    }

    impl KeySource for ScriptedSource {
        type Value = TenantKey;

        fn fetch<'a>(&'a self, _tenant: &'a TenantId) -> crate::keys::FetchFuture<'a> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let (delay, answer) = self
                .answers
                .lock()
                .unwrap()
                .pop_front()
                .expect("no more scripted answers");
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                answer.map(TenantKey::from_secret)
            })
        }
    }

    const POLICY: CachePolicy = CachePolicy {
        ttl: Duration::from_secs(300),
        max_stale: Duration::from_secs(3600),
        negative_ttl: Duration::from_secs(60),
        fetch_timeout: Duration::from_secs(5),
        miss_rate: 10,
    };

    fn tenant() -> TenantId {
        TenantId::parse("t1").unwrap()
    }

    /// Which secret a key was made from: the MAC of a fixed message identifies it.
    fn is_key(key: &TenantKey, secret: &str) -> bool {
        let mut ours = key.mac();
        ours.update(b"probe");
        let mut theirs = TenantKey::from_secret(secret).mac();
        theirs.update(b"probe");
        ours.finalize().into_bytes() == theirs.finalize().into_bytes()
    }

    fn calls(cache: &CachedKeys<ScriptedSource>) -> usize {
        cache.source.calls.load(Ordering::SeqCst)
    }

    #[tokio::test(start_paused = true)]
    async fn fresh_keys_come_from_memory_until_the_ttl() {
        let cache = CachedKeys::new(
            ScriptedSource::default().then(Ok("v1")).then(Ok("v2")),
            POLICY,
        );
        assert!(is_key(&cache.key(&tenant()).await.unwrap(), "v1"));
        tokio::time::advance(Duration::from_secs(299)).await;
        assert!(is_key(&cache.key(&tenant()).await.unwrap(), "v1"));
        assert_eq!(calls(&cache), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(
            is_key(&cache.key(&tenant()).await.unwrap(), "v2"),
            "rotation picked up after one TTL"
        );
        assert_eq!(calls(&cache), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_first_requests_share_one_fetch() {
        let source = ScriptedSource::default().after(Duration::from_millis(100), Ok("v1"));
        let cache = Arc::new(CachedKeys::new(source, POLICY));
        let requests: Vec<_> = (0..50)
            .map(|_| {
                let cache = Arc::clone(&cache);
                tokio::spawn(async move { cache.key(&tenant()).await })
            })
            .collect();
        for request in requests {
            assert!(is_key(&request.await.unwrap().unwrap(), "v1"));
        }
        assert_eq!(calls(&cache), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn during_a_refresh_others_get_the_cached_key_without_waiting() {
        let source = ScriptedSource::default()
            .then(Ok("v1"))
            .after(Duration::from_secs(2), Ok("v2"));
        let cache = Arc::new(CachedKeys::new(source, POLICY));
        cache.key(&tenant()).await.unwrap();
        tokio::time::advance(Duration::from_secs(301)).await;
        let refreshing = {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move { cache.key(&tenant()).await })
        };
        tokio::task::yield_now().await;
        let started = Instant::now();
        assert!(is_key(&cache.key(&tenant()).await.unwrap(), "v1"));
        assert_eq!(started.elapsed(), Duration::ZERO, "served without waiting");
        assert!(is_key(&refreshing.await.unwrap().unwrap(), "v2"));
        assert_eq!(calls(&cache), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_refreshes_serve_the_last_key_then_back_off() {
        let source = ScriptedSource::default()
            .then(Ok("v1"))
            .then(Err(FetchError::Unavailable))
            .then(Err(FetchError::Denied))
            .then(Ok("v2"));
        let cache = CachedKeys::new(source, POLICY);
        cache.key(&tenant()).await.unwrap();
        tokio::time::advance(Duration::from_secs(301)).await;
        assert!(
            is_key(&cache.key(&tenant()).await.unwrap(), "v1"),
            "stale-if-error"
        );
        // Backing off for 1 s: no new fetch, still the old key.
        assert!(is_key(&cache.key(&tenant()).await.unwrap(), "v1"));
        assert_eq!(calls(&cache), 2);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(is_key(&cache.key(&tenant()).await.unwrap(), "v1"));
        assert_eq!(calls(&cache), 3);
        // The second failure doubled the backoff.
        tokio::time::advance(Duration::from_secs(1)).await;
        cache.key(&tenant()).await.unwrap();
        assert_eq!(calls(&cache), 3);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(is_key(&cache.key(&tenant()).await.unwrap(), "v2"));
        assert_eq!(calls(&cache), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn past_max_stale_the_old_key_is_no_longer_served() {
        let source = ScriptedSource::default()
            .then(Ok("v1"))
            .then(Err(FetchError::Unavailable));
        let cache = CachedKeys::new(source, POLICY);
        cache.key(&tenant()).await.unwrap();
        tokio::time::advance(Duration::from_secs(3600)).await;
        let error = cache.key(&tenant()).await.unwrap_err();
        assert_eq!(
            error,
            KeyError::Unavailable {
                retry_after: Duration::from_secs(1)
            }
        );
        // And while backing off, it fails fast without asking the source.
        tokio::time::advance(Duration::from_millis(400)).await;
        assert_eq!(
            cache.key(&tenant()).await.unwrap_err(),
            KeyError::Unavailable {
                retry_after: Duration::from_millis(600)
            }
        );
        assert_eq!(calls(&cache), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn never_fetched_and_unavailable_is_an_error_with_retry_after() {
        let source = ScriptedSource::default()
            .then(Err(FetchError::Unavailable))
            .then(Ok("v1"));
        let cache = CachedKeys::new(source, POLICY);
        assert!(matches!(
            cache.key(&tenant()).await,
            Err(KeyError::Unavailable { .. })
        ));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(is_key(&cache.key(&tenant()).await.unwrap(), "v1"));
    }

    #[tokio::test(start_paused = true)]
    async fn not_found_is_remembered_for_the_negative_ttl() {
        let source = ScriptedSource::default()
            .then(Err(FetchError::NotFound))
            .then(Ok("v1"));
        let cache = CachedKeys::new(source, POLICY);
        for _ in 0..10 {
            assert_eq!(
                cache.key(&tenant()).await.unwrap_err(),
                KeyError::UnknownTenant
            );
        }
        assert_eq!(calls(&cache), 1);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(is_key(&cache.key(&tenant()).await.unwrap(), "v1"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_deleted_secret_stops_the_old_key_at_the_next_refresh() {
        let source = ScriptedSource::default()
            .then(Ok("v1"))
            .then(Err(FetchError::NotFound));
        let cache = CachedKeys::new(source, POLICY);
        cache.key(&tenant()).await.unwrap();
        tokio::time::advance(Duration::from_secs(301)).await;
        assert_eq!(
            cache.key(&tenant()).await.unwrap_err(),
            KeyError::UnknownTenant
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_source_is_cut_off_at_the_fetch_timeout() {
        let source = ScriptedSource::default().after(Duration::from_secs(60), Ok("too late"));
        let cache = CachedKeys::new(source, POLICY);
        let started = Instant::now();
        assert!(matches!(
            cache.key(&tenant()).await,
            Err(KeyError::Unavailable { .. })
        ));
        assert_eq!(started.elapsed(), POLICY.fetch_timeout);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_request_does_not_cancel_the_fetch() {
        let source = ScriptedSource::default().after(Duration::from_secs(1), Ok("v1"));
        let cache = Arc::new(CachedKeys::new(source, POLICY));
        let first = {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move { cache.key(&tenant()).await })
        };
        tokio::task::yield_now().await;
        first.abort();
        assert!(is_key(&cache.key(&tenant()).await.unwrap(), "v1"));
        assert_eq!(calls(&cache), 1);
    }

    /// A vault that knows only `known` (any case), and counts its reads.
    struct Vault {
        known: &'static str,
        calls: AtomicUsize,
    }

    impl KeySource for Vault {
        type Value = TenantKey;

        fn fetch<'a>(&'a self, tenant: &'a TenantId) -> crate::keys::FetchFuture<'a> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let found = tenant.as_str().eq_ignore_ascii_case(self.known);
            Box::pin(async move {
                if found {
                    Ok(TenantKey::from_secret("the-key"))
                } else {
                    Err(FetchError::NotFound)
                }
            })
        }
    }

    fn vault(policy: CachePolicy) -> CachedKeys<Vault> {
        CachedKeys::new(
            Vault {
                known: "Known-Tenant",
                calls: AtomicUsize::new(0),
            },
            policy,
        )
    }

    fn vault_reads(cache: &CachedKeys<Vault>) -> usize {
        cache.source.calls.load(Ordering::SeqCst)
    }

    fn id(text: &str) -> TenantId {
        TenantId::parse(text).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn random_tenant_ids_cannot_push_more_than_the_miss_rate_at_the_vault() {
        let cache = vault(POLICY); // 10 per second, burst 20
        let mut refused = 0;
        for n in 0..500 {
            match cache.key(&id(&format!("random-{n}"))).await {
                Err(KeyError::UnknownTenant) => {}
                Err(KeyError::Unavailable { retry_after }) => {
                    assert!(retry_after >= Duration::from_secs(1));
                    refused += 1;
                }
                Ok(_) => panic!("an unknown tenant got a key"),
            }
        }
        assert_eq!(vault_reads(&cache), 20, "the burst, then nothing");
        assert_eq!(refused, 480);
        assert_eq!(
            read(&cache.slots).len(),
            20,
            "a refused id takes no memory either"
        );
        // Over 10 more seconds, 10 reads a second and no more.
        for second in 1..=10 {
            tokio::time::advance(Duration::from_secs(1)).await;
            for n in 0..100 {
                let _ = cache.key(&id(&format!("again-{second}-{n}"))).await;
            }
        }
        assert_eq!(vault_reads(&cache), 20 + 100);
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_are_not_starved_by_misses() {
        let cache = vault(POLICY);
        assert!(cache.key(&id("known-tenant")).await.is_ok());
        for n in 0..100 {
            let _ = cache.key(&id(&format!("flood-{n}"))).await;
        }
        let before = vault_reads(&cache);
        tokio::time::advance(POLICY.ttl).await;
        // A flood spends the miss budget again, yet the refresh of a tenant with a key happens.
        for n in 0..100 {
            let _ = cache.key(&id(&format!("more-{n}"))).await;
        }
        assert_eq!(
            vault_reads(&cache),
            before + 20,
            "the refilled burst, no more"
        );
        assert!(cache.key(&id("known-tenant")).await.is_ok());
        assert_eq!(
            vault_reads(&cache),
            before + 20 + 1,
            "the refresh had a budget of its own"
        );
        // A new tenant now waits for the miss budget, and says so.
        for n in 0..100 {
            let _ = cache.key(&id(&format!("last-{n}"))).await;
        }
        assert!(matches!(
            cache.key(&id("never-seen")).await,
            Err(KeyError::Unavailable { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn tenant_ids_that_differ_in_case_share_one_slot_and_one_read() {
        let cache = vault(POLICY);
        let spellings = [
            "Known-Tenant",
            "known-tenant",
            "KNOWN-TENANT",
            "kNoWn-TeNaNt",
        ];
        for spelling in spellings.iter().cycle().take(200) {
            assert!(cache.key(&id(spelling)).await.is_ok(), "{spelling}");
        }
        assert_eq!(vault_reads(&cache), 1);
        assert_eq!(read(&cache.slots).len(), 1);
        for spelling in ["Nobody", "NOBODY", "nobody"] {
            assert_eq!(
                cache.key(&id(spelling)).await.unwrap_err(),
                KeyError::UnknownTenant
            );
        }
        assert_eq!(
            vault_reads(&cache),
            2,
            "one negative entry for every spelling"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_map_drops_the_least_recently_used_eighth_keyless_first() {
        let cache = vault(CachePolicy {
            miss_rate: 1000,
            ..POLICY
        });
        assert!(cache.key(&id("known-tenant")).await.is_ok());
        for n in 0..MAX_SLOTS - 1 {
            tokio::time::advance(Duration::from_millis(2)).await;
            let _ = cache.key(&id(&format!("unknown-{n}"))).await;
        }
        assert_eq!(read(&cache.slots).len(), MAX_SLOTS);
        let reads = vault_reads(&cache);
        // The oldest entry is the tenant with a key; the oldest keyless ones go first.
        let _ = cache.key(&id("one-more")).await;
        {
            let slots = read(&cache.slots);
            assert_eq!(
                slots.len(),
                MAX_SLOTS - MAX_SLOTS / 8 + 1,
                "an eighth went, not all"
            );
            assert!(
                slots.contains_key("known-tenant"),
                "the key outlives older negative entries"
            );
            assert!(!slots.contains_key("unknown-0") && !slots.contains_key("unknown-1249"));
            assert!(slots.contains_key("unknown-1250") && slots.contains_key("unknown-9998"));
        }
        // The negative entries that stayed are still believed: no read for them.
        let _ = cache.key(&id("unknown-9998")).await;
        assert_eq!(vault_reads(&cache), reads + 1, "only one-more was read");
    }

    #[tokio::test(start_paused = true)]
    async fn expired_negative_entries_are_swept_out() {
        let cache = vault(CachePolicy {
            miss_rate: 1000,
            ..POLICY
        });
        for n in 0..1000 {
            let _ = cache.key(&id(&format!("gone-{n}"))).await;
        }
        assert_eq!(read(&cache.slots).len(), 1000);
        tokio::time::advance(POLICY.negative_ttl + Duration::from_secs(1)).await;
        for n in 0..SWEEP_EVERY {
            let _ = cache.key(&id(&format!("new-{n}"))).await;
        }
        let slots = read(&cache.slots).len();
        assert!(slots <= SWEEP_EVERY, "{slots} slots: the expired ones went");
    }
}
