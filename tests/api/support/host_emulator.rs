//! A faithful stand-in for the Azure Functions host, for tests.
//!
//! The real host (`func start`, or the Functions runtime in Azure) cannot be installed here, so
//! this module does what it does with a custom handler, as documented in
//! `shared/reference/functions-custom-handler.md` and the host's source:
//!
//! - reads `host.json` in the app root: `customHandler.description` (`defaultExecutablePath`,
//!   `workingDirectory`, `arguments`), `enableForwardingHttpRequest` /
//!   `enableProxyingHttpRequest`, and `extensions.http.routePrefix`;
//! - finds the functions (folders holding a `function.json` with an `httpTrigger`);
//! - starts the executable with the app settings as its whole environment plus
//!   `FUNCTIONS_CUSTOMHANDLER_PORT` (a free port it picked), `FUNCTIONS_HTTPWORKER_PORT`,
//!   `FUNCTIONS_CUSTOMHANDLER_WORKER_ID` and `FUNCTIONS_APP_ROOT_PATH`, in the working directory;
//! - polls `GET http://127.0.0.1:{port}/` every 25 ms until any HTTP response (30 s limit);
//! - routes a public request for `/{routePrefix}/{FunctionName}` (case-insensitive) either by
//!   forwarding it to the same path (query values of repeated names joined with `,`, all headers
//!   plus `X-Azure-Functions-InvocationId`, the body only when there is one) or by wrapping it in
//!   the JSON envelope (`POST /{FunctionName}`) and unwrapping `Outputs.res`.
//!
//! What Azure puts in front of the host is off unless a test sets a [`Platform`]: function keys
//! (`authLevel: function` needs `code` or `x-functions-key`, else 401) and App Service
//! Authentication allowing anonymous callers (it strips client-sent `X-MS-CLIENT-PRINCIPAL*`
//! headers; it cannot sign anyone in here, so nothing is added).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A request as a client sends it to the Function App's public URL.
#[derive(Debug, Clone)]
pub struct PublicRequest {
    pub method: reqwest::Method,
    /// Path and query, e.g. `/api/TokenFunction?tenantId=t1`.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl PublicRequest {
    pub fn new(method: reqwest::Method, target: impl Into<String>) -> Self {
        PublicRequest {
            method,
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn get(target: impl Into<String>) -> Self {
        Self::new(reqwest::Method::GET, target)
    }

    pub fn post(target: impl Into<String>) -> Self {
        Self::new(reqwest::Method::POST, target)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn json(self, value: &Value) -> Self {
        self.header("Content-Type", "application/json")
            .body(value.to_string())
    }
}

/// What the client gets back from the host.
#[derive(Debug, Clone)]
pub struct PublicResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl PublicResponse {
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("response body is UTF-8")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("header is text"))
    }
}

/// How the host hands HTTP requests to the handler, from host.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Forwarding,
    Envelope,
}

#[derive(Debug, Clone)]
struct FunctionInfo {
    name: String,
    /// `methods` of the trigger, lower-case; `None` = all methods.
    methods: Option<Vec<String>>,
    /// `authLevel` of the trigger (`function` when absent, as the host defaults it).
    auth_level: String,
}

/// What Azure puts in front of the Functions host, for the tests that need it.
#[derive(Debug, Clone, Default)]
pub struct Platform {
    /// The function key: requests to `authLevel: function` functions without it get 401.
    pub function_key: Option<String>,
    /// App Service Authentication on, allowing anonymous requests: the platform strips the
    /// principal headers a client sends.
    pub easy_auth: bool,
}

impl Platform {
    /// Whether the platform lets `request` through to `function`; strips what it strips.
    fn admit(
        &self,
        function: &FunctionInfo,
        request: &mut PublicRequest,
        query: &[(String, String)],
    ) -> bool {
        if self.easy_auth {
            request.headers.retain(|(name, _)| {
                !name
                    .to_ascii_lowercase()
                    .starts_with("x-ms-client-principal")
            });
        }
        match &self.function_key {
            Some(key) if function.auth_level.eq_ignore_ascii_case("function") => {
                query
                    .iter()
                    .any(|(name, value)| name == "code" && value == key)
                    || request.headers.iter().any(|(name, value)| {
                        name.eq_ignore_ascii_case("x-functions-key") && value == key
                    })
            }
            _ => true,
        }
    }
}

