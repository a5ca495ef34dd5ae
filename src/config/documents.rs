//! `DOCUMENT_ACCESS`, `DOCUMENT_STORE` and `DOCUMENT_TABLE_NAME`: who may open which container,
//! and where the memberships live.

use crate::azure_credential::AzureCredential;
use crate::documents::{DocumentAccess, DocumentLimits};

use super::keys::credential_settings;
use super::settings::Settings;
use super::storage::{StorageSetting, storage_setting};
use super::{ConfigError, Launch, error};

/// The table memberships live in unless `DOCUMENT_TABLE_NAME` names another.
pub const DEFAULT_TABLE: &str = "FluidDocumentMembers";

/// The document functions' settings.
#[derive(Debug)]
pub struct DocumentSettings {
    pub access: DocumentAccess,
    /// `DOCUMENT_STORE_MISS_RATE` and `DOCUMENT_MAX_MEMBERS`.
    pub limits: DocumentLimits,
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
    settings: &Settings,
    launch: Launch,
    authenticated: bool,
) -> Result<DocumentSettings, ConfigError> {
    let value = |name: &str| {
        settings
            .get(name)
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
            let storage = storage_setting(settings)?.ok_or_else(|| {
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
                StorageSetting::Identity { .. } => Some(credential_settings(settings)?.0),
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
    let limits = DocumentLimits {
        miss_rate: settings.rate("DOCUMENT_STORE_MISS_RATE", 20, "store reads")?,
        max_members: match settings.present("DOCUMENT_MAX_MEMBERS") {
            None => DocumentLimits::default().max_members,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
                .ok_or_else(|| error("DOCUMENT_MAX_MEMBERS must be an integer from 1 to 100000"))?,
        },
    };
    Ok(DocumentSettings {
        access,
        limits,
        store,
    })
}

/// Azure Table Storage's rule: `^[A-Za-z][A-Za-z0-9]{2,62}$`.
fn is_table_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;
    use crate::config::*;
    use crate::documents::DocumentLimits;

    #[test]
    fn document_limits() {
        let limits = |vars: &[(&str, &str)]| {
            let mut all = vec![("AUTH_MODE", "none")];
            all.extend_from_slice(vars);
            config(&all, None, None).map(|c| c.documents.limits)
        };
        assert_eq!(limits(&[]).unwrap(), DocumentLimits::default());
        assert_eq!(
            limits(&[
                ("DOCUMENT_STORE_MISS_RATE", "5"),
                ("DOCUMENT_MAX_MEMBERS", "3")
            ])
            .unwrap(),
            DocumentLimits {
                miss_rate: 5,
                max_members: 3
            }
        );
        for (vars, needle) in [
            (
                [("DOCUMENT_STORE_MISS_RATE", "0")],
                "DOCUMENT_STORE_MISS_RATE must be an integer from 1 to 1000 (store reads per second)",
            ),
            (
                [("DOCUMENT_MAX_MEMBERS", "none")],
                "DOCUMENT_MAX_MEMBERS must be an integer from 1 to 100000",
            ),
        ] {
            assert_eq!(limits(&vars).unwrap_err().to_string(), needle);
        }
    }

    #[test]
    fn document_access_and_its_store() {
        use crate::documents::DocumentAccess;
        let easyauth = [("AUTH_MODE", "easyauth"), ("WEBSITE_AUTH_ENABLED", "True")];
        let host = |extra: &[(&str, &str)]| {
            let mut vars = vec![("FUNCTIONS_CUSTOMHANDLER_PORT", "0")];
            vars.extend_from_slice(&easyauth);
            vars.extend_from_slice(extra);
            config(&vars, None, None).map(|c| c.documents)
        };
        // Standalone: open, in memory, without a warning.
        let standalone = config(&[("AUTH_MODE", "none")], None, None)
            .unwrap()
            .documents;
        assert_eq!(standalone.access, DocumentAccess::Open);
        assert!(matches!(
            standalone.store,
            Some(DocumentStoreSetting::Memory {
                explicit_under_host: false
            })
        ));
        // Under the host nothing is kept unless a store is named; members needs one.
        assert!(host(&[]).unwrap().store.is_none());
        let error = host(&[("DOCUMENT_ACCESS", "members")]).unwrap_err();
        assert!(error.0.contains("DOCUMENT_STORE"), "{error}");
        let memory = host(&[("DOCUMENT_ACCESS", "members"), ("DOCUMENT_STORE", "memory")]).unwrap();
        assert_eq!(memory.access, DocumentAccess::Members);
        assert!(matches!(
            memory.store,
            Some(DocumentStoreSetting::Memory {
                explicit_under_host: true
            })
        ));
        // Table: the AzureWebJobsStorage account, the default or a named table.
        let table = host(&[
            ("DOCUMENT_STORE", "table"),
            ("AzureWebJobsStorage", "AccountName=a;AccountKey=c2VjcmV0"),
        ])
        .unwrap();
        assert!(matches!(
            &table.store,
            Some(DocumentStoreSetting::Table { table, credential: None, storage: StorageSetting::ConnectionString(_) })
                if table == "FluidDocumentMembers"
        ));
        let named = host(&[
            ("DOCUMENT_STORE", "table"),
            ("DOCUMENT_TABLE_NAME", "Members2"),
            ("AzureWebJobsStorage__accountName", "fnstore1"),
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token"),
            ("IDENTITY_HEADER", "h"),
        ])
        .unwrap();
        assert!(matches!(
            &named.store,
            Some(DocumentStoreSetting::Table { table, credential: Some(_), storage: StorageSetting::Identity { .. } })
                if table == "Members2"
        ));
        for (vars, names) in [
            (vec![("DOCUMENT_STORE", "table")], "AzureWebJobsStorage"),
            (
                vec![
                    ("DOCUMENT_STORE", "table"),
                    ("DOCUMENT_TABLE_NAME", "1bad"),
                    ("AzureWebJobsStorage", "AccountName=a;AccountKey=c2VjcmV0"),
                ],
                "DOCUMENT_TABLE_NAME",
            ),
            (vec![("DOCUMENT_STORE", "blob")], "DOCUMENT_STORE"),
            (vec![("DOCUMENT_ACCESS", "closed")], "DOCUMENT_ACCESS"),
        ] {
            let error = host(&vars).unwrap_err();
            assert!(error.0.contains(names), "{error}");
            assert!(!error.0.contains("c2VjcmV0"));
        }
        // Without signed-in callers anyone could claim to be a member: refused.
        let error = config(
            &[("AUTH_MODE", "none"), ("DOCUMENT_ACCESS", "members")],
            None,
            None,
        )
        .unwrap_err();
        assert!(error.0.contains("AUTH_MODE"), "{error}");
    }
}
