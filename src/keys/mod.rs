//! Where tenant keys come from.
//!
//! The request path asks one question — "the signing key of tenant X, please" — through the
//! [`TenantKeys`] trait, so the source (a local map for development, Azure Key Vault in
//! production) can change without the token code noticing.
//!
//! Remote sources implement the lower-level [`KeySource`] and are wrapped in
//! [`cache::CachedKeys`], which owns freshness, single-flight, stale-if-error and negative caching.

pub mod cache;
pub mod local;
pub mod vault;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::TenantId;

/// A tenant's signing key, held as an HMAC-SHA256 state already keyed with the UTF-8 bytes of the
/// key string (exactly how Fluid's `generateToken` and Riddler's `jsonwebtoken.verify` use it).
/// Keying once per key instead of once per token saves two SHA-256 blocks on every signature, and
/// the key string itself is not kept. `Debug` never prints it.
#[derive(Clone)]
pub struct TenantKey(Arc<Hmac<Sha256>>);

impl TenantKey {
    pub fn from_secret(key: &str) -> Self {
        let mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
            .expect("HMAC accepts keys of any length");
        TenantKey(Arc::new(mac))
    }

    /// A fresh MAC state keyed with this tenant key, ready for one message.
    pub fn mac(&self) -> Hmac<Sha256> {
        (*self.0).clone()
    }
}

impl fmt::Debug for TenantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TenantKey([redacted])")
    }
}

/// Why no key could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The source knows no key for this tenant.
    UnknownTenant,
    /// The source cannot answer now; asking again after `retry_after` may succeed.
    Unavailable { retry_after: Duration },
}

pub type KeyFuture<'a> = Pin<Box<dyn Future<Output = Result<TenantKey, KeyError>> + Send + 'a>>;

/// A source of tenant keys.
pub trait TenantKeys: Send + Sync + 'static {
    fn key<'a>(&'a self, tenant: &'a TenantId) -> KeyFuture<'a>;
}

/// Why a remote source produced no key. Causes are logged by the source; this is what the cache
/// needs to decide what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchError {
    /// There is no enabled key for this tenant.
    NotFound,
    /// The source refused us (authentication or authorization): a configuration problem.
    Denied,
    /// The source is unreachable, too slow, throttling or failing.
    Unavailable,
}

pub type FetchFuture<'a, V = TenantKey> =
    Pin<Box<dyn Future<Output = Result<V, FetchError>> + Send + 'a>>;

/// A remote store of per-tenant secrets (tenant keys; also the one ACS connection string), asked
/// on every call: [`cache::CachedKeys`] does the caching.
pub trait KeySource: Send + Sync + 'static {
    /// What a fetch yields.
    type Value: Clone + Send + Sync + 'static;

    fn fetch<'a>(&'a self, tenant: &'a TenantId) -> FetchFuture<'a, Self::Value>;
}

#[cfg(test)]
mod tests {
    use super::TenantKey;

    #[test]
    fn debug_is_redacted() {
        let key = TenantKey::from_secret("super-secret-key");
        assert_eq!(format!("{key:?}"), "TenantKey([redacted])");
    }
}
