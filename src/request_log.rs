//! The one log line of a request, and the audit trail riding on it.
//!
//! Operators read these lines in Application Insights, which bills by the gigabyte, at the rate
//! tokens are issued: so a request writes exactly one line. The host names the client's method
//! and path, a function the tenant, a refusal its problem type, and what was issued or changed
//! its audit fields ([`Audit`]): an incident can be traced from a token (its `jti`) to who got
//! it, for what, through which client application — and back. Never the token, its signature or
//! a key. The line also carries the W3C trace id of the incoming `traceparent` (the Functions
//! host forwards it, and makes one when Application Insights is on), so a query can join it to
//! the host's request telemetry.
//!
//! ```text
//! {"timestamp":…,"message":"request","method":"GET","path":"/api/TokenFunction",
//!  "invocation_id":…,"trace_id":…,"tenant_id":"t1","status":200,"latency_ms":0.068,
//!  "audit":"fluid-token","jti":…,"document_id":…,"user_id":…,"scopes":"doc:read doc:write",
//!  "expires_at":…,"client_app":…}
//! ```
//!
//! What is the same for every request of a deployment is not repeated on each line: the protocol
//! mode and `AUTH_MODE` are in the startup line, and the path names the function.

use std::time::Duration;

use warp::http::Method;

use crate::documents::DocumentRef;
use crate::log_format::Line;
use crate::log_writer;
use crate::token::Grant;

/// What the request's one log line says beyond status and latency, filled in as the request is
/// understood.
#[derive(Debug, Default)]
pub struct RequestLog {
    pub method: Option<Method>,
    pub path: Option<String>,
    pub tenant_id: Option<String>,
    /// The trace id of the W3C `traceparent` the request came with (see [`trace_id`]).
    pub trace_id: Option<String>,
    /// The type of the problem a refusal answered with (`rate-limited`, `forbidden`, …).
    pub problem: Option<&'static str>,
    /// What was issued or changed, for the audit trail.
    pub audit: Option<Audit>,
}

/// The audit fields of a request that issued a token or changed who may do what.
#[derive(Debug)]
pub enum Audit {
    /// A Fluid token (`"audit":"fluid-token"`).
    FluidToken {
        grant: Grant,
        jti: uuid::Uuid,
        expires_at: u64,
        client_app: Option<String>,
    },
    /// An ACS user access token (`"audit":"acs-token"`).
    AcsToken {
        communication_user_id: String,
        scopes: String,
        expires_on: String,
        caller: Option<String>,
    },
    /// A caller revoked the tokens of, or deleted, their ACS identity (`"audit":"acs-identity"`).
    AcsIdentity {
        action: &'static str,
        communication_user_id: String,
        caller: String,
    },
    /// A container's owner was registered, or its members changed: `user_id` now has `role`
    /// (`none` when removed); `by` made the change (`"audit":"document"`).
    Document {
        action: &'static str,
        document: DocumentRef,
        user_id: String,
        role: &'static str,
        by: String,
    },
}

/// What the host knows about a request when it writes the line.
pub struct Exchange<'a> {
    pub invocation_id: Option<&'a str>,
    pub status: u16,
    pub latency: Duration,
}

impl RequestLog {
    pub fn client_request(&mut self, method: &Method, path: String) {
        self.method = Some(method.clone());
        self.path = Some(path);
    }

    /// Notes the trace id of the first valid `traceparent` among `headers`, unless one is noted.
    pub fn trace_from(&mut self, headers: &warp::http::HeaderMap) {
        if self.trace_id.is_none() {
            self.trace_id = headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .and_then(trace_id)
                .map(str::to_owned);
        }
    }

    /// Writes the request's one line (when `RUST_LOG` lets `INFO` lines of this module through).
    pub fn emit(&self, exchange: &Exchange<'_>) {
        if !tracing::enabled!(tracing::Level::INFO) {
            return;
        }
        log_writer::write_line(&self.line(exchange).finish());
    }