pub struct HostEmulator {
    child: Option<Child>,
    port: u16,
    protocol: Protocol,
    route_prefix: String,
    functions: Vec<FunctionInfo>,
    /// What stands in front of the host; nothing unless a test sets it.
    pub platform: Platform,
    client: reqwest::Client,
    output: Arc<Mutex<String>>,
    /// The tasks reading stdout and stderr; they end at end of file.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl HostEmulator {
    /// Starts the handler of the app in `app_root` with `settings` as its app settings.
    pub async fn start(app_root: &Path, settings: &[(&str, &str)]) -> HostEmulator {
        let host: Value = serde_json::from_str(
            &std::fs::read_to_string(app_root.join("host.json")).expect("app root has host.json"),
        )
        .expect("host.json is JSON");
        let handler = host
            .pointer("/customHandler/description")
            .expect("host.json has customHandler.description");
        let executable = handler["defaultExecutablePath"]
            .as_str()
            .expect("defaultExecutablePath");
        // Relative paths resolve against the app root only if that file exists (else: PATH).
        let executable = match app_root.join(executable) {
            path if path.exists() => path,
            _ => PathBuf::from(executable),
        };
        let working_directory = match handler["workingDirectory"].as_str() {
            Some(dir) if !dir.is_empty() => app_root.join(dir),
            _ => app_root.to_path_buf(),
        };
        let flag = |name: &str| host["customHandler"][name].as_bool() == Some(true);
        let protocol = if flag("enableForwardingHttpRequest") || flag("enableProxyingHttpRequest") {
            Protocol::Forwarding
        } else {
            Protocol::Envelope
        };
        let route_prefix = host
            .pointer("/extensions/http/routePrefix")
            .and_then(Value::as_str)
            .unwrap_or("api")
            .trim_matches('/')
            .to_string();
        let functions = discover_functions(app_root);

        // Port 0: the handler binds a free port and names it in its `listening` line, so no
        // other process can take the port between choosing and binding it (the real host picks
        // one and passes it; here that race made parallel tests flaky).
        let port = 0u16;
        let mut command = Command::new(&executable);
        command
            .current_dir(&working_directory)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(settings.iter().copied())
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("FUNCTIONS_HTTPWORKER_PORT", port.to_string())
            .env("FUNCTIONS_CUSTOMHANDLER_WORKER_ID", uuid_like())
            .env("FUNCTIONS_HTTPWORKER_ID", uuid_like())
            .env("FUNCTIONS_APP_ROOT_PATH", app_root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(arguments) = handler["arguments"].as_array() {
            let port = port.to_string();
            command.args(
                arguments
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|a| a.replace("%FUNCTIONS_CUSTOMHANDLER_PORT%", &port)),
            );
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", executable.display()));
        let output = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            capture(child.stdout.take().unwrap(), &output),
            capture(child.stderr.take().unwrap(), &output),
        ];

        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let port = wait_for_listening(&mut child, &output).await;
        let mut emulator = HostEmulator {
            child: Some(child),
            port,
            protocol,
            route_prefix,
            functions,
            platform: Platform::default(),
            client,
            output,
            readers,
        };
        emulator.wait_ready().await;
        emulator
    }

    /// The host's readiness check: any HTTP answer on `GET /`; connection refused means "not yet".
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let probe = self
                .client
                .get(format!("http://127.0.0.1:{}/", self.port))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            if probe.is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "handler exited during startup ({status}):\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "Initializing HttpWorker timed out.\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Everything the handler wrote to stdout and stderr so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Sends a client request through the host.
    pub async fn send(&self, mut request: PublicRequest) -> PublicResponse {
        let (path, query) = match request.target.split_once('?') {
            Some((path, query)) => (path.to_string(), query.to_string()),
            None => (request.target.clone(), String::new()),
        };
        // The host answers 404 itself for an unknown route or a method the trigger does not list.
        let method = request.method.as_str().to_ascii_lowercase();
        let Some(function) = self
            .function_for(&path)
            .filter(|f| f.methods.as_ref().is_none_or(|m| m.contains(&method)))
        else {
            return PublicResponse {
                status: 404,
                headers: HeaderMap::new(),
                body: Vec::new(),
            };
        };
        let query = collapse_query(&query);
        if !self.platform.admit(function, &mut request, &query) {
            return PublicResponse {
                status: 401,
                headers: HeaderMap::new(),
                body: Vec::new(),
            };
        }
        let invocation_id = uuid_like();
        match self.protocol {
            Protocol::Forwarding => self.forward(&path, &query, request, &invocation_id).await,
            Protocol::Envelope => {
                self.envelope(&function.name, &path, &query, request, &invocation_id)
                    .await
            }
        }
    }

