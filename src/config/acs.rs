//! `ACS_*`, and the `AzureWebJobsStorage` account the identity bindings live in.

use std::time::Duration;

use crate::acs::connection::{AcsConnection, AcsEndpoint};
use crate::azure_credential::AzureCredential;

use super::keys::credential_settings;
use super::settings::Settings;
use super::storage::{StorageSetting, storage_setting};
use super::{ConfigError, error};

/// The ACS function's settings.
#[derive(Debug)]
pub struct AcsSettings {
    pub connection: AcsConnectionSetting,
    /// Where caller → identity bindings are kept (authenticated modes).
    pub storage: Option<StorageSetting>,
    /// `ACS_TIMEOUT_MS`: time budget of one ACS or Table Storage request.
    pub timeout: Duration,
    /// The app's identity, when ACS or the storage is reached with it (no keys).
    pub credential: Option<AzureCredential>,
}

#[derive(Debug)]
pub enum AcsConnectionSetting {
    /// `ACS_CONNECTION_STRING`.
    Fixed(AcsConnection),
    /// `ACS_CONNECTION_STRING_SECRET_NAME`: read from the Key Vault of `KEY_VAULT_URL`.
    VaultSecret(String),
    /// `ACS_ENDPOINT` without a key: Microsoft Entra tokens of the app's identity.
    Entra { endpoint: AcsEndpoint },
}

