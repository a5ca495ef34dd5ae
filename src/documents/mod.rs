//! Who may open which container.
//!
//! Azure Fluid Relay assigns a container's id when it creates it, and then hands the creating
//! client a *creation token*: a JWT it signed with the tenant key, with no scopes, naming the
//! container and the user who created it. The client's token provider passes it to
//! `DocumentCreated` (Fluid's `documentPostCreateCallback`), which checks it ([`creation`]) and
//! records that user as the container's **owner**. The owner can then add members with a role
//! (`DocumentMembers`).
//!
//! With `DOCUMENT_ACCESS=members`, a token for a container is issued only to its members, with
//! at most the scopes of their role ([`Documents::authorize`]); with `open` (the default) anyone
//! the policy admits gets one, as before, and the functions only keep the records.
//!
//! Memberships live in a [`store::MemberStore`] (memory or Table Storage); the token path reads
//! them through a short cache ([`cache::RoleCache`]), so a busy container costs no store read per
//! token, and a removed member loses access within [`cache::ROLE_TTL`] (for tokens issued after
//! it: a token already issued stays valid until its `exp`). Every store read a caller can cause —
//! a role for the token path, the member list, the owner check of a change — draws on one miss
//! budget (`DOCUMENT_STORE_MISS_RATE`), and a container has at most `DOCUMENT_MAX_MEMBERS`.

pub mod cache;
pub mod creation;
pub mod request;
pub mod store;
pub mod table;

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use serde::Serialize;

use crate::domain::{DocumentId, Scope, TenantId};
use crate::table_storage::StoreUnavailable;
use crate::token::Grant;
use cache::{RoleCache, RoleError};
use store::{MemberStore, OwnerClaim};

/// `DOCUMENT_ACCESS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentAccess {
    /// Any caller the policy admits gets tokens for any container (the default).
    Open,
    /// Tokens for a container only for its members, with their role's scopes.
    Members,
}

impl DocumentAccess {
    /// As `DOCUMENT_ACCESS` spells it (and the startup line prints it).
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentAccess::Open => "open",
            DocumentAccess::Members => "members",
        }
    }
}

/// What a member may do in a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Created the container; reads, writes and manages its members.
    Owner,
    Writer,
    Reader,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Writer => "writer",
            Role::Reader => "reader",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        [Role::Owner, Role::Writer, Role::Reader]
            .into_iter()
            .find(|role| role.as_str() == text)
    }

    /// The scopes a token of this role may carry.
    pub fn scopes(self) -> &'static [Scope] {
        match self {
            Role::Owner | Role::Writer => &Scope::ALL,
            Role::Reader => &[Scope::DocRead],
        }
    }
}

/// One container of one tenant (never the empty id of a create token).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DocumentRef {
    pub tenant_id: TenantId,
    pub document_id: DocumentId,
}

#[cfg(test)]
impl DocumentRef {
    /// Container `id` of tenant `t`.
    pub(crate) fn of_test_tenant(id: &str) -> Self {
        DocumentRef {
            tenant_id: TenantId::parse("t").unwrap(),
            document_id: DocumentId::parse(id).unwrap(),
        }
    }
}

/// A member of a container and their role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    #[serde(rename = "userId")]
    pub user_id: String,
    pub role: Role,
}

/// What registering an owner did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// The caller is now the owner.
    Created,
    /// The caller already was.
    AlreadyOwner,
}

/// Why a document operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentError {
    /// Not a member (or not the owner, for member changes), or the container is not registered:
    /// the same answer either way, so existence is not revealed.
    NotAllowed(&'static str),
    /// The request conflicts with what is recorded (another owner; changing the owner; a full
    /// container).
    Conflict(&'static str),
    Unavailable,
    /// The store read budget is spent: try again after this long.
    Busy(Duration),
}

impl From<StoreUnavailable> for DocumentError {
    fn from(_: StoreUnavailable) -> Self {
        DocumentError::Unavailable
    }
}

impl From<RoleError> for DocumentError {
    fn from(error: RoleError) -> Self {
        match error {
            RoleError::Unavailable => DocumentError::Unavailable,
            RoleError::Busy(retry_after) => DocumentError::Busy(retry_after),
        }
    }
}

/// The bounds of the member surface: `DOCUMENT_STORE_MISS_RATE`, `DOCUMENT_MAX_MEMBERS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentLimits {
    /// Store reads per second per instance that the cache does not answer (burst twice that).
    pub miss_rate: u32,
    /// Members a container may have, its owner included.
    pub max_members: usize,
}

