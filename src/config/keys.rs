//! Where tenant keys come from (`TENANT_KEYS`, `KEY_VAULT_*`, `KEY_CACHE_*`) and the app's Azure
//! credential (`AZURE_CREDENTIAL`), which Key Vault, identity-based storage and ACS share.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::azure_credential::AzureCredential;
use crate::domain::TenantId;
use crate::keys::cache::CachePolicy;
use crate::keys::vault::{SecretNameTemplate, VaultSettings};
use crate::secret::Secret;

use super::{ConfigError, error, flag, milliseconds, seconds, tenant_list};

/// Where tenant keys come from.
#[derive(Debug)]
pub enum KeySettings {
    /// `TENANT_KEYS`: keys given in configuration (development, tests).
    Local(BTreeMap<TenantId, Secret<String>>),
    /// `KEY_VAULT_URL`: keys read from Azure Key Vault through a cache.
    Vault {
        vault: Box<VaultSettings>,
        cache: CachePolicy,
        /// `KEY_VAULT_PRELOAD_TENANTS`: fetched at startup.
        preload: Vec<TenantId>,
        /// Where a managed identity gets its tokens, for the startup log.
        identity_source: &'static str,
        /// `TENANT_KEYS` was set too, and is ignored.
        ignored_tenant_keys: bool,
    },
}

/// The app's identity toward Azure (Key Vault, identity-based storage, ACS with Entra ID):
/// `AZURE_CREDENTIAL` (or its older name `KEY_VAULT_CREDENTIAL`), `AZURE_CLIENT_ID`, … Returns
/// the credential and, for the startup log, where a managed identity comes from.
pub(super) fn credential_settings(
    setting: &dyn Fn(&str) -> Option<String>,
) -> Result<(AzureCredential, &'static str), ConfigError> {
    let present = |name: &str| setting(name).filter(|v| !v.trim().is_empty());
    let client_id = present("AZURE_CLIENT_ID");
    let chosen = present("AZURE_CREDENTIAL").or_else(|| setting("KEY_VAULT_CREDENTIAL"));
    match chosen.as_deref().map(str::trim) {
        None | Some("") | Some("managed-identity") => {
            let source = if present("IDENTITY_ENDPOINT").is_some()
                && present("IDENTITY_HEADER").is_some()
            {
                "app-service (IDENTITY_ENDPOINT)"
            } else if flag(setting, "KEY_VAULT_ALLOW_IMDS", false)? {
                "instance metadata service (IMDS)"
            } else {
                return Err(error(
                    "AZURE_CREDENTIAL=managed-identity needs IDENTITY_ENDPOINT and IDENTITY_HEADER (set by Azure Functions); on a VM or AKS set KEY_VAULT_ALLOW_IMDS=true; on a developer machine use AZURE_CREDENTIAL=developer-tools",
                ));
            };
            Ok((AzureCredential::ManagedIdentity { client_id }, source))
        }
        Some("client-secret") => {
            let required = |name: &str| {
                present(name)
                    .ok_or_else(|| error(format!("AZURE_CREDENTIAL=client-secret needs {name}")))
            };
            let credential = AzureCredential::ClientSecret {
                tenant_id: required("AZURE_TENANT_ID")?,
                client_id: required("AZURE_CLIENT_ID")?,
                secret: Secret::new(required("AZURE_CLIENT_SECRET")?),
            };
            Ok((credential, "none"))
        }
        Some("developer-tools") => Ok((AzureCredential::DeveloperTools, "none")),
        Some(other) => Err(error(format!(
            "AZURE_CREDENTIAL \"{other}\" is not one of managed-identity, client-secret, developer-tools"
        ))),
    }
}

/// The Key Vault key source: `KEY_VAULT_*`, `KEY_CACHE_*` and the credential's settings.
pub(super) fn vault_settings(
    url: &str,
    setting: &dyn Fn(&str) -> Option<String>,
    ignored_tenant_keys: bool,
) -> Result<KeySettings, ConfigError> {
    if !url.starts_with("https://") {
        return Err(error(
            "KEY_VAULT_URL must be an https:// URL (e.g. https://my-vault.vault.azure.net)",
        ));
    }
    let secret_name = SecretNameTemplate::parse(
        &setting("KEY_VAULT_SECRET_NAME").unwrap_or_else(|| "fluid-tenant-{tenantId}".to_string()),
    )
    .map_err(|e| error(format!("KEY_VAULT_SECRET_NAME {e}")))?;
    let (credential, identity_source) = credential_settings(setting)?;

    let ttl = seconds(setting, "KEY_CACHE_TTL_SECONDS", 300)?;
    let max_stale = seconds(setting, "KEY_CACHE_MAX_STALE_SECONDS", 86_400)?;
    if max_stale < ttl {
        return Err(error(
            "KEY_CACHE_MAX_STALE_SECONDS must not be less than KEY_CACHE_TTL_SECONDS",
        ));
    }
    let fetch_timeout = milliseconds(setting, "KEY_VAULT_TIMEOUT_MS", 5000)?;
    let preload = tenant_list(
        "KEY_VAULT_PRELOAD_TENANTS",
        &setting("KEY_VAULT_PRELOAD_TENANTS").unwrap_or_default(),
    )?;

    Ok(KeySettings::Vault {
        vault: Box::new(VaultSettings {
            url: url.to_string(),
            secret_name,
            credential,
            verify_challenge_resource: flag(setting, "KEY_VAULT_VERIFY_CHALLENGE_RESOURCE", true)?,
        }),
        cache: CachePolicy {
            ttl,
            max_stale,
            negative_ttl: Duration::from_secs(60),
            fetch_timeout,
            miss_rate: miss_rate(setting)?,
        },
        preload,
        identity_source,
        ignored_tenant_keys,
    })
}

/// `KEY_VAULT_MISS_RATE`: vault reads per second, per instance, for tenants without a usable key
/// (1-1000, default 10). Key Vault serves about 4,000 reads per 10 s to all clients of a vault
/// together, so this times the app's instance count must stay well under 400.
fn miss_rate(setting: &dyn Fn(&str) -> Option<String>) -> Result<u32, ConfigError> {
    match setting("KEY_VAULT_MISS_RATE") {
        None => Ok(10),
        Some(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|rate| (1..=1000).contains(rate))
            .ok_or_else(|| {
                error("KEY_VAULT_MISS_RATE must be an integer from 1 to 1000 (reads per second)")
            }),
    }
}

/// `TENANT_KEYS`: a JSON object mapping tenant id to key string. Error messages name the tenant
/// or the JSON position, never a key.
pub(super) fn parse_tenant_keys(
    text: &str,
) -> Result<BTreeMap<TenantId, Secret<String>>, ConfigError> {
    let json: Value = serde_json::from_str(text).map_err(|e| {
        error(format!(
            "TENANT_KEYS must be a JSON object mapping tenantId to key (invalid JSON at line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(map) = json else {
        return Err(error(
            "TENANT_KEYS must be a JSON object mapping tenantId to key",
        ));
    };
    map.into_iter()
        .map(|(tenant, key)| {
            let tenant_id = TenantId::parse(&tenant).map_err(|_| {
                error(format!(
                    "TENANT_KEYS: \"{}\" is not a valid tenantId (1-128 of A-Z a-z 0-9 . _ -)",
                    tenant.escape_debug()
                ))
            })?;
            match key {
                Value::String(key) if !key.is_empty() => Ok((tenant_id, Secret::new(key))),
                _ => Err(error(format!(
                    "TENANT_KEYS: the key of tenant \"{tenant}\" must be a non-empty string"
                ))),
            }
        })
        .collect()
}
