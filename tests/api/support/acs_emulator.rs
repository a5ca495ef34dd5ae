//! The Azure Communication Services Identity API (2026-09-23) on 127.0.0.1: create, issue a
//! token, revoke tokens, delete. Every request must be authorized the way the service checks it:
//! either HMAC — `x-ms-content-sha256` must hash the body, `x-ms-date` must be within 15 minutes,
//! and `Authorization` must be `HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&
//! Signature=…` over `VERB\npath?query\ndate;host;hash` with the (base64-decoded) access key —
//! or, when started with [`AcsEmulator::start_accepting`], a Microsoft Entra bearer token for
//! the Communication Services resource.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::loopback_server::{self, Answer, Handler, Received, json};

/// What the next requests get instead of a normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcsFault {
    Status(u16),
    Delay(Duration),
}

#[derive(Default)]
struct State {
    identities: HashSet<String>,
    /// Identities created so far (deleted ones included), to name new ones.
    created: usize,
    /// Identities whose tokens were revoked, in order.
    revoked: Vec<String>,
    /// Requests authorized with a bearer token.
    bearer: usize,
    /// What each token answer said: identity, token, expiresOn.
    answers: Vec<Value>,
    /// Faults for the next requests, in order; empty: normal answers.
    faults: VecDeque<AcsFault>,
    /// Requests whose signature checked out, and those refused for their signature.
    signed: usize,
    refused: usize,
    bodies: Vec<Value>,
}

pub struct AcsEmulator {
    pub endpoint: String,
    /// The base64 access key; the connection string is `endpoint=…;accesskey=…`.
    pub access_key: String,
    state: Arc<Mutex<State>>,
}

impl AcsEmulator {
    /// Accepts requests signed with the access key.
    pub async fn start() -> AcsEmulator {
        Self::start_accepting(None).await
    }

    /// Also accepts `Authorization: Bearer {bearer}` (the app identity's token for ACS).
    pub async fn start_accepting(bearer: Option<String>) -> AcsEmulator {
        let access_key = STANDARD.encode(format!(
            "acs-access-key-{}-0123456789abcdef",
            std::process::id()
        ));
        let state = Arc::new(Mutex::new(State::default()));
        let handler: Handler = {
            let (state, key) = (Arc::clone(&state), STANDARD.decode(&access_key).unwrap());
            Arc::new(move |request: Received| {
                let (state, key, bearer) = (Arc::clone(&state), key.clone(), bearer.clone());
                Box::pin(async move { answer(&state, &key, bearer.as_deref(), request).await })
            })
        };
        let addr = loopback_server::serve(handler, None).await;
        AcsEmulator {
            endpoint: format!("http://{addr}"),
            access_key,
            state,
        }
    }

    pub fn connection_string(&self) -> String {
        format!("endpoint={}/;accesskey={}", self.endpoint, self.access_key)
    }

    /// Queues faults for the next requests.
    pub fn fail_next(&self, faults: &[AcsFault]) {
        self.state.lock().unwrap().faults.extend(faults);
    }

    /// Requests that were authorized (signature or bearer).
    pub fn signed_requests(&self) -> usize {
        self.state.lock().unwrap().signed
    }

    /// Requests authorized with the bearer token.
    pub fn bearer_requests(&self) -> usize {
        self.state.lock().unwrap().bearer
    }

    /// Creates an identity at ACS directly, as another app of the same resource would: nobody
    /// bound it through this service.
    pub fn create_identity_elsewhere(&self) -> String {
        let mut state = self.state.lock().unwrap();
        state.created += 1;
        let id = format!(
            "8:acs:3c9f0a55-1111-4e2a-9d3b-0123456789ab_{:08}",
            state.created
        );
        state.identities.insert(id.clone());
        id
    }

    /// Whether `identity` exists (created and not deleted).
    pub fn exists(&self, identity: &str) -> bool {
        self.state.lock().unwrap().identities.contains(identity)
    }

    /// Identities whose tokens were revoked, in order.
    pub fn revoked(&self) -> Vec<String> {
        self.state.lock().unwrap().revoked.clone()
    }

    /// The last token answer (`{"communicationUserId","token","expiresOn"}`), as the service
    /// must pass it on.
    pub fn last_answer(&self) -> Value {
        self.state
            .lock()
            .unwrap()
            .answers
            .last()
            .cloned()
            .unwrap_or(Value::Null)
    }

    pub fn clear_revoked(&self) {
        self.state.lock().unwrap().revoked.clear();
    }

    pub fn refused_signatures(&self) -> usize {
        self.state.lock().unwrap().refused
    }

    pub fn last_body(&self) -> Value {
        self.state
            .lock()
            .unwrap()
            .bodies
            .last()
            .cloned()
            .unwrap_or(Value::Null)
    }
}