impl Default for DocumentLimits {
    fn default() -> Self {
        DocumentLimits {
            miss_rate: 20,
            max_members: 1_000,
        }
    }
}

/// One page of a container's members, and what continues it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberPage {
    pub members: Vec<Member>,
    /// The user id the next page starts after; `None` on the last page.
    pub next_after: Option<String>,
}

/// The access model: the store, its cache and `DOCUMENT_ACCESS`.
pub struct Documents {
    access: DocumentAccess,
    store: Arc<dyn MemberStore>,
    roles: RoleCache,
    max_members: usize,
}

impl Documents {
    pub fn new(
        access: DocumentAccess,
        store: Arc<dyn MemberStore>,
        limits: DocumentLimits,
    ) -> Self {
        Documents {
            access,
            store,
            roles: RoleCache::new(limits.miss_rate),
            max_members: limits.max_members,
        }
    }

    /// The role of `user` in `document`, through the cache and its budget.
    async fn role(
        &self,
        document: &DocumentRef,
        user: &str,
    ) -> Result<Option<Role>, DocumentError> {
        let (store, owned, user_id) = (Arc::clone(&self.store), document.clone(), user.to_owned());
        let read = move || {
            let (store, document, user) = (Arc::clone(&store), owned.clone(), user_id.clone());
            async move { store.role(&document, &user).await }.boxed()
        };
        Ok(self.roles.get_or_fetch(document, user, read).await?)
    }

    /// Takes one store read from the budget, for reads the cache does not answer.
    fn spend(&self) -> Result<(), DocumentError> {
        Ok(self.roles.spend(tokio::time::Instant::now())?)
    }

    /// Narrows a token grant to what its user's role allows (with `DOCUMENT_ACCESS=members`).
    /// `scopes_asked`: the request named scopes, so more than the role allows is refused rather
    /// than narrowed; otherwise the grant gets the role's scopes (within the policy's).
    pub async fn authorize(
        &self,
        grant: &mut Grant,
        scopes_asked: bool,
    ) -> Result<(), DocumentError> {
        if self.access == DocumentAccess::Open || grant.document_id.as_str().is_empty() {
            return Ok(());
        }
        let document = DocumentRef {
            tenant_id: grant.tenant_id.clone(),
            document_id: grant.document_id.clone(),
        };
        let role = self
            .role(&document, &grant.user.id)
            .await?
            .ok_or(DocumentError::NotAllowed(NOT_A_MEMBER))?;
        let allowed = role.scopes();
        if scopes_asked {
            if grant
                .scopes
                .as_slice()
                .iter()
                .any(|scope| !allowed.contains(scope))
            {
                return Err(DocumentError::NotAllowed(
                    "scopes: your role in this document does not allow them.",
                ));
            }
        } else {
            grant.scopes = grant.scopes.retain(|scope| allowed.contains(scope)).ok_or(
                DocumentError::NotAllowed(
                    "scopes: your role in this document allows none of the scopes issued here.",
                ),
            )?;
        }
        Ok(())
    }

    /// Records `user` as the owner of `document`, unless someone else already is.
    pub async fn register_owner(
        &self,
        document: &DocumentRef,
        user: &str,
    ) -> Result<Registration, DocumentError> {
        let claim = self.store.claim_owner(document, user).await?;
        self.roles.forget(document, user);
        match claim {
            OwnerClaim::New => Ok(Registration::Created),
            OwnerClaim::Same => Ok(Registration::AlreadyOwner),
            OwnerClaim::Other => Err(DocumentError::Conflict(
                "documentId: this document already has another owner.",
            )),
        }
    }

    /// Records `user` as the owner of `document`, which must have none: an operator's
    /// migration of containers created before `DOCUMENT_ACCESS=members` (the route checks the
    /// caller's `Documents.Admin` role).
    pub async fn set_owner(&self, document: &DocumentRef, user: &str) -> Result<(), DocumentError> {
        match self.store.claim_owner(document, user).await? {
            OwnerClaim::New => {
                self.roles.forget(document, user);
                Ok(())
            }
            OwnerClaim::Same | OwnerClaim::Other => Err(DocumentError::Conflict(
                "documentId: this document already has an owner.",
            )),
        }
    }

