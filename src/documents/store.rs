//! Where memberships live: the [`MemberStore`] trait and its in-memory implementation (the
//! Table Storage one is in [`super::table`]).
//!
//! A store knows each registered container's owner and its members with their roles; the owner
//! is a member with role [`Role::Owner`]. Claiming ownership is atomic: of two callers claiming
//! the same container, exactly one gets [`OwnerClaim::New`].

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use super::{DocumentRef, Member, Role};
use crate::table_storage::StoreUnavailable;

pub type StoreFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, StoreUnavailable>> + Send + 'a>>;

/// What claiming ownership found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerClaim {
    /// Nobody owned the container; the caller does now.
    New,
    /// The caller already owned it.
    Same,
    /// Someone else owns it.
    Other,
}

pub trait MemberStore: Send + Sync {
    /// Makes `user` the owner of `document` unless it has one.
    fn claim_owner<'a>(
        &'a self,
        document: &'a DocumentRef,
        user: &'a str,
    ) -> StoreFuture<'a, OwnerClaim>;
    /// The role of `user` in `document`; `None` for non-members and unregistered containers.
    fn role<'a>(
        &'a self,
        document: &'a DocumentRef,
        user: &'a str,
    ) -> StoreFuture<'a, Option<Role>>;
    /// Every member of `document`, the owner included.
    fn members<'a>(&'a self, document: &'a DocumentRef) -> StoreFuture<'a, Vec<Member>>;
    /// Gives `user` `role` in `document` (adding them when they are not a member).
    fn set_role<'a>(
        &'a self,
        document: &'a DocumentRef,
        user: &'a str,
        role: Role,
    ) -> StoreFuture<'a, ()>;
    /// Removes `user` from `document`; removing a non-member does nothing.
    fn remove<'a>(&'a self, document: &'a DocumentRef, user: &'a str) -> StoreFuture<'a, ()>;
}

/// Memberships in this process (`DOCUMENT_STORE=memory`): for local runs, lost on restart, and
/// each instance has its own. At most [`MemoryStore::MAX_DOCUMENTS`] containers.
#[derive(Default)]
pub struct MemoryStore {
    documents: Mutex<HashMap<DocumentRef, BTreeMap<String, Role>>>,
}

impl MemoryStore {
    pub const MAX_DOCUMENTS: usize = 100_000;

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<DocumentRef, BTreeMap<String, Role>>) -> T) -> T {
        let mut documents = self
            .documents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut documents)
    }
}

impl MemberStore for MemoryStore {
    fn claim_owner<'a>(
        &'a self,
        document: &'a DocumentRef,
        user: &'a str,
    ) -> StoreFuture<'a, OwnerClaim> {
        let claim = self.with(|documents| {
            if let Some(members) = documents.get(document) {
                let owner = members.iter().find(|(_, role)| **role == Role::Owner);
                return Ok(match owner {
                    Some((id, _)) if id == user => OwnerClaim::Same,
                    _ => OwnerClaim::Other,
                });
            }
            if documents.len() >= Self::MAX_DOCUMENTS {
                tracing::error!(
                    limit = Self::MAX_DOCUMENTS,
                    "DOCUMENT_STORE=memory is full; use DOCUMENT_STORE=table"
                );
                return Err(StoreUnavailable);
            }
            documents.insert(
                document.clone(),
                BTreeMap::from([(user.to_string(), Role::Owner)]),
            );
            Ok(OwnerClaim::New)
        });
        Box::pin(async move { claim })
    }

    fn role<'a>(
        &'a self,
        document: &'a DocumentRef,
        user: &'a str,
    ) -> StoreFuture<'a, Option<Role>> {
        let role = self.with(|documents| documents.get(document)?.get(user).copied());
        Box::pin(async move { Ok(role) })
    }

    fn members<'a>(&'a self, document: &'a DocumentRef) -> StoreFuture<'a, Vec<Member>> {
        let members = self.with(|documents| {
            documents.get(document).map_or_else(Vec::new, |members| {
                members
                    .iter()
                    .map(|(user_id, role)| Member {
                        user_id: user_id.clone(),
                        role: *role,
                    })
                    .collect()
            })
        });
        Box::pin(async move { Ok(members) })
    }

    fn set_role<'a>(
        &'a self,
        document: &'a DocumentRef,
        user: &'a str,
        role: Role,
    ) -> StoreFuture<'a, ()> {
        self.with(|documents| {
            if let Some(members) = documents.get_mut(document) {
                members.insert(user.to_string(), role);
            }
        });
        Box::pin(async move { Ok(()) })
    }

    fn remove<'a>(&'a self, document: &'a DocumentRef, user: &'a str) -> StoreFuture<'a, ()> {
        self.with(|documents| {
            if let Some(members) = documents.get_mut(document) {
                members.remove(user);
            }
        });
        Box::pin(async move { Ok(()) })
    }
}
