//! The custom-handler protocol: how the host starts, probes, invokes and stops the handler, and
//! the standalone start that stands in for `func start`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::host_emulator::envelope_for;
use crate::support::*;

/// The parts of a response that must not depend on the protocol mode. Tokens differ in `iat`,
/// `exp` and `jti` from call to call, so a token body is compared by its other claims.
fn comparable(response: &PublicResponse) -> Value {
    let mut body = match response.header("content-type") {
        Some(t) if t.starts_with("text/plain") && response.status == 200 => {
            claims(&response.text())
        }
        Some(t) if t.contains("json") => response.json(),
        _ => Value::String(response.text()),
    };
    let strip = |value: &mut Value| {
        if let Some(map) = value.as_object_mut() {
            for volatile in ["iat", "exp", "jti", "expiresAt"] {
                map.remove(volatile);
            }
        }
    };
    if let Some(mut token) = body.get("token").and_then(Value::as_str).map(claims) {
        strip(&mut token);
        body["token"] = token;
    }
    strip(&mut body);
    // Every header the function set; only what the transport adds differs between modes.
    let headers: std::collections::BTreeMap<String, Vec<String>> = response
        .headers
        .keys()
        .filter(|name| {
            !["date", "content-length", "transfer-encoding", "connection"].contains(&name.as_str())
        })
        .map(|name| {
            let values = response
                .headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect();
            (name.as_str().to_string(), values)
        })
        .collect();
    json!({
        "status": response.status,
        "headers": headers,
        "body": body,
    })
}

#[tokio::test]
async fn both_modes_answer_every_request_identically() {
    let forwarding = TestApp::spawn(Protocol::Forwarding).await;
    let envelope = TestApp::spawn(Protocol::Envelope).await;
    let requests = [
        PublicRequest::get("/api/TokenFunction?tenantId=t1&userId=u1&userName=Ann&documentId=d"),
        PublicRequest::get("/api/TokenFunction?tenantId=t1&userId=u1")
            .header("Accept", "application/json"),
        PublicRequest::get(
            "/api/TokenFunction?tenantId=t1&userId=u1&scopes=doc:read&scopes=doc:write",
        ),
        PublicRequest::post("/api/TokenFunction")
            .json(&json!({"tenantId": "t1", "userId": "u", "additionalDetails": {"b": 2, "a": 1}})),
        PublicRequest::post("/api/tokenfunction?tenantId=t1&userId=u")
            .header("Content-Type", "application/octet-stream")
            .body("{\"documentId\":\"bin\"}"),
        PublicRequest::get("/api/TokenFunction"),
        PublicRequest::get("/api/TokenFunction?tenantId=t1&lifetime=0"),
        PublicRequest::get("/api/TokenFunction?tenantId=unknown"),
        PublicRequest::new(reqwest::Method::PUT, "/api/TokenFunction?tenantId=t1"),
        PublicRequest::post("/api/TokenFunction").body("[]"),
        PublicRequest::post("/api/TokenFunction").body(vec![b'x'; 70_000]),
    ];
    for request in requests {
        let a = forwarding.send(request.clone()).await;
        let b = envelope.send(request.clone()).await;
        assert_eq!(
            comparable(&a),
            comparable(&b),
            "{} {}",
            request.method,
            request.target
        );
    }
}

