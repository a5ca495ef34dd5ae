//! All configuration, read once at startup into one [`Config`].
//!
//! This is the only module that reads environment variables or the Functions configuration
//! files, so the full list of settings is here, each with its rule. A bad setting stops the
//! process with a one-line message naming the setting; a secret's value never appears in it.
//!
//! Where settings come from:
//! - Under the Functions host (`FUNCTIONS_CUSTOMHANDLER_PORT` is set): the environment, which holds
//!   the app settings (Azure) or `local.settings.json` `Values` (`func start`).
//! - Standalone (no `FUNCTIONS_CUSTOMHANDLER_PORT`): the `Values` of `./local.settings.json` act
//!   as defaults and real environment variables win, the way `func start` applies them; the
//!   handler then listens on 127.0.0.1 at `Host.LocalHttpPort` (default 7071), like `func start`.
//! - `host.json` in the app root (`FUNCTIONS_APP_ROOT_PATH`, else the working directory) gives the
//!   route prefix of forwarded requests.

mod acs;
mod auth;
mod cors;
mod documents;
mod files;
mod keys;
mod storage;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::caller::entra::EntraSettings;
use crate::cors::Cors;
use crate::domain::{Lifetime, Scopes, TenantId};
use crate::policy::Policy;

use acs::acs_settings;
pub use acs::{AcsConnectionSetting, AcsSettings};
use auth::entra_settings;
use cors::cors_settings;
use documents::document_settings;
pub use documents::{DocumentSettings, DocumentStoreSetting};
use files::{HostJson, LocalSettings, parse_local_settings};
pub use keys::KeySettings;
use keys::{parse_tenant_keys, vault_settings};
pub use storage::StorageSetting;

/// The port `func start` serves on unless `Host.LocalHttpPort` says otherwise.
const DEFAULT_LOCAL_PORT: u16 = 7071;

/// How the process was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// Started by the Functions host, which chose the port.
    FunctionsHost,
    /// Started directly (`cargo run`), serving like `func start` would.
    Standalone,
}

/// Who may ask for tokens (`AUTH_MODE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// Anyone who can reach the function; the caller names the user. Development only.
    None,
    /// App Service Authentication signs users in; the handler reads its principal headers.
    EasyAuth,
    /// Callers present Entra ID access tokens, validated in process.
    Entra(EntraSettings),
}

#[derive(Debug)]
pub struct Config {
    pub launch: Launch,
    /// Always a loopback address: only the host (or a local client) talks to the handler.
    pub listen: SocketAddr,
    /// `extensions.http.routePrefix` of host.json (default `api`), without slashes.
    pub route_prefix: String,
    /// host.json turns on `enableForwardingHttpRequest` or `enableProxyingHttpRequest`.
    pub forwarding: bool,
    pub auth_mode: AuthMode,
    pub policy: Policy,
    pub keys: KeySettings,
    /// `None` when no ACS connection is configured.
    pub acs: Option<AcsSettings>,
    pub documents: DocumentSettings,
    /// `RUST_LOG`-style filter for the JSON logs (default `info`).
    pub log_filter: String,
    /// CORS the handler answers: `CORS_ALLOWED_ORIGINS`, or standalone `Host.CORS` of
    /// local.settings.json as `func start` would apply it. `None`: no CORS headers at all.
    pub cors: Option<Cors>,
}

/// A configuration problem, printed as one line before the process exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn error(message: impl Into<String>) -> ConfigError {
    ConfigError(message.into())
}

