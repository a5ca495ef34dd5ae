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

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::keys::vault::VaultSecrets;
use bindings::TableBindings;
use connection::AcsConnection;
use identity::IdentityClient;

/// Where the ACS connection string comes from.
pub enum ConnectionSource {
    /// `ACS_CONNECTION_STRING`.
    Fixed(AcsConnection),
    /// `ACS_CONNECTION_STRING_SECRET_NAME` in the Key Vault of `KEY_VAULT_URL`, re-read after
    /// `ttl` (so a regenerated access key is picked up), the last good one kept on failures.
    Vault {
        secrets: Arc<VaultSecrets>,
        name: String,
        ttl: Duration,
        cached: Mutex<Option<(AcsConnection, Instant)>>,
    },
}

impl ConnectionSource {
    /// The current connection, or `None` when none can be had.
    pub async fn connection(&self) -> Option<AcsConnection> {
        let (secrets, name, ttl, cached) = match self {
            ConnectionSource::Fixed(connection) => return Some(connection.clone()),
            ConnectionSource::Vault {
                secrets,
                name,
                ttl,
                cached,
            } => (secrets, name, ttl, cached),
        };
        let last = cached.lock().unwrap().clone();
        if let Some((connection, read_at)) = &last
            && read_at.elapsed() < *ttl
        {
            return Some(connection.clone());
        }
        let fresh = match secrets.read(name).await {
            Ok(text) => AcsConnection::parse(text.expose()).map_err(|problem| {
                tracing::error!(secret = %name, "the ACS connection string in Key Vault {problem}");
            }),
            Err(_) => Err(()),
        };
        match fresh {
            Ok(connection) => {
                *cached.lock().unwrap() = Some((connection.clone(), Instant::now()));
                Some(connection)
            }
            Err(()) => last.map(|(connection, _)| {
                tracing::warn!("using the last ACS connection string read from Key Vault");
                connection
            }),
        }
    }
}

/// Everything the ACS function needs.
pub struct AcsService {
    pub connection: ConnectionSource,
    pub client: IdentityClient,
    /// Caller → identity bindings; `None` with `AUTH_MODE=none`, where there is no caller.
    pub bindings: Option<TableBindings>,
}
