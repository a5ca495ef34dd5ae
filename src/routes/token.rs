//! `TokenFunction`: one Fluid token per request.
//!
//! caller → request → policy → tenant key → document access → token → response, each step a
//! call into its own module. The caller is authenticated first, so an unauthenticated client
//! learns nothing about the request or the tenant; the policy decides before the key is looked
//! up, so its 403 never depends on whether the tenant exists. The key comes before the document
//! access, so a tenant nobody configured costs no member store read.

use serde::Serialize;
use warp::http::{HeaderMap, StatusCode, header};

use crate::audit;
use crate::domain::Scopes;
use crate::invocation::{Invocation, Reply};
use crate::problem::Problem;
use crate::request::TokenRequest;
use crate::request_log::RequestLog;
use crate::routes::AppState;
use crate::token::{self, FluidUser, Grant, SignedToken};

pub async fn token_function(
    state: &AppState,
    invocation: &Invocation,
    log: &mut RequestLog,
) -> Result<Reply, Problem> {
    super::require_get_or_post(&invocation.method)?;
    let caller = super::signed_in(state, invocation).await?;
    let request = TokenRequest::parse(
        &invocation.query,
        &invocation.body,
        state.policy.max_lifetime,
    )?;
    log.tenant_id = Some(request.tenant_id.as_str().to_owned());

    let client_app = caller.client_app().map(str::to_owned);
    let scopes_asked = request.scopes.is_some();
    let mut grant = state.policy.grant(caller, request)?;
    // The tenant must have a key before the document access reads the member store: a made-up
    // tenant id costs no store read.
    let key = state
        .keys
        .key(&grant.tenant_id)
        .await
        .map_err(super::problems::key_problem(&grant.tenant_id))?;
    if let Some(documents) = &state.documents {
        documents.authorize(&mut grant, scopes_asked).await?;
    }
    let token = token::issue(&grant, &key);
    let json = prefers_json(&invocation.headers).then(|| {
        serde_json::to_vec(&TokenJson::new(&grant, &token))
            .expect("a token response always serializes")
    });
    // The grant moves onto the log line, the JWT into the answer: nothing is copied.
    log.audit = Some(audit::fluid_token(grant, &token, client_app));
    Ok(match json {
        Some(json) => Reply::new(StatusCode::OK, "application/json", json),
        None => Reply::new(StatusCode::OK, "text/plain; charset=utf-8", token.jwt),
    })
}

/// The body for `Accept: application/json`: the token plus what a client would otherwise have
/// to decode it for.
#[derive(Serialize)]
struct TokenJson<'a> {
    token: &'a str,
    #[serde(rename = "expiresAt")]
    expires_at: u64,
    #[serde(rename = "tenantId")]
    tenant_id: &'a str,
    #[serde(rename = "documentId")]
    document_id: &'a str,
    user: &'a FluidUser,
    scopes: &'a Scopes,
}

impl<'a> TokenJson<'a> {
    fn new(grant: &'a Grant, token: &'a SignedToken) -> Self {
        TokenJson {
            token: &token.jwt,
            expires_at: token.expires_at,
            tenant_id: grant.tenant_id.as_str(),
            document_id: grant.document_id.as_str(),
            user: &grant.user,
            scopes: &grant.scopes,
        }
    }
}

/// True when the client prefers `application/json` to `text/plain`.
///
/// The raw JWT stays the default: Fluid's old `AzureFunctionTokenProvider` uses axios, whose
/// default `Accept: application/json, text/plain, */*` ranks both equally and which hands the
/// body to Fluid as the token. Only a client that ranks JSON strictly higher (for example
/// `Accept: application/json`) gets the JSON document.
fn prefers_json(headers: &HeaderMap) -> bool {
    let mut values = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok());
    // Almost every request has one Accept header (or none): only join when there are several.
    let accept = match (values.next(), values.next()) {
        (None, _) => return false,
        (Some(only), None) => std::borrow::Cow::Borrowed(only),
        (Some(first), Some(second)) => std::borrow::Cow::Owned(
            [first, second]
                .into_iter()
                .chain(values)
                .collect::<Vec<_>>()
                .join(","),
        ),
    };
    quality(&accept, "application/json") > quality(&accept, "text/plain")
}

/// The `q` the Accept header gives `media` (RFC 9110 §12.5.1): the most specific matching range
/// wins; no match is 0.
fn quality(accept: &str, media: &str) -> f32 {
    let (kind, _) = media.split_once('/').unwrap_or((media, ""));
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let pattern = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let specificity = if pattern == media {
            3
        } else if pattern.strip_suffix("/*") == Some(kind) {
            2
        } else if pattern == "*/*" {
            1
        } else {
            continue;
        };
        let q = parts
            .filter_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .or_else(|| p.trim().strip_prefix("Q="))
            })
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::http::HeaderValue;

    fn json_for(accept: Option<&str>) -> bool {
        let mut headers = HeaderMap::new();
        if let Some(accept) = accept {
            headers.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        }
        prefers_json(&headers)
    }

    #[test]
    fn content_negotiation() {
        assert!(!json_for(None));
        assert!(json_for(Some("application/json")));
        assert!(json_for(Some("Application/JSON; charset=utf-8")));
        assert!(
            !json_for(Some("application/json, text/plain, */*")),
            "axios default"
        );
        assert!(!json_for(Some("text/plain")));
        assert!(!json_for(Some("*/*")));
        assert!(json_for(Some("text/plain;q=0.5, application/json")));
        assert!(json_for(Some("application/*, text/plain;q=0.1")));
        assert!(!json_for(Some("application/json;q=0")));
    }

    #[test]
    fn several_accept_headers_are_one_list() {
        let mut headers = HeaderMap::new();
        headers.append(header::ACCEPT, HeaderValue::from_static("text/plain;q=0.2"));
        headers.append(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(prefers_json(&headers));
        assert!(!prefers_json(&HeaderMap::new()));
    }
}
