//! The ACS Identity REST API (`2023-10-01`): create an identity with a token, or issue a token
//! for an existing identity. Every request is HMAC-signed (see [`crate::acs::signing`]), every
//! call has a timeout, and throttling or server errors are retried with backoff.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::acs::connection::AcsConnection;
use crate::acs::signing;

const API_VERSION: &str = "2023-10-01";
/// Tries per call: the first and two retries (after 200 ms and 400 ms, or the service's
/// `Retry-After` up to 2 s).
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(2);

/// A user access token and the identity it is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuedToken {
    #[serde(rename = "communicationUserId")]
    pub communication_user_id: String,
    pub token: String,
    /// As ACS sends it (RFC 3339 with 7 fractional digits).
    #[serde(rename = "expiresOn")]
    pub expires_on: String,
}

/// Why ACS gave no token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcsError {
    /// ACS refused the request as invalid; its message is safe to show.
    BadRequest(String),
    /// No such identity.
    NotFound,
    /// ACS refused our credentials (wrong or rotated access key).
    Denied,
    /// ACS is unreachable, slow, throttling or failing, after retries.
    Unavailable,
}

pub struct IdentityClient {
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct CreateResponse {
    identity: Identity,
    #[serde(rename = "accessToken")]
    access_token: AccessToken,
}

#[derive(Deserialize)]
struct Identity {
    id: String,
}

#[derive(Deserialize)]
struct AccessToken {
    token: String,
    #[serde(rename = "expiresOn")]
    expires_on: String,
}

impl IdentityClient {
    pub fn new(timeout: Duration) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client for ACS: {e}"))?;
        Ok(IdentityClient { http })
    }

    /// A new identity and a token for it.
    pub async fn create_identity(
        &self,
        acs: &AcsConnection,
        scopes: &[&str],
        expires_in_minutes: u32,
    ) -> Result<IssuedToken, AcsError> {
        let body = serde_json::json!({ "createTokenWithScopes": scopes, "expiresInMinutes": expires_in_minutes });
        let path = format!("/identities?api-version={API_VERSION}");
        let created: CreateResponse = self.call(acs, &path, &body).await?;
        Ok(IssuedToken {
            communication_user_id: created.identity.id,
            token: created.access_token.token,
            expires_on: created.access_token.expires_on,
        })
    }

    /// A new token for an existing identity.
    pub async fn issue_token(
        &self,
        acs: &AcsConnection,
        identity: &str,
        scopes: &[&str],
        expires_in_minutes: u32,
    ) -> Result<IssuedToken, AcsError> {
        let body = serde_json::json!({ "scopes": scopes, "expiresInMinutes": expires_in_minutes });
        let encoded: String =
            percent_encoding::utf8_percent_encode(identity, percent_encoding::NON_ALPHANUMERIC)
                .collect();
        let path = format!("/identities/{encoded}/:issueAccessToken?api-version={API_VERSION}");
        let issued: AccessToken = self.call(acs, &path, &body).await?;
        Ok(IssuedToken {
            communication_user_id: identity.to_string(),
            token: issued.token,
            expires_on: issued.expires_on,
        })
    }

    /// POSTs `body` to `path_and_query`, signed, retrying transient failures.
    async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        acs: &AcsConnection,
        path_and_query: &str,
        body: &serde_json::Value,
    ) -> Result<T, AcsError> {
        let body = serde_json::to_vec(body).expect("a request body always serializes");
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let retry_after = match self.send(acs, path_and_query, &body).await {
                Attempt::Done(result) => return result,
                Attempt::Retry(retry_after) => retry_after,
            };
            if attempt == ATTEMPTS {
                break;
            }
            tokio::time::sleep(retry_after.map_or(backoff, |r| r.min(MAX_RETRY_AFTER))).await;
            backoff *= 2;
        }
        tracing::warn!(attempts = ATTEMPTS, "ACS is unavailable");
        Err(AcsError::Unavailable)
    }

    async fn send<T: for<'de> Deserialize<'de>>(
        &self,
        acs: &AcsConnection,
        path_and_query: &str,
        body: &[u8],
    ) -> Attempt<T> {
        let signed = signing::sign(
            &acs.key,
            "POST",
            path_and_query,
            &acs.host,
            &signing::rfc1123_now(),
            body,
        );
        let response = self
            .http
            .post(format!("{}{path_and_query}", acs.endpoint))
            .header("x-ms-date", &signed.date)
            .header("x-ms-content-sha256", &signed.content_sha256)
            .header("authorization", &signed.authorization)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(error = %error, "ACS request failed");
                return Attempt::Retry(None);
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(error = %error, "ACS response could not be read");
                return Attempt::Retry(None);
            }
        };
        match status {
            200..=299 => Attempt::Done(serde_json::from_slice(&bytes).map_err(|e| {
                tracing::error!(error = %e, "unexpected ACS response");
                AcsError::Unavailable
            })),
            400 => Attempt::Done(Err(AcsError::BadRequest(error_message(&bytes)))),
            401 | 403 => {
                tracing::error!(
                    status,
                    message = %error_message(&bytes),
                    "ACS refused the request signature: check the access key in the ACS connection string (it may have been regenerated)"
                );
                Attempt::Done(Err(AcsError::Denied))
            }
            404 => Attempt::Done(Err(AcsError::NotFound)),
            408 | 429 | 500..=599 => {
                tracing::warn!(status, "ACS answered with a transient error");
                Attempt::Retry(retry_after)
            }
            other => {
                tracing::error!(status = other, message = %error_message(&bytes), "unexpected ACS status");
                Attempt::Done(Err(AcsError::Unavailable))
            }
        }
    }
}

enum Attempt<T> {
    Done(Result<T, AcsError>),
    Retry(Option<Duration>),
}

/// `error.message` of an ACS error body (`CommunicationErrorResponse`).
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "The request was rejected by Azure Communication Services.".to_string())
}
