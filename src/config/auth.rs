//! `AUTH_MODE=entra`: `ENTRA_*`.

use crate::caller::entra::{DEFAULT_AUTHORITY, EntraSettings};

use super::{ConfigError, error};
use crate::net::is_loopback_url;

/// `AUTH_MODE=entra`: `ENTRA_*`.
pub(super) fn entra_settings(
    setting: &dyn Fn(&str) -> Option<String>,
) -> Result<EntraSettings, ConfigError> {
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
