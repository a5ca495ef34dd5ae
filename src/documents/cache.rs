//! A short, bounded memory of members' roles for the token path.
//!
//! A busy container asks "what is this user's role here?" for every token; the answer changes
//! rarely. Each answer (including "not a member") is kept for [`ROLE_TTL`], so a container costs
//! at most one store read per user per few seconds, and a member removed on another instance
//! loses access within that time (on this instance at once: changes made here forget the entry).
//! At most [`MAX_ENTRIES`] answers are kept: when full, expired ones go first, and if all are
//! fresh the whole cache is dropped (a flood of made-up ids then costs reads, never memory).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{DocumentRef, Role};
use crate::table_storage::StoreUnavailable;

/// How long a role read from the store is used.
pub const ROLE_TTL: Duration = Duration::from_secs(5);
/// The most answers kept (about 100 bytes each plus the ids).
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct RoleCache {
    entries: Mutex<HashMap<String, (Instant, Option<Role>)>>,
}

impl RoleCache {
    /// The cached role of `user` in `document`, else what `fetch` reads (then kept).
    pub async fn get_or_fetch<F, Fut>(
        &self,
        document: &DocumentRef,
        user: &str,
        fetch: F,
    ) -> Result<Option<Role>, StoreUnavailable>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Role>, StoreUnavailable>>,
    {
        let key = key(document, user);
        let now = Instant::now();
        if let Some((read_at, role)) = self.lock().get(&key)
            && now.duration_since(*read_at) < ROLE_TTL
        {
            return Ok(*role);
        }
        let role = fetch().await?;
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (read_at, _)| now.duration_since(*read_at) < ROLE_TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (now, role));
        Ok(role)
    }

    /// Drops what is known about `user` in `document` (after a change made here).
    pub fn forget(&self, document: &DocumentRef, user: &str) {
        self.lock().remove(&key(document, user));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Option<Role>)>> {
        // A panic elsewhere while holding the lock leaves the map consistent (inserts and
        // removes are single calls), so a poisoned lock is still usable.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Ids cannot contain control characters (tenant and document ids are checked; user ids are
/// only ever compared), so a `\n`-joined key is unambiguous for the first two parts, and the
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

    #[tokio::test(start_paused = true)]
    async fn answers_are_kept_for_the_ttl_only() {
        let cache = RoleCache::default();
        let reads = AtomicUsize::new(0);
        let read = |role| {
            reads.fetch_add(1, Ordering::SeqCst);
            async move { Ok(role) }
        };
        let d = DocumentRef::of_test_tenant("d");
        assert_eq!(
            cache
                .get_or_fetch(&d, "u", || read(Some(Role::Writer)))
                .await,
            Ok(Some(Role::Writer))
        );
        tokio::time::advance(ROLE_TTL - Duration::from_millis(1)).await;
        assert_eq!(
            cache.get_or_fetch(&d, "u", || read(None)).await,
            Ok(Some(Role::Writer)),
            "still fresh"
        );
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(cache.get_or_fetch(&d, "u", || read(None)).await, Ok(None));
        assert_eq!(reads.load(Ordering::SeqCst), 2, "read again after the TTL");
        // "Not a member" is remembered too.
        assert_eq!(
            cache
                .get_or_fetch(&d, "u", || read(Some(Role::Owner)))
                .await,
            Ok(None)
        );
        cache.forget(&d, "u");
        assert_eq!(
            cache
                .get_or_fetch(&d, "u", || read(Some(Role::Owner)))
                .await,
            Ok(Some(Role::Owner))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_not_kept_and_the_size_is_bounded() {
        let cache = RoleCache::default();
        let d = DocumentRef::of_test_tenant("d");
        assert_eq!(
            cache
                .get_or_fetch(&d, "u", || async { Err(StoreUnavailable) })
                .await,
            Err(StoreUnavailable)
        );
        assert_eq!(cache.len(), 0);
        let fill = |range: std::ops::Range<usize>| {
            let cache = &cache;
            let d = &d;
            async move {
                for i in range {
                    cache
                        .get_or_fetch(d, &format!("user-{i}"), || async { Ok(None) })
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
        // All fresh and full: everything goes.
        fill(MAX_ENTRIES + 1..MAX_ENTRIES + MAX_ENTRIES / 2).await;
        assert_eq!(cache.len(), MAX_ENTRIES);
        fill(0..1).await;
        assert_eq!(cache.len(), 1);
    }
}
