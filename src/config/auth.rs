//! Who may ask for tokens: `AUTH_MODE`, and for `entra` the `ENTRA_*` settings.

use crate::caller::easyauth::UserIdForm;
use crate::caller::entra::{DEFAULT_AUTHORITY, EntraSettings};

use super::settings::Settings;
use super::{AuthMode, CallerRate, ConfigError, error};
use crate::net::is_loopback_url;

/// `AUTH_MODE=entra`: `ENTRA_*`.
fn entra_settings(settings: &Settings) -> Result<EntraSettings, ConfigError> {
    let required = |name: &str| {
        settings
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| error(format!("AUTH_MODE=entra needs {name}")))
    };
    let tenant_id = required("ENTRA_TENANT_ID")?;
    if !tenant_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
    {
        return Err(error(
            "ENTRA_TENANT_ID must be a tenant id (GUID) or domain name",
        ));
    }
    let audiences: Vec<String> = required("ENTRA_AUDIENCE")?
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    let authority = settings
        .get("ENTRA_AUTHORITY")
        .map(|a| a.trim().trim_end_matches('/').to_string())
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| DEFAULT_AUTHORITY.to_string());
    if !(authority.starts_with("https://")
        || authority.starts_with("http://") && is_loopback_url(&authority))
    {
        return Err(error(
            "ENTRA_AUTHORITY must be an https:// URL (http:// only for a loopback emulator)",
        ));
    }
    let required_scope = settings
        .get("ENTRA_REQUIRED_SCOPE")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let allowed_client_apps: Vec<String> = settings
        .get("ENTRA_ALLOWED_CLIENT_APPS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    if required_scope.is_none() && allowed_client_apps.is_empty() {
        return Err(error(
            "AUTH_MODE=entra needs ENTRA_REQUIRED_SCOPE (a delegated scope or app role of this API, e.g. Token.Issue) or ENTRA_ALLOWED_CLIENT_APPS (the client application ids that may call it), or both: without either, any application in the tenant can get an access token for this API and use it",
        ));
    }
    Ok(EntraSettings {
        authority,
        tenant_id,
        audiences,
        required_scope,
        allowed_client_apps,
    })
}

/// `AUTH_MODE`: who may ask for tokens. No default: the operator chooses.
pub(super) fn auth_mode(settings: &Settings) -> Result<AuthMode, ConfigError> {
    Ok(match settings.get("AUTH_MODE").as_deref().map(str::trim) {
        Some("none") => AuthMode::None,
        Some("easyauth") => {
            // The principal headers are proof only when App Service Authentication put them
            // there: with it off, anyone holding the function key could send a victim's.
            let enabled = settings
                .get("WEBSITE_AUTH_ENABLED")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
            if !enabled {
                return Err(error(
                    "AUTH_MODE=easyauth needs App Service Authentication turned on (the platform then sets WEBSITE_AUTH_ENABLED=True): without it the X-MS-CLIENT-PRINCIPAL headers can be forged by any caller. Turn it on (Function App → Authentication, or deploy/main.bicep with authMode easyauth), or use AUTH_MODE=entra",
                ));
            }
            AuthMode::EasyAuth(match settings.present("EASYAUTH_USER_ID").as_deref() {
                None | Some("id") => UserIdForm::Id,
                Some("idp:id") => UserIdForm::IdpAndId,
                Some(other) => {
                    return Err(error(format!(
                        "EASYAUTH_USER_ID \"{}\" is not one of id, idp:id",
                        other.escape_debug()
                    )));
                }
            })
        }
        Some("entra") => AuthMode::Entra(entra_settings(settings)?),
        Some("") | None => {
            return Err(error(
                "AUTH_MODE is required: easyauth (App Service Authentication), entra (Entra ID access tokens), or none (development only: anyone who can reach the function gets tokens)",
            ));
        }
        Some(other) => {
            return Err(error(format!(
                "AUTH_MODE \"{other}\" is not one of none, easyauth, entra"
            )));
        }
    })
}

