//! A short, bounded memory of members' roles for the token path, in front of a store read budget.
//!
//! A busy container asks "what is this user's role here?" for every token; the answer changes
//! rarely. Each answer (including "not a member") is kept for [`ROLE_TTL`], so a container costs
//! at most one store read per user per few seconds, and a member removed on another instance
//! loses access within that time (on this instance at once: changes made here forget the entry).
//!
//! What a signed-in caller can make the store do is bounded:
//! - **one read per answer**: concurrent misses for the same (tenant, document, user) share one
//!   read (single-flight);
//! - **a miss budget** (`DOCUMENT_STORE_MISS_RATE` reads per second per instance, burst twice
//!   that): past it a miss is refused as unavailable with a `Retry-After` and the store is not
//!   asked, while answers already cached keep being served — made-up document ids cannot push
//!   the store past it, nor crowd out real members;
//! - **bounded memory**: at most [`MAX_ENTRIES`] answers; when full, expired ones go first, then
//!   the least recently used eighth — never everything, so a flood of made-up ids does not make
//!   real members' roles be read again. Every [`SWEEP_EVERY`] answers kept, "not a member"
//!   answers past their TTL are swept out (only members' answers are worth keeping stale), so
//!   made-up ids hold about rate × TTL entries, not the whole table.
//!
//! **Stale if the store cannot answer.** An answer older than [`ROLE_TTL`] is read again; if that
//! read cannot be made (the store is down, or the miss budget is spent), the old answer is used
//! for up to [`MAX_STALE`], so members keep their tokens through a store outage or a flood of
//! made-up ids. A change made here is never served stale: it forgets the answer.
//!
//! **A change wins over a read in flight.** [`RoleCache::forget`] (after a member was removed or
//! changed here) is stamped with a generation; a read that started before it is done again, so
//! its old answer is neither cached nor returned — a removal cannot be undone by a slow read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::time::Instant;

use super::{DocumentRef, Role};
use crate::budget::Budget;
use crate::eviction;
use crate::table_storage::StoreUnavailable;

/// How long a role read from the store is used.
pub const ROLE_TTL: Duration = Duration::from_secs(5);
/// The most answers kept (about 100 bytes each plus the ids).
pub const MAX_ENTRIES: usize = 10_000;
/// How long an answer may be used when the store cannot be asked again.
pub const MAX_STALE: Duration = Duration::from_secs(300);
/// How often (in answers kept) expired "not a member" answers are swept out.
const SWEEP_EVERY: u64 = 256;
/// How long a change is remembered against reads in flight: longer than any store read takes.
const FORGET_WINDOW: Duration = Duration::from_secs(60);

/// Why a role could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleError {
    /// The store failed.
    Unavailable,
    /// The miss budget is spent: try again after this long.
    Busy(Duration),
}

impl From<StoreUnavailable> for RoleError {
    fn from(_: StoreUnavailable) -> Self {
        RoleError::Unavailable
    }
}

/// One store read of a role.
pub type RoleRead = BoxFuture<'static, Result<Option<Role>, StoreUnavailable>>;
type SharedRead = Shared<BoxFuture<'static, Result<Option<Role>, StoreUnavailable>>>;

pub struct RoleCache {
    state: Arc<Mutex<State>>,
    misses: Mutex<Budget>,
}

#[derive(Default)]
struct State {
    answers: HashMap<String, Answer>,
    in_flight: HashMap<String, SharedRead>,
    /// Key → (generation, when) of its last change made here, for [`FORGET_WINDOW`].
    changed: HashMap<String, (u64, Instant)>,
    generation: u64,
    /// Counts lookups, for least-recently-used eviction.
    tick: u64,
    /// Counts answers kept, for the sweep.
    kept: u64,
}

struct Answer {
    read_at: Instant,
    role: Option<Role>,
    last_used: u64,
}

impl RoleCache {
    /// A cache whose misses may read the store `miss_rate` times a second (burst twice that).
    pub fn new(miss_rate: u32) -> Self {
        RoleCache {
            state: Arc::default(),
            misses: Mutex::new(Budget::new(miss_rate, 2 * miss_rate, Instant::now())),
        }
    }

