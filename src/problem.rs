//! Every error a client can see, and its one RFC 9457 rendering.
//!
//! Handlers return `Result<_, Problem>`; nothing else builds an error response. A `Problem` carries
//! only what is safe to show a caller: which parameter was wrong and why, never a key, a stack
//! trace or an upstream error message.

use std::time::Duration;

use serde::Serialize;
use warp::http::{HeaderValue, StatusCode, header};

use crate::invocation::Reply;

/// Prefix of every `type` URI. RFC 9457 asks for a URI that identifies the problem type; a `tag:`
/// URI (RFC 4151) is stable and unique without promising a web page behind it.
const TYPE_PREFIX: &str = "tag:fluid-token-service,2026:problem/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A parameter is missing or has a value outside its contract.
    InvalidParameter {
        parameter: &'static str,
        detail: String,
    },
    /// The query string cannot be decoded.
    InvalidQuery { detail: String },
    /// The request body is not what the function accepts (e.g. not a JSON object).
    InvalidBody { detail: String },
    /// The body is larger than [`crate::invocation::MAX_BODY_BYTES`].
    BodyTooLarge { limit: usize },
    /// The caller is not authenticated. `invalid_token`: a bearer token was sent but refused.
    Unauthenticated { detail: String, invalid_token: bool },
    /// The caller is authenticated but may not have what it asked for.
    Forbidden { detail: String },
    /// The identity provider (Entra ID signing keys) cannot be reached right now.
    IdentityProviderUnavailable { retry_after: Duration },
    /// The method is not one the function serves; `allow` lists those it does.
    MethodNotAllowed { allow: &'static str },
    /// No key is configured for the tenant.
    UnknownTenant { tenant_id: String },
    /// The key store cannot be reached right now; the caller may retry later.
    KeyStoreUnavailable { retry_after: Duration },
    /// No function is served at this path.
    NotFound,
    /// The app has no ACS connection configured.
    AcsNotConfigured,
    /// ACS refused the request as invalid; `detail` is its message.
    AcsRejected { detail: String },
    /// ACS knows no such communication identity.
    UnknownIdentity,
    /// ACS (or the store of identity bindings) cannot be used right now.
    AcsUnavailable { retry_after: Duration },
    /// The request conflicts with what is recorded (a document's owner).
    Conflict { detail: String },
    /// No document store is configured, so the document functions are not served.
    DocumentsNotConfigured,
    /// The store of document members cannot be used right now.
    DocumentStoreUnavailable { retry_after: Duration },
    /// The Functions host sent an invocation this handler cannot read.
    MalformedInvocation { detail: String },
    /// A standalone run was asked for a host name other than this machine's (DNS rebinding).
    ForeignHost,
    /// The caller made more requests than `CALLER_RATE_LIMIT` allows; retry after the wait.
    RateLimited { retry_after: Duration },
    /// The service cannot write its log lines (stdout is not being read), and issues nothing it
    /// cannot record; retry after the wait.
    LogUnavailable { retry_after: Duration },
    /// A fault inside this service; details go to the log, never to the caller.
    Internal,
}

