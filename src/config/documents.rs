//! `DOCUMENT_ACCESS`, `DOCUMENT_STORE` and `DOCUMENT_TABLE_NAME`: who may open which container,
//! and where the memberships live.

use crate::azure_credential::AzureCredential;
use crate::documents::DocumentAccess;

use super::keys::credential_settings;
use super::storage::{StorageSetting, storage_setting};
use super::{ConfigError, Launch, error};

/// The table memberships live in unless `DOCUMENT_TABLE_NAME` names another.
pub const DEFAULT_TABLE: &str = "FluidDocumentMembers";

/// The document functions' settings.
#[derive(Debug)]
pub struct DocumentSettings {
    pub access: DocumentAccess,
    /// `None`: no store, so the document functions are not served (under the Functions host
    /// without `DOCUMENT_STORE`, with `DOCUMENT_ACCESS=open`).
    pub store: Option<DocumentStoreSetting>,
}

#[derive(Debug)]
pub enum DocumentStoreSetting {
    /// In this process only: lost on restart, and each instance has its own.
    Memory {
        /// Named explicitly under the Functions host (where it deserves a warning).
        explicit_under_host: bool,
    },
    /// Azure Table Storage in the `AzureWebJobsStorage` account.
    Table {
        storage: StorageSetting,
        table: String,
        /// The app's identity, for identity-based storage.
        credential: Option<AzureCredential>,
    },
}

pub(super) fn document_settings(
    setting: &dyn Fn(&str) -> Option<String>,
    launch: Launch,
    authenticated: bool,
) -> Result<DocumentSettings, ConfigError> {
    let value = |name: &str| {
        setting(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let access = match value("DOCUMENT_ACCESS").as_deref() {
        None | Some("open") => DocumentAccess::Open,
        Some("members") => DocumentAccess::Members,
        Some(other) => {
            return Err(error(format!(
                "DOCUMENT_ACCESS \"{other}\" is not one of open, members"
            )));
        }
    };
    if access == DocumentAccess::Members && !authenticated {
        return Err(error(
            "DOCUMENT_ACCESS=members needs signed-in callers (AUTH_MODE easyauth or entra): with AUTH_MODE=none every caller can claim to be any member",
        ));
    }
    let store = match value("DOCUMENT_STORE").as_deref() {
        None if launch == Launch::Standalone => Some(DocumentStoreSetting::Memory {
            explicit_under_host: false,
        }),
        None if access == DocumentAccess::Members => {
            return Err(error(
                "DOCUMENT_ACCESS=members needs DOCUMENT_STORE: table (Azure Table Storage in AzureWebJobsStorage) or memory (one instance only; memberships are lost on restart)",
            ));
        }
        None => None,
        Some("memory") => Some(DocumentStoreSetting::Memory {
            explicit_under_host: launch == Launch::FunctionsHost,
        }),
        Some("table") => {
            let storage = storage_setting(setting)?.ok_or_else(|| {
                error(
                    "DOCUMENT_STORE=table needs AzureWebJobsStorage (or AzureWebJobsStorage__accountName)",
                )
            })?;
            let table = value("DOCUMENT_TABLE_NAME").unwrap_or_else(|| DEFAULT_TABLE.to_string());
            if !is_table_name(&table) {
                return Err(error(
                    "DOCUMENT_TABLE_NAME must be a table name: a letter, then letters and digits, 3-63 characters",
                ));
            }
            let credential = match storage {
                StorageSetting::Identity { .. } => Some(credential_settings(setting)?.0),
                StorageSetting::ConnectionString(_) => None,
            };
            Some(DocumentStoreSetting::Table {
                storage,
                table,
                credential,
            })
        }
        Some(other) => {
            return Err(error(format!(
                "DOCUMENT_STORE \"{other}\" is not one of table, memory"
            )));
        }
    };
    Ok(DocumentSettings { access, store })
}

/// Azure Table Storage's rule: `^[A-Za-z][A-Za-z0-9]{2,62}$`.
fn is_table_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric())
}