impl Config {
    /// Reads the process environment and the configuration files.
    ///
    /// Standalone, the `Values` of local.settings.json that the environment does not set are also
    /// put into the process environment, as `func start` does for its worker: the Azure SDK reads
    /// some settings (`IDENTITY_ENDPOINT`, `AZURE_AUTHORITY_HOST`, `SSL_CERT_FILE`) from there.
    /// Call this before any thread is started.
    pub fn load() -> Result<Config, ConfigError> {
        let env = |name: &str| std::env::var(name).ok();
        let app_root = env("FUNCTIONS_APP_ROOT_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let host_json = read_optional(&app_root.join("host.json"))?;
        if env("FUNCTIONS_CUSTOMHANDLER_PORT").is_some() {
            return Config::from_sources(&env, host_json.as_deref(), None);
        }
        let local_settings = read_optional(Path::new("local.settings.json"))?;
        if let Some(text) = &local_settings {
            for (name, value) in parse_local_settings(text)?.values {
                if std::env::var_os(&name).is_none() {
                    // SAFETY: called from `main` before the runtime or any other thread starts,
                    // so nothing reads the environment concurrently.
                    unsafe { std::env::set_var(name, value) };
                }
            }
        }
        Config::from_sources(&env, host_json.as_deref(), local_settings.as_deref())
    }

    /// Builds the configuration from a variable lookup and the texts of `host.json` and (for a
    /// standalone start) `local.settings.json`.
    pub fn from_sources(
        env: &dyn Fn(&str) -> Option<String>,
        host_json: Option<&str>,
        local_settings: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let host = match host_json {
            Some(text) => HostJson::parse(text)?,
            None => HostJson::default(),
        };

        let (launch, port, local) = match env("FUNCTIONS_CUSTOMHANDLER_PORT") {
            Some(port) => {
                let port = port.trim().parse::<u16>().map_err(|_| {
                    error("FUNCTIONS_CUSTOMHANDLER_PORT must be a port number (0-65535)")
                })?;
                (Launch::FunctionsHost, port, LocalSettings::default())
            }
            None => {
                let local = match local_settings {
                    Some(text) => parse_local_settings(text)?,
                    None => LocalSettings::default(),
                };
                (
                    Launch::Standalone,
                    local.port.unwrap_or(DEFAULT_LOCAL_PORT),
                    local,
                )
            }
        };
        let local_values = local.values;
        // Real environment variables win over local.settings.json, as with `func start`.
        let setting = |name: &str| env(name).or_else(|| local_values.get(name).cloned());

        let auth_mode = match setting("AUTH_MODE").as_deref().map(str::trim) {
            Some("none") => AuthMode::None,
            Some("easyauth") => {
                // The principal headers are proof only when App Service Authentication put them
                // there: with it off, anyone holding the function key could send a victim's.
                let enabled = setting("WEBSITE_AUTH_ENABLED")
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
                if !enabled {
                    return Err(error(
                        "AUTH_MODE=easyauth needs App Service Authentication turned on (the platform then sets WEBSITE_AUTH_ENABLED=True): without it the X-MS-CLIENT-PRINCIPAL headers can be forged by any caller. Turn it on (Function App → Authentication, or deploy/main.bicep with authMode easyauth), or use AUTH_MODE=entra",
                    ));
                }
                AuthMode::EasyAuth
            }
            Some("entra") => AuthMode::Entra(entra_settings(&setting)?),
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
        };

        let max_lifetime = match setting("TOKEN_MAX_LIFETIME_SECONDS") {
            None => Lifetime::HARD_CAP,
            Some(text) => text
                .trim()
                .parse::<u64>()
                .ok()
                .and_then(|seconds| Lifetime::new(seconds, Lifetime::HARD_CAP).ok())
                .ok_or_else(|| {
                    error("TOKEN_MAX_LIFETIME_SECONDS must be an integer from 1 to 3600")
                })?,
        };

        let tenant_keys = match setting("TENANT_KEYS") {
            None => BTreeMap::new(),
            Some(text) if text.trim().is_empty() => BTreeMap::new(),
            Some(text) => parse_tenant_keys(&text)?,
        };
        let keys = match setting("KEY_VAULT_URL").filter(|url| !url.trim().is_empty()) {
            None => KeySettings::Local(tenant_keys),
            Some(url) => vault_settings(url.trim(), &setting, !tenant_keys.is_empty())?,
        };

        let allowed_tenants = match setting("ALLOWED_TENANTS").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(list) => Some(tenant_list("ALLOWED_TENANTS", &list)?.into_iter().collect()),
        };
        let allowed_scopes = match setting("ALLOWED_SCOPES").filter(|v| !v.trim().is_empty()) {
            None => Scopes::all(),
            Some(list) => Scopes::parse_list(&list).map_err(|_| {
                error("ALLOWED_SCOPES must list scopes among doc:read, doc:write, summary:write")
            })?,
        };
        let acs = acs_settings(&setting, matches!(keys, KeySettings::Vault { .. }))?;
        let documents = document_settings(&setting, launch, auth_mode != AuthMode::None)?;
        let policy = Policy {
            allowed_tenants,
            allowed_scopes,
            max_lifetime,
            allow_caller_user_name: flag(&setting, "ALLOW_CALLER_USER_NAME", false)?,
        };

        let cors = cors_settings(
            &setting,
            local.cors,
            auth_mode == AuthMode::None && matches!(keys, KeySettings::Vault { .. }),
        )?;

        Ok(Config {
            launch,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            route_prefix: host.route_prefix,
            forwarding: host.forwarding,
            auth_mode,
            policy,
            keys,
            acs,
            documents,
            log_filter: setting("RUST_LOG").unwrap_or_else(|| "info".to_string()),
            cors,
        })
    }
}