impl Problem {
    pub fn invalid(parameter: &'static str, detail: impl Into<String>) -> Self {
        Problem::InvalidParameter {
            parameter,
            detail: detail.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Problem::InvalidParameter { .. }
            | Problem::InvalidQuery { .. }
            | Problem::InvalidBody { .. }
            | Problem::MalformedInvocation { .. } => StatusCode::BAD_REQUEST,
            Problem::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Problem::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Problem::Forbidden { .. } => StatusCode::FORBIDDEN,
            Problem::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Problem::UnknownTenant { .. }
            | Problem::NotFound
            | Problem::AcsNotConfigured
            | Problem::DocumentsNotConfigured
            | Problem::UnknownIdentity => StatusCode::NOT_FOUND,
            Problem::AcsRejected { .. } => StatusCode::BAD_REQUEST,
            Problem::KeyStoreUnavailable { .. }
            | Problem::IdentityProviderUnavailable { .. }
            | Problem::AcsUnavailable { .. }
            | Problem::DocumentStoreUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Problem::Conflict { .. } => StatusCode::CONFLICT,
            Problem::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Problem::LogUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Problem::ForeignHost => StatusCode::MISDIRECTED_REQUEST,
            Problem::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The last part of the problem's `type` (`forbidden`, `rate-limited`, …), for the log.
    pub fn slug(&self) -> &'static str {
        self.slug_and_title().0
    }

    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            Problem::InvalidParameter { .. } => ("invalid-parameter", "Invalid request parameter"),
            Problem::InvalidQuery { .. } => ("invalid-query", "Invalid query string"),
            Problem::InvalidBody { .. } => ("invalid-body", "Invalid request body"),
            Problem::BodyTooLarge { .. } => ("body-too-large", "Request body too large"),
            Problem::Unauthenticated { .. } => ("unauthenticated", "Authentication required"),
            Problem::Forbidden { .. } => ("forbidden", "Not allowed"),
            Problem::IdentityProviderUnavailable { .. } => (
                "identity-provider-unavailable",
                "Identity provider unavailable",
            ),
            Problem::MethodNotAllowed { .. } => ("method-not-allowed", "Method not allowed"),
            Problem::UnknownTenant { .. } => ("unknown-tenant", "Unknown tenant"),
            Problem::KeyStoreUnavailable { .. } => {
                ("key-store-unavailable", "Tenant key store unavailable")
            }
            Problem::NotFound => ("not-found", "Not found"),
            Problem::AcsNotConfigured => ("acs-not-configured", "ACS not configured"),
            Problem::AcsRejected { .. } => ("acs-rejected", "Rejected by Communication Services"),
            Problem::UnknownIdentity => ("unknown-identity", "Unknown communication identity"),
            Problem::AcsUnavailable { .. } => {
                ("acs-unavailable", "Communication Services unavailable")
            }
            Problem::Conflict { .. } => ("conflict", "Conflict"),
            Problem::DocumentsNotConfigured => {
                ("documents-not-configured", "Document access not configured")
            }
            Problem::DocumentStoreUnavailable { .. } => {
                ("document-store-unavailable", "Document store unavailable")
            }
            Problem::MalformedInvocation { .. } => {
                ("malformed-invocation", "Malformed host invocation")
            }
            Problem::ForeignHost => ("foreign-host", "Misdirected request"),
            Problem::RateLimited { .. } => ("rate-limited", "Too many requests"),
            Problem::LogUnavailable { .. } => ("log-unavailable", "Service unavailable"),
            Problem::Internal => ("internal", "Internal error"),
        }
    }

    fn detail(&self) -> String {
        match self {
            Problem::InvalidParameter { parameter, detail } => format!("{parameter}: {detail}"),
            Problem::InvalidQuery { detail }
            | Problem::InvalidBody { detail }
            | Problem::Unauthenticated { detail, .. }
            | Problem::Forbidden { detail }
            | Problem::AcsRejected { detail }
            | Problem::Conflict { detail }
            | Problem::MalformedInvocation { detail } => detail.clone(),
            Problem::BodyTooLarge { limit } => {
                format!("The request body exceeds the limit of {limit} bytes.")
            }
            Problem::MethodNotAllowed { allow } => {
                format!("This endpoint accepts only {allow}.")
            }
            Problem::UnknownTenant { tenant_id } => {
                format!("tenantId: no key is configured for tenant '{tenant_id}'.")
            }
            Problem::KeyStoreUnavailable { .. } => {
                "The tenant key cannot be read right now; retry later.".to_string()
            }
            Problem::IdentityProviderUnavailable { .. } => {
                "Access tokens cannot be checked right now; retry later.".to_string()
            }
            Problem::NotFound => "No function is served at this path.".to_string(),
            Problem::AcsNotConfigured => {
                "This app has no Azure Communication Services connection configured.".to_string()
            }
            Problem::UnknownIdentity => {
                "communicationUserId: Azure Communication Services knows no such identity."
                    .to_string()
            }
            Problem::AcsUnavailable { .. } => {
                "Azure Communication Services cannot be used right now; retry later.".to_string()
            }
            Problem::DocumentsNotConfigured => {
                "This app keeps no document members: set DOCUMENT_STORE.".to_string()
            }
            Problem::DocumentStoreUnavailable { .. } => {
                "Document members cannot be read or changed right now; retry later.".to_string()
            }
            Problem::ForeignHost => "This development server answers only requests for this machine (localhost, 127.0.0.0/8 or [::1] in the Host header); other names can be DNS-rebinding attacks.".to_string(),
            Problem::RateLimited { .. } => {
                "You are making more requests than this service allows per caller; retry after the time in Retry-After.".to_string()
            }
            Problem::LogUnavailable { .. } => {
                "The service cannot record requests right now, and issues nothing it cannot record; retry later.".to_string()
            }
            Problem::Internal => "The request could not be completed.".to_string(),
        }
    }

    /// The `application/problem+json` response for this problem.
    pub fn to_reply(&self) -> Reply {
        let (slug, title) = self.slug_and_title();
        let status = self.status();
        let body = ProblemDocument {
            r#type: format!("{TYPE_PREFIX}{slug}"),
            title,
            status: status.as_u16(),
            detail: self.detail(),
            parameter: match self {
                Problem::InvalidParameter { parameter, .. } => Some(parameter),
                _ => None,
            },
        };
        let json = serde_json::to_vec(&body).expect("a problem document always serializes");
        let reply = Reply::new(status, "application/problem+json", json);
        match self {
            Problem::MethodNotAllowed { allow } => {
                reply.with_header(header::ALLOW, HeaderValue::from_static(allow))
            }
            Problem::KeyStoreUnavailable { retry_after }
            | Problem::IdentityProviderUnavailable { retry_after }
            | Problem::AcsUnavailable { retry_after }
            | Problem::DocumentStoreUnavailable { retry_after }
            | Problem::RateLimited { retry_after }
            | Problem::LogUnavailable { retry_after } => reply.with_header(
                header::RETRY_AFTER,
                // Whole seconds, rounded up: a client that waits that long is not refused again
                // for waiting too little.
                HeaderValue::from(retry_after.as_millis().div_ceil(1000).max(1) as u64),
            ),
            // RFC 9110 §15.5.2: a 401 names the scheme; RFC 6750 §3.1 says what was wrong.
            Problem::Unauthenticated { invalid_token, .. } => reply.with_header(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(if *invalid_token {
                    "Bearer error=\"invalid_token\""
                } else {
                    "Bearer"
                }),
            ),
            _ => reply,
        }
    }
}