/// `CALLER_RATE_LIMIT` (requests per second per signed-in caller, per instance; `off`) and
/// `CALLER_RATE_BURST`.
pub(super) fn caller_rate(settings: &Settings) -> Result<Option<CallerRate>, ConfigError> {
    if settings
        .present("CALLER_RATE_LIMIT")
        .is_some_and(|v| v.eq_ignore_ascii_case("off"))
    {
        return Ok(None);
    }
    let rate = settings.rate("CALLER_RATE_LIMIT", CallerRate::DEFAULT.rate, "requests")?;
    let burst = match settings.present("CALLER_RATE_BURST") {
        None => CallerRate::DEFAULT.burst,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|burst| (1..=10_000).contains(burst))
            .ok_or_else(|| error("CALLER_RATE_BURST must be an integer from 1 to 10000"))?,
    };
    Ok(Some(CallerRate { rate, burst }))
}

#[cfg(test)]
mod tests {
    use crate::caller::easyauth::UserIdForm;
    use crate::config::test_support::*;
    use crate::config::*;

    #[test]
    fn auth_mode_is_required() {
        let e = config(&[("FUNCTIONS_CUSTOMHANDLER_PORT", "1")], None, None).unwrap_err();
        assert!(e.to_string().starts_with("AUTH_MODE is required"), "{e}");
        let e = config(&[("AUTH_MODE", "open")], None, None).unwrap_err();
        assert!(e.to_string().contains("not one of"), "{e}");
        assert_eq!(
            config(
                &[("AUTH_MODE", "easyauth"), ("WEBSITE_AUTH_ENABLED", "True")],
                None,
                None
            )
            .unwrap()
            .auth_mode,
            AuthMode::EasyAuth(UserIdForm::Id)
        );
        let easyauth = |form: &str| {
            config(
                &[
                    ("AUTH_MODE", "easyauth"),
                    ("WEBSITE_AUTH_ENABLED", "True"),
                    ("EASYAUTH_USER_ID", form),
                ],
                None,
                None,
            )
            .map(|c| c.auth_mode)
        };
        assert_eq!(
            easyauth("idp:id"),
            Ok(AuthMode::EasyAuth(UserIdForm::IdpAndId))
        );
        assert_eq!(easyauth("id"), Ok(AuthMode::EasyAuth(UserIdForm::Id)));
        assert!(
            easyauth("oid")
                .unwrap_err()
                .to_string()
                .contains("EASYAUTH_USER_ID \"oid\" is not one of id, idp:id")
        );
    }

    #[test]
    fn easyauth_needs_app_service_authentication_on() {
        for off in [None, Some("False"), Some(""), Some("1")] {
            let mut vars = vec![("AUTH_MODE", "easyauth")];
            if let Some(value) = off {
                vars.push(("WEBSITE_AUTH_ENABLED", value));
            }
            let e = config(&vars, None, None).unwrap_err().to_string();
            assert!(
                e.contains("WEBSITE_AUTH_ENABLED=True") && e.contains("Authentication"),
                "{off:?}: {e}"
            );
        }
        for on in ["True", "true", " TRUE "] {
            assert!(
                config(
                    &[("AUTH_MODE", "easyauth"), ("WEBSITE_AUTH_ENABLED", on)],
                    None,
                    None
                )
                .is_ok()
            );
        }
    }