/// A comma-separated list of tenant ids (blanks skipped); the error names the setting and the
/// bad entry.
fn tenant_list(name: &str, list: &str) -> Result<Vec<TenantId>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            TenantId::parse(t).map_err(|_| {
                error(format!(
                    "{name}: \"{}\" is not a valid tenantId",
                    t.escape_debug()
                ))
            })
        })
        .collect()
}

/// A `true`/`false` setting.
fn flag(
    setting: &dyn Fn(&str) -> Option<String>,
    name: &str,
    default: bool,
) -> Result<bool, ConfigError> {
    match setting(name)
        .as_deref()
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => Ok(default),
        Some(v) if v.is_empty() => Ok(default),
        Some(v) if v == "true" || v == "1" => Ok(true),
        Some(v) if v == "false" || v == "0" => Ok(false),
        Some(_) => Err(error(format!("{name} must be true or false"))),
    }
}

/// A timeout in milliseconds, 1 to 60000.
fn milliseconds(
    setting: &dyn Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
) -> Result<Duration, ConfigError> {
    match setting(name) {
        None => Ok(Duration::from_millis(default)),
        Some(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|ms| (1..=60_000).contains(ms))
            .map(Duration::from_millis)
            .ok_or_else(|| error(format!("{name} must be an integer from 1 to 60000"))),
    }
}

