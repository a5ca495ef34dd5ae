//! The app's own identity toward Azure services (Key Vault, Table Storage, Communication
//! Services), and bearer tokens from it.
//!
//! One credential is chosen by configuration (`AZURE_CREDENTIAL`, formerly `KEY_VAULT_CREDENTIAL`)
//! and only that one is built: no fallback chain, so nothing probes the network for credentials.
//! Tokens come from the official `azure_identity` credentials, which cache them per scope until
//! shortly before they expire.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{Secret as AzureSecret, TokenCredential};
use azure_core::http::{ClientOptions, RetryOptions};
use azure_identity::{
    ClientSecretCredential, ClientSecretCredentialOptions, DeveloperToolsCredential,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
};

use crate::secret::Secret;

/// Which identity the app uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AzureCredential {
    /// The Function App's managed identity; a client id selects a user-assigned identity.
    ManagedIdentity { client_id: Option<String> },
    /// An app registration's client secret.
    ClientSecret {
        tenant_id: String,
        client_id: String,
        secret: Secret<String>,
    },
    /// `az` / `azd` sign-in on a developer machine.
    DeveloperTools,
}

impl AzureCredential {
    pub fn name(&self) -> &'static str {
        match self {
            AzureCredential::ManagedIdentity { .. } => "managed-identity",
            AzureCredential::ClientSecret { .. } => "client-secret",
            AzureCredential::DeveloperTools => "developer-tools",
        }
    }

    /// The SDK credential. No network I/O happens here.
    pub fn build(&self) -> Result<Arc<dyn TokenCredential>, String> {
        let client_options = no_retries();
        let built = match self {
            AzureCredential::ManagedIdentity { client_id } => {
                ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                    client_options,
                }))
                .map(|c| c as Arc<dyn TokenCredential>)
            }
            AzureCredential::ClientSecret {
                tenant_id,
                client_id,
                secret,
            } => ClientSecretCredential::new(
                tenant_id,
                client_id.clone(),
                AzureSecret::new(secret.expose().clone()),
                Some(ClientSecretCredentialOptions { client_options }),
            )
            .map(|c| c as Arc<dyn TokenCredential>),
            AzureCredential::DeveloperTools => {
                DeveloperToolsCredential::new(None).map(|c| c as Arc<dyn TokenCredential>)
            }
        };
        built.map_err(|e| format!("cannot set up the {} credential: {e}", self.name()))
    }
}

/// SDK clients without their own retries: the callers own backoff and time budgets.
pub fn no_retries() -> ClientOptions {
    ClientOptions {
        retry: RetryOptions::none(),
        ..Default::default()
    }
}

/// `Authorization: Bearer …` values for one service (`scope`, e.g.
/// `https://storage.azure.com/.default`) from the app's credential.
#[derive(Clone)]
pub struct BearerToken {
    credential: Arc<dyn TokenCredential>,
    scope: &'static str,
    timeout: Duration,
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerToken")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl BearerToken {
    pub fn new(
        credential: Arc<dyn TokenCredential>,
        scope: &'static str,
        timeout: Duration,
    ) -> Self {
        BearerToken {
            credential,
            scope,
            timeout,
        }
    }

    /// The header value, or `None` (logged, never with the token) when no token can be had
    /// within the timeout.
    pub async fn authorization(&self) -> Option<Secret<String>> {
        let token =
            tokio::time::timeout(self.timeout, self.credential.get_token(&[self.scope], None))
                .await;
        match token {
            Ok(Ok(token)) => Some(Secret::new(format!("Bearer {}", token.token.secret()))),
            Ok(Err(error)) => {
                tracing::error!(scope = self.scope, error = %error, "no access token from the app's identity: check its role assignments");
                None
            }
            Err(_) => {
                tracing::warn!(
                    scope = self.scope,
                    "the app's identity did not answer in time"
                );
                None
            }
        }
    }
}
