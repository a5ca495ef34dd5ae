//! Memberships in Azure Table Storage (`DOCUMENT_STORE=table`), shared by every instance.
//!
//! One partition per container: PartitionKey = [`key_of`]`("{tenantId}/{documentId}")` (a tenant
//! id has no `/`, so the pair is unambiguous). In it:
//! - one row per member, RowKey = [`key_of`]`(userId)`, with `TenantId`, `DocumentId`, `UserId`
//!   and `Role` in plain text (readable in Storage Explorer);
//! - the ownership marker, RowKey [`OWNER_ROW`], holding `UserId`. It is *inserted*, which
//!   the service does atomically: of two callers claiming a container, one insert fails with
//!   409, and that caller reads who won. `!` is outside the base64url alphabet, so no member's
//!   row can be mistaken for it.

use serde_json::{Value, json};

use super::store::{MemberStore, OwnerClaim, StoreFuture};
use super::{DocumentRef, Member, Role};
use crate::table_storage::{Inserted, StoreUnavailable, TableClient, key_of};

/// The RowKey of a container's ownership marker.
pub const OWNER_ROW: &str = "!owner";

pub struct TableMembers {
    table: TableClient,
}

impl TableMembers {
    pub fn new(table: TableClient) -> Self {
        TableMembers { table }
    }

    async fn write_member(
        &self,
        document: &DocumentRef,
        user: &str,
        role: Role,
    ) -> Result<(), StoreUnavailable> {
        let partition = partition_of(document);
        let row = key_of(user);
        let entity = json!({
            "PartitionKey": partition,
            "RowKey": row,
            "TenantId": document.tenant_id.as_str(),
            "DocumentId": document.document_id.as_str(),
            "UserId": user,
            "Role": role.as_str(),
        });
        self.table.upsert(&partition, &row, &entity).await
    }
}

impl MemberStore for TableMembers {
    fn claim_owner<'a>(
        &'a self,
        document: &'a DocumentRef,
        user: &'a str,
    ) -> StoreFuture<'a, OwnerClaim> {
        Box::pin(async move {
            let partition = partition_of(document);
            let marker = json!({ "PartitionKey": partition, "RowKey": OWNER_ROW, "UserId": user });
            let claim = match self.table.insert(&marker).await? {
                Inserted::Created => OwnerClaim::New,
                Inserted::AlreadyThere => {
                    let owner = self.table.get(&partition, OWNER_ROW).await?;
                    match owner.as_ref().and_then(|row| row["UserId"].as_str()) {
                        Some(owner) if owner == user => OwnerClaim::Same,
                        Some(_) => return Ok(OwnerClaim::Other),
                        // Deleted between the insert and the read: nothing to trust.
                        None => return Err(StoreUnavailable),
                    }
                }
            };
            // Written after the marker (and again on a repeated claim), so an interrupted first
            // claim is completed by the next.
            self.write_member(document, user, Role::Owner).await?;
            Ok(claim)
        })
    }

    fn role<'a>(
        &'a self,
        document: &'a DocumentRef,
        user: &'a str,
    ) -> StoreFuture<'a, Option<Role>> {
        Box::pin(async move {
            let row = self
                .table
                .get(&partition_of(document), &key_of(user))
                .await?;
            Ok(row.as_ref().and_then(role_of))
        })
    }

    fn members<'a>(&'a self, document: &'a DocumentRef) -> StoreFuture<'a, Vec<Member>> {
        Box::pin(async move {
            let rows = self.table.partition(&partition_of(document)).await?;
            Ok(rows
                .iter()
                .filter(|row| row["RowKey"] != OWNER_ROW)
                .filter_map(|row| {
                    Some(Member {
                        user_id: row["UserId"].as_str()?.to_string(),
                        role: role_of(row)?,
                    })
                })
                .collect())
        })
    }

    fn set_role<'a>(
        &'a self,
        document: &'a DocumentRef,
        user: &'a str,
        role: Role,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.write_member(document, user, role))
    }

    fn remove<'a>(&'a self, document: &'a DocumentRef, user: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.table
                .delete(&partition_of(document), &key_of(user))
                .await
        })
    }
}

fn partition_of(document: &DocumentRef) -> String {
    key_of(&format!(
        "{}/{}",
        document.tenant_id.as_str(),
        document.document_id.as_str()
    ))
}

fn role_of(row: &Value) -> Option<Role> {
    row["Role"].as_str().and_then(Role::parse)
}