#[tokio::test]
async fn readiness_probe_and_unknown_paths() {
    let app = TestApp::spawn(Protocol::Forwarding).await;
    let client = direct_client();
    let base = format!("http://127.0.0.1:{}", app.host.port());
    let ready = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    for path in [
        "/api/Other",
        "/api",
        "/TokenFunction",
        "/api/TokenFunction/extra",
    ] {
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
}

#[tokio::test]
async fn envelope_wire_format() {
    let app = TestApp::spawn(Protocol::Envelope).await;
    let client = direct_client();
    let call = |request: PublicRequest| {
        let client = client.clone();
        let url = format!("http://127.0.0.1:{}/TokenFunction", app.host.port());
        async move {
            let (path, query) = request
                .target
                .split_once('?')
                .unwrap_or((&request.target, ""));
            let query: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let envelope = envelope_for(path, &query, &request);
            let response = client
                .post(url)
                .header("Content-Type", "application/json; charset=utf-8")
                .header(
                    "X-Azure-Functions-InvocationId",
                    "11111111-2222-4333-8444-555555555555",
                )
                .body(envelope.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                200,
                "the handler always answers the host with 200"
            );
            assert!(
                response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("application/json")
            );
            response.json::<Value>().await.unwrap()
        }
    };

    let ok = call(PublicRequest::get(
        "/api/TokenFunction?tenantId=t1&userId=u1",
    ))
    .await;
    assert_eq!(ok["ReturnValue"], Value::Null);
    assert!(ok["Logs"].is_array());
    let res = &ok["Outputs"]["res"];
    assert_eq!(res["statusCode"], 200);
    assert_eq!(res["headers"]["Content-Type"], "text/plain; charset=utf-8");
    assert_eq!(res["headers"]["Cache-Control"], "no-store");
    assert!(
        res["headers"]
            .as_object()
            .unwrap()
            .values()
            .all(Value::is_string)
    );
    let jwt = res["body"].as_str().expect("body is a string");
    assert_eq!(verify(jwt, KEY).unwrap()["user"]["id"], "u1");

    let bad = call(PublicRequest::get(
        "/api/TokenFunction?tenantId=t1&scopes=nope",
    ))
    .await;
    let res = &bad["Outputs"]["res"];
    assert_eq!(res["statusCode"], 400);
    assert_eq!(res["headers"]["Content-Type"], "application/problem+json");
    let problem: Value = serde_json::from_str(res["body"].as_str().unwrap()).unwrap();
    assert_eq!(problem["parameter"], "scopes");

    let output = app
        .host
        .wait_for_output("11111111-2222-4333-8444-555555555555")
        .await;
    assert!(!output.contains(KEY));
}

#[tokio::test]
async fn malformed_envelopes_are_rejected_to_the_host() {
    let app = TestApp::spawn(Protocol::Envelope).await;
    let client = direct_client();
    for body in [
        "",
        "not json",
        "{}",
        r#"{"Data":{"req":{"Method":"G E T"}}}"#,
    ] {
        let response = client
            .post(format!(
                "http://127.0.0.1:{}/TokenFunction",
                app.host.port()
            ))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let doc: Value = response.json().await.unwrap();
        assert!(
            doc["type"]
                .as_str()
                .unwrap()
                .ends_with("malformed-invocation")
        );
    }
}

#[tokio::test]
async fn route_prefix_comes_from_host_json() {
    for (prefix, good, bad) in [
        ("fluid", "/fluid/TokenFunction", "/api/TokenFunction"),
        ("", "/TokenFunction", "/api/TokenFunction"),
    ] {
        let root = app_root(|host| {
            use_protocol(host, Protocol::Forwarding);
            host["extensions"]["http"]["routePrefix"] = Value::String(prefix.to_string());
        });
        let settings = default_settings();
        let settings: Vec<(&str, &str)> = settings.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let host = HostEmulator::start(root.path(), &settings).await;
        let response = host.get(&format!("{good}?tenantId=t1")).await;
        assert_eq!(
            response.status,
            200,
            "prefix {prefix:?}: {}",
            response.text()
        );
        verify(&response.text(), KEY).unwrap();
        // Straight to the handler: the old path is not served.
        let direct = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("http://127.0.0.1:{}{bad}?tenantId=t1", host.port()))
            .send()
            .await
            .unwrap();
        assert_eq!(direct.status(), 404, "prefix {prefix:?}");
    }
}

