//! What a caller gets: turns a caller and a validated request into the [`Grant`] that will be
//! signed, or refuses with 403.
//!
//! - **Tenants**: only those in `ALLOWED_TENANTS` (empty: any tenant that has a key).
//! - **Scopes**: a request for a scope outside `ALLOWED_SCOPES` is refused, never silently
//!   narrowed; no scopes asked means all allowed ones.
//! - **Identity**: a signed-in caller gets a token for themself only: `user.id` is their id, a
//!   request naming another `userId` is refused, and their display name is used unless
//!   `ALLOW_CALLER_USER_NAME` lets the request choose one. With `AUTH_MODE=none` the request names
//!   the user (a fresh UUID v4 when it does not).
//! - **Lifetime**: the request's, else `TOKEN_MAX_LIFETIME_SECONDS` (the request parser bounds it).
//!
//! Every check here runs before the tenant key is looked up, so a 403 never depends on whether
//! the tenant exists.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::caller::Caller;
use crate::domain::{Lifetime, Scopes, TenantId};
use crate::problem::Problem;
use crate::request::TokenRequest;
use crate::token::{FluidUser, Grant};

#[derive(Debug, Clone)]
pub struct Policy {
    /// `None`: any tenant.
    pub allowed_tenants: Option<BTreeSet<TenantId>>,
    pub allowed_scopes: Scopes,
    pub max_lifetime: Lifetime,
    pub allow_caller_user_name: bool,
}

impl Policy {
    /// No restrictions beyond the lifetime: any tenant, all scopes.
    pub fn open(max_lifetime: Lifetime) -> Self {
        Policy {
            allowed_tenants: None,
            allowed_scopes: Scopes::all(),
            max_lifetime,
            allow_caller_user_name: false,
        }
    }

    /// Refuses tenants outside `ALLOWED_TENANTS`.
    pub fn admit_tenant(&self, tenant_id: &TenantId) -> Result<(), Problem> {
        match &self.allowed_tenants {
            Some(allowed) if !allowed.contains(tenant_id) => Err(forbidden(
                "tenantId: tokens for this tenant are not issued here.",
            )),
            _ => Ok(()),
        }
    }

    pub fn grant(&self, caller: Caller, request: TokenRequest) -> Result<Grant, Problem> {
        self.admit_tenant(&request.tenant_id)?;
        let scopes = match request.scopes {
            None => self.allowed_scopes,
            Some(asked) => {
                if let Some(denied) = asked
                    .as_slice()
                    .iter()
                    .find(|s| !self.allowed_scopes.as_slice().contains(s))
                {
                    return Err(forbidden(&format!(
                        "scopes: '{}' is not allowed here.",
                        denied.as_str()
                    )));
                }
                asked
            }
        };

        let asked_name = request.user_name.map(|n| n.into_string());
        let user = match caller {
            Caller::Anonymous => {
                let id = request
                    .user_id
                    .map(|id| id.into_string())
                    .unwrap_or_else(|| Uuid::new_v4().to_string());
                let name = asked_name.unwrap_or_else(|| id.clone());
                (id, name)
            }
            Caller::Principal(principal) => {
                if request
                    .user_id
                    .is_some_and(|asked| asked.into_string() != principal.id)
                {
                    return Err(forbidden(
                        "userId: a token can only be issued for the signed-in user.",
                    ));
                }
                let name = asked_name
                    .filter(|_| self.allow_caller_user_name)
                    .or(principal.name)
                    .unwrap_or_else(|| principal.id.clone());
                (principal.id, name)
            }
        };

        Ok(Grant {
            tenant_id: request.tenant_id,
            document_id: request.document_id,
            user: FluidUser {
                id: user.0,
                name: user.1,
                additional_details: request.additional_details,
            },
            scopes,
            lifetime: request.lifetime.unwrap_or(self.max_lifetime),
        })
    }
}

