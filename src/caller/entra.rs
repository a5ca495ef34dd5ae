//! Entra ID (Azure AD) access tokens, validated in process.
//!
//! `Authorization: Bearer <token>` must be an RS256 JWT signed by a key of the tenant's JWKS
//! (found through `{authority}/{tenant}/v2.0/.well-known/openid-configuration`), issued by that
//! tenant (`iss`), for this API (`aud`), currently valid (`exp`/`nbf`, 60 s skew), and, when
//! `ENTRA_REQUIRED_SCOPE` is set, carrying that scope in `scp` or that app role in `roles`; when
//! `ENTRA_ALLOWED_CLIENT_APPS` is set, issued to one of those client applications (`azp` in v2.0
//! tokens, `appid` in v1.0). One of the two must be set: without either, any application of the
//! tenant could get an access token for this API (client credentials included) and use it.
//!
//! Only RS256 is accepted: the algorithm is never taken from the token, which rules out `none`
//! and the HS256-with-the-public-key confusion. Signing keys are cached; an unknown `kid` (Entra
//! rotates keys) triggers a refresh, at most once a minute, so forged `kid`s cannot make us
//! hammer the identity provider.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::time::Instant;
use warp::http::{HeaderMap, header};

use crate::caller::bearer_cache::{self, BearerCache};
use crate::caller::{DOCUMENTS_ADMIN, Principal};
use crate::clock::unix_now;
use crate::problem::Problem;

/// Tokens larger than this are refused before they are parsed.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 60;
/// After a successful key refresh, the next one waits at least this long.
const REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// After a failed one, this long (the provider may be briefly unreachable).
const RETRY_INTERVAL: Duration = Duration::from_secs(5);
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// The public cloud's authority; its v1.0 tokens carry an `sts.windows.net` issuer.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraSettings {
    /// `ENTRA_AUTHORITY` without a trailing slash.
    pub authority: String,
    pub tenant_id: String,
    /// `ENTRA_AUDIENCE`: the accepted `aud` values (client id and/or App ID URI).
    pub audiences: Vec<String>,
    pub required_scope: Option<String>,
    /// `ENTRA_ALLOWED_CLIENT_APPS`: client application ids (`azp` / `appid`); empty = any.
    pub allowed_client_apps: Vec<String>,
}

pub struct EntraValidator {
    settings: EntraSettings,
    http: reqwest::Client,
    keys: RwLock<SigningKeys>,
    /// Serializes key loads; holds when the last load for an unknown `kid` was attempted and
    /// whether it worked (the startup load does not count against the rate limit).
    refresh: tokio::sync::Mutex<Option<(Instant, bool)>>,
    /// Tokens that passed every check, until they expire or the keys change.
    validated: BearerCache,
}

#[derive(Default)]
struct SigningKeys {
    issuers: Vec<String>,
    by_kid: HashMap<String, DecodingKey>,
    /// `kid`, `n`, `e` of every key, sorted: what tells a key change from a plain refresh.
    material: Vec<(String, String, String)>,
}

#[derive(Deserialize)]
struct OpenIdConfiguration {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// The claims of an access token this service reads.
#[derive(Deserialize)]
struct AccessClaims {
    exp: u64,
    nbf: Option<u64>,
    oid: Option<String>,
    sub: Option<String>,
    name: Option<String>,
    preferred_username: Option<String>,
    scp: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    /// The client application the token was issued to (v2.0 tokens).
    azp: Option<String>,
    /// The same in v1.0 tokens.
    appid: Option<String>,
}

/// Why a request could not be authenticated.
enum Rejection {
    Unauthenticated(String),
    Invalid(String),
    Forbidden(String),
    ProviderUnavailable,
}

impl From<Rejection> for Problem {
    fn from(rejection: Rejection) -> Problem {
        match rejection {
            Rejection::Unauthenticated(detail) => Problem::Unauthenticated {
                detail,
                invalid_token: false,
            },
            Rejection::Invalid(detail) => Problem::Unauthenticated {
                detail,
                invalid_token: true,
            },
            Rejection::Forbidden(detail) => Problem::Forbidden { detail },
            Rejection::ProviderUnavailable => Problem::IdentityProviderUnavailable {
                retry_after: RETRY_INTERVAL,
            },
        }
    }
}

fn invalid(detail: impl Into<String>) -> Rejection {
    Rejection::Invalid(detail.into())
}

impl EntraValidator {
    pub fn new(settings: EntraSettings) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the HTTP client for Entra ID: {e}"))?;
        Ok(EntraValidator {
            settings,
            http,
            keys: RwLock::new(SigningKeys::default()),
            refresh: tokio::sync::Mutex::new(None),
            validated: BearerCache::default(),
        })
    }

