//! Azure Key Vault's secret read, over HTTPS on 127.0.0.1, as the real service answers it:
//!
//! - `GET /secrets/{name}/[{version}]?api-version=…`; names are case-insensitive;
//! - without `Authorization`, `401` with the `WWW-Authenticate: Bearer authorization=…,
//!   resource=…` challenge; with a bearer, only the managed identity's token is accepted;
//! - `200` with `{value, id, attributes}`; `404 SecretNotFound`; `403 Forbidden` with
//!   `innererror.code = SecretDisabled` for a disabled secret;
//! - injectable faults (status codes, delay, dropped connections) and counters for tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::loopback_server::{self, Answer, Handler, Received, TestCertificate, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer every authenticated read with this status and Key Vault's error body for it.
    Status(u16),
    /// Wait this long before answering.
    Delay(Duration),
    /// Close the connection without an answer.
    Drop,
}

#[derive(Default)]
struct State {
    /// Lower-case name → versions (oldest first) of (value, enabled).
    secrets: HashMap<String, Vec<(String, bool)>>,
    fault: Option<Fault>,
    /// Authenticated reads per lower-case name, and those answered with a fault.
    reads: HashMap<String, usize>,
    faulted_reads: usize,
    unauthenticated: usize,
    api_versions: Vec<String>,
}

pub struct KeyVaultEmulator {
    pub url: String,
    pub certificate: TestCertificate,
    state: Arc<Mutex<State>>,
}

impl KeyVaultEmulator {
    /// Starts a vault that accepts `token` as bearer.
    pub async fn start(token: &str) -> KeyVaultEmulator {
        let certificate = TestCertificate::new();
        let state = Arc::new(Mutex::new(State::default()));
        let handler: Handler = {
            let (state, token) = (Arc::clone(&state), token.to_string());
            Arc::new(move |request: Received| {
                let (state, token) = (Arc::clone(&state), token.clone());
                Box::pin(async move { answer(&state, &token, request).await })
            })
        };
        let addr = loopback_server::serve(handler, Some(&certificate)).await;
        KeyVaultEmulator {
            url: format!("https://{addr}"),
            certificate,
            state,
        }
    }

    /// Writes a new current version of `name`.
    pub fn set_secret(&self, name: &str, value: &str) {
        let mut state = self.state.lock().unwrap();
        state
            .secrets
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push((value.to_string(), true));
    }

    /// Disables the current version of `name`.
    pub fn disable(&self, name: &str) {
        let mut state = self.state.lock().unwrap();
        if let Some(current) = state
            .secrets
            .get_mut(&name.to_ascii_lowercase())
            .and_then(|v| v.last_mut())
        {
            current.1 = false;
        }
    }

    pub fn set_fault(&self, fault: Option<Fault>) {
        self.state.lock().unwrap().fault = fault;
    }

