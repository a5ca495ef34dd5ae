//! Azure Communication Services: the trusted backend that creates communication identities and
//! issues them user access tokens, so the ACS access key never reaches a client.
//!
//! [`signing`] signs requests with the access key, [`identity`] calls the Identity API,
//! [`bindings`] remembers which caller created which identity, [`request`] parses the function's
//! parameters, and [`AcsService`] ties them to the configured connection.

pub mod bindings;
pub mod connection;
pub mod identity;
pub mod request;
pub mod signing;

use std::sync::{Arc, LazyLock};

use crate::domain::TenantId;
use crate::keys::cache::CachedKeys;
use crate::keys::vault::VaultSecrets;
use crate::keys::{FetchError, FetchFuture, KeySource};
use bindings::TableBindings;
use connection::AcsConnection;
use identity::IdentityClient;

/// Where the ACS connection comes from.
pub enum ConnectionSource {
    /// `ACS_CONNECTION_STRING`, or `ACS_ENDPOINT` with the app's identity.
    Fixed(AcsConnection),
    /// `ACS_CONNECTION_STRING_SECRET_NAME` in the Key Vault of `KEY_VAULT_URL`, through the same
    /// cache as the tenant keys: re-read after the TTL (so a regenerated access key is picked
    /// up), one read in flight, the last good one kept on failures with backoff, and no request
    /// waiting longer than `KEY_VAULT_TIMEOUT_MS` for it.
    Vault(CachedKeys<AcsSecret>),
}

/// The one cache slot the connection string lives in.
static SLOT: LazyLock<TenantId> =
    LazyLock::new(|| TenantId::parse("acs-connection").expect("a valid slot name"));

impl ConnectionSource {
    /// The current connection, or `None` when none can be had.
    pub async fn connection(&self) -> Option<AcsConnection> {
        match self {
            ConnectionSource::Fixed(connection) => Some(connection.clone()),
            ConnectionSource::Vault(cache) => cache.lookup(&SLOT).await.ok(),
        }
    }
}

/// The ACS connection string kept in a Key Vault secret, as a cache source.
pub struct AcsSecret {
    pub secrets: Arc<VaultSecrets>,
    pub name: String,
}

impl KeySource for AcsSecret {
    type Value = AcsConnection;

    fn fetch<'a>(&'a self, _slot: &'a TenantId) -> FetchFuture<'a, AcsConnection> {
        Box::pin(async move {
            let text = self.secrets.read(&self.name).await?;
            AcsConnection::parse(text.expose()).map_err(|problem| {
                tracing::error!(secret = %self.name, "the ACS connection string in Key Vault {problem}");
                FetchError::Unavailable
            })
        })
    }
}

/// Everything the ACS function needs.
pub struct AcsService {
    pub connection: ConnectionSource,
    pub client: IdentityClient,
    /// Caller → identity bindings; `None` with `AUTH_MODE=none`, where there is no caller.
    pub bindings: Option<TableBindings>,
}