    /// Loads the signing keys ahead of the first request. Not counted against the refresh rate
    /// limit, which is for refreshes caused by unknown `kid`s.
    pub async fn warm_up(&self) {
        let _serialized = self.refresh.lock().await;
        match self.load().await {
            Ok(count) => tracing::info!(keys = count, "Entra ID signing keys loaded"),
            Err(()) => {
                tracing::warn!("Entra ID signing keys could not be loaded yet; retrying on demand")
            }
        }
    }

    /// The caller behind the request's bearer token.
    pub async fn principal(&self, headers: &HeaderMap) -> Result<Principal, Problem> {
        self.validate(headers).await.map_err(|rejection| {
            if let Rejection::Invalid(reason) | Rejection::Forbidden(reason) = &rejection {
                tracing::info!(reason = %reason, "access token rejected");
            }
            Problem::from(rejection)
        })
    }

    async fn validate(&self, headers: &HeaderMap) -> Result<Principal, Rejection> {
        let token = bearer_token(headers)?;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(invalid("The access token is too large."));
        }
        let fingerprint = bearer_cache::fingerprint(token);
        let now = unix_now();
        if let Some(principal) = self.validated.get(&fingerprint, now) {
            return Ok(principal);
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| invalid("The access token is not a well-formed JWT."))?;
        if header.alg != Algorithm::RS256 {
            return Err(invalid("The access token must be signed with RS256."));
        }
        let kid = header
            .kid
            .ok_or_else(|| invalid("The access token names no signing key (kid)."))?;
        // Read before the key: if a refresh withdraws keys after this, the answer is not kept.
        let generation = self.validated.generation();
        let (key, issuers) = self.key(&kid).await?;

        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_audience(&self.settings.audiences);
        validation.set_issuer(&issuers);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
            .map_err(|e| invalid(describe(&e)))?
            .claims;

        if let Some(scope) = &self.settings.required_scope {
            let in_scp = claims
                .scp
                .as_deref()
                .is_some_and(|scp| scp.split(' ').any(|s| s == scope));
            if !in_scp && !claims.roles.iter().any(|r| r == scope) {
                return Err(Rejection::Forbidden(format!(
                    "The access token lacks the scope or app role '{scope}'."
                )));
            }
        }
        let client_app = claims.azp.clone().or(claims.appid.clone());
        let allowed = &self.settings.allowed_client_apps;
        if !allowed.is_empty() {
            let client = client_app.as_deref();
            if !client.is_some_and(|client| allowed.iter().any(|a| a.eq_ignore_ascii_case(client)))
            {
                return Err(Rejection::Forbidden(
                    "The access token was issued to a client application this service does not allow (azp/appid)."
                        .to_string(),
                ));
            }
        }
        let id = claims
            .oid
            .or(claims.sub)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| invalid("The access token has neither oid nor sub."))?;
        let principal = Principal {
            id,
            name: claims.name.or(claims.preferred_username),
            client_app,
            document_admin: claims.roles.iter().any(|r| r == DOCUMENTS_ADMIN),
        };
        // Remembered for the window validation allowed, leeway included.
        let not_before = claims.nbf.unwrap_or(0).saturating_sub(LEEWAY_SECONDS);
        let expires = claims.exp.saturating_add(LEEWAY_SECONDS);
        self.validated.insert(
            fingerprint,
            principal.clone(),
            (not_before, expires),
            now,
            generation,
        );
        Ok(principal)
    }

    /// The verification key for `kid` and the accepted issuers, refreshing the key set when the
    /// kid is unknown (Entra rolled its keys).
    async fn key(&self, kid: &str) -> Result<(DecodingKey, Vec<String>), Rejection> {
        if let Some(found) = self.cached(kid) {
            return Ok(found);
        }
        let mut last = self.refresh.lock().await;
        // Someone else may have refreshed while we waited for the lock.
        if let Some(found) = self.cached(kid) {
            return Ok(found);
        }
        if let Some((at, succeeded)) = *last {
            let interval = if succeeded {
                REFRESH_INTERVAL
            } else {
                RETRY_INTERVAL
            };
            if at.elapsed() < interval {
                return Err(if succeeded {
                    invalid("The access token is signed with an unknown key.")
                } else {
                    Rejection::ProviderUnavailable
                });
            }
        }
        let loaded = self.load().await;
        *last = Some((Instant::now(), loaded.is_ok()));
        loaded.map_err(|()| Rejection::ProviderUnavailable)?;
        self.cached(kid)
            .ok_or_else(|| invalid("The access token is signed with an unknown key."))
    }

    fn cached(&self, kid: &str) -> Option<(DecodingKey, Vec<String>)> {
        let keys = self.keys.read().unwrap();
        keys.by_kid
            .get(kid)
            .map(|key| (key.clone(), keys.issuers.clone()))
    }

    /// Fetches discovery metadata and the JWKS and replaces the cached keys. Callers hold the
    /// refresh lock, so loads never overlap.
    async fn load(&self) -> Result<usize, ()> {
        let keys = self.fetch_keys().await.map_err(|reason| {
            tracing::warn!(reason = %reason, "cannot load Entra ID signing keys");
        })?;
        let count = keys.by_kid.len();
        let mut current = self.keys.write().unwrap();
        let removed_or_replaced = current
            .material
            .iter()
            .any(|old| !keys.material.contains(old));
        *current = keys;
        drop(current);
        if removed_or_replaced {
            // A token signed with a withdrawn key must not live on in memory.
            self.validated.clear();
        }
        Ok(count)
    }

    async fn fetch_keys(&self) -> Result<SigningKeys, String> {
        let settings = &self.settings;
        let discovery_url = format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            settings.authority, settings.tenant_id
        );
        let configuration: OpenIdConfiguration = self.get_json(&discovery_url).await?;
        let jwks: JwkSet = self.get_json(&configuration.jwks_uri).await?;
        let mut material = Vec::new();
        let by_kid: HashMap<String, DecodingKey> = jwks
            .keys
            .into_iter()
            .filter(|k| k.kty == "RSA" && k.usage.as_deref().is_none_or(|u| u == "sig"))
            .filter_map(|k| {
                let (n, e) = (k.n?, k.e?);
                let key = DecodingKey::from_rsa_components(&n, &e).ok()?;
                let kid = k.kid?;
                material.push((kid.clone(), n, e));
                Some((kid, key))
            })
            .collect();
        material.sort();
        if by_kid.is_empty() {
            return Err(format!("no RSA signing keys at {}", configuration.jwks_uri));
        }
        Ok(SigningKeys {
            issuers: issuers(settings, configuration.issuer),
            by_kid,
            material,
        })
    }
}

