//! The Functions configuration files: `host.json` (route prefix, protocol mode) and, for a
//! standalone run, `local.settings.json` (`Values`, `Host.LocalHttpPort`, `Host.CORS`).

use std::collections::HashMap;

use serde_json::Value;

use crate::cors::{Cors, CorsError};

use super::{ConfigError, error};

/// What the handler needs from host.json. The host binds these sections with .NET
/// configuration binding, which ignores the case of keys; so does this.
pub(super) struct HostJson {
    pub(super) route_prefix: String,
    pub(super) forwarding: bool,
}

impl Default for HostJson {
    fn default() -> Self {
        HostJson {
            route_prefix: "api".to_string(),
            forwarding: false,
        }
    }
}

impl HostJson {
    pub(super) fn parse(text: &str) -> Result<HostJson, ConfigError> {
        let json: Value = serde_json::from_str(text)
            .map_err(|e| error(format!("host.json is not valid JSON: {e}")))?;
        let route_prefix = match lookup(&json, &["extensions", "http", "routePrefix"]) {
            None | Some(Value::Null) => "api".to_string(),
            Some(Value::String(prefix)) => prefix.trim_matches('/').to_string(),
            Some(_) => {
                return Err(error(
                    "host.json: extensions.http.routePrefix must be a string",
                ));
            }
        };
        let flag = |name: &str| {
            matches!(
                lookup(&json, &["customHandler", name]),
                Some(Value::Bool(true))
            ) || matches!(lookup(&json, &["customHandler", name]), Some(Value::String(s)) if s.eq_ignore_ascii_case("true"))
        };
        Ok(HostJson {
            route_prefix,
            forwarding: flag("enableForwardingHttpRequest") || flag("enableProxyingHttpRequest"),
        })
    }
}

/// Follows `path` through nested objects, matching keys without regard to case.
fn lookup<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |value, key| {
        value
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// What a standalone start takes from local.settings.json.
#[derive(Default)]
pub(super) struct LocalSettings {
    /// `Values`: string settings, defaults for the environment.
    pub(super) values: HashMap<String, String>,
    /// `Host.LocalHttpPort`.
    pub(super) port: Option<u16>,
    /// `Host.CORS` and `Host.CORSCredentials`.
    pub(super) cors: Option<Cors>,
}

pub(super) fn parse_local_settings(text: &str) -> Result<LocalSettings, ConfigError> {
    let json: Value = serde_json::from_str(text)
        .map_err(|e| error(format!("local.settings.json is not valid JSON: {e}")))?;
    let mut values = HashMap::new();
    if let Some(map) = json.get("Values").and_then(Value::as_object) {
        for (name, value) in map {
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Number(_) | Value::Bool(_) => value.to_string(),
                _ => {
                    return Err(error(format!(
                        "local.settings.json: Values.{name} must be a string"
                    )));
                }
            };
            values.insert(name.clone(), value);
        }
    }
    let port = match json.pointer("/Host/LocalHttpPort") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| {
                    error("local.settings.json: Host.LocalHttpPort must be a port number")
                })?,
        ),
    };
    let credentials = match json.pointer("/Host/CORSCredentials") {
        None | Some(Value::Null) => false,
        Some(value) => value.as_bool().ok_or_else(|| {
            error("local.settings.json: Host.CORSCredentials must be true or false")
        })?,
    };
    let cors = match json.pointer("/Host/CORS") {
        None | Some(Value::Null) => None,
        Some(Value::String(origins)) => Some(
            Cors::parse(origins, credentials).map_err(|reason| {
                error(match reason {
                    CorsError::AnyWithCredentials => {
                        "local.settings.json: Host.CORSCredentials cannot be used with Host.CORS \"*\"".to_string()
                    }
                    CorsError::NotAnOrigin(origin) => format!(
                        "local.settings.json: Host.CORS: \"{}\" is not an origin (http://host[:port], no path)",
                        origin.escape_debug()
                    ),
                })
            })?,
        ),
        Some(_) => {
            return Err(error(
                "local.settings.json: Host.CORS must be a string (\"*\" or a comma-separated list of origins)",
            ));
        }
    };
    Ok(LocalSettings { values, port, cors })
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;

    #[test]
    fn host_json_keys_ignore_case() {
        let host = r#"{"version":"2.0","CustomHandler":{"Description":{"defaultExecutablePath":"handler"},"EnableForwardingHttpRequest":true},"Extensions":{"Http":{"RoutePrefix":""}}}"#;
        let c = config(&[("AUTH_MODE", "none")], Some(host), None).unwrap();
        assert!(c.forwarding);
        assert_eq!(c.route_prefix, "");
    }

    #[test]
    fn malformed_files_and_port() {
        assert!(
            config(&[("AUTH_MODE", "none")], Some("{"), None)
                .unwrap_err()
                .to_string()
                .starts_with("host.json")
        );
        assert!(
            config(&[("AUTH_MODE", "none")], None, Some("nope"))
                .unwrap_err()
                .to_string()
                .starts_with("local.settings.json")
        );
        assert!(
            config(
                &[
                    ("AUTH_MODE", "none"),
                    ("FUNCTIONS_CUSTOMHANDLER_PORT", "70000")
                ],
                None,
                None
            )
            .is_err()
        );
    }
}
