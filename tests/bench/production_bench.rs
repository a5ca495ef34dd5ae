//! The configuration people deploy, measured beside the development one (`bench/run`, not part of
//! the test command): `entra` (a valid RS256 bearer from the loopback OpenID emulator) with keys
//! from Key Vault (the HTTPS emulator, through the managed identity emulator) against `none` with
//! `TENANT_KEYS`, the same release binary, the same wrk load, one after the other in one run.
//! Also start → first token with a preloaded vault key, and RSS with 10,000 tenants cached.
//! Writes bench/production.json; bench/run.py puts it into RESULTS.md with the ratios.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::support::identity_emulator::IdentityEmulator;
use crate::support::keyvault_emulator::KeyVaultEmulator;
use crate::support::openid_emulator::{AUDIENCE, OpenIdEmulator, TENANT_ID};
use crate::support::{handler_process, listening_port, repo_root, rss_kib};

const QUERY: &str = "/api/TokenFunction?tenantId=t1&documentId=doc-1";
const KEY: &str = "bench-tenant-key-4d5e6f7a8b9c0d1e";

struct Handler {
    child: tokio::process::Child,
    base: String,
}

/// The release handler on port 0 with `settings`, stdout drained as the host does.
async fn start(settings: &[(&str, String)]) -> (Handler, Instant) {
    let started = Instant::now();
    let mut all = settings.to_vec();
    all.push(("FUNCTIONS_CUSTOMHANDLER_PORT", "0".to_string()));
    let mut child = handler_process(&all).spawn().unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let port = listening_port(&mut stdout).await;
    let mut lines = stdout.lines();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (
        Handler {
            child,
            base: format!("http://127.0.0.1:{port}"),
        },
        started,
    )
}

/// One wrk run; tokens per second and latency percentiles (ms).
fn wrk(url: &str, connections: u32, seconds: u64, bearer: Option<&str>) -> Value {
    let mut command = std::process::Command::new("wrk");
    command.args([
        &format!("-t{}", connections.min(2)),
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--timeout",
        "5s",
        "-s",
    ]);
    command.arg(repo_root().join("bench/report.lua"));
    if let Some(token) = bearer {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let output = command
        .arg(url)
        .output()
        .expect("wrk (bench/run installs it)");
    let text = String::from_utf8_lossy(&output.stdout);
    let run: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(run["non_2xx"], 0, "{url}: {run}");
    assert_eq!(run["socket_errors"], 0, "{url}: {run}");
    let seconds = run["duration_us"].as_f64().unwrap() / 1e6;
    json!({
        "rps": run["requests"].as_f64().unwrap() / seconds,
        "p50_ms": run["p50_us"].as_f64().unwrap() / 1000.0,
        "p99_ms": run["p99_us"].as_f64().unwrap() / 1000.0,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: bench/run"]
async fn production_configuration() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let identity = IdentityEmulator::start().await;
    let vault = KeyVaultEmulator::start(&identity.token).await;
    vault.set_secret("fluid-tenant-t1", KEY);
    let idp = OpenIdEmulator::start().await;
    let bearer = idp.token("oid-bench", json!({}));
    let mut production: Vec<(&str, String)> = vault.app_settings(&identity);
    production.extend([
        ("AUTH_MODE", "entra".to_string()),
        ("ENTRA_AUTHORITY", idp.authority.clone()),
        ("ENTRA_TENANT_ID", TENANT_ID.to_string()),
        ("ENTRA_AUDIENCE", AUDIENCE.to_string()),
        ("ENTRA_REQUIRED_SCOPE", "Token.Issue".to_string()),
        // One caller's bearer at full load: far past any per-caller rate. The limiter's cost is
        // measured on its own, with many callers (bench/run's same-run comparisons).
        ("CALLER_RATE_LIMIT", "off".to_string()),
        ("KEY_VAULT_PRELOAD_TENANTS", "t1".to_string()),
    ]);
    let development = vec![
        ("AUTH_MODE", "none".to_string()),
        ("TENANT_KEYS", json!({ "t1": KEY }).to_string()),
    ];
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    // start → first token, production configuration (the key preloaded from the vault).
    let mut starts = Vec::new();
    for _ in 0..10 {
        let (mut handler, started) = start(&production).await;
        loop {
            let response = client
                .get(format!("{}{QUERY}", handler.base))
                .bearer_auth(&bearer)
                .send()
                .await
                .unwrap();
            if response.status() == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        starts.push(started.elapsed().as_secs_f64() * 1000.0);
        handler.child.kill().await.unwrap();
    }
    starts.sort_by(f64::total_cmp);

    // Throughput and latency, development then production.
    let mut load = serde_json::Map::new();
    for (name, settings, token) in [
        ("development", &development, None),
        ("production", &production, Some(bearer.as_str())),
    ] {
        let (mut handler, _) = start(settings).await;
        let url = format!("{}{QUERY}", handler.base);
        let warm = tokio::task::block_in_place(|| wrk(&url, 16, 2, token));
        let _ = warm;
        let mut levels = serde_json::Map::new();
        for c in [1, 16, 64] {
            let run = tokio::task::block_in_place(|| wrk(&url, c, seconds, token));
            levels.insert(format!("c{c}"), run);
        }
        load.insert(name.to_string(), Value::Object(levels));
        handler.child.kill().await.unwrap();
    }

    // RSS with 10,000 tenants' keys cached (production configuration, a generous miss budget).
    for n in 0..10_000 {
        vault.set_secret(&format!("fluid-tenant-bench-{n}"), &format!("key-{n}"));
    }
    let mut many = production.clone();
    many.push(("KEY_VAULT_MISS_RATE", "1000".to_string()));
    let (mut handler, _) = start(&many).await;
    let tasks: Vec<_> = (0..16)
        .map(|worker| {
            let (client, base, bearer) = (client.clone(), handler.base.clone(), bearer.clone());
            tokio::spawn(async move {
                for n in (worker..10_000).step_by(16) {
                    loop {
                        let response = client
                            .get(format!("{base}/api/TokenFunction?tenantId=bench-{n}"))
                            .bearer_auth(&bearer)
                            .send()
                            .await
                            .unwrap();
                        match response.status().as_u16() {
                            200 => break,
                            503 => tokio::time::sleep(Duration::from_millis(50)).await,
                            other => panic!("tenant bench-{n}: {other}"),
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let rss_10k = rss_kib(handler.child.id().unwrap()) as f64 / 1024.0;
    handler.child.kill().await.unwrap();

    let result = json!({
        "start_to_first_token_ms": starts[starts.len() / 2],
        "rss_mib_10k_tenants": rss_10k,
        "load": load,
        "seconds_per_level": seconds,
    });
    std::fs::write(
        repo_root().join("bench/production.json"),
        serde_json::to_string_pretty(&result).unwrap(),
    )
    .unwrap();
    println!("{result:#}");
}
