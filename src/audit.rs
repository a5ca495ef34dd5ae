//! The audit trail: what every issued token (and every change of who may open a document, or of
//! an ACS identity) puts on its request's log line ([`crate::request_log`]), so an incident can
//! be traced from a token (its `jti`) to who got it, for what, through which client application
//! — and back. Never the token, its signature or a key: what identifies a token is its `jti`,
//! which Fluid logs too.

use crate::acs::identity::IssuedToken;
use crate::documents::DocumentRef;
use crate::request_log::Audit;
use crate::token::{Grant, SignedToken};

/// A Fluid token was issued.
pub fn fluid_token(grant: Grant, token: &SignedToken, client_app: Option<String>) -> Audit {
    Audit::FluidToken {
        grant,
        jti: token.jti,
        expires_at: token.expires_at,
        client_app,
    }
}

/// An ACS user access token was issued (`caller` is the signed-in caller, when there is one).
pub fn acs_token(issued: &IssuedToken, scopes: &[&str], caller: Option<&str>) -> Audit {
    Audit::AcsToken {
        communication_user_id: issued.communication_user_id.clone(),
        scopes: scopes.join(" "),
        expires_on: issued.expires_on.clone(),
        caller: caller.map(str::to_owned),
    }
}

/// A caller revoked the tokens of, or deleted, their ACS identity.
pub fn acs_identity(action: &'static str, identity: &str, caller: &str) -> Audit {
    Audit::AcsIdentity {
        action,
        communication_user_id: identity.to_owned(),
        caller: caller.to_owned(),
    }
}

/// A document's owner was registered, or its members changed: `user_id` now has `role` (`none`
/// when removed); `by` made the change.
pub fn document(
    action: &'static str,
    document: &DocumentRef,
    user_id: &str,
    role: &'static str,
    by: &str,
) -> Audit {
    Audit::Document {
        action,
        document: document.clone(),
        user_id: user_id.to_owned(),
        role,
        by: by.to_owned(),
    }
}
