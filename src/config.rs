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

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::acs::connection::{AcsConnection, AcsEndpoint};
use crate::azure_credential::AzureCredential;
use crate::caller::entra::{DEFAULT_AUTHORITY, EntraSettings};
use crate::cors::Cors;
use crate::keys::cache::CachePolicy;
use crate::keys::vault::{SecretNameTemplate, VaultSettings};
use crate::policy::Policy;
use crate::request::{Lifetime, Scopes, TenantId};
use crate::secret::Secret;

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
    /// `RUST_LOG`-style filter for the JSON logs (default `info`).
    pub log_filter: String,
    /// Standalone only: `Host.CORS` of local.settings.json, applied as `func start` would.
    /// Under the Functions host CORS is the host's job.
    pub cors: Option<Cors>,
}

/// Where tenant keys come from.
#[derive(Debug)]
pub enum KeySettings {
    /// `TENANT_KEYS`: keys given in configuration (development, tests).
    Local(BTreeMap<TenantId, Secret<String>>),
    /// `KEY_VAULT_URL`: keys read from Azure Key Vault through a cache.
    Vault {
        vault: Box<VaultSettings>,
        cache: CachePolicy,
        /// `KEY_VAULT_PRELOAD_TENANTS`: fetched at startup.
        preload: Vec<TenantId>,
        /// Where a managed identity gets its tokens, for the startup log.
        identity_source: &'static str,
        /// `TENANT_KEYS` was set too, and is ignored.
        ignored_tenant_keys: bool,
    },
}

/// The ACS function's settings.
#[derive(Debug)]
pub struct AcsSettings {
    pub connection: AcsConnectionSetting,
    /// Where caller → identity bindings are kept (authenticated modes).
    pub storage: Option<StorageSetting>,
    /// `ACS_TIMEOUT_MS`: time budget of one ACS or Table Storage request.
    pub timeout: Duration,
    /// The app's identity, when ACS or the storage is reached with it (no keys).
    pub credential: Option<AzureCredential>,
}

#[derive(Debug)]
pub enum AcsConnectionSetting {
    /// `ACS_CONNECTION_STRING`.
    Fixed(AcsConnection),
    /// `ACS_CONNECTION_STRING_SECRET_NAME`: read from the Key Vault of `KEY_VAULT_URL`.
    VaultSecret(String),
    /// `ACS_ENDPOINT` without a key: Microsoft Entra tokens of the app's identity.
    Entra { endpoint: AcsEndpoint },
}

/// The storage account of `AzureWebJobsStorage`, as the Functions host reads it.
#[derive(Debug)]
pub enum StorageSetting {
    /// `AzureWebJobsStorage`: a connection string with the account key (Azurite, local runs).
    ConnectionString(Secret<String>),
    /// `AzureWebJobsStorage__tableServiceUri`, or `AzureWebJobsStorage__accountName` in the
    /// public cloud: reached with Microsoft Entra tokens of the app's identity.
    Identity { table_endpoint: String },
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
        let policy = Policy {
            allowed_tenants,
            allowed_scopes,
            max_lifetime,
            allow_caller_user_name: flag(&setting, "ALLOW_CALLER_USER_NAME", false)?,
        };

        if launch == Launch::Standalone
            && auth_mode == AuthMode::None
            && matches!(keys, KeySettings::Vault { .. })
            && local.cors.as_ref().is_some_and(Cors::allows_any_origin)
        {
            return Err(error(
                "a standalone run with AUTH_MODE=none and KEY_VAULT_URL must not allow every origin (Host.CORS \"*\"): any web page you visit could get tokens signed with the real keys. Name the origins of your app in Host.CORS",
            ));
        }

        Ok(Config {
            launch,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            route_prefix: host.route_prefix,
            forwarding: host.forwarding,
            auth_mode,
            policy,
            keys,
            acs,
            log_filter: setting("RUST_LOG").unwrap_or_else(|| "info".to_string()),
            cors: local.cors,
        })
    }
}

