//! The ACS Identity REST API (`2026-09-23`, the newest stable version in azure-rest-api-specs;
//! the operations used here have kept their shapes since 2022): create an identity with a token, issue a token for an existing identity, revoke an
//! identity's tokens, delete an identity. Every request is authorized with the access key (HMAC,
//! see [`crate::acs::signing`]) or a Microsoft Entra token of the app's identity, every call has
//! a timeout, and transient failures are retried with backoff — except where a retry could
//! create a second identity: a create is retried only when it cannot have reached ACS or ACS
//! refused it unprocessed (429, 408).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::acs::connection::{AcsAuth, AcsConnection};
use crate::acs::signing;

const API_VERSION: &str = "2026-09-23";
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
        let created: CreateResponse = parse(
            self.call(acs, Operation::post(path, &body), Retries::NothingCreated)
                .await?,
        )?;
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
        let path = format!(
            "/identities/{}/:issueAccessToken?api-version={API_VERSION}",
            encoded(identity)
        );
        let issued: AccessToken = parse(
            self.call(acs, Operation::post(path, &body), Retries::Any)
                .await?,
        )?;
        Ok(IssuedToken {
            communication_user_id: identity.to_string(),
            token: issued.token,
            expires_on: issued.expires_on,
        })
    }

    /// Revokes every token of `identity` issued so far.
    pub async fn revoke_tokens(&self, acs: &AcsConnection, identity: &str) -> Result<(), AcsError> {
        let path = format!(
            "/identities/{}/:revokeAccessTokens?api-version={API_VERSION}",
            encoded(identity)
        );
        let operation = Operation::without_body(reqwest::Method::POST, path);
        self.call(acs, operation, Retries::Any).await.map(drop)
    }

    /// Deletes `identity` (and so revokes its tokens).
    pub async fn delete_identity(
        &self,
        acs: &AcsConnection,
        identity: &str,
    ) -> Result<(), AcsError> {
        let path = format!(
            "/identities/{}?api-version={API_VERSION}",
            encoded(identity)
        );
        let operation = Operation::without_body(reqwest::Method::DELETE, path);
        self.call(acs, operation, Retries::Any).await.map(drop)
    }

    /// Sends `operation`, retrying what `retries` allows; the body of the success.
    async fn call(
        &self,
        acs: &AcsConnection,
        operation: Operation,
        retries: Retries,
    ) -> Result<bytes::Bytes, AcsError> {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let retry_after = match self.send(acs, &operation).await {
                Attempt::Done(result) => return result,
                Attempt::Retry { retry_after, .. } if retries == Retries::Any => retry_after,
                Attempt::Retry {
                    retry_after,
                    unprocessed: true,
                } => retry_after,
                Attempt::Retry { .. } => {
                    tracing::warn!("ACS may have created an identity before failing: not retried");
                    return Err(AcsError::Unavailable);
                }
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

    async fn send(&self, acs: &AcsConnection, operation: &Operation) -> Attempt {
        let mut request = self
            .http
            .request(
                operation.method.clone(),
                format!("{}{}", acs.endpoint, operation.path_and_query),
            )
            .header("content-type", "application/json")
            .body(operation.body.clone());
        request = match &acs.auth {
            AcsAuth::AccessKey(key) => {
                let signed = signing::sign(
                    key,
                    operation.method.as_str(),
                    &operation.path_and_query,
                    &acs.host,
                    &crate::clock::rfc1123_now(),
                    &operation.body,
                );
                request
                    .header("x-ms-date", &signed.date)
                    .header("x-ms-content-sha256", &signed.content_sha256)
                    .header("authorization", &signed.authorization)
            }
            AcsAuth::Entra(token) => match token.authorization().await {
                Some(value) => request.header("authorization", value.expose()),
                // Nothing was sent: safe to try again.
                None => return Attempt::unprocessed(None),
            },
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(error = %error, "ACS request failed");
                return Attempt::Retry {
                    retry_after: None,
                    unprocessed: error.is_connect(),
                };
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
                return Attempt::Retry {
                    retry_after: None,
                    unprocessed: false,
                };
            }
        };
        match status {
            200..=299 => Attempt::Done(Ok(bytes)),
            400 => Attempt::Done(Err(AcsError::BadRequest(error_message(&bytes)))),
            401 | 403 => {
                tracing::error!(
                    status,
                    message = %error_message(&bytes),
                    "ACS refused the request: check the access key in the ACS connection string (it may have been regenerated), or the app identity's role on the ACS resource"
                );
                Attempt::Done(Err(AcsError::Denied))
            }
            404 => Attempt::Done(Err(AcsError::NotFound)),
            408 | 429 => {
                tracing::warn!(status, "ACS asked to try again later");
                Attempt::unprocessed(retry_after)
            }
            500..=599 => {
                tracing::warn!(status, "ACS answered with a server error");
                Attempt::Retry {
                    retry_after,
                    unprocessed: false,
                }
            }
            other => {
                tracing::error!(status = other, message = %error_message(&bytes), "unexpected ACS status");
                Attempt::Done(Err(AcsError::Unavailable))
            }
        }
    }
}

/// One request to the Identity API.
struct Operation {
    method: reqwest::Method,
    path_and_query: String,
    body: Vec<u8>,
}

impl Operation {
    fn without_body(method: reqwest::Method, path_and_query: String) -> Self {
        Operation {
            method,
            path_and_query,
            body: Vec::new(),
        }
    }

    fn post(path_and_query: String, body: &serde_json::Value) -> Self {
        Operation {
            method: reqwest::Method::POST,
            path_and_query,
            body: serde_json::to_vec(body).expect("a request body always serializes"),
        }
    }
}

/// Which failures a call may retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retries {
    /// Every transient failure (the operation is idempotent).
    Any,
    /// Only failures that cannot have created anything (creating an identity is not idempotent).
    NothingCreated,
}

fn encoded(identity: &str) -> String {
    percent_encoding::utf8_percent_encode(identity, percent_encoding::NON_ALPHANUMERIC).collect()
}

fn parse<T: for<'de> Deserialize<'de>>(bytes: bytes::Bytes) -> Result<T, AcsError> {
    serde_json::from_slice(&bytes).map_err(|e| {
        tracing::error!(error = %e, "unexpected ACS response");
        AcsError::Unavailable
    })
}

enum Attempt {
    Done(Result<bytes::Bytes, AcsError>),
    /// A transient failure; `unprocessed` when ACS cannot have acted on the request.
    Retry {
        retry_after: Option<Duration>,
        unprocessed: bool,
    },
}

impl Attempt {
    fn unprocessed(retry_after: Option<Duration>) -> Self {
        Attempt::Retry {
            retry_after,
            unprocessed: true,
        }
    }
}

/// `error.message` of an ACS error body (`CommunicationErrorResponse`).
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "The request was rejected by Azure Communication Services.".to_string())
}