/// The RFC 9457 members, plus `parameter` (an extension member naming the bad parameter so a
/// client can point at the right form field without parsing `detail`).
#[derive(Serialize)]
struct ProblemDocument<'a> {
    r#type: String,
    title: &'static str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameter: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(reply: &Reply) -> serde_json::Value {
        serde_json::from_slice(&reply.body).unwrap()
    }

    fn header<'a>(reply: &'a Reply, name: &header::HeaderName) -> Option<&'a str> {
        reply
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_str().unwrap())
    }

    #[test]
    fn invalid_parameter_names_the_parameter() {
        let reply = Problem::invalid("tenantId", "is required").to_reply();
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            header(&reply, &header::CONTENT_TYPE),
            Some("application/problem+json")
        );
        let doc = body(&reply);
        assert_eq!(doc["status"], 400);
        assert_eq!(doc["parameter"], "tenantId");
        assert_eq!(doc["detail"], "tenantId: is required");
        assert!(
            doc["type"]
                .as_str()
                .unwrap()
                .ends_with("/invalid-parameter")
        );
    }

    #[test]
    fn method_not_allowed_lists_allow() {
        let reply = Problem::MethodNotAllowed { allow: "GET, POST" }.to_reply();
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(header(&reply, &header::ALLOW), Some("GET, POST"));
    }

    #[test]
    fn unavailable_says_when_to_retry() {
        let problem = Problem::KeyStoreUnavailable {
            retry_after: Duration::from_millis(200),
        };
        let reply = problem.to_reply();
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(header(&reply, &header::RETRY_AFTER), Some("1"));
        assert!(body(&reply).get("parameter").is_none());
    }
}
