//! Test helpers: an app root laid out like a deployed Function App, the host emulator that runs
//! it, and token checks.

pub mod acs_emulator;
pub mod azurite;
pub mod host_emulator;
pub mod identity_emulator;
pub mod keyvault_emulator;
pub mod loopback_server;
pub mod openid_emulator;
pub mod ports;
pub mod public_front;
pub mod table_proxy;

use std::path::Path;

use base64::Engine as _;
use serde_json::Value;
use tempfile::TempDir;

pub use host_emulator::{HostEmulator, Protocol, PublicRequest, PublicResponse};

/// Both ways the host can invoke the handler; most tests run in each.
pub const PROTOCOLS: [Protocol; 2] = [Protocol::Forwarding, Protocol::Envelope];

pub const TENANT: &str = "t1";
pub const KEY: &str = "test-key-of-t1-9c4e7a";
pub const OTHER_TENANT: &str = "tenant-two";
pub const OTHER_KEY: &str = "second-test-key-5b2d";

/// The repository root: the shipped host.json and function folders are read from here.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The default app settings of a test app.
pub fn default_settings() -> Vec<(&'static str, String)> {
    vec![
        ("FUNCTIONS_WORKER_RUNTIME", "custom".to_string()),
        ("AUTH_MODE", "none".to_string()),
        (
            "TENANT_KEYS",
            serde_json::json!({ TENANT: KEY, OTHER_TENANT: OTHER_KEY }).to_string(),
        ),
    ]
}

/// A deployed app root: `host.json` (the shipped one, with `edit` applied), every function folder
/// of the repository, and the built handler as `handler`.
pub fn app_root(edit: impl FnOnce(&mut Value)) -> TempDir {
    let root = tempfile::tempdir().unwrap();
    let mut host: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("host.json")).unwrap())
            .unwrap();
    edit(&mut host);
    std::fs::write(root.path().join("host.json"), host.to_string()).unwrap();
    for entry in std::fs::read_dir(repo_root()).unwrap() {
        let dir = entry.unwrap().path();
        if dir.join("function.json").is_file() {
            let target = root.path().join(dir.file_name().unwrap());
            std::fs::create_dir(&target).unwrap();
            std::fs::copy(dir.join("function.json"), target.join("function.json")).unwrap();
        }
    }
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_handler"), root.path().join("handler")).unwrap();
    root
}

/// Sets host.json's protocol mode.
pub fn use_protocol(host: &mut Value, protocol: Protocol) {
    host["customHandler"]["enableForwardingHttpRequest"] =
        Value::Bool(protocol == Protocol::Forwarding);
}

/// A running app behind the host emulator.
pub struct TestApp {
    pub host: HostEmulator,
    _root: TempDir,
}

impl TestApp {
    pub async fn spawn(protocol: Protocol) -> TestApp {
        Self::spawn_with(protocol, &[]).await
    }

    /// Starts an app whose settings are the defaults overridden by `overrides`.
    pub async fn spawn_with(protocol: Protocol, overrides: &[(&str, &str)]) -> TestApp {
        let root = app_root(|host| use_protocol(host, protocol));
        let mut settings = default_settings();
        for (name, value) in overrides {
            settings.retain(|(n, _)| n != name);
            settings.push((name, value.to_string()));
        }
        let settings: Vec<(&str, &str)> = settings.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let host = HostEmulator::start(root.path(), &settings).await;
        assert_eq!(host.protocol(), protocol);
        TestApp { host, _root: root }
    }

    /// `GET /api/TokenFunction?{query}`.
    pub async fn get_token(&self, query: &str) -> PublicResponse {
        self.host.get(&format!("/api/TokenFunction?{query}")).await
    }

    pub async fn send(&self, request: PublicRequest) -> PublicResponse {
        self.host.send(request).await
    }
}

/// The decoded payload of a JWT, without verifying it.
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload segment");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("payload is base64url without padding");
    serde_json::from_slice(&bytes).expect("payload is JSON")
}

/// Verifies an HS256 JWT with `key` (UTF-8 bytes) and returns its claims.
pub fn verify(jwt: &str, key: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.required_spec_claims = ["exp".to_string()].into();
    validation.leeway = 0;
    jsonwebtoken::decode::<Value>(
        jwt,
        &jsonwebtoken::DecodingKey::from_secret(key.as_bytes()),
        &validation,
    )
    .map(|data| data.claims)
}

