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

use super::settings::Settings;
use super::{ConfigError, error};

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
    settings: &Settings,
) -> Result<(AzureCredential, &'static str), ConfigError> {
    let present = |name: &str| settings.get(name).filter(|v| !v.trim().is_empty());
    let client_id = present("AZURE_CLIENT_ID");
    let chosen = present("AZURE_CREDENTIAL").or_else(|| settings.get("KEY_VAULT_CREDENTIAL"));
    match chosen.as_deref().map(str::trim) {
        None | Some("") | Some("managed-identity") => {
            let source = if present("IDENTITY_ENDPOINT").is_some()
                && present("IDENTITY_HEADER").is_some()
            {
                "app-service (IDENTITY_ENDPOINT)"
            } else if settings.flag("KEY_VAULT_ALLOW_IMDS", false)? {
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
fn vault_settings(
    url: &str,
    settings: &Settings,
    ignored_tenant_keys: bool,
) -> Result<KeySettings, ConfigError> {
    if !url.starts_with("https://") {
        return Err(error(
            "KEY_VAULT_URL must be an https:// URL (e.g. https://my-vault.vault.azure.net)",
        ));
    }
    let secret_name = SecretNameTemplate::parse(
        &settings
            .get("KEY_VAULT_SECRET_NAME")
            .unwrap_or_else(|| "fluid-tenant-{tenantId}".to_string()),
    )
    .map_err(|e| error(format!("KEY_VAULT_SECRET_NAME {e}")))?;
    let (credential, identity_source) = credential_settings(settings)?;

    let ttl = settings.seconds("KEY_CACHE_TTL_SECONDS", 300)?;
    let max_stale = settings.seconds("KEY_CACHE_MAX_STALE_SECONDS", 86_400)?;
    if max_stale < ttl {
        return Err(error(
            "KEY_CACHE_MAX_STALE_SECONDS must not be less than KEY_CACHE_TTL_SECONDS",
        ));
    }
    let fetch_timeout = settings.milliseconds("KEY_VAULT_TIMEOUT_MS", 5000)?;
    let preload = settings
        .tenant_list("KEY_VAULT_PRELOAD_TENANTS")?
        .unwrap_or_default();

    Ok(KeySettings::Vault {
        vault: Box::new(VaultSettings {
            url: url.to_string(),
            secret_name,
            credential,
            verify_challenge_resource: settings
                .flag("KEY_VAULT_VERIFY_CHALLENGE_RESOURCE", true)?,
        }),
        cache: CachePolicy {
            ttl,
            max_stale,
            negative_ttl: Duration::from_secs(60),
            fetch_timeout,
            // Vault reads per second, per instance, for tenants without a usable key. Key Vault
            // serves about 4,000 reads per 10 s to all clients of a vault together, so this
            // times the app's instance count must stay well under 400.
            miss_rate: settings.rate("KEY_VAULT_MISS_RATE", 10, "reads")?,
        },
        preload,
        identity_source,
        ignored_tenant_keys,
    })
}

/// Where keys come from: Key Vault when `KEY_VAULT_URL` is set (`TENANT_KEYS` is then ignored,
/// and the startup log says so), else `TENANT_KEYS`.
pub(super) fn key_settings(settings: &Settings) -> Result<KeySettings, ConfigError> {
    let tenant_keys = match settings.present("TENANT_KEYS") {
        None => BTreeMap::new(),
        Some(text) => parse_tenant_keys(&text)?,
    };
    match settings.present("KEY_VAULT_URL") {
        None => Ok(KeySettings::Local(tenant_keys)),
        Some(url) => vault_settings(&url, settings, !tenant_keys.is_empty()),
    }
}

/// `TENANT_KEYS`: a JSON object mapping tenant id to key string. Error messages name the tenant
/// or the JSON position, never a key.
fn parse_tenant_keys(text: &str) -> Result<BTreeMap<TenantId, Secret<String>>, ConfigError> {
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
            // The name is not printed: a key put where its tenant id belongs is the likely
            // mistake, and the message goes to the logs.
            let tenant_id = TenantId::parse(&tenant).map_err(|_| {
                error(
                    "TENANT_KEYS: a name is not a valid tenantId (1-128 of A-Z a-z 0-9 . _ -); \
                     it maps tenantId to key, not key to tenantId (the name is not shown, in case \
                     it is a key)",
                )
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::azure_credential::AzureCredential;
    use crate::config::test_support::*;
    use crate::config::*;
    use crate::domain::*;

    #[test]
    fn bad_tenant_keys_fail_without_showing_keys() {
        let e = config(
            &[
                ("AUTH_MODE", "none"),
                ("TENANT_KEYS", r#"{"t1":"very-secret""#),
            ],
            None,
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("TENANT_KEYS must be a JSON object"),
            "{e}"
        );
        assert!(!e.to_string().contains("very-secret"));
        let e = config(
            &[("AUTH_MODE", "none"), ("TENANT_KEYS", r#"["very-secret"]"#)],
            None,
            None,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("very-secret"));
        let e = config(
            &[
                ("AUTH_MODE", "none"),
                ("TENANT_KEYS", r#"{"bad/id":"very-secret"}"#),
            ],
            None,
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("not a valid tenantId") && !e.to_string().contains("bad/id"),
            "{e}"
        );
        // A key put where its tenant id belongs is not printed either.
        let e = config(
            &[
                ("AUTH_MODE", "none"),
                ("TENANT_KEYS", r#"{"Zm9vYmFy+SECRET/KEY==":"t1"}"#),
            ],
            None,
            None,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("SECRET"), "{e}");
        let e = config(
            &[("AUTH_MODE", "none"), ("TENANT_KEYS", r#"{"t":42}"#)],
            None,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("must be a non-empty string"), "{e}");
    }

    #[test]
    fn key_vault_with_managed_identity_and_defaults() {
        let c = config(
            &[
                ("AUTH_MODE", "none"),
                VAULT,
                APP_SERVICE_IDENTITY[0],
                APP_SERVICE_IDENTITY[1],
                ("TENANT_KEYS", r#"{"t":"k"}"#),
            ],
            None,
            None,
        )
        .unwrap();
        let KeySettings::Vault {
            vault,
            cache,
            preload,
            identity_source,
            ignored_tenant_keys,
        } = c.keys
        else {
            panic!("expected Key Vault");
        };
        assert_eq!(vault.url, "https://my-vault.vault.azure.net");
        assert_eq!(
            vault.credential,
            AzureCredential::ManagedIdentity { client_id: None }
        );
        assert!(vault.verify_challenge_resource);
        let tenant = TenantId::parse("abc").unwrap();
        assert_eq!(
            vault.secret_name.name_for(&tenant).as_deref(),
            Some("fluid-tenant-abc")
        );
        assert_eq!(cache.ttl, Duration::from_secs(300));
        assert_eq!(cache.max_stale, Duration::from_secs(86_400));
        assert_eq!(cache.negative_ttl, Duration::from_secs(60));
        assert_eq!(cache.fetch_timeout, Duration::from_millis(5000));
        assert!(preload.is_empty());
        assert!(identity_source.starts_with("app-service"));
        assert!(ignored_tenant_keys);
    }

    #[test]
    fn key_vault_settings_are_checked() {
        let with = |extra: &[(&str, &str)]| {
            let mut vars = vec![("AUTH_MODE", "none"), VAULT];
            vars.extend_from_slice(extra);
            config(&vars, None, None).map(|c| c.keys)
        };
        let e = with(&[]).unwrap_err().to_string();
        assert!(
            e.contains("IDENTITY_ENDPOINT") && e.contains("KEY_VAULT_ALLOW_IMDS"),
            "{e}"
        );
        assert!(
            matches!(with(&[("KEY_VAULT_ALLOW_IMDS", "true")]), Ok(KeySettings::Vault { identity_source, .. }) if identity_source.contains("IMDS"))
        );
        assert!(matches!(
            with(&[("KEY_VAULT_CREDENTIAL", "developer-tools")]),
            Ok(KeySettings::Vault { .. })
        ));
        let e = with(&[
            ("KEY_VAULT_CREDENTIAL", "client-secret"),
            ("AZURE_TENANT_ID", "t"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("AZURE_CLIENT_ID"), "{e}");
        let secret = with(&[
            ("KEY_VAULT_CREDENTIAL", "client-secret"),
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "s3"),
        ]);
        assert!(
            matches!(secret, Ok(KeySettings::Vault { vault, .. }) if vault.credential.name() == "client-secret")
        );
        assert!(with(&[("KEY_VAULT_CREDENTIAL", "env")]).is_err());

        let mi = [APP_SERVICE_IDENTITY[0], APP_SERVICE_IDENTITY[1]];
        let with_mi = |extra: &[(&str, &str)]| {
            let mut vars = mi.to_vec();
            vars.extend_from_slice(extra);
            with(&vars)
        };
        for bad in [
            ("KEY_VAULT_SECRET_NAME", "no-placeholder"),
            ("KEY_VAULT_SECRET_NAME", "bad_{tenantId}"),
            ("KEY_CACHE_TTL_SECONDS", "0"),
            ("KEY_CACHE_MAX_STALE_SECONDS", "10"),
            ("KEY_VAULT_TIMEOUT_MS", "0"),
            ("KEY_VAULT_VERIFY_CHALLENGE_RESOURCE", "maybe"),
            ("KEY_VAULT_PRELOAD_TENANTS", "ok,not/ok"),
        ] {
            let e = with_mi(&[bad]).unwrap_err().to_string();
            assert!(e.starts_with(bad.0), "{bad:?}: {e}");
        }
        assert!(
            config(
                &[
                    ("AUTH_MODE", "none"),
                    ("KEY_VAULT_URL", "http://127.0.0.1:1")
                ],
                None,
                None
            )
            .is_err()
        );

        let Ok(KeySettings::Vault {
            vault,
            cache,
            preload,
            ..
        }) = with_mi(&[
            ("AZURE_CLIENT_ID", "uami"),
            ("KEY_VAULT_VERIFY_CHALLENGE_RESOURCE", "false"),
            ("KEY_CACHE_TTL_SECONDS", "5"),
            ("KEY_VAULT_TIMEOUT_MS", "250"),
            ("KEY_VAULT_PRELOAD_TENANTS", " a , b,"),
        ])
        else {
            panic!("expected Key Vault");
        };
        assert_eq!(
            vault.credential,
            AzureCredential::ManagedIdentity {
                client_id: Some("uami".into())
            }
        );
        assert!(!vault.verify_challenge_resource);
        assert_eq!(cache.ttl, Duration::from_secs(5));
        assert_eq!(cache.fetch_timeout, Duration::from_millis(250));
        assert_eq!(preload.len(), 2);
    }
}