/// `ACS_*` and `AzureWebJobsStorage`.
fn acs_settings(
    setting: &dyn Fn(&str) -> Option<String>,
    have_vault: bool,
) -> Result<Option<AcsSettings>, ConfigError> {
    let present = |name: &str| setting(name).filter(|v| !v.trim().is_empty());
    let sources = [
        present("ACS_CONNECTION_STRING"),
        present("ACS_CONNECTION_STRING_SECRET_NAME"),
        present("ACS_ENDPOINT"),
    ];
    let connection = match sources {
        [None, None, None] => return Ok(None),
        [Some(text), None, None] => AcsConnectionSetting::Fixed(
            AcsConnection::parse(&text)
                .map_err(|problem| error(format!("ACS_CONNECTION_STRING {problem}")))?,
        ),
        [None, Some(name), None] => {
            if !have_vault {
                return Err(error(
                    "ACS_CONNECTION_STRING_SECRET_NAME needs KEY_VAULT_URL",
                ));
            }
            let name = name.trim().to_string();
            if !(1..=127).contains(&name.len())
                || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(error(
                    "ACS_CONNECTION_STRING_SECRET_NAME must be a Key Vault secret name (0-9 a-z A-Z -)",
                ));
            }
            AcsConnectionSetting::VaultSecret(name)
        }
        [None, None, Some(endpoint)] => AcsConnectionSetting::Entra {
            endpoint: AcsEndpoint::parse(&endpoint)
                .map_err(|problem| error(format!("ACS_ENDPOINT {problem}")))?,
        },
        _ => {
            return Err(error(
                "set one of ACS_CONNECTION_STRING, ACS_CONNECTION_STRING_SECRET_NAME and ACS_ENDPOINT",
            ));
        }
    };
    let timeout = milliseconds(setting, "ACS_TIMEOUT_MS", 5000)?;
    let storage = storage_setting(setting)?;
    let keyless = matches!(connection, AcsConnectionSetting::Entra { .. })
        || matches!(storage, Some(StorageSetting::Identity { .. }));
    let credential = if keyless {
        Some(credential_settings(setting)?.0)
    } else {
        None
    };
    Ok(Some(AcsSettings {
        connection,
        storage,
        timeout,
        credential,
    }))
}

