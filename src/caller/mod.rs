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
        let principal = match self {
            Authenticator::None => return Ok(Caller::Anonymous),
            Authenticator::EasyAuth(form) => easyauth::principal(headers, *form)?,
            Authenticator::Entra(validator) => validator.principal(headers).await?,
        };
        if principal.id.len() > MAX_CALLER_ID_BYTES {
            return Err(Problem::Unauthenticated {
                detail: format!("The caller's id is longer than {MAX_CALLER_ID_BYTES} bytes."),
                invalid_token: false,
            });
        }
        Ok(Caller::Principal(principal))
    }
}

/// The longest caller id accepted, in bytes. Identity providers' ids are short (an Entra object
/// id is 36 characters, a subject 43, `<idp>:<id>` a few more); the bound keeps what one caller
/// costs small wherever its id is kept: the rate limiter's table, member rows, every log line.
pub const MAX_CALLER_ID_BYTES: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;
    use warp::http::HeaderValue;

    fn easy_auth_id(id: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-ms-client-principal-id",
            HeaderValue::from_str(id).unwrap(),
        );
        headers
    }

    #[tokio::test]
    async fn caller_ids_are_bounded() {
        let auth = Authenticator::EasyAuth(easyauth::UserIdForm::Id);
        let longest = "a".repeat(MAX_CALLER_ID_BYTES);
        let caller = auth.caller(&easy_auth_id(&longest)).await.unwrap();
        assert_eq!(caller.id(), Some(longest.as_str()));
        assert_eq!(caller.client_app(), None);
        let refused = auth.caller(&easy_auth_id(&format!("{longest}a"))).await;
        assert!(
            matches!(refused, Err(Problem::Unauthenticated { .. })),
            "{refused:?}"
        );
        // Nobody is authenticated without a mode: no caller id, nothing to bound.
        let anonymous = Authenticator::None.caller(&easy_auth_id(&longest)).await;
        assert_eq!(anonymous, Ok(Caller::Anonymous));
        assert_eq!(Caller::Anonymous.id(), None);
    }

    #[test]
    fn modes_are_named_as_auth_mode_spells_them() {
        assert_eq!(Authenticator::None.mode(), "none");
        assert_eq!(
            Authenticator::EasyAuth(easyauth::UserIdForm::Id).mode(),
            "easyauth"
        );
    }

    #[test]
    fn a_principal_names_its_client_app() {
        let caller = Caller::Principal(Principal {
            id: "oid".into(),
            name: None,
            client_app: Some("spa".into()),
            document_admin: false,
        });
        assert_eq!(caller.client_app(), Some("spa"));
        assert_eq!(caller.id(), Some("oid"));
        assert_eq!(Caller::Anonymous.client_app(), None);
    }
}
