//! `ACS_*` and `AzureWebJobsStorage` (in its connection-string and identity-based forms).

use std::time::Duration;

use crate::acs::connection::{AcsConnection, AcsEndpoint};
use crate::azure_credential::AzureCredential;
use crate::secret::Secret;

use super::keys::credential_settings;
use super::{ConfigError, error, milliseconds};

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

/// The storage account of `AzureWebJobsStorage`, as the Functions host reads it.
#[derive(Debug)]
pub enum StorageSetting {
    /// `AzureWebJobsStorage`: a connection string with the account key (Azurite, local runs).
    ConnectionString(Secret<String>),
    /// `AzureWebJobsStorage__tableServiceUri`, or `AzureWebJobsStorage__accountName` in the
    /// public cloud: reached with Microsoft Entra tokens of the app's identity.
    Identity { table_endpoint: String },
}

/// `ACS_*` and `AzureWebJobsStorage`.
pub(super) fn acs_settings(
    setting: &dyn Fn(&str) -> Option<String>,
    have_vault: bool,
) -> Result<Option<AcsSettings>, ConfigError> {
    let present = |name: &str| setting(name).filter(|v| !v.trim().is_empty());
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
    let timeout = milliseconds(setting, "ACS_TIMEOUT_MS", 5000)?;
    let storage = storage_setting(setting)?;
    let keyless = matches!(connection, AcsConnectionSetting::Entra { .. })
        || matches!(storage, Some(StorageSetting::Identity { .. }));
    let credential = if keyless {
        Some(credential_settings(setting)?.0)
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

/// `AzureWebJobsStorage` (a connection string) or its identity-based form, as the Functions host
/// reads them: `AzureWebJobsStorage__tableServiceUri`, else `AzureWebJobsStorage__accountName`
/// (public cloud endpoints).
fn storage_setting(
    setting: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<StorageSetting>, ConfigError> {
    let present = |name: &str| {
        setting(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if let Some(text) = present("AzureWebJobsStorage") {
        return Ok(Some(StorageSetting::ConnectionString(Secret::new(text))));
    }
    let table_endpoint = match (
        present("AzureWebJobsStorage__tableServiceUri"),
        present("AzureWebJobsStorage__accountName"),
    ) {
        (Some(uri), _) => uri.trim_end_matches('/').to_string(),
        (None, Some(account)) => {
            if !(3..=24).contains(&account.len())
                || !account
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                return Err(error(
                    "AzureWebJobsStorage__accountName must be a storage account name (3-24 lower-case letters and digits)",
                ));
            }
            format!("https://{account}.table.core.windows.net")
        }
        (None, None) => return Ok(None),
    };
    let https = table_endpoint.starts_with("https://");
    if !https {
        return Err(error(
            "AzureWebJobsStorage__tableServiceUri must be an https:// URL (Microsoft Entra tokens are sent only over TLS)",
        ));
    }
    Ok(Some(StorageSetting::Identity { table_endpoint }))
}