#[tokio::test]
async fn one_json_log_line_per_request_without_secrets() {
    let app = TestApp::spawn(Protocol::Forwarding).await;
    let jwt = app.get_token("tenantId=t1&userId=u1").await.text();
    assert_eq!(app.get_token("tenantId=nobody").await.status, 404);
    let output = app.host.wait_for_output("\"status\":404").await;
    let lines: Vec<Value> = output
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON line: {l}")))
        .collect();
    let requests: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    assert_eq!(requests.len(), 2, "{output}");
    let first = requests[0];
    assert_eq!(first["status"], 200);
    assert!(first["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(first["method"], "GET");
    assert_eq!(first["path"], "/api/TokenFunction");
    // What is the same for every request of a deployment is in the startup line instead.
    assert!(first.get("mode").is_none() && first.get("function").is_none());
    let listening = lines.iter().find(|l| l["message"] == "listening").unwrap();
    assert_eq!(listening["forwarding"], true);
    assert_eq!(listening["auth_mode"], "none");
    assert!(
        first.get("level").is_none() && first.get("target").is_none(),
        "INFO lines"
    );
    // A typical token's line (the benchmark's request: a tenant, a document, a named user, every
    // scope, the host's invocation id) is at most 400 bytes.
    let typical = app
        .get_token("tenantId=t1&documentId=doc-1&userId=u1&userName=Ann")
        .await;
    let jti = claims(&typical.text())["jti"].as_str().unwrap().to_string();
    let output = app.host.wait_for_output(&jti).await;
    let line = output.lines().find(|l| l.contains(&jti)).unwrap();
    assert_eq!(output.matches(&jti).count(), 1, "one line: {output}");
    assert!(line.len() <= 400, "{} bytes: {line}", line.len());
    assert_eq!(first["tenant_id"], "t1");
    assert!(first["invocation_id"].as_str().unwrap().len() == 36);
    assert_eq!(requests[1]["tenant_id"], "nobody");
    assert_eq!(
        requests[1]["problem"], "unknown-tenant",
        "a refusal names its problem type"
    );
    assert!(first.get("problem").is_none());
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "WARN"
                && l["message"].as_str().unwrap().contains("AUTH_MODE=none"))
    );
    assert!(!output.contains(KEY) && !output.contains(OTHER_KEY));
    assert!(
        !output.contains(jwt.split('.').nth(2).unwrap()),
        "no token in the logs"
    );
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_then_exits_zero() {
    let mut app = TestApp::spawn(Protocol::Forwarding).await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.host.port()))
        .await
        .unwrap();
    let body = br#"{"tenantId":"t1","userId":"in-flight"}"#;
    let head = format!(
        "POST /api/TokenFunction HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // "100 Continue" arrives once the handler is reading this request's body: it is in flight.
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).await.unwrap();
    assert!(String::from_utf8_lossy(&interim).starts_with("HTTP/1.1 100 Continue"));

    app.host.send_sigterm();
    app.host.wait_for_output("shutdown signal received").await;
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, jwt) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert_eq!(verify(jwt, KEY).unwrap()["user"]["id"], "in-flight");

    let status = app.host.wait_exit().await;
    assert_eq!(status.code(), Some(0), "{}", app.host.output());
    // Logs are written by a background thread: exiting must flush them, the in-flight request's
    // line included. (The last lines may still be in the pipe when the exit is seen.)
    let output = app.host.wait_for_output("\"stopped\"").await;
    assert!(
        output.contains(r#""status":200"#),
        "the request log line is written before exit:\n{output}"
    );
}

/// Starts the binary as `cargo run` would: no FUNCTIONS_CUSTOMHANDLER_PORT, in `dir`, whose
/// local.settings.json says `Host.LocalHttpPort: 0`; the process and the port it took.
async fn start_standalone(
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (tokio::process::Child, u16) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_handler"))
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let port = listening_port(&mut stdout).await;
    tokio::spawn(async move {
        let mut lines = stdout.lines();
        while let Ok(Some(_)) = lines.next_line().await {}
    });
    (child, port)
}

#[tokio::test]
async fn standalone_serves_like_func_start_with_the_shipped_settings() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("local.settings.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(settings["Values"]["FUNCTIONS_WORKER_RUNTIME"], "custom");
    assert_eq!(settings["Values"]["AUTH_MODE"], "none");
    let keys: Value =
        serde_json::from_str(settings["Values"]["TENANT_KEYS"].as_str().unwrap()).unwrap();
    let dev_key = keys["local"]
        .as_str()
        .expect("a dev tenant named local")
        .to_string();
    // The shipped file listens on 7071; port 0 keeps parallel test runs apart.
    settings["Host"]["LocalHttpPort"] = json!(0);
    std::fs::write(dir.path().join("local.settings.json"), settings.to_string()).unwrap();

    // A real environment variable wins over the file.
    let (_child, port) =
        start_standalone(dir.path(), &[("TOKEN_MAX_LIFETIME_SECONDS", "120")]).await;
    let client = direct_client();
    let url = format!("http://127.0.0.1:{port}/api/TokenFunction?tenantId=local&userId=dev");
    let response = client
        .get(&url)
        .header("Origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Host.CORS "*" applies, as under `func start`.
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let claims = verify(&response.text().await.unwrap(), &dev_key).unwrap();
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        120
    );

    // A browser's preflight for a JSON POST is answered before any function runs.
    let preflight = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "http://localhost:3000")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert_eq!(preflight.headers()["access-control-allow-methods"], "POST");
    assert_eq!(
        preflight.headers()["access-control-allow-headers"],
        "content-type"
    );
}