    /// The cached role of `user` in `document`, else what `read` reads (then kept). `read` may
    /// be called twice when a change made here overtakes the first read.
    pub async fn get_or_fetch(
        &self,
        document: &DocumentRef,
        user: &str,
        read: impl Fn() -> RoleRead + Send + Sync + 'static,
    ) -> Result<Option<Role>, RoleError> {
        let key = key(document, user);
        let now = Instant::now();
        let (shared, stale) = {
            let mut state = lock(&self.state);
            state.tick += 1;
            let tick = state.tick;
            let mut stale = None;
            if let Some(answer) = state.answers.get_mut(&key) {
                let age = now.duration_since(answer.read_at);
                if age < ROLE_TTL {
                    answer.last_used = tick;
                    return Ok(answer.role);
                }
                if age < MAX_STALE {
                    stale = Some(answer.role);
                }
            }
            let shared = match state.in_flight.get(&key) {
                Some(shared) => shared.clone(),
                None => {
                    if let Err(busy) = self.spend(now) {
                        return stale.ok_or(busy);
                    }
                    let shared = read_until_current(Arc::clone(&self.state), key.clone(), read)
                        .boxed()
                        .shared();
                    state.in_flight.insert(key, shared.clone());
                    shared
                }
            };
            (shared, stale)
        };
        match (shared.await, stale) {
            (Ok(role), _) => Ok(role),
            (Err(StoreUnavailable), Some(stale)) => Ok(stale),
            (Err(StoreUnavailable), None) => Err(RoleError::Unavailable),
        }
    }

    /// Takes one store read from the miss budget (for reads that bypass the cache, such as the
    /// member list), or says how long to wait.
    pub fn spend(&self, now: Instant) -> Result<(), RoleError> {
        self.misses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(now)
            .map_err(RoleError::Busy)
    }

    /// Drops what is known about `user` in `document` (after a change made here), and makes a
    /// read of it already in flight read again.
    pub fn forget(&self, document: &DocumentRef, user: &str) {
        let key = key(document, user);
        let now = Instant::now();
        let mut state = lock(&self.state);
        state.generation += 1;
        let generation = state.generation;
        state
            .changed
            .retain(|_, (_, at)| now.duration_since(*at) < FORGET_WINDOW);
        state.answers.remove(&key);
        state.changed.insert(key, (generation, now));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.state).answers.len()
    }
}

/// Reads until no change made here overtook the read (at most twice: a second change during the
/// second read is rare, and its answer is then returned but not kept), then keeps the answer.
async fn read_until_current(
    state: Arc<Mutex<State>>,
    key: String,
    read: impl Fn() -> RoleRead,
) -> Result<Option<Role>, StoreUnavailable> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let started = lock(&state).generation;
        let result = read().await;
        let mut state = lock(&state);
        let overtaken = state
            .changed
            .get(&key)
            .is_some_and(|(generation, _)| *generation > started);
        if overtaken && attempts < 2 {
            continue;
        }
        state.in_flight.remove(&key);
        if let (Ok(role), false) = (&result, overtaken) {
            state.keep(key, *role, Instant::now());
        }
        return result;
    }
}