fn error(status: u16, code: &str, message: &str) -> Answer {
    Ok(json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    ))
}

fn signature_ok(key: &[u8], request: &Received) -> bool {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let hash = STANDARD.encode(Sha256::digest(&request.body));
    if header("x-ms-content-sha256") != hash {
        return false;
    }
    let date = header("x-ms-date");
    let Ok(sent) = httpdate::parse_http_date(date) else {
        return false;
    };
    let skew = SystemTime::now()
        .duration_since(sent)
        .unwrap_or_else(|e| e.duration());
    if skew > Duration::from_secs(15 * 60) {
        return false;
    }
    let path_and_query = request.uri.path_and_query().map_or("/", |p| p.as_str());
    let to_sign = format!(
        "{}\n{path_and_query}\n{date};{};{hash}",
        request.method,
        header("host")
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(to_sign.as_bytes());
    let expected = format!(
        "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={}",
        STANDARD.encode(mac.finalize().into_bytes())
    );
    header("authorization") == expected
}

async fn answer(
    state: &Mutex<State>,
    key: &[u8],
    bearer: Option<&str>,
    request: Received,
) -> Answer {
    let sent_bearer = request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let by_bearer = sent_bearer.is_some() && sent_bearer == bearer;
    if !by_bearer && !signature_ok(key, &request) {
        state.lock().unwrap().refused += 1;
        return error(401, "Denied", "Denied by the resource provider.");
    }
    let fault = {
        let mut state = state.lock().unwrap();
        state.signed += 1;
        state.bearer += usize::from(by_bearer);
        state
            .bodies
            .push(serde_json::from_slice(&request.body).unwrap_or(Value::Null));
        state.faults.pop_front()
    };
    match fault {
        Some(AcsFault::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(AcsFault::Status(429)) => {
            let mut response = json(
                429,
                &json!({"error": {"code": "TooManyRequests", "message": "Rate limit exceeded."}}),
            );
            response
                .headers_mut()
                .insert("retry-after", "1".parse().unwrap());
            return Ok(response);
        }
        Some(AcsFault::Status(400)) => {
            return error(
                400,
                "ValidationError",
                "The expiresInMinutes value is outside the allowed range.",
            );
        }
        Some(AcsFault::Status(status)) => return error(status, "Error", "Injected failure."),
        None => {}
    }
    let query = loopback_server::query(&request.uri);
    if query
        .iter()
        .find(|(n, _)| n == "api-version")
        .map(|(_, v)| v.as_str())
        != Some("2026-09-23")
    {
        return error(
            400,
            "InvalidApiVersion",
            "api-version 2026-09-23 is required",
        );
    }
    let expires_on = httpdate::fmt_http_date(SystemTime::now()); // only to make it vary
    let expires_on = format!("2026-11-25T{}.1234567+00:00", &expires_on[17..25]);
    let path = request.uri.path().to_string();
    if path == "/identities" && request.method == hyper::Method::POST {
        let mut state = state.lock().unwrap();
        state.created += 1;
        let id = format!(
            "8:acs:3c9f0a55-1111-4e2a-9d3b-0123456789ab_{:08}",
            state.created
        );
        state.identities.insert(id.clone());
        let token = format!("acs-user-token-{}-{}", state.created, std::process::id());
        state
            .answers
            .push(json!({"communicationUserId": id, "token": token, "expiresOn": expires_on}));
        return Ok(json(
            201,
            &json!({"identity": {"id": id}, "accessToken": {"token": token, "expiresOn": expires_on}}),
        ));
    }
    let Some(rest) = path.strip_prefix("/identities/") else {
        return error(404, "NotFound", "Not found.");
    };
    let (encoded, operation) = match rest.split_once("/:") {
        Some((encoded, operation)) => (encoded, Some(operation)),
        None => (rest, None),
    };
    let id = percent_encoding::percent_decode_str(encoded)
        .decode_utf8_lossy()
        .into_owned();
    let mut state = state.lock().unwrap();
    if !state.identities.contains(&id) {
        return error(404, "IdentityNotFound", "Identity not found.");
    }
    match (&request.method, operation) {
        (&hyper::Method::POST, Some("issueAccessToken")) => {
            let token = format!("acs-user-token-refreshed-{}", state.answers.len());
            state
                .answers
                .push(json!({"communicationUserId": id, "token": token, "expiresOn": expires_on}));
            Ok(json(200, &json!({"token": token, "expiresOn": expires_on})))
        }
        (&hyper::Method::POST, Some("revokeAccessTokens")) => {
            state.revoked.push(id);
            Ok(no_content())
        }
        (&hyper::Method::DELETE, None) => {
            state.identities.remove(&id);
            Ok(no_content())
        }
        _ => error(404, "NotFound", "Not found."),
    }
}

fn no_content() -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    hyper::Response::builder()
        .status(204)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap()
}
