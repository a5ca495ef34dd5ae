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
use crate::domain::Scopes;
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

    fn line(&self, exchange: &Exchange<'_>) -> Line {
        let audit = self.audit.as_ref();
        let (kind, grant) = match audit {
            Some(Audit::FluidToken { grant, .. }) => (Some("fluid-token"), Some(grant)),
            Some(Audit::AcsToken { .. }) => (Some("acs-token"), None),
            Some(Audit::AcsIdentity { .. }) => (Some("acs-identity"), None),
            Some(Audit::Document { .. }) => (Some("document"), None),
            None => (None, None),
        };
        let field = |f: fn(&Audit) -> Option<&str>| audit.and_then(f);
        let tenant_id = match audit {
            Some(Audit::Document { document, .. }) => Some(document.tenant_id.as_str()),
            _ => self.tenant_id.as_deref(),
        };
        let mut line = Line::info("request");
        line.str("method", self.method.as_ref().map(Method::as_str))
            .str("path", self.path.as_deref())
            .str("invocation_id", exchange.invocation_id)
            .str("trace_id", self.trace_id.as_deref())
            .str("tenant_id", tenant_id)
            .u64("status", Some(u64::from(exchange.status)))
            .milliseconds("latency_ms", exchange.latency)
            .str("problem", self.problem)
            .str("audit", kind)
            .display(
                "jti",
                match audit {
                    Some(Audit::FluidToken { jti, .. }) => Some(jti),
                    _ => None,
                },
            )
            .str(
                "document_id",
                grant.map(|g| g.document_id.as_str()).or(field(|a| match a {
                    Audit::Document { document, .. } => Some(document.document_id.as_str()),
                    _ => None,
                })),
            )
            .str(
                "user_id",
                grant.map(|g| g.user.id.as_str()).or(field(|a| match a {
                    Audit::Document { user_id, .. } => Some(user_id),
                    _ => None,
                })),
            )
            .display(
                "scopes",
                match audit {
                    Some(Audit::FluidToken { grant, .. }) => Some(ScopesText::Fluid(&grant.scopes)),
                    Some(Audit::AcsToken { scopes, .. }) => Some(ScopesText::Acs(scopes)),
                    _ => None,
                },
            )
            .u64(
                "expires_at",
                match audit {
                    Some(Audit::FluidToken { expires_at, .. }) => Some(*expires_at),
                    _ => None,
                },
            )
            .str(
                "client_app",
                field(|a| match a {
                    Audit::FluidToken { client_app, .. } => client_app.as_deref(),
                    _ => None,
                }),
            )
            .str(
                "communication_user_id",
                field(|a| match a {
                    Audit::AcsToken {
                        communication_user_id,
                        ..
                    }
                    | Audit::AcsIdentity {
                        communication_user_id,
                        ..
                    } => Some(communication_user_id),
                    _ => None,
                }),
            )
            .str(
                "expires_on",
                field(|a| match a {
                    Audit::AcsToken { expires_on, .. } => Some(expires_on),
                    _ => None,
                }),
            )
            .str(
                "caller",
                field(|a| match a {
                    Audit::AcsToken { caller, .. } => caller.as_deref(),
                    Audit::AcsIdentity { caller, .. } => Some(caller),
                    _ => None,
                }),
            )
            .str(
                "action",
                field(|a| match a {
                    Audit::AcsIdentity { action, .. } | Audit::Document { action, .. } => {
                        Some(action)
                    }
                    _ => None,
                }),
            )
            .str(
                "role",
                field(|a| match a {
                    Audit::Document { role, .. } => Some(role),
                    _ => None,
                }),
            )
            .str(
                "by",
                field(|a| match a {
                    Audit::Document { by, .. } => Some(by),
                    _ => None,
                }),
            );
        line
    }
}

/// The `scopes` field: a Fluid token's (written straight from the set) or an ACS token's.
enum ScopesText<'a> {
    Fluid(&'a Scopes),
    Acs(&'a str),
}

impl std::fmt::Display for ScopesText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScopesText::Fluid(scopes) => scopes.fmt(f),
            ScopesText::Acs(scopes) => f.write_str(scopes),
        }
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
