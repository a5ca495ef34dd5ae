//! The audit trail: one log event for every token issued (and every change of who may open a
//! document), so an incident can be traced from a token (its `jti`) to who got it, for what,
//! through which client application — and back.
//!
//! Each event is a JSON line like every other (`"message":"token issued"`, `"audit":…`), never
//! holding the token, its signature or a key: what identifies a token is its `jti`, which Fluid
//! logs too.

use crate::acs::identity::IssuedToken;
use crate::documents::DocumentRef;
use crate::token::{Grant, SignedToken};

/// A Fluid token was issued.
pub fn fluid_token(grant: &Grant, token: &SignedToken, auth_mode: &str, client_app: Option<&str>) {
    tracing::info!(
        audit = "fluid-token",
        jti = %token.jti,
        tenant_id = grant.tenant_id.as_str(),
        document_id = grant.document_id.as_str(),
        user_id = grant.user.id.as_str(),
        scopes = %grant.scopes,
        expires_at = token.expires_at,
        auth_mode,
        client_app,
        "token issued"
    );
}

/// An ACS user access token was issued (`caller` is the signed-in caller, when there is one).
pub fn acs_token(issued: &IssuedToken, scopes: &[&str], caller: Option<&str>, auth_mode: &str) {
    tracing::info!(
        audit = "acs-token",
        communication_user_id = issued.communication_user_id.as_str(),
        scopes = scopes.join(" ").as_str(),
        expires_on = issued.expires_on.as_str(),
        caller,
        auth_mode,
        "token issued"
    );
}

/// A caller revoked the tokens of, or deleted, their ACS identity.
pub fn acs_identity(action: &str, identity: &str, caller: &str) {
    tracing::info!(
        audit = "acs-identity",
        action,
        communication_user_id = identity,
        caller,
        "identity changed"
    );
}

/// A document's owner was registered, or its members changed: `user_id` now has `role` (`none`
/// when removed); `by` made the change.
pub fn document(action: &str, document: &DocumentRef, user_id: &str, role: &str, by: &str) {
    tracing::info!(
        audit = "document",
        action,
        role,
        tenant_id = document.tenant_id.as_str(),
        document_id = document.document_id.as_str(),
        user_id,
        by,
        "document access changed"
    );
}