/// `ACS_*` and `AzureWebJobsStorage`.
pub(super) fn acs_settings(
    settings: &Settings,
    have_vault: bool,
) -> Result<Option<AcsSettings>, ConfigError> {
    let present = |name: &str| settings.get(name).filter(|v| !v.trim().is_empty());
    let sources = [
        present("ACS_CONNECTION_STRING"),
        present("ACS_CONNECTION_STRING_SECRET_NAME"),
        present("ACS_ENDPOINT"),
    ];
    let connection = match sources {
        [None, None, None] => return Ok(None),
        [Some(text), None, None] => AcsConnectionSetting::Fixed(
            AcsConnection::parse(&text)
                .map_err(|problem| error(format!("ACS_CONNECTION_STRING {problem}")))?,
        ),
        [None, Some(name), None] => {
            if !have_vault {
                return Err(error(
                    "ACS_CONNECTION_STRING_SECRET_NAME needs KEY_VAULT_URL",
                ));
            }
            let name = name.trim().to_string();
            if !(1..=127).contains(&name.len())
                || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(error(
                    "ACS_CONNECTION_STRING_SECRET_NAME must be a Key Vault secret name (0-9 a-z A-Z -)",
                ));
            }
            AcsConnectionSetting::VaultSecret(name)
        }
        [None, None, Some(endpoint)] => AcsConnectionSetting::Entra {
            endpoint: AcsEndpoint::parse(&endpoint)
                .map_err(|problem| error(format!("ACS_ENDPOINT {problem}")))?,
        },
        _ => {
            return Err(error(
                "set one of ACS_CONNECTION_STRING, ACS_CONNECTION_STRING_SECRET_NAME and ACS_ENDPOINT",
            ));
        }
    };
    let timeout = settings.milliseconds("ACS_TIMEOUT_MS", 5000)?;
    let storage = storage_setting(settings)?;
    let keyless = matches!(connection, AcsConnectionSetting::Entra { .. })
        || matches!(storage, Some(StorageSetting::Identity { .. }));
    let credential = if keyless {
        Some(credential_settings(settings)?.0)
    } else {
        None
    };
    Ok(Some(AcsSettings {
        connection,
        storage,
        timeout,
        credential,
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::azure_credential::AzureCredential;
    use crate::config::test_support::*;
    use crate::config::*;

    #[test]
    fn keyless_acs_and_identity_based_storage() {
        let identity = [
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token"),
            ("IDENTITY_HEADER", "h"),
        ];
        let settings = |extra: &[(&str, &str)]| {
            let mut vars = vec![("AUTH_MODE", "none")];
            vars.extend_from_slice(&identity);
            vars.extend_from_slice(extra);
            config(&vars, None, None).unwrap().acs.unwrap()
        };
        let keyless = settings(&[
            ("ACS_ENDPOINT", "https://x.communication.azure.com/"),
            ("AzureWebJobsStorage__accountName", "fnstore1"),
        ]);
        assert!(matches!(
            &keyless.connection,
            AcsConnectionSetting::Entra { endpoint } if endpoint.url == "https://x.communication.azure.com"
        ));
        assert!(matches!(
            &keyless.storage,
            Some(StorageSetting::Identity { table_endpoint }) if table_endpoint == "https://fnstore1.table.core.windows.net"
        ));
        assert_eq!(
            keyless.credential,
            Some(AzureCredential::ManagedIdentity { client_id: None })
        );
        // An explicit table endpoint wins over the account name; a connection string over both.
        let uri = settings(&[
            ("ACS_ENDPOINT", "https://x.communication.azure.com"),
            ("AzureWebJobsStorage__accountName", "fnstore1"),
            (
                "AzureWebJobsStorage__tableServiceUri",
                "https://127.0.0.1:10002/acct/",
            ),
        ]);
        assert!(matches!(
            &uri.storage,
            Some(StorageSetting::Identity { table_endpoint }) if table_endpoint == "https://127.0.0.1:10002/acct"
        ));
        let keyed = settings(&[
            (
                "ACS_CONNECTION_STRING",
                "endpoint=https://x.communication.azure.com/;accesskey=c2VjcmV0",
            ),
            ("AzureWebJobsStorage", "AccountName=a;AccountKey=c2VjcmV0"),
            ("AzureWebJobsStorage__accountName", "fnstore1"),
        ]);
        assert!(matches!(
            keyed.storage,
            Some(StorageSetting::ConnectionString(_))
        ));
        assert_eq!(keyed.credential, None, "no identity needed with keys");
        let credential = settings(&[
            ("ACS_ENDPOINT", "https://x.communication.azure.com"),
            ("AZURE_CREDENTIAL", "developer-tools"),
        ]);
        assert_eq!(credential.credential, Some(AzureCredential::DeveloperTools));
    }

    #[test]
    fn acs_settings() {
        let acs = "endpoint=https://x.communication.azure.com/;accesskey=c2VjcmV0LWtleQ==";
        let c = config(
            &[("AUTH_MODE", "none"), ("ACS_CONNECTION_STRING", acs)],
            None,
            None,
        )
        .unwrap();
        let settings = c.acs.unwrap();
        assert!(matches!(
            settings.connection,
            AcsConnectionSetting::Fixed(_)
        ));
        assert_eq!(settings.timeout, Duration::from_secs(5));
        assert!(
            config(&[("AUTH_MODE", "none")], None, None)
                .unwrap()
                .acs
                .is_none()
        );
        for (vars, expected) in [
            (
                vec![("ACS_CONNECTION_STRING", "endpoint=https://x;accesskey=!!")],
                "ACS_CONNECTION_STRING",
            ),
            (
                vec![("ACS_CONNECTION_STRING_SECRET_NAME", "acs")],
                "ACS_CONNECTION_STRING_SECRET_NAME needs KEY_VAULT_URL",
            ),
            (
                vec![
                    ("ACS_CONNECTION_STRING", acs),
                    ("ACS_CONNECTION_STRING_SECRET_NAME", "acs"),
                ],
                "set one of ACS_CONNECTION_STRING, ACS_CONNECTION_STRING_SECRET_NAME and ACS_ENDPOINT",
            ),
            (
                vec![
                    ("ACS_CONNECTION_STRING", acs),
                    ("ACS_ENDPOINT", "https://x.communication.azure.com"),
                ],
                "set one of",
            ),
            (
                vec![("ACS_ENDPOINT", "http://acs.example.com")],
                "ACS_ENDPOINT needs an https:// endpoint",
            ),
            (
                vec![("ACS_ENDPOINT", "https://x.communication.azure.com")],
                "AZURE_CREDENTIAL=managed-identity needs IDENTITY_ENDPOINT",
            ),
            (
                vec![
                    ("ACS_CONNECTION_STRING", acs),
                    ("AzureWebJobsStorage__accountName", "Bad_Name"),
                ],
                "AzureWebJobsStorage__accountName must be a storage account name",
            ),
            (
                vec![
                    ("ACS_CONNECTION_STRING", acs),
                    (
                        "AzureWebJobsStorage__tableServiceUri",
                        "http://127.0.0.1:1/acct",
                    ),
                ],
                "AzureWebJobsStorage__tableServiceUri must be an https:// URL",
            ),
            (
                vec![("ACS_CONNECTION_STRING", acs), ("ACS_TIMEOUT_MS", "0")],
                "ACS_TIMEOUT_MS",
            ),
        ] {
            let mut all = vec![("AUTH_MODE", "none")];
            all.extend(vars);
            let e = config(&all, None, None).unwrap_err().to_string();
            assert!(e.starts_with(expected), "{e}");
            assert!(!e.contains("c2VjcmV0"));
        }
        let vault = config(
            &[
                ("AUTH_MODE", "none"),
                VAULT,
                ("KEY_VAULT_CREDENTIAL", "developer-tools"),
                ("ACS_CONNECTION_STRING_SECRET_NAME", "acs-connection"),
            ],
            None,
            None,
        )
        .unwrap();
        assert!(
            matches!(vault.acs.unwrap().connection, AcsConnectionSetting::VaultSecret(name) if name == "acs-connection")
        );
    }
}
