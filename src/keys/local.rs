//! `TENANT_KEYS`: tenant keys given directly in configuration, for local development and tests.

use std::collections::HashMap;

use crate::domain::TenantId;
use crate::keys::{KeyError, KeyFuture, TenantKey, TenantKeys};
use crate::secret::Secret;

/// Keys from a fixed map; a tenant not in it is unknown.
#[derive(Debug)]
pub struct LocalKeys(HashMap<TenantId, TenantKey>);

impl LocalKeys {
    pub fn new<'a>(keys: impl IntoIterator<Item = (&'a TenantId, &'a Secret<String>)>) -> Self {
        LocalKeys(
            keys.into_iter()
                .map(|(tenant, key)| (tenant.clone(), TenantKey::from_secret(key.expose())))
                .collect(),
        )
    }
}

impl TenantKeys for LocalKeys {
    fn key<'a>(&'a self, tenant: &'a TenantId) -> KeyFuture<'a> {
        let found = self.0.get(tenant).cloned().ok_or(KeyError::UnknownTenant);
        Box::pin(std::future::ready(found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn known_and_unknown_tenants() {
        let tenant = TenantId::parse("t1").unwrap();
        let secret = Secret::new("s3cr3t-value".to_string());
        let keys = LocalKeys::new([(&tenant, &secret)]);
        assert!(keys.key(&tenant).await.is_ok());
        let other = TenantId::parse("t2").unwrap();
        assert_eq!(keys.key(&other).await.unwrap_err(), KeyError::UnknownTenant);
        assert!(!format!("{keys:?}").contains("s3cr3t"));
    }
}