#[tokio::test]
async fn standalone_cors_allows_only_the_listed_origins() {
    let dir = tempfile::tempdir().unwrap();
    let settings = json!({
        "IsEncrypted": false,
        "Values": {"AUTH_MODE": "none", "TENANT_KEYS": r#"{"t1":"k"}"#},
        "Host": {"LocalHttpPort": 0, "CORS": "https://app.example, http://localhost:3000", "CORSCredentials": true}
    });
    std::fs::write(dir.path().join("local.settings.json"), settings.to_string()).unwrap();
    let (_child, port) = start_standalone(dir.path(), &[]).await;
    let client = direct_client();
    let url = format!("http://127.0.0.1:{port}/api/TokenFunction?tenantId=t1&userId=u");

    let allowed = client
        .get(&url)
        .header("Origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
    assert_eq!(allowed.headers()["vary"], "Origin");

    let other = client
        .get(&url)
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        200,
        "CORS is the browser's check, not an auth check"
    );
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // A preflight from another origin is not answered with CORS headers: OPTIONS reaches the
    // function, which refuses the method.
    let preflight = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 405);
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn bad_configuration_stops_startup_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    for (env, expected) in [
        (
            vec![
                ("FUNCTIONS_CUSTOMHANDLER_PORT", "0"),
                ("AUTH_MODE", "none"),
                ("TENANT_KEYS", "{\"t1\":\"leaky-secret-value\""),
            ],
            "error: TENANT_KEYS must be a JSON object",
        ),
        (
            vec![("FUNCTIONS_CUSTOMHANDLER_PORT", "0"), ("TENANT_KEYS", "{}")],
            "error: AUTH_MODE is required",
        ),
        (
            vec![
                ("FUNCTIONS_CUSTOMHANDLER_PORT", "0"),
                ("AUTH_MODE", "none"),
                ("TOKEN_MAX_LIFETIME_SECONDS", "7200"),
            ],
            "error: TOKEN_MAX_LIFETIME_SECONDS",
        ),
        (
            vec![
                ("FUNCTIONS_CUSTOMHANDLER_PORT", "0"),
                ("AUTH_MODE", "none"),
                ("DOCUMENT_ACCESS", "members"),
                ("DOCUMENT_STORE", "memory"),
            ],
            "error: DOCUMENT_ACCESS=members needs signed-in callers",
        ),
    ] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_handler"))
            .current_dir(dir.path())
            .env_clear()
            .envs(env.iter().copied())
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{expected}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(expected), "{stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("leaky-secret-value"));
    }
}

/// DNS rebinding: a page on evil.example that resolves its name to 127.0.0.1 reaches a standalone
/// run as a same-origin request, but its `Host` still names evil.example. Standalone runs answer
/// only Host localhost, 127.0.0.1 or [::1]; under the Functions host nothing changes.
#[tokio::test]
async fn standalone_runs_answer_only_requests_for_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    let settings = json!({
        "Values": {"AUTH_MODE": "none", "TENANT_KEYS": r#"{"t1":"k"}"#},
        "Host": {"LocalHttpPort": 0, "CORS": "*"}
    });
    std::fs::write(dir.path().join("local.settings.json"), settings.to_string()).unwrap();
    let (_child, port) = start_standalone(dir.path(), &[]).await;
    let client = direct_client();
    let url = format!("http://127.0.0.1:{port}/api/TokenFunction?tenantId=t1&userId=u");
    for host in [
        "localhost",
        &format!("localhost:{port}"),
        &format!("127.0.0.1:{port}"),
        &format!("[::1]:{port}"),
    ] {
        let response = client.get(&url).header("Host", host).send().await.unwrap();
        assert_eq!(response.status(), 200, "{host}");
        verify(&response.text().await.unwrap(), "k").unwrap();
    }
    for host in [
        format!("evil.example:{port}"),
        "localhost.evil.example".to_string(),
        "[::2]".to_string(),
    ] {
        for method in [reqwest::Method::GET, reqwest::Method::OPTIONS] {
            let response = client
                .request(method.clone(), &url)
                .header("Host", &host)
                .header("Origin", "http://evil.example")
                .header("Access-Control-Request-Method", "GET")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 421, "{method} {host}");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
            assert!(
                response
                    .headers()
                    .get("access-control-allow-origin")
                    .is_none()
            );
            let doc: Value = response.json().await.unwrap();
            assert!(
                doc["type"].as_str().unwrap().ends_with("foreign-host"),
                "{doc}"
            );
        }
    }

    // Under the host (emulated), any Host reaches the function: the platform decides.
    let app = TestApp::spawn(Protocol::Forwarding).await;
    let hosted = app
        .send(
            PublicRequest::get("/api/TokenFunction?tenantId=t1")
                .header("Host", "myapp.azurewebsites.net"),
        )
        .await;
    assert_eq!(hosted.status, 200, "{}", hosted.text());
}

