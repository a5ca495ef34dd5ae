//! Which caller created which ACS identity, kept in Azure Table Storage (the Function App's own
//! `AzureWebJobsStorage` account), so that in authenticated modes a caller can only get tokens
//! for identities it created.
//!
//! One entity per binding in table `AcsIdentityBindings`: PartitionKey = the caller's id,
//! RowKey = the communication user id (both through [`key_of`], since table keys forbid `/`,
//! `\`, `#`, `?`).

use crate::table_storage::{StoreUnavailable, TableClient, key_of};

/// The table the bindings live in.
pub const TABLE: &str = "AcsIdentityBindings";

pub struct TableBindings {
    table: TableClient,
}

impl TableBindings {
    /// Bindings in `table` (a client of [`TABLE`]).
    pub fn new(table: TableClient) -> Self {
        TableBindings { table }
    }

    /// Records that `caller` created `identity`.
    pub async fn remember(&self, caller: &str, identity: &str) -> Result<(), StoreUnavailable> {
        let entity = serde_json::json!({
            "PartitionKey": key_of(caller),
            "RowKey": key_of(identity),
            "CallerId": caller,
            "CommunicationUserId": identity,
        });
        self.table.insert(&entity).await.map(|_| ())
    }

    /// Whether `caller` created `identity`.
    pub async fn owns(&self, caller: &str, identity: &str) -> Result<bool, StoreUnavailable> {
        let found = self.table.get(&key_of(caller), &key_of(identity)).await?;
        Ok(found.is_some())
    }

    /// An identity bound to `caller`, if any (the first in key order when there are several).
    pub async fn identity_of(&self, caller: &str) -> Result<Option<String>, StoreUnavailable> {
        let rows = self.table.partition(&key_of(caller)).await?;
        Ok(rows
            .first()
            .and_then(|row| row["CommunicationUserId"].as_str())
            .map(str::to_owned))
    }

    /// Removes the binding of `identity` to `caller` (after the identity was deleted).
    pub async fn forget(&self, caller: &str, identity: &str) -> Result<(), StoreUnavailable> {
        self.table.delete(&key_of(caller), &key_of(identity)).await
    }
}
/// The bindings live in Table Storage: when it fails, ACS tokens are unavailable.
impl From<StoreUnavailable> for super::identity::AcsError {
    fn from(_: StoreUnavailable) -> Self {
        super::identity::AcsError::Unavailable
    }
}
