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
mod policy;
mod settings;
mod storage;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::caller::easyauth::UserIdForm;
use crate::caller::entra::EntraSettings;
use crate::cors::Cors;
use crate::policy::Policy;

use acs::acs_settings;
pub use acs::{AcsConnectionSetting, AcsSettings};
use auth::{auth_mode, caller_rate};
use cors::cors_settings;
use documents::document_settings;
pub use documents::{DocumentSettings, DocumentStoreSetting};
use files::{HostJson, LocalSettings, parse_local_settings};
pub use keys::KeySettings;
use keys::key_settings;
use policy::policy_settings;
use settings::Settings;
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
    /// App Service Authentication signs users in; the handler reads its principal headers, and
    /// makes user ids as `EASYAUTH_USER_ID` says.
    EasyAuth(UserIdForm),
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
    /// `None`: `CALLER_RATE_LIMIT=off`.
    pub caller_rate: Option<CallerRate>,
    /// CORS the handler answers: `CORS_ALLOWED_ORIGINS`, or standalone `Host.CORS` of
    /// local.settings.json as `func start` would apply it. `None`: no CORS headers at all.
    pub cors: Option<Cors>,
}

/// Requests per second per signed-in caller, per instance (`CALLER_RATE_LIMIT`), and the burst
/// (`CALLER_RATE_BURST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallerRate {
    pub rate: u32,
    pub burst: u32,
}

impl CallerRate {
    /// 5 a second, 30 at once: what azure-client asks for when a user creates, loads,
    /// reconnects and refreshes fits in the burst many times over (docs/security.md).
    pub const DEFAULT: CallerRate = CallerRate { rate: 5, burst: 30 };
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
        let settings = Settings::new(env, local.values);

        let auth_mode = auth_mode(&settings)?;
        let caller_rate = caller_rate(&settings)?;
        let documents = document_settings(&settings, launch, auth_mode != AuthMode::None)?;
        let policy = policy_settings(&settings, documents.access)?;
        let keys = key_settings(&settings)?;
        let have_vault = matches!(keys, KeySettings::Vault { .. });
        let acs = acs_settings(&settings, have_vault)?;
        let cors = cors_settings(
            &settings,
            local.cors,
            auth_mode == AuthMode::None && have_vault,
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
            caller_rate,
            log_filter: settings
                .get("RUST_LOG")
                .unwrap_or_else(|| "info".to_string()),
            cors,
        })
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
pub(crate) mod test_support {
    use std::collections::HashMap;

    use super::{Config, ConfigError};

    /// The configuration from these variables and file texts.
    pub(crate) fn config(
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

    pub(crate) const VAULT: (&str, &str) = ("KEY_VAULT_URL", "https://my-vault.vault.azure.net");
    pub(crate) const APP_SERVICE_IDENTITY: [(&str, &str); 2] = [
        ("IDENTITY_ENDPOINT", "http://127.0.0.1:41000/msi/token"),
        ("IDENTITY_HEADER", "h"),
    ];
}

#[cfg(test)]
mod tests {
    use super::test_support::config;
    use super::*;
    use crate::domain::{Lifetime, Scopes, TenantId};

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
}