    /// The line: what every request has, then the audit fields of what it issued or changed,
    /// in one fixed order (`jti`, `document_id`, `user_id`, `scopes`, `expires_at`,
    /// `client_app`, `communication_user_id`, `expires_on`, `caller`, `action`, `role`, `by`).
    fn line(&self, exchange: &Exchange<'_>) -> Line {
        let tenant_id = match &self.audit {
            Some(Audit::Document { document, .. }) => Some(document.tenant_id.as_str()),
            _ => self.tenant_id.as_deref(),
        };
        let mut line = Line::info("request");
        line.str("method", self.method.as_ref().map(Method::as_str))
            .str("path", self.path.as_deref())
            .str("invocation_id", exchange.invocation_id)
            .str("trace_id", self.trace_id.as_deref())
            .str("tenant_id", tenant_id)
            .u64("status", u64::from(exchange.status))
            .milliseconds("latency_ms", exchange.latency)
            .str("problem", self.problem);
        match &self.audit {
            None => {}
            Some(Audit::FluidToken {
                grant,
                jti,
                expires_at,
                client_app,
            }) => {
                let mut jti_text = uuid::Uuid::encode_buffer();
                line.str("audit", "fluid-token")
                    .str("jti", &*jti.hyphenated().encode_lower(&mut jti_text))
                    .str("document_id", grant.document_id.as_str())
                    .str("user_id", grant.user.id.as_str())
                    .words("scopes", grant.scopes.names())
                    .u64("expires_at", *expires_at)
                    .str("client_app", client_app.as_deref());
            }
            Some(Audit::AcsToken {
                communication_user_id,
                scopes,
                expires_on,
                caller,
            }) => {
                line.str("audit", "acs-token")
                    .str("scopes", scopes.as_str())
                    .str("communication_user_id", communication_user_id.as_str())
                    .str("expires_on", expires_on.as_str())
                    .str("caller", caller.as_deref());
            }
            Some(Audit::AcsIdentity {
                action,
                communication_user_id,
                caller,
            }) => {
                line.str("audit", "acs-identity")
                    .str("communication_user_id", communication_user_id.as_str())
                    .str("caller", caller.as_str())
                    .str("action", *action);
            }
            Some(Audit::Document {
                action,
                document,
                user_id,
                role,
                by,
            }) => {
                line.str("audit", "document")
                    .str("document_id", document.document_id.as_str())
                    .str("user_id", user_id.as_str())
                    .str("action", *action)
                    .str("role", *role)
                    .str("by", by.as_str());
            }
        }
        line
    }
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), when it is one.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    // Lowercase hex only, and neither id all zeros (W3C Trace Context).
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let zero = |s: &str| s.bytes().all(|b| b == b'0');
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && !zero(trace)
        && hex(parent, 16)
        && !zero(parent)
        && hex(flags, 2)
        && (version != "00" || parts.next().is_none());
    valid.then_some(trace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DocumentId, Lifetime, Scopes, TenantId};
    use crate::token::FluidUser;

    #[test]
    fn a_token_line_carries_its_audit_fields() {
        let jti = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let log = RequestLog {
            method: Some(Method::GET),
            path: Some("/api/TokenFunction".into()),
            tenant_id: Some("t1".into()),
            audit: Some(Audit::FluidToken {
                grant: Grant {
                    tenant_id: TenantId::parse("t1").unwrap(),
                    document_id: DocumentId::parse("doc \"1\"").unwrap(),
                    user: FluidUser {
                        id: "u1".into(),
                        name: "Ann".into(),
                        additional_details: None,
                    },
                    scopes: Scopes::all(),
                    lifetime: Lifetime::HARD_CAP,
                },
                jti,
                expires_at: 1_800_000_000,
                client_app: None,
            }),
            ..RequestLog::default()
        };
        let exchange = Exchange {
            invocation_id: None,
            status: 200,
            latency: Duration::from_micros(68),
        };
        let line: serde_json::Value = serde_json::from_str(&log.line(&exchange).finish()).unwrap();
        assert_eq!(line["audit"], "fluid-token");
        assert_eq!(line["jti"], "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(line["document_id"], "doc \"1\"");
        assert_eq!(line["user_id"], "u1");
        assert_eq!(line["scopes"], "doc:read doc:write summary:write");
        assert_eq!(line["expires_at"], 1_800_000_000);
        assert_eq!(line["tenant_id"], "t1");
        assert_eq!(line["latency_ms"], 0.068);
        assert!(line.get("client_app").is_none());
    }

    #[test]
    fn trace_ids_come_from_valid_traceparents_only() {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(
            trace_id(&format!("00-{trace}-00f067aa0ba902b7-01")),
            Some(trace)
        );
        assert_eq!(
            trace_id(&format!(" 00-{trace}-00f067aa0ba902b7-00 ")),
            Some(trace)
        );
        // A later version may add fields.
        assert_eq!(
            trace_id(&format!("01-{trace}-00f067aa0ba902b7-01-more")),
            Some(trace)
        );
        for bad in [
            "",
            "garbage",
            &format!("00-{trace}-00f067aa0ba902b7"),
            &format!("00-{trace}-00f067aa0ba902b7-01-extra"),
            &format!("ff-{trace}-00f067aa0ba902b7-01"),
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            &format!("00-{}-00f067aa0ba902b7-01", &trace[..31]),
            &format!("00-{trace}-00f067aa0ba902bz-01"),
            &format!("00-{}-00f067aa0ba902b7-01", trace.to_uppercase()),
            &format!("00-{trace}-0000000000000000-01"),
        ] {
            assert_eq!(trace_id(bad), None, "{bad}");
        }
    }
}