fn forbidden(detail: &str) -> Problem {
    Problem::Forbidden {
        detail: detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caller::Principal;
    use crate::domain::Scope;
    use crate::invocation::QueryParams;

    fn max() -> Lifetime {
        Lifetime::new(1800, Lifetime::HARD_CAP).unwrap()
    }

    fn request(query: &str) -> TokenRequest {
        TokenRequest::parse(&QueryParams::parse(query).unwrap(), b"", max()).unwrap()
    }

    fn ann() -> Caller {
        Caller::Principal(Principal {
            id: "oid-ann".into(),
            name: Some("Ann".into()),
            client_app: None,
            document_admin: false,
        })
    }

    #[test]
    fn anonymous_defaults() {
        let grant = Policy::open(max())
            .grant(Caller::Anonymous, request("tenantId=t"))
            .unwrap();
        let id = Uuid::parse_str(&grant.user.id).unwrap();
        assert_eq!(id.get_version_num(), 4);
        assert_eq!(grant.user.name, grant.user.id);
        assert_eq!(grant.scopes, Scopes::all());
        assert_eq!(grant.lifetime.seconds(), 1800);
    }

    #[test]
    fn anonymous_request_values_are_kept() {
        let grant = Policy::open(max())
            .grant(
                Caller::Anonymous,
                request("tenantId=t&userId=u7&scopes=doc:read&lifetime=60"),
            )
            .unwrap();
        assert_eq!(
            (grant.user.id.as_str(), grant.user.name.as_str()),
            ("u7", "u7")
        );
        assert_eq!(grant.scopes.as_slice(), &[Scope::DocRead]);
        assert_eq!(grant.lifetime.seconds(), 60);
    }

    #[test]
    fn a_principal_gets_tokens_for_themself_only() {
        let policy = Policy::open(max());
        let grant = policy
            .grant(ann(), request("tenantId=t&userName=Mallory"))
            .unwrap();
        assert_eq!(
            (grant.user.id.as_str(), grant.user.name.as_str()),
            ("oid-ann", "Ann")
        );
        assert!(
            policy
                .grant(ann(), request("tenantId=t&userId=oid-ann"))
                .is_ok()
        );
        assert!(matches!(
            policy.grant(ann(), request("tenantId=t&userId=oid-bob")),
            Err(Problem::Forbidden { .. })
        ));
        let nameless = Caller::Principal(Principal {
            id: "oid-x".into(),
            name: None,
            client_app: None,
            document_admin: false,
        });
        assert_eq!(
            policy
                .grant(nameless, request("tenantId=t"))
                .unwrap()
                .user
                .name,
            "oid-x"
        );
    }

    #[test]
    fn caller_chosen_names_only_when_allowed() {
        let policy = Policy {
            allow_caller_user_name: true,
            ..Policy::open(max())
        };
        let grant = policy
            .grant(ann(), request("tenantId=t&userName=Annie"))
            .unwrap();
        assert_eq!(grant.user.name, "Annie");
        assert_eq!(grant.user.id, "oid-ann");
    }

    #[test]
    fn tenants_and_scopes_are_limited() {
        let read_only = TokenRequest::parse(
            &QueryParams::parse("tenantId=t&scopes=doc:read").unwrap(),
            b"",
            max(),
        )
        .unwrap()
        .scopes
        .unwrap();
        let policy = Policy {
            allowed_tenants: Some([TenantId::parse("t").unwrap()].into()),
            allowed_scopes: read_only,
            ..Policy::open(max())
        };
        assert!(matches!(
            policy.grant(ann(), request("tenantId=other")),
            Err(Problem::Forbidden { .. })
        ));
        assert_eq!(
            policy.grant(ann(), request("tenantId=t")).unwrap().scopes,
            read_only,
            "default narrows to allowed"
        );
        assert!(matches!(
            policy.grant(ann(), request("tenantId=t&scopes=doc:read,doc:write")),
            Err(Problem::Forbidden { .. })
        ));
    }
}
