//! Tenant keys from Azure Key Vault, read with the function app's identity.
//!
//! One secret per tenant, named by a template (`fluid-tenant-{tenantId}` by default) whose current
//! version holds the tenant key. Rotating the key is writing a new version: the cache picks it up
//! within one TTL.
//!
//! The official SDK (`azure_security_keyvault_secrets` + `azure_identity`) does the wire work:
//! the challenge exchange, tokens and their caching. Its retries are turned off because
//! [`crate::keys::cache`] owns backoff and the time budget of every fetch.

use std::sync::Arc;

use azure_core::error::ErrorKind;
use azure_core::http::StatusCode;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};

use crate::azure_credential::{AzureCredential, no_retries};

use crate::domain::TenantId;
use crate::keys::{FetchError, FetchFuture, KeySource, TenantKey};
use crate::secret::Secret;

/// The placeholder of [`SecretNameTemplate`].
pub const TENANT_PLACEHOLDER: &str = "{tenantId}";

/// A secret name with a `{tenantId}` placeholder. Key Vault names are 1–127 characters of
/// `0-9 a-z A-Z -`; a tenant id that cannot form such a name has no secret (unknown tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretNameTemplate(String);

impl SecretNameTemplate {
    pub fn parse(template: &str) -> Result<Self, String> {
        if !template.contains(TENANT_PLACEHOLDER) {
            return Err(format!("must contain {TENANT_PLACEHOLDER}"));
        }
        let fixed = template.replace(TENANT_PLACEHOLDER, "");
        if !fixed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("may contain only letters, digits and '-' besides {tenantId}".to_string());
        }
        Ok(SecretNameTemplate(template.to_string()))
    }

    /// The secret name of `tenant`, if it is a valid Key Vault name.
    pub fn name_for(&self, tenant: &TenantId) -> Option<String> {
        let name = self.0.replace(TENANT_PLACEHOLDER, tenant.as_str());
        let valid = (1..=127).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        valid.then_some(name)
    }
}

/// Where and how to read tenant keys from Key Vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultSettings {
    pub url: String,
    pub secret_name: SecretNameTemplate,
    pub credential: AzureCredential,
    /// Whether the challenge's resource must match the vault's domain (off only for emulators).
    pub verify_challenge_resource: bool,
}

/// Reads secrets from one vault. Shared by everything that keeps secrets there (tenant keys, the
/// ACS connection string).
pub struct VaultSecrets {
    client: SecretClient,
}

impl VaultSecrets {
    /// Builds the client and the credential. No network I/O happens here.
    pub fn new(settings: &VaultSettings) -> Result<Self, String> {
        let credential = settings.credential.build()?;
        let client = SecretClient::new(
            &settings.url,
            credential,
            Some(SecretClientOptions {
                client_options: no_retries(),
                verify_challenge_resource: Some(settings.verify_challenge_resource),
                ..Default::default()
            }),
        )
        .map_err(|e| format!("KEY_VAULT_URL: {e}"))?;
        Ok(VaultSecrets { client })
    }

    /// The current value of secret `name`. A disabled secret counts as not found.
    pub async fn read(&self, name: &str) -> Result<Secret<String>, FetchError> {
        let secret = self
            .client
            .get_secret(name, None)
            .await
            .and_then(|response| response.into_model())
            .map_err(|error| classify(name, &error))?;
        match secret.value {
            Some(value) if !value.is_empty() => Ok(Secret::new(value)),
            _ => {
                tracing::error!(secret = name, "the Key Vault secret has no value");
                Err(FetchError::Unavailable)
            }
        }
    }
}

/// Tenant keys: one secret per tenant, named by the template.
pub struct VaultKeys {
    secrets: Arc<VaultSecrets>,
    secret_name: SecretNameTemplate,
}

impl VaultKeys {
    pub fn new(secrets: Arc<VaultSecrets>, secret_name: SecretNameTemplate) -> Self {
        VaultKeys {
            secrets,
            secret_name,
        }
    }

    async fn fetch_key(&self, tenant: &TenantId) -> Result<TenantKey, FetchError> {
        let Some(name) = self.secret_name.name_for(tenant) else {
            return Err(FetchError::NotFound);
        };
        let secret = self.secrets.read(&name).await?;
        Ok(TenantKey::from_secret(secret.expose()))
    }
}