    /// One page of the members of `document` (ordered by user id, at most `limit`, after the
    /// user id `after`), for any of its members.
    pub async fn members(
        &self,
        document: &DocumentRef,
        caller: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<MemberPage, DocumentError> {
        self.role(document, caller)
            .await?
            .ok_or(DocumentError::NotAllowed(NOT_A_MEMBER))?;
        self.spend()?;
        let mut members = self.store.members(document).await?;
        members.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        let start = after.map_or(0, |after| {
            members.partition_point(|m| m.user_id.as_str() <= after)
        });
        let rest = members.len() - start;
        let page: Vec<Member> = members.drain(start..).take(limit).collect();
        let next_after = (rest > limit)
            .then(|| page.last().map(|m| m.user_id.clone()))
            .flatten();
        Ok(MemberPage {
            members: page,
            next_after,
        })
    }

    /// Adds `user` to `document` as `role` (reader or writer), or changes their role; owner only.
    pub async fn set_member(
        &self,
        document: &DocumentRef,
        caller: &str,
        user: &str,
        role: Role,
    ) -> Result<(), DocumentError> {
        self.require_owner(document, caller, user).await?;
        // A new member needs room in the container.
        self.spend()?;
        let members = self.store.members(document).await?;
        if members.len() >= self.max_members && !members.iter().any(|m| m.user_id == user) {
            return Err(DocumentError::Conflict(
                "userId: this document has as many members as it may (DOCUMENT_MAX_MEMBERS).",
            ));
        }
        self.store.set_role(document, user, role).await?;
        self.roles.forget(document, user);
        Ok(())
    }

    /// Removes `user` from `document`; owner only, and not the owner.
    pub async fn remove_member(
        &self,
        document: &DocumentRef,
        caller: &str,
        user: &str,
    ) -> Result<(), DocumentError> {
        self.require_owner(document, caller, user).await?;
        self.store.remove(document, user).await?;
        self.roles.forget(document, user);
        Ok(())
    }

    /// The caller owns `document`, and `user` (whose membership changes) is someone else.
    async fn require_owner(
        &self,
        document: &DocumentRef,
        caller: &str,
        user: &str,
    ) -> Result<(), DocumentError> {
        self.spend()?;
        if self.store.role(document, caller).await? != Some(Role::Owner) {
            return Err(DocumentError::NotAllowed(
                "Only the document's owner can change its members.",
            ));
        }
        if user == caller {
            return Err(DocumentError::Conflict(
                "userId: the owner's own membership cannot be changed.",
            ));
        }
        Ok(())
    }
}

const NOT_A_MEMBER: &str = "documentId: you are not a member of this document.";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Lifetime, Scopes};
    use crate::token::FluidUser;
    use store::MemoryStore;

    fn grant(document_id: &str, user: &str, scopes: Scopes) -> Grant {
        Grant {
            tenant_id: TenantId::parse("t").unwrap(),
            document_id: DocumentId::parse(document_id).unwrap(),
            user: FluidUser {
                id: user.into(),
                name: user.into(),
                additional_details: None,
            },
            scopes,
            lifetime: Lifetime::HARD_CAP,
        }
    }

    fn names(scopes: &Scopes) -> Vec<&'static str> {
        scopes.as_slice().iter().map(|s| s.as_str()).collect()
    }

    /// Members mode with document `d`, owned by `ann`, and these members.
    async fn owned_by_ann(members: &[(&str, Role)]) -> (Documents, DocumentRef) {
        let documents = Documents::new(
            DocumentAccess::Members,
            Arc::new(MemoryStore::default()),
            DocumentLimits::default(),
        );
        let d = DocumentRef::of_test_tenant("d");
        assert_eq!(
            documents.register_owner(&d, "ann").await,
            Ok(Registration::Created)
        );
        for (user, role) in members {
            documents.set_member(&d, "ann", user, *role).await.unwrap();
        }
        (documents, d)
    }

    #[test]
    fn roles_are_named_as_stored_and_served() {
        for (role, name) in [
            (Role::Owner, "owner"),
            (Role::Writer, "writer"),
            (Role::Reader, "reader"),
        ] {
            assert_eq!(role.as_str(), name);
            assert_eq!(Role::parse(name), Some(role));
            assert_eq!(serde_json::to_value(role).unwrap(), name);
        }
        assert_eq!(Role::parse("Owner"), None);
        assert_eq!(Role::parse("admin"), None);
    }

    #[tokio::test]
    async fn open_access_leaves_grants_alone() {
        let documents = Documents::new(
            DocumentAccess::Open,
            Arc::new(MemoryStore::default()),
            DocumentLimits::default(),
        );
        let mut g = grant("d", "stranger", Scopes::all());
        documents.authorize(&mut g, false).await.unwrap();
        assert_eq!(g.scopes, Scopes::all());
    }

    #[tokio::test]
    async fn members_get_their_roles_scopes_and_nobody_else_gets_any() {
        let (documents, _) = owned_by_ann(&[("rob", Role::Reader), ("wes", Role::Writer)]).await;

        for (user, expected) in [
            ("ann", vec!["doc:read", "doc:write", "summary:write"]),
            ("wes", vec!["doc:read", "doc:write", "summary:write"]),
            ("rob", vec!["doc:read"]),
        ] {
            let mut g = grant("d", user, Scopes::all());
            documents.authorize(&mut g, false).await.unwrap();
            assert_eq!(names(&g.scopes), expected, "{user}");
        }
        // Asking for more than the role allows is refused, not narrowed.
        let mut asked = grant(
            "d",
            "rob",
            Scopes::parse_list("doc:read,doc:write").unwrap(),
        );
        assert!(matches!(
            documents.authorize(&mut asked, true).await,
            Err(DocumentError::NotAllowed(_))
        ));
        let mut asked = grant("d", "rob", Scopes::parse_list("doc:read").unwrap());
        documents.authorize(&mut asked, true).await.unwrap();

        // A stranger, and anyone for an unregistered document: the same refusal.
        let stranger = documents
            .authorize(&mut grant("d", "eve", Scopes::all()), false)
            .await;
        let unregistered = documents
            .authorize(&mut grant("nope", "ann", Scopes::all()), false)
            .await;
        assert_eq!(stranger, unregistered);
        assert_eq!(stranger, Err(DocumentError::NotAllowed(NOT_A_MEMBER)));

        // A create token (no document id) is anyone's.
        documents
            .authorize(&mut grant("", "eve", Scopes::all()), false)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_reader_under_a_write_only_policy_gets_nothing() {
        let (documents, _) = owned_by_ann(&[("rob", Role::Reader)]).await;
        let mut g = grant("d", "rob", Scopes::parse_list("doc:write").unwrap());
        assert!(matches!(
            documents.authorize(&mut g, false).await,
            Err(DocumentError::NotAllowed(_))
        ));
    }

    #[tokio::test]
    async fn owners_register_once() {
        let (documents, d) = owned_by_ann(&[]).await;
        assert_eq!(
            documents.register_owner(&d, "ann").await,
            Ok(Registration::AlreadyOwner)
        );
        assert!(matches!(
            documents.register_owner(&d, "eve").await,
            Err(DocumentError::Conflict(_))
        ));
        assert_eq!(
            documents
                .members(&d, "ann", 100, None)
                .await
                .unwrap()
                .members,
            vec![Member {
                user_id: "ann".into(),
                role: Role::Owner
            }]
        );
    }

    #[tokio::test]
    async fn only_the_owner_changes_members() {
        let (documents, d) = owned_by_ann(&[("wes", Role::Writer)]).await;
        assert!(matches!(
            documents.set_member(&d, "wes", "eve", Role::Reader).await,
            Err(DocumentError::NotAllowed(_))
        ));
        assert!(matches!(
            documents.remove_member(&d, "wes", "ann").await,
            Err(DocumentError::NotAllowed(_))
        ));
        assert!(matches!(
            documents.remove_member(&d, "ann", "ann").await,
            Err(DocumentError::Conflict(_))
        ));
        assert!(matches!(
            documents.set_member(&d, "ann", "ann", Role::Reader).await,
            Err(DocumentError::Conflict(_))
        ));
        // Any member lists; a stranger cannot.
        assert_eq!(
            documents
                .members(&d, "wes", 100, None)
                .await
                .map(|page| page.members)
                .unwrap()
                .len(),
            2
        );
        assert!(matches!(
            documents
                .members(&d, "eve", 100, None)
                .await
                .map(|page| page.members),
            Err(DocumentError::NotAllowed(_))
        ));
    }

    #[tokio::test]
    async fn a_removed_member_loses_access_at_once_on_this_instance() {
        let (documents, d) = owned_by_ann(&[("wes", Role::Writer)]).await;
        let mut g = grant("d", "wes", Scopes::all());
        documents.authorize(&mut g, false).await.unwrap();
        documents.remove_member(&d, "ann", "wes").await.unwrap();
        assert!(
            documents
                .authorize(&mut grant("d", "wes", Scopes::all()), false)
                .await
                .is_err()
        );
        // And a demotion takes effect at once too.
        documents
            .set_member(&d, "ann", "wes", Role::Writer)
            .await
            .unwrap();
        documents
            .authorize(&mut grant("d", "wes", Scopes::all()), false)
            .await
            .unwrap();
        documents
            .set_member(&d, "ann", "wes", Role::Reader)
            .await
            .unwrap();
        let mut g = grant("d", "wes", Scopes::all());
        documents.authorize(&mut g, false).await.unwrap();
        assert_eq!(names(&g.scopes), ["doc:read"]);
    }

    #[tokio::test]
    async fn a_container_holds_at_most_max_members() {
        let limits = DocumentLimits {
            miss_rate: 1000,
            max_members: 3,
        };
        let documents = Documents::new(
            DocumentAccess::Members,
            Arc::new(MemoryStore::default()),
            limits,
        );
        let d = DocumentRef::of_test_tenant("d");
        documents.register_owner(&d, "ann").await.unwrap();
        for user in ["bob", "cy"] {
            documents
                .set_member(&d, "ann", user, Role::Reader)
                .await
                .unwrap();
        }
        assert_eq!(
            documents.set_member(&d, "ann", "dee", Role::Reader).await,
            Err(DocumentError::Conflict(
                "userId: this document has as many members as it may (DOCUMENT_MAX_MEMBERS)."
            ))
        );
        // A member's role still changes when the container is full.
        assert_eq!(
            documents.set_member(&d, "ann", "bob", Role::Writer).await,
            Ok(())
        );
        documents.remove_member(&d, "ann", "cy").await.unwrap();
        assert_eq!(
            documents.set_member(&d, "ann", "dee", Role::Reader).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn members_come_in_pages_ordered_by_user_id() {
        let (documents, d) = owned_by_ann(&[
            ("dee", Role::Reader),
            ("bob", Role::Writer),
            ("cy", Role::Reader),
        ])
        .await;
        let ids = |page: &MemberPage| {
            page.members
                .iter()
                .map(|m| m.user_id.clone())
                .collect::<Vec<_>>()
        };
        let first = documents.members(&d, "cy", 2, None).await.unwrap();
        assert_eq!(ids(&first), ["ann", "bob"]);
        assert_eq!(first.next_after.as_deref(), Some("bob"));
        let second = documents.members(&d, "cy", 2, Some("bob")).await.unwrap();
        assert_eq!(ids(&second), ["cy", "dee"]);
        assert_eq!(second.next_after, None, "the last page says so");
        let all = documents.members(&d, "cy", 4, None).await.unwrap();
        assert_eq!(all.members.len(), 4);
        assert_eq!(all.next_after, None);
        assert_eq!(
            documents.members(&d, "eve", 2, None).await,
            Err(DocumentError::NotAllowed(NOT_A_MEMBER))
        );
    }

    #[tokio::test]
    async fn an_operator_sets_the_owner_of_a_container_that_has_none() {
        let documents = Documents::new(
            DocumentAccess::Members,
            Arc::new(MemoryStore::default()),
            DocumentLimits::default(),
        );
        let d = DocumentRef::of_test_tenant("legacy");
        let mut before = grant("legacy", "ann", Scopes::all());
        assert!(
            documents.authorize(&mut before, false).await.is_err(),
            "nobody owns it yet"
        );
        assert_eq!(documents.set_owner(&d, "ann").await, Ok(()));
        let mut after = grant("legacy", "ann", Scopes::all());
        assert_eq!(
            documents.authorize(&mut after, false).await,
            Ok(()),
            "at once on this instance"
        );
        assert!(matches!(
            documents.set_owner(&d, "eve").await,
            Err(DocumentError::Conflict(_))
        ));
        assert!(matches!(
            documents.set_owner(&d, "ann").await,
            Err(DocumentError::Conflict(_))
        ));
    }
}