    pub async fn get(&self, target: &str) -> PublicResponse {
        self.send(PublicRequest::get(target)).await
    }

    fn function_for(&self, path: &str) -> Option<&FunctionInfo> {
        let path = path.trim_end_matches('/');
        let prefix = if self.route_prefix.is_empty() {
            String::new()
        } else {
            format!("/{}", self.route_prefix)
        };
        let name = path
            .get(..prefix.len())
            .filter(|p| p.eq_ignore_ascii_case(&prefix))
            .and_then(|_| path[prefix.len()..].strip_prefix('/'))?;
        self.functions
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    async fn forward(
        &self,
        path: &str,
        query: &[(String, String)],
        request: PublicRequest,
        invocation_id: &str,
    ) -> PublicResponse {
        let mut url = format!("http://127.0.0.1:{}{}", self.port, path);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&encode_query(query));
        }
        let mut builder = self.client.request(request.method.clone(), url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        builder = builder
            .header("X-Azure-Functions-HostVersion", "4.1040.0")
            .header("X-Azure-Functions-InvocationId", invocation_id);
        if !request.body.is_empty() {
            builder = builder.body(request.body);
        }
        let response = builder
            .send()
            .await
            .expect("handler answers forwarded request");
        PublicResponse {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.bytes().await.unwrap().to_vec(),
        }
    }

