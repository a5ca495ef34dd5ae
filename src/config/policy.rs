//! What may be issued: `ALLOWED_TENANTS`, `ALLOWED_SCOPES`, `TOKEN_MAX_LIFETIME_SECONDS`,
//! `ALLOW_CALLER_USER_NAME`.
//!
//! With `DOCUMENT_ACCESS=members` tokens live 10 minutes unless `TOKEN_MAX_LIFETIME_SECONDS`
//! says otherwise: a removal or demotion applies to tokens issued after it, so the lifetime is
//! how long a removed member's last token keeps working.

use super::settings::Settings;
use super::{ConfigError, error};
use crate::documents::DocumentAccess;
use crate::domain::{Lifetime, Scopes};
use crate::policy::Policy;

/// The default token lifetime with `DOCUMENT_ACCESS=members`.
pub(super) const MEMBERS_LIFETIME_SECONDS: u64 = 600;

pub(super) fn policy_settings(
    settings: &Settings,
    access: DocumentAccess,
) -> Result<Policy, ConfigError> {
    let default_lifetime = match access {
        DocumentAccess::Open => Lifetime::HARD_CAP,
        DocumentAccess::Members => Lifetime::new(MEMBERS_LIFETIME_SECONDS, Lifetime::HARD_CAP)
            .expect("10 minutes is within the hour"),
    };
    let max_lifetime = match settings.get("TOKEN_MAX_LIFETIME_SECONDS") {
        None => default_lifetime,
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

    #[test]
    fn members_mode_issues_ten_minute_tokens_unless_told_otherwise() {
        let lifetime = |vars: &[(&str, &str)]| {
            let mut all = vec![
                ("AUTH_MODE", "easyauth"),
                ("WEBSITE_AUTH_ENABLED", "True"),
                ("DOCUMENT_STORE", "memory"),
            ];
            all.extend_from_slice(vars);
            config(&all, None, None)
                .unwrap()
                .policy
                .max_lifetime
                .seconds()
        };
        assert_eq!(lifetime(&[]), 3600);
        assert_eq!(lifetime(&[("DOCUMENT_ACCESS", "members")]), 600);
        assert_eq!(
            lifetime(&[
                ("DOCUMENT_ACCESS", "members"),
                ("TOKEN_MAX_LIFETIME_SECONDS", "1800")
            ]),
            1800
        );
    }
}
