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
//!   does not become a flood of Key Vault calls.
//!
//! Fetches run in their own task: a request that gives up (client disconnect) does not cancel the
//! fetch the other requests are waiting for. Time is `tokio::time`, so tests drive it with a
//! paused clock.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::time::Instant;

use crate::keys::{FetchError, KeyError, KeyFuture, KeySource, TenantKey, TenantKeys};
use crate::request::TenantId;

/// How long keys stay fresh, usable and absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    pub ttl: Duration,
    pub max_stale: Duration,
    pub negative_ttl: Duration,
    pub fetch_timeout: Duration,
}

/// Slots kept before tenants without a key (unknown, or never fetched successfully) are dropped.
const MAX_SLOTS: usize = 10_000;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

type Fetch = Shared<BoxFuture<'static, Result<TenantKey, KeyError>>>;

pub struct CachedKeys<S> {
    source: Arc<S>,
    policy: CachePolicy,
    /// Read-locked on every request, write-locked only to add a tenant.
    slots: RwLock<HashMap<TenantId, Arc<RwLock<Slot>>>>,
}

#[derive(Default)]
struct Slot {
    /// The last key fetched, and when.
    key: Option<(TenantKey, Instant)>,
    /// The source said "not found"; believed until then.
    absent_until: Option<Instant>,
    /// After failures, no new fetch starts before this.
    retry_at: Option<Instant>,
    failures: u32,
    in_flight: Option<Fetch>,
}

impl Slot {
    /// The cached key if it was fetched less than `max_age` ago: `ttl` asks for a fresh key,
    /// `max_stale` for one that may still serve.
    fn key_younger_than(&self, now: Instant, max_age: Duration) -> Option<TenantKey> {
        self.key
            .as_ref()
            .filter(|(_, fetched)| now < *fetched + max_age)
            .map(|(key, _)| key.clone())
    }
}

impl<S: KeySource> CachedKeys<S> {
    pub fn new(source: S, policy: CachePolicy) -> Self {
        CachedKeys {
            source: Arc::new(source),
            policy,
            slots: RwLock::new(HashMap::new()),
        }
    }

    async fn lookup(&self, tenant: &TenantId) -> Result<TenantKey, KeyError> {
        let slot = self.slot(tenant);
        let now = Instant::now();
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
    fn start_fetch(&self, tenant: TenantId, slot: Arc<RwLock<Slot>>) -> Fetch {
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
                            "tenant key fetch timed out"
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

    fn slot(&self, tenant: &TenantId) -> Arc<RwLock<Slot>> {
        if let Some(slot) = read(&self.slots).get(tenant) {
            return Arc::clone(slot);
        }
        let mut slots = write(&self.slots);
        if slots.len() >= MAX_SLOTS {
            // Forget tenants that have no key and nothing in flight: at worst they are fetched
            // again. Tenants with keys are bounded by the tenants that really exist.
            slots.retain(|_, slot| {
                let slot = read(slot);
                slot.key.is_some() || slot.in_flight.is_some()
            });
        }
        Arc::clone(slots.entry(tenant.clone()).or_default())
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

/// Applies a fetch outcome to the slot and decides what the waiting requests get.
fn record(
    tenant: &TenantId,
    slot: &RwLock<Slot>,
    policy: &CachePolicy,
    fetched: Result<TenantKey, FetchError>,
) -> Result<TenantKey, KeyError> {
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
                        "tenant key refresh failed; serving the last good key"
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

impl<S: KeySource> TenantKeys for CachedKeys<S> {
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
}