/// The origin [`StdoutStalled`] answers CORS for.
const STALL_ORIGIN: &str = "https://app.example";

/// The handler with stdout a pipe that is read only when `read` says so, on a free port.
struct StdoutStalled {
    child: tokio::process::Child,
    /// Nobody reads it until a test takes it.
    stdout: Option<tokio::io::BufReader<tokio::process::ChildStdout>>,
    base: String,
}

impl StdoutStalled {
    /// Everything the (exited) handler wrote to stderr.
    async fn stderr(&mut self) -> String {
        let mut stderr = String::new();
        self.child
            .stderr
            .as_mut()
            .unwrap()
            .read_to_string(&mut stderr)
            .await
            .unwrap();
        stderr
    }

    async fn start() -> StdoutStalled {
        let mut child = handler_process(&[
            ("AUTH_MODE", "none".to_string()),
            ("TENANT_KEYS", r#"{"t1":"k"}"#.to_string()),
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "0".to_string()),
            ("CORS_ALLOWED_ORIGINS", STALL_ORIGIN.to_string()),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        // The listening line is read; the rest of stdout is left to the test.
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
        let port = listening_port(&mut stdout).await;
        StdoutStalled {
            child,
            stdout: Some(stdout),
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Sends token requests from 32 tasks until one has waited `patience` (requests are then
    /// held back for room in the log buffer), or `limit` were answered; how many were answered,
    /// and whether one was held back.
    async fn flood(&self, patience: Duration, limit: usize) -> (usize, bool) {
        let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (answered, url) = (
                    answered.clone(),
                    format!("{}/api/TokenFunction?tenantId=t1&userId=u", self.base),
                );
                tokio::spawn(async move {
                    let client = reqwest::Client::builder()
                        .no_proxy()
                        .timeout(patience)
                        .build()
                        .unwrap();
                    while answered.load(std::sync::atomic::Ordering::SeqCst) < limit {
                        match client.get(&url).send().await {
                            Ok(response) if response.status() == 200 => {
                                answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            }
                            _ => return true,
                        }
                    }
                    false
                })
            })
            .collect();
        let mut held_back = false;
        for task in tasks {
            held_back |= task.await.unwrap();
        }
        (
            answered.load(std::sync::atomic::Ordering::SeqCst),
            held_back,
        )
    }
}

/// With stdout a pipe nobody reads, requests are held back (asynchronously) once the log buffer
/// is full, for at most 2 s, then refused with 503 — but readiness still answers, and SIGTERM
/// still ends the process within its drain time, saying on stderr how many log lines it could
/// not write.
#[tokio::test]
async fn a_stalled_stdout_cannot_stop_readiness_or_shutdown() {
    let mut handler = StdoutStalled::start().await;
    let _unread = handler.stdout.take().unwrap();
    let (answered, held_back) = handler.flood(Duration::from_secs(5), 200_000).await;
    assert!(
        held_back,
        "requests were never held back: the log buffer has no bound"
    );
    assert!(answered > 1_000, "{answered}");

    // Fail closed, and fast: a request waits a couple of seconds for room, then is refused
    // with 503 and Retry-After — no token is issued that cannot be logged, no client hangs.
    let started = Instant::now();
    let refused = direct_client()
        .get(format!(
            "{}/api/TokenFunction?tenantId=t1&userId=u",
            handler.base
        ))
        .header("Origin", STALL_ORIGIN)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("an answer, not a hang");
    let waited = started.elapsed();
    assert_eq!(refused.status(), 503);
    assert!(
        (Duration::from_millis(1900)..Duration::from_secs(5)).contains(&waited),
        "{waited:?}"
    );
    assert_eq!(refused.headers()["retry-after"], "5");
    // With the CORS headers, so a page can read the problem and its Retry-After.
    assert_eq!(
        refused.headers()["access-control-allow-origin"],
        STALL_ORIGIN
    );
    assert_eq!(refused.headers()["vary"], "Origin");
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("/log-unavailable"),
        "{problem}"
    );
    // In envelope mode the same refusal travels inside the result: any other status of the
    // host's own exchange would reach the client as a 500.
    let envelope = envelope_for(
        "/api/TokenFunction",
        &[("tenantId".into(), "t1".into())],
        &PublicRequest::get("/api/TokenFunction").header("Origin", STALL_ORIGIN),
    );
    let result = direct_client()
        .post(format!("{}/TokenFunction", handler.base))
        .json(&envelope)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("an answer, not a hang");
    assert_eq!(result.status(), 200);
    let result: Value = result.json().await.unwrap();
    let res = &result["Outputs"]["res"];
    assert_eq!(res["statusCode"], 503, "{result}");
    assert_eq!(res["headers"]["Retry-After"], "5", "{result}");
    assert_eq!(
        res["headers"]["Access-Control-Allow-Origin"], STALL_ORIGIN,
        "{result}"
    );

    // A POST's body is read before the wait for room, so the refusal never cuts its sender off
    // in the middle of it (the host would answer its client 500): 60 KiB written in pieces
    // over about 3 s, past the 2 s wait, then the 503.
    let body = format!(r#"{{"tenantId":"t1","pad":"{}"}}"#, "x".repeat(60 * 1024));
    let request = format!(
        "POST /api/TokenFunction HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let address = handler.base.strip_prefix("http://").unwrap();
    send_paced(
        address,
        request.as_bytes(),
        4 * 1024,
        Duration::from_millis(200),
    )
    .await
    .assert_refused(
        503,
        "log-unavailable",
        "a paced POST while stdout is stalled",
    );

    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    for _ in 0..5 {
        let ready = client
            .get(format!("{}/", handler.base))
            .send()
            .await
            .expect("readiness answers");
        assert_eq!(ready.status(), 200);
    }

    let pid = handler.child.id().unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(15), handler.child.wait())
        .await
        .expect("the process exits within its drain time")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(14),
        "{:?}",
        started.elapsed()
    );
    let stderr = handler.stderr().await;
    assert!(
        stderr.contains("log lines could not be written"),
        "{stderr}"
    );
}

/// Stalled, then read again: every request that was answered has its log line.
#[tokio::test]
async fn nothing_is_dropped_once_stdout_is_read_again() {
    let mut handler = StdoutStalled::start().await;
    let stdout = handler.stdout.take().unwrap();
    let (held, held_back) = handler.flood(Duration::from_secs(1), 200_000).await;
    assert!(held_back);
    // Now a reader takes the lines; the held-back requests go through.
    let reader = tokio::spawn(async move {
        let mut lines = stdout.lines();
        let mut requests = 0;
        while let Some(line) = lines.next_line().await.unwrap() {
            requests += usize::from(
                line.contains(r#""message":"request""#) && line.contains(r#""status":200"#),
            );
        }
        requests
    });
    let (more, held_back) = handler.flood(Duration::from_secs(10), 2_000).await;
    assert!(!held_back, "read again, nothing waits");
    let pid = handler.child.id().unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(handler.child.wait().await.unwrap().success());
    let logged = reader.await.unwrap();
    // Requests the client gave up on while held back may have completed afterwards: at least
    // every answered one is in the log.
    assert!(
        logged >= held + more,
        "{logged} lines for {held} + {more} answers"
    );
    let stderr = handler.stderr().await;
    assert!(!stderr.contains("could not be written"), "{stderr}");
}

/// A request that never finishes (its body never comes) cannot hold the process past the drain
/// cap: SIGTERM ends it after 10 s, with a warning, and exit code 0.
#[tokio::test]
async fn sigterm_stops_waiting_for_in_flight_requests_after_ten_seconds() {
    let mut app = TestApp::spawn(Protocol::Forwarding).await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.host.port()))
        .await
        .unwrap();
    let head = "POST /api/TokenFunction HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).await.unwrap();
    assert!(String::from_utf8_lossy(&interim).starts_with("HTTP/1.1 100 Continue"));

    let started = Instant::now();
    app.host.send_sigterm();
    let status = app.host.wait_exit().await;
    let waited = started.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(14),
        "exited after {waited:?}"
    );
    app.host
        .wait_for_output("in-flight requests did not finish in time")
        .await;
    drop(stream);
}