    #[test]
    fn entra_settings() {
        let c = config(
            &[
                ("AUTH_MODE", "entra"),
                ("ENTRA_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
                (
                    "ENTRA_AUDIENCE",
                    "api://fluid-tokens, 11111111-2222-3333-4444-555555555555",
                ),
                ("ENTRA_REQUIRED_SCOPE", "Token.Issue"),
            ],
            None,
            None,
        )
        .unwrap();
        let AuthMode::Entra(entra) = c.auth_mode else {
            panic!("entra")
        };
        assert_eq!(entra.authority, "https://login.microsoftonline.com");
        assert_eq!(
            entra.audiences,
            ["api://fluid-tokens", "11111111-2222-3333-4444-555555555555"]
        );
        assert_eq!(entra.required_scope.as_deref(), Some("Token.Issue"));
        assert!(entra.allowed_client_apps.is_empty());

        let entra = |extra: &[(&str, &str)]| {
            let mut vars = vec![
                ("AUTH_MODE", "entra"),
                ("ENTRA_TENANT_ID", "t"),
                ("ENTRA_AUDIENCE", "a"),
                ("ENTRA_REQUIRED_SCOPE", "Token.Issue"),
            ];
            vars.extend_from_slice(extra);
            config(&vars, None, None)
        };
        assert!(entra(&[("ENTRA_AUTHORITY", "http://127.0.0.1:8080/")]).is_ok());
        assert!(entra(&[("ENTRA_AUTHORITY", "http://[::1]:8080")]).is_ok());
        assert!(entra(&[("ENTRA_AUTHORITY", "http://localhost:8080")]).is_ok());
        for bad in ["http://login.example.com", "http://192.0.2.10", "ftp://x"] {
            assert!(entra(&[("ENTRA_AUTHORITY", bad)]).is_err(), "{bad}");
        }
    }

    #[test]
    fn entra_needs_a_required_scope_or_allowed_client_apps() {
        let entra = |extra: &[(&str, &str)]| {
            let mut vars = vec![
                ("AUTH_MODE", "entra"),
                ("ENTRA_TENANT_ID", "t"),
                ("ENTRA_AUDIENCE", "a"),
            ];
            vars.extend_from_slice(extra);
            config(&vars, None, None).map(|c| match c.auth_mode {
                AuthMode::Entra(entra) => entra,
                _ => panic!("entra"),
            })
        };
        for unsafe_settings in [
            &[][..],
            &[
                ("ENTRA_REQUIRED_SCOPE", " "),
                ("ENTRA_ALLOWED_CLIENT_APPS", " , "),
            ],
        ] {
            let message = entra(unsafe_settings).unwrap_err().to_string();
            assert!(
                message.contains("ENTRA_REQUIRED_SCOPE")
                    && message.contains("ENTRA_ALLOWED_CLIENT_APPS"),
                "{message}"
            );
        }
        let apps = entra(&[("ENTRA_ALLOWED_CLIENT_APPS", "app-1, app-2,")]).unwrap();
        assert_eq!(apps.allowed_client_apps, ["app-1", "app-2"]);
        assert_eq!(apps.required_scope, None);
        let both = entra(&[
            ("ENTRA_ALLOWED_CLIENT_APPS", "app-1"),
            ("ENTRA_REQUIRED_SCOPE", "Token.Issue"),
        ])
        .unwrap();
        assert_eq!(both.required_scope.as_deref(), Some("Token.Issue"));
        assert_eq!(both.allowed_client_apps, ["app-1"]);
    }

    #[test]
    fn entra_settings_name_what_is_missing() {
        assert!(
            config(
                &[("AUTH_MODE", "entra"), ("ENTRA_AUDIENCE", "a")],
                None,
                None
            )
            .unwrap_err()
            .to_string()
            .contains("ENTRA_TENANT_ID")
        );
        assert!(
            config(
                &[("AUTH_MODE", "entra"), ("ENTRA_TENANT_ID", "t")],
                None,
                None
            )
            .unwrap_err()
            .to_string()
            .contains("ENTRA_AUDIENCE")
        );
    }

    #[test]
    fn caller_rate_limit() {
        let rate = |vars: &[(&str, &str)]| {
            let mut all = vec![("AUTH_MODE", "none")];
            all.extend_from_slice(vars);
            config(&all, None, None).map(|c| c.caller_rate)
        };
        assert_eq!(rate(&[]), Ok(Some(CallerRate::DEFAULT)));
        assert_eq!(
            rate(&[("CALLER_RATE_LIMIT", "2"), ("CALLER_RATE_BURST", "7")]),
            Ok(Some(CallerRate { rate: 2, burst: 7 }))
        );
        assert_eq!(rate(&[("CALLER_RATE_LIMIT", "off")]), Ok(None));
        assert_eq!(rate(&[("CALLER_RATE_LIMIT", "OFF")]), Ok(None));
        for (vars, needle) in [
            (
                [("CALLER_RATE_LIMIT", "0")],
                "CALLER_RATE_LIMIT must be an integer from 1 to 1000 (requests per second)",
            ),
            (
                [("CALLER_RATE_BURST", "0")],
                "CALLER_RATE_BURST must be an integer from 1 to 10000",
            ),
        ] {
            assert_eq!(rate(&vars).unwrap_err().to_string(), needle);
        }
    }
}
