//! Who is calling: the caller's identity, established once per request from what the platform or
//! the caller presents (`AUTH_MODE`), before anything about the request is looked at.
//!
//! - `none`: nobody is authenticated ([`Caller::Anonymous`]); development only.
//! - `easyauth`: App Service Authentication already signed the user in; its headers name them.
//! - `entra`: the caller presents an Entra ID access token, validated here.
//!
//! What the caller may have is decided later, by [`crate::policy`].

pub mod easyauth;
pub mod entra;

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

/// An authenticated identity: the object id (falling back to the subject) and a display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub name: Option<String>,
}

/// How callers are authenticated.
pub enum Authenticator {
    None,
    EasyAuth,
    Entra(Arc<EntraValidator>),
}

impl Authenticator {
    pub async fn caller(&self, headers: &HeaderMap) -> Result<Caller, Problem> {
        match self {
            Authenticator::None => Ok(Caller::Anonymous),
            Authenticator::EasyAuth => easyauth::principal(headers).map(Caller::Principal),
            Authenticator::Entra(validator) => {
                validator.principal(headers).await.map(Caller::Principal)
            }
        }
    }
}