/// A whole number of seconds, at least 1.
fn seconds(
    setting: &dyn Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
) -> Result<Duration, ConfigError> {
    match setting(name) {
        None => Ok(Duration::from_secs(default)),
        Some(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|s| *s >= 1)
            .map(Duration::from_secs)
            .ok_or_else(|| {
                error(format!(
                    "{name} must be a whole number of seconds, at least 1"
                ))
            }),
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(error(format!("cannot read {}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use crate::azure_credential::AzureCredential;

    fn config(
        vars: &[(&str, &str)],
        host: Option<&str>,
        local: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_sources(&|name| vars.get(name).cloned(), host, local)
    }

    #[test]
    fn functions_host_launch() {
        let c = config(
            &[
                ("FUNCTIONS_CUSTOMHANDLER_PORT", "4567"),
                ("AUTH_MODE", "none"),
                ("TENANT_KEYS", r#"{"t1":"k1"}"#),
            ],
            Some(r#"{"extensions":{"http":{"routePrefix":"/fluid/"}}}"#),
            Some(r#"{"Values":{"TENANT_KEYS":"ignored under the host"}}"#),
        )
        .unwrap();
        assert_eq!(c.launch, Launch::FunctionsHost);
        assert_eq!(c.listen, "127.0.0.1:4567".parse().unwrap());
        assert_eq!(c.route_prefix, "fluid");
        assert!(!c.forwarding);
        assert!(matches!(&c.keys, KeySettings::Local(keys) if keys.len() == 1));
        assert_eq!(c.policy.max_lifetime, Lifetime::HARD_CAP);
        assert_eq!(c.policy.allowed_tenants, None);
        assert_eq!(c.policy.allowed_scopes, Scopes::all());
        assert!(!c.policy.allow_caller_user_name);
    }

    #[test]
    fn document_access_and_its_store() {
        use crate::documents::DocumentAccess;
        let easyauth = [("AUTH_MODE", "easyauth"), ("WEBSITE_AUTH_ENABLED", "True")];
        let host = |extra: &[(&str, &str)]| {
            let mut vars = vec![("FUNCTIONS_CUSTOMHANDLER_PORT", "0")];
            vars.extend_from_slice(&easyauth);
            vars.extend_from_slice(extra);
            config(&vars, None, None).map(|c| c.documents)
        };
        // Standalone: open, in memory, without a warning.
        let standalone = config(&[("AUTH_MODE", "none")], None, None)
            .unwrap()
            .documents;
        assert_eq!(standalone.access, DocumentAccess::Open);
        assert!(matches!(
            standalone.store,
            Some(DocumentStoreSetting::Memory {
                explicit_under_host: false
            })
        ));
        // Under the host nothing is kept unless a store is named; members needs one.
        assert!(host(&[]).unwrap().store.is_none());
        let error = host(&[("DOCUMENT_ACCESS", "members")]).unwrap_err();
        assert!(error.0.contains("DOCUMENT_STORE"), "{error}");
        let memory = host(&[("DOCUMENT_ACCESS", "members"), ("DOCUMENT_STORE", "memory")]).unwrap();
        assert_eq!(memory.access, DocumentAccess::Members);
        assert!(matches!(
            memory.store,
            Some(DocumentStoreSetting::Memory {
                explicit_under_host: true
            })
        ));
        // Table: the AzureWebJobsStorage account, the default or a named table.
        let table = host(&[
            ("DOCUMENT_STORE", "table"),
            ("AzureWebJobsStorage", "AccountName=a;AccountKey=c2VjcmV0"),
        ])
        .unwrap();
        assert!(matches!(
            &table.store,
            Some(DocumentStoreSetting::Table { table, credential: None, storage: StorageSetting::ConnectionString(_) })
                if table == "FluidDocumentMembers"
        ));
        let named = host(&[
            ("DOCUMENT_STORE", "table"),
            ("DOCUMENT_TABLE_NAME", "Members2"),
            ("AzureWebJobsStorage__accountName", "fnstore1"),
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token"),
            ("IDENTITY_HEADER", "h"),
        ])
        .unwrap();
        assert!(matches!(
            &named.store,
            Some(DocumentStoreSetting::Table { table, credential: Some(_), storage: StorageSetting::Identity { .. } })
                if table == "Members2"
        ));
        for (vars, names) in [
            (vec![("DOCUMENT_STORE", "table")], "AzureWebJobsStorage"),
            (
                vec![
                    ("DOCUMENT_STORE", "table"),
                    ("DOCUMENT_TABLE_NAME", "1bad"),
                    ("AzureWebJobsStorage", "AccountName=a;AccountKey=c2VjcmV0"),
                ],
                "DOCUMENT_TABLE_NAME",
            ),
            (vec![("DOCUMENT_STORE", "blob")], "DOCUMENT_STORE"),
            (vec![("DOCUMENT_ACCESS", "closed")], "DOCUMENT_ACCESS"),
        ] {
            let error = host(&vars).unwrap_err();
            assert!(error.0.contains(names), "{error}");
            assert!(!error.0.contains("c2VjcmV0"));
        }
        // Without signed-in callers anyone could claim to be a member: refused.
        let error = config(
            &[("AUTH_MODE", "none"), ("DOCUMENT_ACCESS", "members")],
            None,
            None,
        )
        .unwrap_err();
        assert!(error.0.contains("AUTH_MODE"), "{error}");
    }

    #[test]
    fn standalone_uses_local_settings_and_env_wins() {
        let local = r#"{"IsEncrypted":false,"Values":{"AUTH_MODE":"none","TENANT_KEYS":"{\"local\":\"dev\"}","TOKEN_MAX_LIFETIME_SECONDS":"600"},"Host":{"LocalHttpPort":7199}}"#;
        let c = config(&[("TOKEN_MAX_LIFETIME_SECONDS", "60")], None, Some(local)).unwrap();
        assert_eq!(c.launch, Launch::Standalone);
        assert_eq!(c.listen, "127.0.0.1:7199".parse().unwrap());
        assert_eq!(c.route_prefix, "api");
        assert_eq!(c.policy.max_lifetime.seconds(), 60);
        assert!(
            matches!(&c.keys, KeySettings::Local(keys) if keys.contains_key(&TenantId::parse("local").unwrap()))
        );

        let c = config(&[("AUTH_MODE", "none")], None, None).unwrap();
        assert_eq!(c.listen.port(), 7071);
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
    fn host_json_keys_ignore_case() {
        let host = r#"{"version":"2.0","CustomHandler":{"Description":{"defaultExecutablePath":"handler"},"EnableForwardingHttpRequest":true},"Extensions":{"Http":{"RoutePrefix":""}}}"#;
        let c = config(&[("AUTH_MODE", "none")], Some(host), None).unwrap();
        assert!(c.forwarding);
        assert_eq!(c.route_prefix, "");
    }

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
            AuthMode::EasyAuth
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
    fn bad_tenant_keys_fail_without_showing_keys() {
        let e = config(
            &[
                ("AUTH_MODE", "none"),
                ("TENANT_KEYS", r#"{"t1":"very-secret""#),
            ],
            None,
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("TENANT_KEYS must be a JSON object"),
            "{e}"
        );
        assert!(!e.to_string().contains("very-secret"));
        let e = config(
            &[("AUTH_MODE", "none"), ("TENANT_KEYS", r#"["very-secret"]"#)],
            None,
            None,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("very-secret"));
        let e = config(
            &[
                ("AUTH_MODE", "none"),
                ("TENANT_KEYS", r#"{"bad/id":"very-secret"}"#),
            ],
            None,
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("bad/id") && !e.to_string().contains("very-secret"),
            "{e}"
        );
        let e = config(
            &[("AUTH_MODE", "none"), ("TENANT_KEYS", r#"{"t":42}"#)],
            None,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("must be a non-empty string"), "{e}");
    }

    const VAULT: (&str, &str) = ("KEY_VAULT_URL", "https://my-vault.vault.azure.net");
    const APP_SERVICE_IDENTITY: [(&str, &str); 2] = [
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:41000/msi/token"),
        ("IDENTITY_HEADER", "h"),
    ];

    #[test]
    fn key_vault_with_managed_identity_and_defaults() {
        let c = config(
            &[
                ("AUTH_MODE", "none"),
                VAULT,
                APP_SERVICE_IDENTITY[0],
                APP_SERVICE_IDENTITY[1],
                ("TENANT_KEYS", r#"{"t":"k"}"#),
            ],
            None,
            None,
        )
        .unwrap();
        let KeySettings::Vault {
            vault,
            cache,
            preload,
            identity_source,
            ignored_tenant_keys,
        } = c.keys
        else {
            panic!("expected Key Vault");
        };
        assert_eq!(vault.url, "https://my-vault.vault.azure.net");
        assert_eq!(
            vault.credential,
            AzureCredential::ManagedIdentity { client_id: None }
        );
        assert!(vault.verify_challenge_resource);
        let tenant = TenantId::parse("abc").unwrap();
        assert_eq!(
            vault.secret_name.name_for(&tenant).as_deref(),
            Some("fluid-tenant-abc")
        );
        assert_eq!(cache.ttl, Duration::from_secs(300));
        assert_eq!(cache.max_stale, Duration::from_secs(86_400));
        assert_eq!(cache.negative_ttl, Duration::from_secs(60));
        assert_eq!(cache.fetch_timeout, Duration::from_millis(5000));
        assert!(preload.is_empty());
        assert!(identity_source.starts_with("app-service"));
        assert!(ignored_tenant_keys);
    }

    #[test]
    fn key_vault_settings_are_checked() {
        let with = |extra: &[(&str, &str)]| {
            let mut vars = vec![("AUTH_MODE", "none"), VAULT];
            vars.extend_from_slice(extra);
            config(&vars, None, None).map(|c| c.keys)
        };
        let e = with(&[]).unwrap_err().to_string();
        assert!(
            e.contains("IDENTITY_ENDPOINT") && e.contains("KEY_VAULT_ALLOW_IMDS"),
            "{e}"
        );
        assert!(
            matches!(with(&[("KEY_VAULT_ALLOW_IMDS", "true")]), Ok(KeySettings::Vault { identity_source, .. }) if identity_source.contains("IMDS"))
        );
        assert!(matches!(
            with(&[("KEY_VAULT_CREDENTIAL", "developer-tools")]),
            Ok(KeySettings::Vault { .. })
        ));
        let e = with(&[
            ("KEY_VAULT_CREDENTIAL", "client-secret"),
            ("AZURE_TENANT_ID", "t"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("AZURE_CLIENT_ID"), "{e}");
        let secret = with(&[
            ("KEY_VAULT_CREDENTIAL", "client-secret"),
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "s3"),
        ]);
        assert!(
            matches!(secret, Ok(KeySettings::Vault { vault, .. }) if vault.credential.name() == "client-secret")
        );
        assert!(with(&[("KEY_VAULT_CREDENTIAL", "env")]).is_err());

        let mi = [APP_SERVICE_IDENTITY[0], APP_SERVICE_IDENTITY[1]];
        let with_mi = |extra: &[(&str, &str)]| {
            let mut vars = mi.to_vec();
            vars.extend_from_slice(extra);
            with(&vars)
        };
        for bad in [
            ("KEY_VAULT_SECRET_NAME", "no-placeholder"),
            ("KEY_VAULT_SECRET_NAME", "bad_{tenantId}"),
            ("KEY_CACHE_TTL_SECONDS", "0"),
            ("KEY_CACHE_MAX_STALE_SECONDS", "10"),
            ("KEY_VAULT_TIMEOUT_MS", "0"),
            ("KEY_VAULT_VERIFY_CHALLENGE_RESOURCE", "maybe"),
            ("KEY_VAULT_PRELOAD_TENANTS", "ok,not/ok"),
        ] {
            let e = with_mi(&[bad]).unwrap_err().to_string();
            assert!(e.starts_with(bad.0), "{bad:?}: {e}");
        }
        assert!(
            config(
                &[
                    ("AUTH_MODE", "none"),
                    ("KEY_VAULT_URL", "http://127.0.0.1:1")
                ],
                None,
                None
            )
            .is_err()
        );

        let Ok(KeySettings::Vault {
            vault,
            cache,
            preload,
            ..
        }) = with_mi(&[
            ("AZURE_CLIENT_ID", "uami"),
            ("KEY_VAULT_VERIFY_CHALLENGE_RESOURCE", "false"),
            ("KEY_CACHE_TTL_SECONDS", "5"),
            ("KEY_VAULT_TIMEOUT_MS", "250"),
            ("KEY_VAULT_PRELOAD_TENANTS", " a , b,"),
        ])
        else {
            panic!("expected Key Vault");
        };
        assert_eq!(
            vault.credential,
            AzureCredential::ManagedIdentity {
                client_id: Some("uami".into())
            }
        );
        assert!(!vault.verify_challenge_resource);
        assert_eq!(cache.ttl, Duration::from_secs(5));
        assert_eq!(cache.fetch_timeout, Duration::from_millis(250));
        assert_eq!(preload.len(), 2);
    }

    #[test]
    fn keyless_acs_and_identity_based_storage() {
        let identity = [
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:9/msi/token"),
            ("IDENTITY_HEADER", "h"),
        ];
        let settings = |extra: &[(&str, &str)]| {
            let mut vars = vec![("AUTH_MODE", "none")];
            vars.extend_from_slice(&identity);
            vars.extend_from_slice(extra);
            config(&vars, None, None).unwrap().acs.unwrap()
        };
        let keyless = settings(&[
            ("ACS_ENDPOINT", "https://x.communication.azure.com/"),
            ("AzureWebJobsStorage__accountName", "fnstore1"),
        ]);
        assert!(matches!(
            &keyless.connection,
            AcsConnectionSetting::Entra { endpoint } if endpoint.url == "https://x.communication.azure.com"
        ));
        assert!(matches!(
            &keyless.storage,
            Some(StorageSetting::Identity { table_endpoint }) if table_endpoint == "https://fnstore1.table.core.windows.net"
        ));
        assert_eq!(
            keyless.credential,
            Some(AzureCredential::ManagedIdentity { client_id: None })
        );
        // An explicit table endpoint wins over the account name; a connection string over both.
        let uri = settings(&[
            ("ACS_ENDPOINT", "https://x.communication.azure.com"),
            ("AzureWebJobsStorage__accountName", "fnstore1"),
            (
                "AzureWebJobsStorage__tableServiceUri",
                "https://127.0.0.1:10002/acct/",
            ),
        ]);
        assert!(matches!(
            &uri.storage,
            Some(StorageSetting::Identity { table_endpoint }) if table_endpoint == "https://127.0.0.1:10002/acct"
        ));
        let keyed = settings(&[
            (
                "ACS_CONNECTION_STRING",
                "endpoint=https://x.communication.azure.com/;accesskey=c2VjcmV0",
            ),
            ("AzureWebJobsStorage", "AccountName=a;AccountKey=c2VjcmV0"),
            ("AzureWebJobsStorage__accountName", "fnstore1"),
        ]);
        assert!(matches!(
            keyed.storage,
            Some(StorageSetting::ConnectionString(_))
        ));
        assert_eq!(keyed.credential, None, "no identity needed with keys");
        let credential = settings(&[
            ("ACS_ENDPOINT", "https://x.communication.azure.com"),
            ("AZURE_CREDENTIAL", "developer-tools"),
        ]);
        assert_eq!(credential.credential, Some(AzureCredential::DeveloperTools));
    }

    #[test]
    fn acs_settings() {
        let acs = "endpoint=https://x.communication.azure.com/;accesskey=c2VjcmV0LWtleQ==";
        let c = config(
            &[("AUTH_MODE", "none"), ("ACS_CONNECTION_STRING", acs)],
            None,
            None,
        )
        .unwrap();
        let settings = c.acs.unwrap();
        assert!(matches!(
            settings.connection,
            AcsConnectionSetting::Fixed(_)
        ));
        assert_eq!(settings.timeout, Duration::from_secs(5));
        assert!(
            config(&[("AUTH_MODE", "none")], None, None)
                .unwrap()
                .acs
                .is_none()
        );
        for (vars, expected) in [
            (
                vec![("ACS_CONNECTION_STRING", "endpoint=https://x;accesskey=!!")],
                "ACS_CONNECTION_STRING",
            ),
            (
                vec![("ACS_CONNECTION_STRING_SECRET_NAME", "acs")],
                "ACS_CONNECTION_STRING_SECRET_NAME needs KEY_VAULT_URL",
            ),
            (
                vec![
                    ("ACS_CONNECTION_STRING", acs),
                    ("ACS_CONNECTION_STRING_SECRET_NAME", "acs"),
                ],
                "set one of ACS_CONNECTION_STRING, ACS_CONNECTION_STRING_SECRET_NAME and ACS_ENDPOINT",
            ),
            (
                vec![
                    ("ACS_CONNECTION_STRING", acs),
                    ("ACS_ENDPOINT", "https://x.communication.azure.com"),
                ],
                "set one of",
            ),
            (
                vec![("ACS_ENDPOINT", "http://acs.example.com")],
                "ACS_ENDPOINT needs an https:// endpoint",
            ),
            (
                vec![("ACS_ENDPOINT", "https://x.communication.azure.com")],
                "AZURE_CREDENTIAL=managed-identity needs IDENTITY_ENDPOINT",
            ),
            (
                vec![
                    ("ACS_CONNECTION_STRING", acs),
                    ("AzureWebJobsStorage__accountName", "Bad_Name"),
                ],
                "AzureWebJobsStorage__accountName must be a storage account name",
            ),
            (
                vec![
                    ("ACS_CONNECTION_STRING", acs),
                    (
                        "AzureWebJobsStorage__tableServiceUri",
                        "http://127.0.0.1:1/acct",
                    ),
                ],
                "AzureWebJobsStorage__tableServiceUri must be an https:// URL",
            ),
            (
                vec![("ACS_CONNECTION_STRING", acs), ("ACS_TIMEOUT_MS", "0")],
                "ACS_TIMEOUT_MS",
            ),
        ] {
            let mut all = vec![("AUTH_MODE", "none")];
            all.extend(vars);
            let e = config(&all, None, None).unwrap_err().to_string();
            assert!(e.starts_with(expected), "{e}");
            assert!(!e.contains("c2VjcmV0"));
        }
        let vault = config(
            &[
                ("AUTH_MODE", "none"),
                VAULT,
                ("KEY_VAULT_CREDENTIAL", "developer-tools"),
                ("ACS_CONNECTION_STRING_SECRET_NAME", "acs-connection"),
            ],
            None,
            None,
        )
        .unwrap();
        assert!(
            matches!(vault.acs.unwrap().connection, AcsConnectionSetting::VaultSecret(name) if name == "acs-connection")
        );
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
