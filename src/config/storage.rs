//! `AzureWebJobsStorage`, in its connection-string and identity-based forms: the storage account
//! the app's small tables (ACS identity bindings, document members) live in.

use crate::secret::Secret;

use super::settings::Settings;
use super::{ConfigError, error};

/// The storage account of `AzureWebJobsStorage`, as the Functions host reads it.
#[derive(Debug)]
pub enum StorageSetting {
    /// `AzureWebJobsStorage`: a connection string with the account key (Azurite, local runs).
    ConnectionString(Secret<String>),
    /// `AzureWebJobsStorage__tableServiceUri`, or `AzureWebJobsStorage__accountName` in the
    /// public cloud: reached with Microsoft Entra tokens of the app's identity.
    Identity { table_endpoint: String },
}

/// `AzureWebJobsStorage` (a connection string) or its identity-based form, as the Functions host
/// reads them: `AzureWebJobsStorage__tableServiceUri`, else `AzureWebJobsStorage__accountName`
/// (public cloud endpoints).
pub(super) fn storage_setting(settings: &Settings) -> Result<Option<StorageSetting>, ConfigError> {
    let present = |name: &str| {
        settings
            .get(name)
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
