//! `ACS_*`, and the `AzureWebJobsStorage` account the identity bindings live in.

use std::time::Duration;

use crate::acs::connection::{AcsConnection, AcsEndpoint};
use crate::azure_credential::AzureCredential;

use super::keys::credential_settings;
use super::storage::{StorageSetting, storage_setting};
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
