//! What may be issued: `ALLOWED_TENANTS`, `ALLOWED_SCOPES`, `TOKEN_MAX_LIFETIME_SECONDS`,
//! `ALLOW_CALLER_USER_NAME`.

use super::settings::Settings;
use super::{ConfigError, error};
use crate::domain::{Lifetime, Scopes};
use crate::policy::Policy;

pub(super) fn policy_settings(settings: &Settings) -> Result<Policy, ConfigError> {
    let max_lifetime = match settings.get("TOKEN_MAX_LIFETIME_SECONDS") {
        None => Lifetime::HARD_CAP,
        Some(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .and_then(|seconds| Lifetime::new(seconds, Lifetime::HARD_CAP).ok())
            .ok_or_else(|| error("TOKEN_MAX_LIFETIME_SECONDS must be an integer from 1 to 3600"))?,
    };
    let allowed_tenants = settings
        .tenant_list("ALLOWED_TENANTS")?
        .map(|list| list.into_iter().collect());
    let allowed_scopes = match settings.present("ALLOWED_SCOPES") {
        None => Scopes::all(),
        Some(list) => Scopes::parse_list(&list).map_err(|_| {
            error("ALLOWED_SCOPES must list scopes among doc:read, doc:write, summary:write")
        })?,
    };
    Ok(Policy {
        allowed_tenants,
        allowed_scopes,
        max_lifetime,
        allow_caller_user_name: settings.flag("ALLOW_CALLER_USER_NAME", false)?,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;

    #[test]
    fn policy_settings() {
        let c = config(
            &[
                ("AUTH_MODE", "none"),
                ("ALLOWED_TENANTS", "a, b"),
                ("ALLOWED_SCOPES", "doc:read"),
                ("ALLOW_CALLER_USER_NAME", "true"),
            ],
            None,
            None,
        )
        .unwrap();
        assert_eq!(c.policy.allowed_tenants.unwrap().len(), 2);
        assert_eq!(
            c.policy.allowed_scopes.as_slice(),
            &[crate::domain::Scope::DocRead]
        );
        assert!(c.policy.allow_caller_user_name);
        for bad in [
            ("ALLOWED_TENANTS", "bad/tenant"),
            ("ALLOWED_SCOPES", "doc:delete"),
            ("ALLOW_CALLER_USER_NAME", "yes"),
        ] {
            let e = config(&[("AUTH_MODE", "none"), bad], None, None).unwrap_err();
            assert!(e.to_string().starts_with(bad.0), "{e}");
        }
    }

    #[test]
    fn lifetime_cap() {
        for bad in ["0", "3601", "x", "-1"] {
            let e = config(
                &[("AUTH_MODE", "none"), ("TOKEN_MAX_LIFETIME_SECONDS", bad)],
                None,
                None,
            )
            .unwrap_err();
            assert!(
                e.to_string().starts_with("TOKEN_MAX_LIFETIME_SECONDS"),
                "{bad}: {e}"
            );
        }
    }
}
