//! `CORS_ALLOWED_ORIGINS` and `CORS_ALLOW_CREDENTIALS`: CORS answered by the handler
//! ([`crate::cors`]), under the Functions host as well as standalone.
//!
//! Standalone, `Host.CORS` of local.settings.json applies when `CORS_ALLOWED_ORIGINS` is not set,
//! as `func start` would apply it. Under the host, nothing is answered unless the setting names
//! origins: the platform's CORS (or none) is then in charge.

use super::settings::Settings;
use super::{ConfigError, error};
use crate::cors::{Cors, CorsError};

/// The CORS the handler applies, if any. `local` is `Host.CORS` (standalone only);
/// `anyone_gets_real_keys` is true with `AUTH_MODE=none` and Key Vault keys, where `*` would let
/// any web page a user visits get tokens signed with the real keys.
pub(super) fn cors_settings(
    settings: &Settings,
    local: Option<Cors>,
    anyone_gets_real_keys: bool,
) -> Result<Option<Cors>, ConfigError> {
    let (cors, source) = match settings
        .get("CORS_ALLOWED_ORIGINS")
        .filter(|v| !v.trim().is_empty())
    {
        Some(origins) => {
            let credentials = settings.flag("CORS_ALLOW_CREDENTIALS", false)?;
            let cors = Cors::parse(&origins, credentials).map_err(|reason| {
                error(match reason {
                    CorsError::AnyWithCredentials => {
                        "CORS_ALLOW_CREDENTIALS=true cannot be used with CORS_ALLOWED_ORIGINS \"*\": browsers refuse it; name the origins".to_string()
                    }
                    CorsError::NotAnOrigin(origin) => format!(
                        "CORS_ALLOWED_ORIGINS: \"{}\" is not an origin (https://host[:port], no path)",
                        origin.escape_debug()
                    ),
                })
            })?;
            (Some(cors), "CORS_ALLOWED_ORIGINS")
        }
        None => (local, "Host.CORS"),
    };
    if anyone_gets_real_keys && cors.as_ref().is_some_and(Cors::allows_any_origin) {
        return Err(error(format!(
            "{source} \"*\" with AUTH_MODE=none and KEY_VAULT_URL: any web page you visit could get tokens signed with the real keys. Name the origins of your app in {source}"
        )));
    }
    Ok(cors)
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;
    use crate::config::*;

    use super::*;

    fn run(
        vars: &[(&str, &str)],
        local: Option<&str>,
        anyone_gets_real_keys: bool,
    ) -> Result<Option<Cors>, ConfigError> {
        let local = local.map(|origins| Cors::parse(origins, false).unwrap());
        cors_settings(
            &super::super::settings::of(vars),
            local,
            anyone_gets_real_keys,
        )
    }

    #[test]
    fn the_setting_names_origins_and_wins_over_host_cors() {
        assert_eq!(run(&[], None, false).unwrap(), None);
        assert_eq!(
            run(&[("CORS_ALLOWED_ORIGINS", " ")], None, false).unwrap(),
            None
        );
        assert_eq!(
            run(&[], Some("http://localhost:3000"), false).unwrap(),
            Some(Cors::parse("http://localhost:3000", false).unwrap())
        );
        assert_eq!(
            run(
                &[
                    (
                        "CORS_ALLOWED_ORIGINS",
                        "https://app.example, https://b.example"
                    ),
                    ("CORS_ALLOW_CREDENTIALS", "true")
                ],
                Some("*"),
                false
            )
            .unwrap(),
            Some(Cors::parse("https://app.example,https://b.example", true).unwrap())
        );
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (vars, needle) in [
            (
                vec![
                    ("CORS_ALLOWED_ORIGINS", "*"),
                    ("CORS_ALLOW_CREDENTIALS", "true"),
                ],
                "cannot be used with CORS_ALLOWED_ORIGINS \"*\"",
            ),
            (
                vec![("CORS_ALLOWED_ORIGINS", "app.example")],
                "CORS_ALLOWED_ORIGINS: \"app.example\" is not an origin",
            ),
            (
                vec![
                    ("CORS_ALLOWED_ORIGINS", "https://a.example"),
                    ("CORS_ALLOW_CREDENTIALS", "yes"),
                ],
                "CORS_ALLOW_CREDENTIALS must be true or false",
            ),
        ] {
            let e = run(&vars, None, false).unwrap_err().to_string();
            assert!(e.contains(needle), "{vars:?}: {e}");
        }
    }

    #[test]
    fn every_origin_is_refused_when_anyone_would_get_real_keys() {
        let e = run(&[("CORS_ALLOWED_ORIGINS", "*")], None, true)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("CORS_ALLOWED_ORIGINS \"*\""), "{e}");
        assert!(e.contains("AUTH_MODE=none"), "{e}");
        let e = run(&[], Some("*"), true).unwrap_err().to_string();
        assert!(e.starts_with("Host.CORS \"*\""), "{e}");
        assert!(run(&[("CORS_ALLOWED_ORIGINS", "https://a.example")], None, true).is_ok());
        assert!(run(&[("CORS_ALLOWED_ORIGINS", "*")], None, false).is_ok());
    }

    #[test]
    fn standalone_cors_comes_from_local_settings_and_only_standalone() {
        let local = |host: &str| format!(r#"{{"Values":{{"AUTH_MODE":"none"}},"Host":{host}}}"#);
        let c = config(&[], None, Some(&local(r#"{"CORS":"*"}"#))).unwrap();
        assert_eq!(c.cors, Some(Cors::parse("*", false).unwrap()));
        let c = config(&[], None, Some(&local("{}"))).unwrap();
        assert_eq!(c.cors, None);
        // Under the host, CORS is the host's job.
        let c = config(
            &[("FUNCTIONS_CUSTOMHANDLER_PORT", "1"), ("AUTH_MODE", "none")],
            None,
            None,
        )
        .unwrap();
        assert_eq!(c.cors, None);

        for (host, needle) in [
            (r#"{"CORS":["*"]}"#, "Host.CORS must be a string"),
            (
                r#"{"CORS":"*","CORSCredentials":true}"#,
                "CORSCredentials cannot be used",
            ),
            (
                r#"{"CORS":"x","CORSCredentials":"yes"}"#,
                "CORSCredentials must be true or false",
            ),
        ] {
            let e = config(&[], None, Some(&local(host))).unwrap_err();
            assert!(e.to_string().contains(needle), "{host}: {e}");
        }
    }

    #[test]
    fn standalone_with_real_keys_and_no_auth_names_its_origins() {
        let vault = [
            ("KEY_VAULT_URL", "https://kv.vault.azure.net"),
            ("AZURE_CREDENTIAL", "developer-tools"),
        ];
        let run = |vars: &[(&str, &str)], cors: &str| {
            let local = format!(r#"{{"Host":{{"CORS":"{cors}"}}}}"#);
            config(vars, None, Some(&local))
        };
        let mut none_vault = vec![("AUTH_MODE", "none")];
        none_vault.extend_from_slice(&vault);
        let e = run(&none_vault, "*").unwrap_err().to_string();
        assert!(
            e.contains("Host.CORS") && e.contains("AUTH_MODE=none"),
            "{e}"
        );
        assert!(run(&none_vault, "http://localhost:3000").is_ok());
        assert!(
            run(&[("AUTH_MODE", "none")], "*").is_ok(),
            "the development key is harmless"
        );
        let mut entra_vault = vec![
            ("AUTH_MODE", "entra"),
            ("ENTRA_TENANT_ID", "t"),
            ("ENTRA_AUDIENCE", "a"),
            ("ENTRA_REQUIRED_SCOPE", "s"),
        ];
        entra_vault.extend_from_slice(&vault);
        assert!(run(&entra_vault, "*").is_ok(), "callers authenticate");
        // Under the Functions host CORS is the host's business.
        let mut hosted = none_vault.clone();
        hosted.push(("FUNCTIONS_CUSTOMHANDLER_PORT", "0"));
        assert!(run(&hosted, "*").is_ok());
    }
}