    /// Authenticated reads of `name` so far.
    pub fn reads(&self, name: &str) -> usize {
        let state = self.state.lock().unwrap();
        state
            .reads
            .get(&name.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// Authenticated reads of any name.
    pub fn total_reads(&self) -> usize {
        self.state.lock().unwrap().reads.values().sum()
    }

    pub fn faulted_reads(&self) -> usize {
        self.state.lock().unwrap().faulted_reads
    }

    /// Requests that came without a bearer (the challenge round trips).
    pub fn unauthenticated(&self) -> usize {
        self.state.lock().unwrap().unauthenticated
    }

    /// App settings that point the handler at this vault, reached with the managed identity of
    /// `identity` and trusting the emulator's certificate.
    pub fn app_settings(
        &self,
        identity: &super::identity_emulator::IdentityEmulator,
    ) -> Vec<(&'static str, String)> {
        vec![
            ("KEY_VAULT_URL", self.url.clone()),
            ("KEY_VAULT_VERIFY_CHALLENGE_RESOURCE", "false".to_string()),
            (
                "SSL_CERT_FILE",
                self.certificate
                    .pem_file
                    .path()
                    .to_str()
                    .unwrap()
                    .to_string(),
            ),
            ("IDENTITY_ENDPOINT", identity.endpoint.clone()),
            ("IDENTITY_HEADER", identity.header.clone()),
        ]
    }

    pub fn api_versions(&self) -> Vec<String> {
        self.state.lock().unwrap().api_versions.clone()
    }
}

fn error(status: u16, code: &str, message: &str, inner: Option<&str>) -> Answer {
    let mut body = json!({"error": {"code": code, "message": message}});
    if let Some(inner) = inner {
        body["error"]["innererror"] = json!({"code": inner});
    }
    Ok(json(status, &body))
}

async fn answer(state: &Mutex<State>, token: &str, request: Received) -> Answer {
    let query = loopback_server::query(&request.uri);
    let Some(api_version) = query
        .iter()
        .find(|(n, _)| n == "api-version")
        .map(|(_, v)| v.clone())
    else {
        return error(
            400,
            "BadParameter",
            "The request URI contains an invalid parameter: api-version is required.",
            None,
        );
    };
    let segments: Vec<&str> = request
        .uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .collect();
    let (name, version) = match segments.as_slice() {
        ["secrets", name] | ["secrets", name, ""] => (name.to_ascii_lowercase(), None),
        ["secrets", name, version] => (name.to_ascii_lowercase(), Some(version.to_string())),
        _ => return error(404, "NotFound", "Not found", None),
    };
    let bearer = request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(token) {
        state.lock().unwrap().unauthenticated += 1;
        let mut response = json(
            401,
            &json!({"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}}),
        );
        response.headers_mut().insert(
            "www-authenticate",
            "Bearer authorization=\"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47\", resource=\"https://vault.azure.net\""
                .parse()
                .unwrap(),
        );
        return Ok(response);
    }

    let (fault, found) = {
        let mut state = state.lock().unwrap();
        state.api_versions.push(api_version);
        *state.reads.entry(name.clone()).or_default() += 1;
        if state.fault.is_some() {
            state.faulted_reads += 1;
        }
        let versions = state.secrets.get(&name).cloned().unwrap_or_default();
        let found = match &version {
            None => versions
                .len()
                .checked_sub(1)
                .map(|i| (i, versions[i].clone())),
            Some(v) => versions
                .iter()
                .enumerate()
                .find(|(i, _)| version_id(*i) == *v)
                .map(|(i, s)| (i, s.clone())),
        };
        (state.fault, found)
    };
    match fault {
        Some(Fault::Drop) => return Err(()),
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::Status(429)) => {
            let mut response = error(
                429,
                "Throttled",
                "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
                None,
            )?;
            response
                .headers_mut()
                .insert("retry-after", "1".parse().unwrap());
            return Ok(response);
        }
        Some(Fault::Status(403)) => {
            return error(
                403,
                "Forbidden",
                "Caller is not authorized to perform action on resource. Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'",
                Some("ForbiddenByRbac"),
            );
        }
        Some(Fault::Status(status)) => {
            return error(
                status,
                "InternalServerError",
                "An unexpected error occurred.",
                None,
            );
        }
        None => {}
    }
    match found {
        None => error(
            404,
            "SecretNotFound",
            &format!("A secret with (name/id) {name} was not found in this key vault."),
            None,
        ),
        Some((_, (_, false))) => error(
            403,
            "Forbidden",
            "Operation get is not allowed on a disabled secret.",
            Some("SecretDisabled"),
        ),
        Some((index, (value, true))) => Ok(json(
            200,
            &json!({
                "value": value,
                "contentType": "text/plain",
                "id": format!("https://127.0.0.1/secrets/{name}/{}", version_id(index)),
                "attributes": {"enabled": true, "created": 1_790_000_000 + index, "updated": 1_790_000_000 + index,
                               "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90},
                "tags": {}
            }),
        )),
    }
}

/// The 32-hex-digit id of version `index`.
fn version_id(index: usize) -> String {
    format!("{:032x}", index + 1)
}
