//! What a caller gets: turns a validated request into the [`Grant`] that will be signed.
//!
//! With `AUTH_MODE=none` the caller is trusted to say who they are, so the policy only fills in
//! defaults: a fresh UUID v4 user id when none is given, the id as display name when no name is
//! given (Fluid's audience needs a `name`), all three scopes, and the configured maximum lifetime.

use uuid::Uuid;

use crate::request::{Lifetime, Scopes, TokenRequest};
use crate::token::{FluidUser, Grant};

/// The grant for an unauthenticated (development) caller.
pub fn grant_anonymous(request: TokenRequest, max_lifetime: Lifetime) -> Grant {
    let id = request
        .user_id
        .map(|id| id.into_string())
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    let name = request
        .user_name
        .map(|name| name.into_string())
        .unwrap_or_else(|| id.clone());
    Grant {
        tenant_id: request.tenant_id,
        document_id: request.document_id,
        user: FluidUser {
            id,
            name,
            additional_details: request.additional_details,
        },
        scopes: request.scopes.unwrap_or_else(Scopes::all),
        lifetime: request.lifetime.unwrap_or(max_lifetime),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invocation::QueryParams;

    fn grant(query: &str) -> Grant {
        let max = Lifetime::new(1800, Lifetime::HARD_CAP).unwrap();
        let request = TokenRequest::parse(&QueryParams::parse(query).unwrap(), b"", max).unwrap();
        grant_anonymous(request, max)
    }

    #[test]
    fn defaults() {
        let grant = grant("tenantId=t");
        let id = Uuid::parse_str(&grant.user.id).unwrap();
        assert_eq!(id.get_version_num(), 4);
        assert_eq!(grant.user.name, grant.user.id);
        assert_eq!(grant.scopes, Scopes::all());
        assert_eq!(grant.lifetime.seconds(), 1800);
    }

    #[test]
    fn name_defaults_to_the_given_id() {
        let grant = grant("tenantId=t&userId=u7");
        assert_eq!(
            (grant.user.id.as_str(), grant.user.name.as_str()),
            ("u7", "u7")
        );
    }

    #[test]
    fn request_values_are_kept() {
        let grant = grant("tenantId=t&userId=u&userName=Ann&scopes=doc:read&lifetime=60");
        assert_eq!(grant.user.name, "Ann");
        assert_eq!(grant.scopes.as_slice(), &[crate::request::Scope::DocRead]);
        assert_eq!(grant.lifetime.seconds(), 60);
    }
}