    async fn envelope(
        &self,
        function: &str,
        path: &str,
        query: &[(String, String)],
        request: PublicRequest,
        invocation_id: &str,
    ) -> PublicResponse {
        let invocation = envelope_for(path, query, &request);
        let response = self
            .client
            .post(format!("http://127.0.0.1:{}/{}", self.port, function))
            .header("Content-Type", "application/json; charset=utf-8")
            .header("X-Azure-Functions-HostVersion", "4.1040.0")
            .header("X-Azure-Functions-InvocationId", invocation_id)
            .header("User-Agent", "Azure-Functions-Host/4.1040.0")
            .body(invocation.to_string())
            .send()
            .await
            .expect("handler answers envelope");
        if !response.status().is_success() {
            // EnsureSuccessStatusCode() throws: the invocation fails and the client gets a 500.
            return PublicResponse {
                status: 500,
                headers: HeaderMap::new(),
                body: Vec::new(),
            };
        }
        let result: Value = response.json().await.expect("invocation result is JSON");
        let res = &result["Outputs"]["res"];
        let status = match &res["statusCode"] {
            Value::Number(n) => n.as_u64().unwrap() as u16,
            Value::String(s) => s.parse().unwrap(),
            Value::Null => 200,
            other => panic!("statusCode {other}"),
        };
        let mut headers = HeaderMap::new();
        if let Some(map) = res["headers"].as_object() {
            for (name, value) in map {
                let value = value
                    .as_str()
                    .expect("the host expects string header values");
                headers.insert(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
        }
        headers
            .entry("content-type")
            .or_insert(HeaderValue::from_static("text/plain"));
        let body = match &res["body"] {
            Value::String(text) => text.clone().into_bytes(),
            Value::Null => Vec::new(),
            other => serde_json::to_string_pretty(other).unwrap().into_bytes(),
        };
        PublicResponse {
            status,
            headers,
            body,
        }
    }

    /// Sends SIGTERM, as the host does when it stops or recycles a worker.
    pub fn send_sigterm(&self) {
        let pid = self.child.as_ref().and_then(Child::id).expect("running");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits (at most 20 s) for the handler to exit.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .expect("handler exits")
            .unwrap()
    }

    /// Stops the handler (SIGTERM), waits for it to exit and for its last line to be read, and
    /// returns everything it wrote: a check of the output (no secret in it) then sees every
    /// line, not just those written so far.
    pub async fn finish(&mut self) -> String {
        self.send_sigterm();
        self.wait_exit().await;
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
        }
        self.output()
    }

    /// Waits until the output holds `needle` (logs are written asynchronously).
    pub async fn wait_for_output(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let output = self.output();
            if output.contains(needle) {
                return output;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in output:\n{output}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The JSON the host POSTs to `/{FunctionName}` for an HTTP trigger named `req`.
pub fn envelope_for(path: &str, query: &[(String, String)], request: &PublicRequest) -> Value {
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &request.headers {
        headers.entry(name.clone()).or_default().push(value.clone());
    }
    if !request.body.is_empty() {
        headers
            .entry("Content-Length".into())
            .or_default()
            .push(request.body.len().to_string());
    }
    let content_type = request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_default();
    let mut url = format!("http://localhost:7071{path}");
    if !query.is_empty() {
        url.push('?');
        url.push_str(&encode_query(query));
    }
    let query_object: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut req = json!({
        "Url": url,
        "Method": request.method.as_str(),
        "Query": query_object,
        "Headers": headers,
        "Params": {},
        "Identities": [],
    });
    if !request.body.is_empty() {
        // byte[] (base64) for binary content types, else the text as a JSON string.
        req["Body"] = if content_type.starts_with("application/octet-stream")
            || content_type.starts_with("multipart/")
        {
            Value::String(base64::engine::general_purpose::STANDARD.encode(&request.body))
        } else {
            Value::String(String::from_utf8_lossy(&request.body).into_owned())
        };
    }
    json!({
        "Data": { "req": req },
        "Metadata": {
            "Query": query_object,
            "Headers": headers,
            "sys": { "MethodName": "TokenFunction", "UtcNow": "2026-11-25T00:00:00Z", "RandGuid": uuid_like() }
        }
    })
}

/// ASP.NET's query collection: values of a repeated name joined with `,`.
fn collapse_query(query: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            None => out.push((name.into_owned(), value.into_owned())),
        }
    }
    out
}

/// `QueryHelpers.AddQueryString`: names and values escaped with `Uri.EscapeDataString` (%20).
fn encode_query(query: &[(String, String)]) -> String {
    let escape = |s: &str| -> String {
        form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    query
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn discover_functions(app_root: &Path) -> Vec<FunctionInfo> {
    let mut functions = Vec::new();
    for entry in std::fs::read_dir(app_root).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(dir.join("function.json")) else {
            continue;
        };
        let json: Value = serde_json::from_str(&text).expect("function.json is JSON");
        let trigger = json["bindings"].as_array().into_iter().flatten().find(|b| {
            b["type"]
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case("httpTrigger"))
        });
        if let Some(trigger) = trigger {
            functions.push(FunctionInfo {
                name: dir.file_name().unwrap().to_string_lossy().into_owned(),
                methods: trigger["methods"].as_array().map(|m| {
                    m.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_ascii_lowercase)
                        .collect()
                }),
                auth_level: trigger["authLevel"]
                    .as_str()
                    .unwrap_or("function")
                    .to_string(),
            });
        }
    }
    functions
}

/// Appends every line of `pipe` to `sink`; bytes that are not UTF-8 are shown replaced, and
/// reading goes on (a check for secrets must see every line after one too).
fn capture<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    pipe: R,
    sink: &Arc<Mutex<String>>,
) -> tokio::task::JoinHandle<()> {
    let sink = Arc::clone(sink);
    tokio::spawn(async move {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    let mut out = sink.lock().unwrap();
                    out.push_str(text.trim_end_matches('\n'));
                    out.push('\n');
                }
            }
        }
    })
}

/// The port in the handler's `listening` line (it was started on port 0).
async fn wait_for_listening(child: &mut Child, output: &Arc<Mutex<String>>) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = output
            .lock()
            .unwrap()
            .lines()
            .find_map(super::listening_port_in);
        if let Some(port) = found {
            return port;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "handler exited during startup ({status}):\n{}",
                output.lock().unwrap()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the handler never said where it listens:\n{}",
            output.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "00000000-0000-4000-8000-{:012x}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
