//! `CORS_ALLOWED_ORIGINS` and `CORS_ALLOW_CREDENTIALS`: CORS answered by the handler
//! ([`crate::cors`]), under the Functions host as well as standalone.
//!
//! Standalone, `Host.CORS` of local.settings.json applies when `CORS_ALLOWED_ORIGINS` is not set,
//! as `func start` would apply it. Under the host, nothing is answered unless the setting names
//! origins: the platform's CORS (or none) is then in charge.

use super::{ConfigError, error, flag};
use crate::cors::{Cors, CorsError};

/// The CORS the handler applies, if any. `local` is `Host.CORS` (standalone only);
/// `anyone_gets_real_keys` is true with `AUTH_MODE=none` and Key Vault keys, where `*` would let
/// any web page a user visits get tokens signed with the real keys.
pub(super) fn cors_settings(
    setting: &dyn Fn(&str) -> Option<String>,
    local: Option<Cors>,
    anyone_gets_real_keys: bool,
) -> Result<Option<Cors>, ConfigError> {
    let (cors, source) = match setting("CORS_ALLOWED_ORIGINS").filter(|v| !v.trim().is_empty()) {
        Some(origins) => {
            let credentials = flag(setting, "CORS_ALLOW_CREDENTIALS", false)?;
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
    use std::collections::HashMap;

    use super::*;

    fn run(
        vars: &[(&str, &str)],
        local: Option<&str>,
        anyone_gets_real_keys: bool,
    ) -> Result<Option<Cors>, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let local = local.map(|origins| Cors::parse(origins, false).unwrap());
        cors_settings(
            &|name| vars.get(name).cloned(),
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
}
