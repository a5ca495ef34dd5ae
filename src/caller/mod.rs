//! Who is calling: the caller's identity, established once per request from what the platform or
//! the caller presents (`AUTH_MODE`), before anything about the request is looked at.
//!
//! - `none`: nobody is authenticated ([`Caller::Anonymous`]); development only.
//! - `easyauth`: App Service Authentication already signed the user in; its headers name them.
//! - `entra`: the caller presents an Entra ID access token, validated here.
//!
//! What the caller may have is decided later, by [`crate::policy`].

pub mod bearer_cache;
pub mod easyauth;
pub mod entra;
pub mod rate_limit;

use std::sync::Arc;

use warp::http::HeaderMap;

use crate::problem::Problem;
use entra::EntraValidator;

/// The identity behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// `AUTH_MODE=none`: the request names its own user.
    Anonymous,
    /// A signed-in user (or application).
    Principal(Principal),
}

/// An authenticated identity: the object id (falling back to the subject), a display name, the
/// client application the caller signed in through, when known (for the audit log), and whether
/// it holds the [`DOCUMENTS_ADMIN`] app role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub name: Option<String>,
    pub client_app: Option<String>,
    pub document_admin: bool,
}

/// The app role of operators who may record the owner of a container that has none
/// (`DocumentMembers?action=setOwner`): in the `roles` claim of an Entra access token, or the
/// role claims of the Easy Auth principal.
pub const DOCUMENTS_ADMIN: &str = "Documents.Admin";

impl Caller {
    /// The client application id of a signed-in caller, when known.
    pub fn client_app(&self) -> Option<&str> {
        match self {
            Caller::Principal(principal) => principal.client_app.as_deref(),
            Caller::Anonymous => None,
        }
    }

    /// The signed-in caller's id.
    pub fn id(&self) -> Option<&str> {
        match self {
            Caller::Principal(principal) => Some(&principal.id),
            Caller::Anonymous => None,
        }
    }
}

/// How callers are authenticated.
pub enum Authenticator {
    None,
    EasyAuth(easyauth::UserIdForm),
    Entra(Arc<EntraValidator>),
}

impl Authenticator {
    /// The `AUTH_MODE` this authenticator implements.
    pub fn mode(&self) -> &'static str {
        match self {
            Authenticator::None => "none",
            Authenticator::EasyAuth(_) => "easyauth",
            Authenticator::Entra(_) => "entra",
        }
    }

    pub async fn caller(&self, headers: &HeaderMap) -> Result<Caller, Problem> {
        match self {
            Authenticator::None => Ok(Caller::Anonymous),
            Authenticator::EasyAuth(form) => {
                easyauth::principal(headers, *form).map(Caller::Principal)
            }
            Authenticator::Entra(validator) => {
                validator.principal(headers).await.map(Caller::Principal)
            }
        }
    }
}