/// Asserts an RFC 9457 problem response with `status`, and returns its document.
pub fn assert_problem(response: &PublicResponse, status: u16) -> Value {
    assert_eq!(
        response.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    // README: every response, errors included, is `Cache-Control: no-store`.
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let doc = response.json();
    assert_eq!(doc["status"], status);
    for member in ["type", "title", "detail"] {
        assert!(doc[member].is_string(), "problem without {member}: {doc}");
    }
    doc
}

/// Asserts a problem response with `status` whose `type` ends in `/{slug}`; its document.
pub fn assert_problem_type(response: &PublicResponse, status: u16, slug: &str) -> Value {
    let doc = assert_problem(response, status);
    let type_uri = doc["type"].as_str().unwrap();
    assert!(
        type_uri.ends_with(&format!("/{slug}")),
        "expected problem {slug}, got {type_uri}: {doc}"
    );
    doc
}

/// Asserts a 200 with a JWT signed with `key`; its claims.
pub fn assert_token(response: &PublicResponse, key: &str) -> Value {
    assert_eq!(response.status, 200, "{}", response.text());
    verify(response.text().trim(), key).unwrap_or_else(|e| {
        panic!(
            "not a token signed with the expected key ({e}): {}",
            response.text()
        )
    })
}

/// An App Service Authentication principal header value with these claims (`typ` → `val`), shaped
/// as the platform sends it (`name_typ` and `role_typ` included).
pub fn easyauth_principal(claims: &[(&str, &str)]) -> String {
    let claims: Vec<Value> = claims
        .iter()
        .map(|(typ, val)| serde_json::json!({ "typ": typ, "val": val }))
        .collect();
    base64::engine::general_purpose::STANDARD.encode(
        serde_json::json!({
            "auth_typ": "aad",
            "claims": claims,
            "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
            "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
        })
        .to_string(),
    )
}

/// The built handler as a process of its own (not under the host emulator): `settings` as its
/// whole environment (plus PATH), a fresh working directory, stdout piped, killed when dropped.
pub fn handler_process(settings: &[(&str, String)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_handler"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(settings.iter().map(|(n, v)| (*n, v.as_str())))
        .current_dir(tempfile::tempdir().unwrap().keep())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true);
    command
}

/// A client for talking to the handler directly (no proxy, no host emulator in between).
pub fn direct_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// The port in the handler's `listening` log line (it was started on port 0); `None` for any
/// other line.
pub fn listening_port_in(line: &str) -> Option<u16> {
    let event: Value = serde_json::from_str(line).ok()?;
    if event["message"] != "listening" {
        return None;
    }
    event["address"].as_str()?.rsplit(':').next()?.parse().ok()
}

/// Reads the handler's stdout up to its `listening` line (it was started on port 0); the port.
/// The rest of the output stays in `stdout` for the caller to read, or not.
pub async fn listening_port(stdout: &mut tokio::io::BufReader<tokio::process::ChildStdout>) -> u16 {
    use tokio::io::AsyncBufReadExt;
    let mut line = String::new();
    loop {
        line.clear();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            stdout.read_line(&mut line),
        )
        .await
        .expect("the handler said where it listens")
        .unwrap();
        assert!(read > 0, "the handler exited before listening");
        if let Some(port) = listening_port_in(&line) {
            return port;
        }
    }
}

/// The resident memory of process `pid`, from /proc (KiB).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// What a paced sender saw: whether every write was accepted, whether the answer could be read
/// to its end, and the answer.
pub struct PacedAnswer {
    pub sent: std::io::Result<()>,
    pub read: std::io::Result<usize>,
    pub text: String,
}

impl PacedAnswer {
    /// The whole request went out and the whole answer came back (no reset on either side), and
    /// the answer is the refusal expected: `status`, with `problem` in its body.
    pub fn assert_refused(&self, status: u16, problem: &str, context: &str) {
        let PacedAnswer { sent, read, text } = self;
        assert!(
            sent.is_ok() && read.is_ok() && text.starts_with(&format!("HTTP/1.1 {status}")),
            "{context}: sent {sent:?}, read {read:?}: {text}"
        );
        assert!(text.contains(problem), "{context}: {text}");
    }
}

/// Writes a raw HTTP/1.1 `request` in `piece`-byte pieces with `pause` between them, as a host
/// relaying a client's upload does, stopping at the first failed write; then reads the answer to
/// its end (for at most 10 s).
pub async fn send_paced(
    address: impl tokio::net::ToSocketAddrs,
    request: &[u8],
    piece: usize,
    pause: std::time::Duration,
) -> PacedAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut sent = Ok(());
    for part in request.chunks(piece) {
        sent = stream.write_all(part).await;
        if sent.is_err() {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("an answer, not a hang");
    PacedAnswer {
        sent,
        read,
        text: String::from_utf8_lossy(&answer).into_owned(),
    }
}