/// `AzureWebJobsStorage` (a connection string) or its identity-based form, as the Functions host
/// reads them: `AzureWebJobsStorage__tableServiceUri`, else `AzureWebJobsStorage__accountName`
/// (public cloud endpoints).
fn storage_setting(
    setting: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<StorageSetting>, ConfigError> {
    let present = |name: &str| {
        setting(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if let Some(text) = present("AzureWebJobsStorage") {
        return Ok(Some(StorageSetting::ConnectionString(Secret::new(text))));
    }
    let table_endpoint = match (
        present("AzureWebJobsStorage__tableServiceUri"),
        present("AzureWebJobsStorage__accountName"),
    ) {
        (Some(uri), _) => uri.trim_end_matches('/').to_string(),
        (None, Some(account)) => {
            if !(3..=24).contains(&account.len())
                || !account
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                return Err(error(
                    "AzureWebJobsStorage__accountName must be a storage account name (3-24 lower-case letters and digits)",
                ));
            }
            format!("https://{account}.table.core.windows.net")
        }
        (None, None) => return Ok(None),
    };
    let https = table_endpoint.starts_with("https://");
    if !https {
        return Err(error(
            "AzureWebJobsStorage__tableServiceUri must be an https:// URL (Microsoft Entra tokens are sent only over TLS)",
        ));
    }
    Ok(Some(StorageSetting::Identity { table_endpoint }))
}

/// `AUTH_MODE=entra`: `ENTRA_*`.
fn entra_settings(setting: &dyn Fn(&str) -> Option<String>) -> Result<EntraSettings, ConfigError> {
    let required = |name: &str| {
        setting(name)
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
    let authority = setting("ENTRA_AUTHORITY")
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
    let required_scope = setting("ENTRA_REQUIRED_SCOPE")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let allowed_client_apps: Vec<String> = setting("ENTRA_ALLOWED_CLIENT_APPS")
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

/// Whether an `http://` URL points at this machine (127.0.0.0/8, ::1 or localhost).
fn is_loopback_url(url: &str) -> bool {
    url.parse::<warp::http::Uri>()
        .is_ok_and(|uri| is_loopback_host(uri.host().unwrap_or("")))
}

/// Whether a URL host is this machine: `localhost`, 127.0.0.0/8 or `::1` (brackets allowed).
/// Every setting that accepts `http://` (emulators) checks with this.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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

/// The app's identity toward Azure (Key Vault, identity-based storage, ACS with Entra ID):
/// `AZURE_CREDENTIAL` (or its older name `KEY_VAULT_CREDENTIAL`), `AZURE_CLIENT_ID`, … Returns
/// the credential and, for the startup log, where a managed identity comes from.
fn credential_settings(
    setting: &dyn Fn(&str) -> Option<String>,
) -> Result<(AzureCredential, &'static str), ConfigError> {
    let present = |name: &str| setting(name).filter(|v| !v.trim().is_empty());
    let client_id = present("AZURE_CLIENT_ID");
    let chosen = present("AZURE_CREDENTIAL").or_else(|| setting("KEY_VAULT_CREDENTIAL"));
    match chosen.as_deref().map(str::trim) {
        None | Some("") | Some("managed-identity") => {
            let source = if present("IDENTITY_ENDPOINT").is_some()
                && present("IDENTITY_HEADER").is_some()
            {
                "app-service (IDENTITY_ENDPOINT)"
            } else if flag(setting, "KEY_VAULT_ALLOW_IMDS", false)? {
                "instance metadata service (IMDS)"
            } else {
                return Err(error(
                    "AZURE_CREDENTIAL=managed-identity needs IDENTITY_ENDPOINT and IDENTITY_HEADER (set by Azure Functions); on a VM or AKS set KEY_VAULT_ALLOW_IMDS=true; on a developer machine use AZURE_CREDENTIAL=developer-tools",
                ));
            };
            Ok((AzureCredential::ManagedIdentity { client_id }, source))
        }
        Some("client-secret") => {
            let required = |name: &str| {
                present(name)
                    .ok_or_else(|| error(format!("AZURE_CREDENTIAL=client-secret needs {name}")))
            };
            let credential = AzureCredential::ClientSecret {
                tenant_id: required("AZURE_TENANT_ID")?,
                client_id: required("AZURE_CLIENT_ID")?,
                secret: Secret::new(required("AZURE_CLIENT_SECRET")?),
            };
            Ok((credential, "none"))
        }
        Some("developer-tools") => Ok((AzureCredential::DeveloperTools, "none")),
        Some(other) => Err(error(format!(
            "AZURE_CREDENTIAL \"{other}\" is not one of managed-identity, client-secret, developer-tools"
        ))),
    }
}

/// The Key Vault key source: `KEY_VAULT_*`, `KEY_CACHE_*` and the credential's settings.
fn vault_settings(
    url: &str,
    setting: &dyn Fn(&str) -> Option<String>,
    ignored_tenant_keys: bool,
) -> Result<KeySettings, ConfigError> {
    if !url.starts_with("https://") {
        return Err(error(
            "KEY_VAULT_URL must be an https:// URL (e.g. https://my-vault.vault.azure.net)",
        ));
    }
    let secret_name = SecretNameTemplate::parse(
        &setting("KEY_VAULT_SECRET_NAME").unwrap_or_else(|| "fluid-tenant-{tenantId}".to_string()),
    )
    .map_err(|e| error(format!("KEY_VAULT_SECRET_NAME {e}")))?;
    let (credential, identity_source) = credential_settings(setting)?;

    let ttl = seconds(setting, "KEY_CACHE_TTL_SECONDS", 300)?;
    let max_stale = seconds(setting, "KEY_CACHE_MAX_STALE_SECONDS", 86_400)?;
    if max_stale < ttl {
        return Err(error(
            "KEY_CACHE_MAX_STALE_SECONDS must not be less than KEY_CACHE_TTL_SECONDS",
        ));
    }
    let fetch_timeout = milliseconds(setting, "KEY_VAULT_TIMEOUT_MS", 5000)?;
    let preload = tenant_list(
        "KEY_VAULT_PRELOAD_TENANTS",
        &setting("KEY_VAULT_PRELOAD_TENANTS").unwrap_or_default(),
    )?;

    Ok(KeySettings::Vault {
        vault: Box::new(VaultSettings {
            url: url.to_string(),
            secret_name,
            credential,
            verify_challenge_resource: flag(setting, "KEY_VAULT_VERIFY_CHALLENGE_RESOURCE", true)?,
        }),
        cache: CachePolicy {
            ttl,
            max_stale,
            negative_ttl: Duration::from_secs(60),
            fetch_timeout,
            miss_rate: miss_rate(setting)?,
        },
        preload,
        identity_source,
        ignored_tenant_keys,
    })
}

/// `KEY_VAULT_MISS_RATE`: vault reads per second, per instance, for tenants without a usable key
/// (1-1000, default 10). Key Vault serves about 4,000 reads per 10 s to all clients of a vault
/// together, so this times the app's instance count must stay well under 400.
fn miss_rate(setting: &dyn Fn(&str) -> Option<String>) -> Result<u32, ConfigError> {
    match setting("KEY_VAULT_MISS_RATE") {
        None => Ok(10),
        Some(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|rate| (1..=1000).contains(rate))
            .ok_or_else(|| {
                error("KEY_VAULT_MISS_RATE must be an integer from 1 to 1000 (reads per second)")
            }),
    }
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

/// What the handler needs from host.json. The host binds these sections with .NET
/// configuration binding, which ignores the case of keys; so does this.
struct HostJson {
    route_prefix: String,
    forwarding: bool,
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
    fn parse(text: &str) -> Result<HostJson, ConfigError> {
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
struct LocalSettings {
    /// `Values`: string settings, defaults for the environment.
    values: HashMap<String, String>,
    /// `Host.LocalHttpPort`.
    port: Option<u16>,
    /// `Host.CORS` and `Host.CORSCredentials`.
    cors: Option<Cors>,
}

fn parse_local_settings(text: &str) -> Result<LocalSettings, ConfigError> {
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
            Cors::parse(origins, credentials)
                .map_err(|reason| error(format!("local.settings.json: {reason}")))?,
        ),
        Some(_) => {
            return Err(error(
                "local.settings.json: Host.CORS must be a string (\"*\" or a comma-separated list of origins)",
            ));
        }
    };
    Ok(LocalSettings { values, port, cors })
}

/// `TENANT_KEYS`: a JSON object mapping tenant id to key string. Error messages name the tenant
/// or the JSON position, never a key.
fn parse_tenant_keys(text: &str) -> Result<BTreeMap<TenantId, Secret<String>>, ConfigError> {
    let json: Value = serde_json::from_str(text).map_err(|e| {
        error(format!(
            "TENANT_KEYS must be a JSON object mapping tenantId to key (invalid JSON at line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(map) = json else {
        return Err(error(
            "TENANT_KEYS must be a JSON object mapping tenantId to key",
        ));
    };
    map.into_iter()
        .map(|(tenant, key)| {
            let tenant_id = TenantId::parse(&tenant).map_err(|_| {
                error(format!(
                    "TENANT_KEYS: \"{}\" is not a valid tenantId (1-128 of A-Z a-z 0-9 . _ -)",
                    tenant.escape_debug()
                ))
            })?;
            match key {
                Value::String(key) if !key.is_empty() => Ok((tenant_id, Secret::new(key))),
                _ => Err(error(format!(
                    "TENANT_KEYS: the key of tenant \"{tenant}\" must be a non-empty string"
                ))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            &[crate::request::Scope::DocRead]
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