impl State {
    fn keep(&mut self, key: String, role: Option<Role>, now: Instant) {
        self.kept += 1;
        if self.kept.is_multiple_of(SWEEP_EVERY) {
            self.answers.retain(|_, answer| {
                let age = now.duration_since(answer.read_at);
                age < ROLE_TTL || (answer.role.is_some() && age < MAX_STALE)
            });
        }
        if self.answers.len() >= MAX_ENTRIES && !self.answers.contains_key(&key) {
            self.answers
                .retain(|_, answer| now.duration_since(answer.read_at) < ROLE_TTL);
            if self.answers.len() >= MAX_ENTRIES {
                // Still full of fresh answers: the least recently used eighth goes.
                eviction::drop_smallest(&mut self.answers, MAX_ENTRIES / 8, |a| a.last_used);
            }
        }
        // The lookup that missed counted itself: the answer is as recent as the latest lookup.
        let last_used = self.tick;
        self.answers.insert(
            key,
            Answer {
                read_at: now,
                role,
                last_used,
            },
        );
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Every change to the state is a single call on a map, so a lock poisoned by a panic
    // elsewhere still guards consistent maps.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Ids cannot contain control characters (tenant and document ids are checked, user ids are
/// refused with them), so a `\n`-joined key is unambiguous for the first two parts, and the
/// user id is the rest.
fn key(document: &DocumentRef, user: &str) -> String {
    format!(
        "{}\n{}\n{user}",
        document.tenant_id.as_str(),
        document.document_id.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A read that counts itself and answers `role`.
    fn reading(reads: &Arc<AtomicUsize>, role: Option<Role>) -> impl Fn() -> RoleRead + use<> {
        let reads = Arc::clone(reads);
        move || {
            reads.fetch_add(1, Ordering::SeqCst);
            async move { Ok(role) }.boxed()
        }
    }

    fn count(reads: &Arc<AtomicUsize>) -> usize {
        reads.load(Ordering::SeqCst)
    }

    #[tokio::test(start_paused = true)]
    async fn answers_are_kept_for_the_ttl_only() {
        let cache = RoleCache::new(1000);
        let reads = Arc::new(AtomicUsize::new(0));
        let d = DocumentRef::of_test_tenant("d");
        assert_eq!(
            cache
                .get_or_fetch(&d, "u", reading(&reads, Some(Role::Writer)))
                .await,
            Ok(Some(Role::Writer))
        );
        tokio::time::advance(ROLE_TTL - Duration::from_millis(1)).await;
        assert_eq!(
            cache.get_or_fetch(&d, "u", reading(&reads, None)).await,
            Ok(Some(Role::Writer)),
            "still fresh"
        );
        assert_eq!(count(&reads), 1);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            cache.get_or_fetch(&d, "u", reading(&reads, None)).await,
            Ok(None)
        );
        assert_eq!(count(&reads), 2, "read again after the TTL");
        // "Not a member" is remembered too.
        assert_eq!(
            cache
                .get_or_fetch(&d, "u", reading(&reads, Some(Role::Owner)))
                .await,
            Ok(None)
        );
        cache.forget(&d, "u");
        assert_eq!(
            cache
                .get_or_fetch(&d, "u", reading(&reads, Some(Role::Owner)))
                .await,
            Ok(Some(Role::Owner))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_not_kept() {
        let cache = RoleCache::new(1000);
        let d = DocumentRef::of_test_tenant("d");
        assert_eq!(
            cache
                .get_or_fetch(&d, "u", || async { Err(StoreUnavailable) }.boxed())
                .await,
            Err(RoleError::Unavailable)
        );
        assert_eq!(cache.len(), 0);
        assert!(lock(&cache.state).in_flight.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_cache_drops_the_expired_then_the_least_recently_used_never_all() {
        let cache = RoleCache::new(u32::MAX / 2);
        let d = DocumentRef::of_test_tenant("d");
        let reads = Arc::new(AtomicUsize::new(0));
        // Members (whose answers are kept stale, so only the bound removes them).
        let fill = |range: std::ops::Range<usize>| {
            let (cache, d, reads) = (&cache, &d, &reads);
            async move {
                for i in range {
                    cache
                        .get_or_fetch(d, &format!("user-{i}"), reading(reads, Some(Role::Reader)))
                        .await
                        .unwrap();
                }
            }
        };
        // Half the entries expire; when the cache fills, they go and the fresh half stays.
        fill(0..MAX_ENTRIES / 2).await;
        tokio::time::advance(ROLE_TTL).await;
        fill(MAX_ENTRIES / 2..MAX_ENTRIES).await;
        assert_eq!(cache.len(), MAX_ENTRIES);
        fill(MAX_ENTRIES..MAX_ENTRIES + 1).await;
        assert_eq!(cache.len(), MAX_ENTRIES / 2 + 1);

        // A real member's answer, used again and again while made-up ids flood in.
        cache
            .get_or_fetch(&d, "member", reading(&reads, Some(Role::Writer)))
            .await
            .unwrap();
        let before = count(&reads);
        for i in 0..MAX_ENTRIES {
            fill(1_000_000 + i..1_000_000 + i + 1).await;
            if i % 100 == 0 {
                let role = cache
                    .get_or_fetch(&d, "member", reading(&reads, None))
                    .await
                    .unwrap();
                assert_eq!(role, Some(Role::Writer), "after {i} made-up ids");
            }
            assert!(cache.len() <= MAX_ENTRIES);
        }
        assert_eq!(
            count(&reads) - before,
            MAX_ENTRIES,
            "one read per made-up id, none for the member"
        );
        assert!(cache.len() > MAX_ENTRIES / 2, "never everything at once");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_misses_share_one_read() {
        let cache = RoleCache::new(1000);
        let d = DocumentRef::of_test_tenant("d");
        let reads = Arc::new(AtomicUsize::new(0));
        let slow = {
            let reads = Arc::clone(&reads);
            move || {
                reads.fetch_add(1, Ordering::SeqCst);
                async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok(Some(Role::Reader))
                }
                .boxed()
            }
        };
        let asks = (0..20).map(|_| cache.get_or_fetch(&d, "u", slow.clone()));
        let answers = futures_util::future::join_all(asks).await;
        assert!(answers.iter().all(|a| *a == Ok(Some(Role::Reader))));
        assert_eq!(count(&reads), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn misses_past_the_budget_are_refused_while_cached_answers_are_served() {
        let cache = RoleCache::new(2);
        let d = DocumentRef::of_test_tenant("d");
        let reads = Arc::new(AtomicUsize::new(0));
        cache
            .get_or_fetch(&d, "member", reading(&reads, Some(Role::Writer)))
            .await
            .unwrap();
        // Burst of 4 in all: the member's read and three made-up ids.
        for i in 0..3 {
            cache
                .get_or_fetch(&d, &format!("x{i}"), reading(&reads, None))
                .await
                .unwrap();
        }
        let refused = cache.get_or_fetch(&d, "x3", reading(&reads, None)).await;
        assert_eq!(refused, Err(RoleError::Busy(Duration::from_millis(500))));
        assert_eq!(count(&reads), 4, "the store was not asked");
        assert_eq!(
            cache
                .get_or_fetch(&d, "member", reading(&reads, None))
                .await,
            Ok(Some(Role::Writer)),
            "a cached member still gets their role"
        );
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(
            cache.get_or_fetch(&d, "x3", reading(&reads, None)).await,
            Ok(None)
        );
        assert_eq!(
            cache.spend(Instant::now()),
            Err(RoleError::Busy(Duration::from_millis(500)))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_made_during_a_read_is_never_undone_by_it() {
        let cache = Arc::new(RoleCache::new(1000));
        let d = DocumentRef::of_test_tenant("d");
        // The store: wes is a writer until the removal; a read takes 1 s.
        let removed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reads = Arc::new(AtomicUsize::new(0));
        let slow_store = {
            let (removed, reads) = (Arc::clone(&removed), Arc::clone(&reads));
            move || {
                reads.fetch_add(1, Ordering::SeqCst);
                // The answer is what the store holds when the read starts.
                let answer = (!removed.load(Ordering::SeqCst)).then_some(Role::Writer);
                async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Ok(answer)
                }
                .boxed()
            }
        };
        let in_flight = tokio::spawn({
            let (cache, d, read) = (Arc::clone(&cache), d.clone(), slow_store.clone());
            async move { cache.get_or_fetch(&d, "wes", read).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        // ann removes wes: the store changes, then this instance forgets.
        removed.store(true, Ordering::SeqCst);
        cache.forget(&d, "wes");
        // Another change made meanwhile does not make this one forgotten.
        tokio::time::sleep(Duration::from_millis(100)).await;
        cache.forget(&d, "kim");
        assert_eq!(
            in_flight.await.unwrap(),
            Ok(None),
            "the read in flight is done again"
        );
        assert_eq!(count(&reads), 2);
        assert_eq!(
            cache.get_or_fetch(&d, "wes", slow_store).await,
            Ok(None),
            "and the stale answer was not kept"
        );
        assert_eq!(count(&reads), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_overtaken_twice_is_returned_but_not_kept() {
        let cache = Arc::new(RoleCache::new(1000));
        let d = DocumentRef::of_test_tenant("d");
        let reads = Arc::new(AtomicUsize::new(0));
        // Each of the first three reads sees a change made here while it runs.
        let changing = {
            let (cache, d, reads) = (Arc::clone(&cache), d.clone(), Arc::clone(&reads));
            move || {
                if reads.fetch_add(1, Ordering::SeqCst) < 3 {
                    cache.forget(&d, "u");
                }
                async { Ok(Some(Role::Reader)) }.boxed()
            }
        };
        assert_eq!(
            cache.get_or_fetch(&d, "u", changing).await,
            Ok(Some(Role::Reader))
        );
        assert_eq!(count(&reads), 2, "read at most twice");
        assert_eq!(cache.len(), 0, "an answer overtaken again is not kept");
        assert!(lock(&cache.state).in_flight.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn changes_are_remembered_for_the_forget_window_only() {
        let cache = RoleCache::new(1000);
        let d = DocumentRef::of_test_tenant("d");
        cache.forget(&d, "a");
        tokio::time::advance(FORGET_WINDOW - Duration::from_millis(1)).await;
        cache.forget(&d, "b");
        assert_eq!(lock(&cache.state).changed.len(), 2);
        tokio::time::advance(Duration::from_millis(1)).await;
        cache.forget(&d, "c");
        let changed = lock(&cache.state)
            .changed
            .keys()
            .cloned()
            .collect::<Vec<_>>();
        assert_eq!(changed.len(), 2, "{changed:?}");
        assert!(
            !changed.contains(&key(&d, "a")),
            "a's change is {FORGET_WINDOW:?} old"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_cache_drops_the_answers_used_longest_ago() {
        let cache = RoleCache::new(u32::MAX / 2);
        let d = DocumentRef::of_test_tenant("d");
        let reads = Arc::new(AtomicUsize::new(0));
        let user = |i: usize| format!("user-{i}");
        for i in 0..MAX_ENTRIES {
            cache
                .get_or_fetch(&d, &user(i), reading(&reads, Some(Role::Reader)))
                .await
                .unwrap();
        }
        // Each is used again, the last kept first: the first kept is now the most recent.
        for i in (0..MAX_ENTRIES).rev() {
            cache
                .get_or_fetch(&d, &user(i), reading(&reads, None))
                .await
                .unwrap();
        }
        assert_eq!(count(&reads), MAX_ENTRIES, "all were cached");
        cache
            .get_or_fetch(&d, "new", reading(&reads, None))
            .await
            .unwrap();
        let state = lock(&cache.state);
        let gone: Vec<usize> = (0..MAX_ENTRIES)
            .filter(|i| !state.answers.contains_key(&key(&d, &user(*i))))
            .collect();
        let expected: Vec<usize> = (MAX_ENTRIES - MAX_ENTRIES / 8..MAX_ENTRIES).collect();
        assert_eq!(gone, expected, "the eighth used longest ago");
    }

    #[tokio::test(start_paused = true)]
    async fn known_answers_serve_while_the_store_cannot_be_asked() {
        let cache = RoleCache::new(1);
        let d = DocumentRef::of_test_tenant("d");
        let reads = Arc::new(AtomicUsize::new(0));
        let down = || async { Err(StoreUnavailable) }.boxed();
        cache
            .get_or_fetch(&d, "member", reading(&reads, Some(Role::Writer)))
            .await
            .unwrap();
        // The store goes down: past the TTL, the old answer serves, for MAX_STALE.
        tokio::time::advance(ROLE_TTL).await;
        for _ in 0..2 {
            assert_eq!(
                cache.get_or_fetch(&d, "member", down).await,
                Ok(Some(Role::Writer))
            );
        }
        // The budget (burst 2) is spent: still served, and the store is not asked.
        assert_eq!(
            cache
                .get_or_fetch(&d, "member", reading(&reads, None))
                .await,
            Ok(Some(Role::Writer))
        );
        assert_eq!(count(&reads), 1, "the store was not asked");
        // Once the store answers again, its answer is what counts.
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            cache
                .get_or_fetch(&d, "member", reading(&reads, None))
                .await,
            Ok(None)
        );
        // Too old to serve, and no store: unavailable.
        let cache = RoleCache::new(1000);
        cache
            .get_or_fetch(&d, "member", reading(&reads, Some(Role::Writer)))
            .await
            .unwrap();
        tokio::time::advance(MAX_STALE).await;
        assert_eq!(
            cache.get_or_fetch(&d, "member", down).await,
            Err(RoleError::Unavailable)
        );
        // A change made here is never served stale.
        cache
            .get_or_fetch(&d, "wes", reading(&reads, Some(Role::Writer)))
            .await
            .unwrap();
        cache.forget(&d, "wes");
        assert_eq!(
            cache.get_or_fetch(&d, "wes", down).await,
            Err(RoleError::Unavailable)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweep_runs_once_every_sweep_every_answers_and_drops_only_the_expired() {
        let cache = RoleCache::new(u32::MAX / 2);
        let d = DocumentRef::of_test_tenant("d");
        let reads = Arc::new(AtomicUsize::new(0));
        let has = |user: &str| lock(&cache.state).answers.contains_key(&key(&d, user));
        let not_a_member = |user: String| {
            let (cache, d, reads) = (&cache, &d, &reads);
            async move {
                cache
                    .get_or_fetch(d, &user, reading(reads, None))
                    .await
                    .unwrap()
            }
        };
        let member = |user: &'static str| {
            let (cache, d, reads) = (&cache, &d, &reads);
            async move {
                cache
                    .get_or_fetch(d, user, reading(reads, Some(Role::Reader)))
                    .await
                    .unwrap()
            }
        };
        member("member").await;
        tokio::time::advance(Duration::from_millis(1)).await;
        member("younger-member").await;
        tokio::time::advance(MAX_STALE - ROLE_TTL - Duration::from_millis(1)).await;
        not_a_member("old".into()).await;
        tokio::time::advance(ROLE_TTL).await;
        // The sweep walks the whole map: not on every answer kept.
        for i in 4..SWEEP_EVERY {
            not_a_member(format!("fresh-{i}")).await;
        }
        assert!(has("old"), "swept before {SWEEP_EVERY} answers were kept");
        not_a_member("last".into()).await;
        assert!(!has("old"), "an expired \"not a member\" is swept");
        assert!(has("fresh-4") && has("last"), "fresh answers stay");
        assert!(has("younger-member"), "members' answers stay for MAX_STALE");
        assert!(!has("member"), "but no longer");
        assert_eq!(cache.len(), SWEEP_EVERY as usize - 2);
    }

    #[tokio::test(start_paused = true)]
    async fn made_up_ids_hold_about_rate_times_ttl_entries() {
        let cache = RoleCache::new(1000);
        let d = DocumentRef::of_test_tenant("d");
        let reads = Arc::new(AtomicUsize::new(0));
        cache
            .get_or_fetch(&d, "member", reading(&reads, Some(Role::Writer)))
            .await
            .unwrap();
        // A flood of made-up ids, a second at a time, far longer than the TTL.
        for second in 0..60 {
            for n in 0..100 {
                let id = format!("made-up-{second}-{n}");
                cache
                    .get_or_fetch(&d, &id, reading(&reads, None))
                    .await
                    .unwrap();
            }
            tokio::time::advance(Duration::from_secs(1)).await;
            assert!(
                cache.len() <= 100 * 5 + 2 * SWEEP_EVERY as usize + 1,
                "{} after {second} s",
                cache.len()
            );
        }
        // The member's answer is kept (stale, for outages) however old the flood's are.
        assert!(lock(&cache.state).answers.contains_key(&key(&d, "member")));
    }
}