impl KeySource for VaultKeys {
    type Value = TenantKey;

    fn fetch<'a>(&'a self, tenant: &'a TenantId) -> FetchFuture<'a> {
        Box::pin(self.fetch_key(tenant))
    }
}

/// Maps an SDK error to what the cache needs, logging the cause for the operator. Error texts
/// come from Key Vault or Entra ID and never contain the secret value.
fn classify(name: &str, error: &azure_core::Error) -> FetchError {
    match error.kind() {
        ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response,
        } => {
            let code = error_code.as_deref().unwrap_or("");
            match *status {
                StatusCode::NotFound => {
                    tracing::info!(secret = name, "no such Key Vault secret");
                    FetchError::NotFound
                }
                StatusCode::Forbidden
                    if raw_response.as_ref().is_some_and(|r| {
                        inner_error_code(r.body()) == Some("SecretDisabled".into())
                    }) =>
                {
                    tracing::info!(secret = name, "the Key Vault secret is disabled");
                    FetchError::NotFound
                }
                StatusCode::Unauthorized | StatusCode::Forbidden => {
                    tracing::error!(
                        secret = name,
                        status = u16::from(*status),
                        code,
                        "Key Vault refused access: grant the function app's identity the \"Key Vault Secrets User\" role on the vault (RBAC), and check the vault's firewall"
                    );
                    FetchError::Denied
                }
                StatusCode::TooManyRequests => {
                    tracing::warn!(secret = name, code, "Key Vault is throttling requests");
                    FetchError::Unavailable
                }
                other => {
                    tracing::warn!(
                        secret = name,
                        status = u16::from(other),
                        code,
                        "Key Vault request failed"
                    );
                    FetchError::Unavailable
                }
            }
        }
        ErrorKind::Credential => {
            tracing::error!(
                secret = name,
                error = %error,
                "cannot get an access token for Key Vault: check the identity (IDENTITY_ENDPOINT/IDENTITY_HEADER for managed identity, AZURE_CLIENT_ID for a user-assigned one)"
            );
            FetchError::Denied
        }
        _ => {
            tracing::warn!(secret = name, error = %error, "cannot reach Key Vault");
            FetchError::Unavailable
        }
    }
}

/// `error.innererror.code` of a Key Vault error body (how a disabled secret is told apart).
fn inner_error_code(body: &[u8]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    json.pointer("/error/innererror/code")?
        .as_str()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        let template = SecretNameTemplate::parse("fluid-tenant-{tenantId}").unwrap();
        let name = |t: &str| template.name_for(&TenantId::parse(t).unwrap());
        assert_eq!(name("0b9c-Ab12").as_deref(), Some("fluid-tenant-0b9c-Ab12"));
        assert_eq!(name("has.dot"), None);
        assert_eq!(name("has_underscore"), None);
        assert_eq!(name(&"a".repeat(115)), None, "over 127 characters");
        assert!(name(&"a".repeat(114)).is_some(), "exactly 127");
        assert!(SecretNameTemplate::parse("fluid-tenant").is_err());
        assert!(SecretNameTemplate::parse("fluid_{tenantId}").is_err());
        assert!(SecretNameTemplate::parse("{tenantId}-key1").is_ok());
    }

    #[test]
    fn disabled_secrets_are_recognised_by_their_inner_error() {
        let body = br#"{"error":{"code":"Forbidden","message":"Operation get is not allowed on a disabled secret.","innererror":{"code":"SecretDisabled"}}}"#;
        assert_eq!(inner_error_code(body).as_deref(), Some("SecretDisabled"));
        assert_eq!(inner_error_code(br#"{"error":{"code":"Forbidden"}}"#), None);
        assert_eq!(inner_error_code(b"not json"), None);
    }

    #[test]
    fn debug_never_shows_the_client_secret() {
        let credential = AzureCredential::ClientSecret {
            tenant_id: "t".into(),
            client_id: "c".into(),
            secret: Secret::new("client-secret-value".into()),
        };
        assert!(!format!("{credential:?}").contains("client-secret-value"));
    }
}