/// The accepted `iss` values: the discovered (v2.0) issuer, and on the public cloud the v1.0
/// issuer of app registrations left at access token version 1.0. Another authority (a sovereign
/// cloud, an emulator) gets only what it publishes.
fn issuers(settings: &EntraSettings, discovered: String) -> Vec<String> {
    let mut issuers = vec![discovered];
    if settings.authority == DEFAULT_AUTHORITY {
        issuers.push(format!("https://sts.windows.net/{}/", settings.tenant_id));
    }
    issuers
}

impl EntraValidator {
    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", response.status()));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("GET {url}: unexpected JSON: {e}"))
    }
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, Rejection> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| {
            Rejection::Unauthenticated(
                "Send an Entra ID access token: Authorization: Bearer <token>.".to_string(),
            )
        })?
        .to_str()
        .map_err(|_| invalid("The Authorization header is not text."))?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Rejection::Unauthenticated(
            "Send an Entra ID access token: Authorization: Bearer <token>.".to_string(),
        ));
    }
    Ok(token.trim())
}

/// A short, safe reason for the caller (RFC 6750 `error_description` style).
fn describe(error: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "The access token has expired.",
        ErrorKind::ImmatureSignature => "The access token is not valid yet.",
        ErrorKind::InvalidAudience => "The access token is not for this API (aud).",
        ErrorKind::InvalidIssuer => "The access token is from another issuer (iss).",
        ErrorKind::InvalidSignature => "The access token's signature is invalid.",
        ErrorKind::MissingRequiredClaim(_) => "The access token lacks a required claim.",
        _ => "The access token is invalid.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(authority: &str) -> EntraSettings {
        EntraSettings {
            authority: authority.to_string(),
            tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".to_string(),
            audiences: vec!["api://x".to_string()],
            required_scope: Some("s".to_string()),
            allowed_client_apps: Vec::new(),
        }
    }

    #[test]
    fn v1_issuer_only_on_the_public_cloud() {
        let v2 = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0";
        assert_eq!(
            issuers(&settings(DEFAULT_AUTHORITY), v2.to_string()),
            [
                v2,
                "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/"
            ]
        );
        for other in ["https://login.microsoftonline.us", "http://127.0.0.1:9000"] {
            assert_eq!(issuers(&settings(other), v2.to_string()), [v2], "{other}");
        }
    }
}
