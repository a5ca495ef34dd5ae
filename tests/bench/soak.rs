//! The soak run (`bench/soak`, not part of the test command): the handler under steady load for
//! `SOAK_SECONDS` (default 600) while Key Vault goes down, throttles and slows down, and stdout
//! stalls and resumes, phase after phase. Checked: the warm tenant never gets a 5xx, memory stays
//! flat — RSS of the last normal phases within 10 % of the normal phase after the first outage
//! (the first normal phase and the first outage are warm-up: pools and bounded caches fill; the
//! report gives the growth from the very first phase too) — and the p99 of every phase is written
//! to bench/SOAK.md with the rest.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncBufReadExt;

use crate::support::identity_emulator::IdentityEmulator;
use crate::support::keyvault_emulator::{Fault, KeyVaultEmulator};
use crate::support::{handler_process, listening_port, repo_root, rss_kib};

const PHASES: [&str; 10] = [
    "normal",
    "vault down",
    "normal",
    "vault throttling",
    "normal",
    "vault slow (3 s)",
    "normal",
    "stdout stalled",
    "normal",
    "normal",
];

#[derive(Default, Clone)]
struct PhaseStats {
    latencies_ms: Vec<f64>,
    ok: usize,
    server_errors: usize,
    other: usize,
    rss_kib: Vec<u64>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a long run: bench/soak"]
async fn soak() {
    let total = Duration::from_secs(
        std::env::var("SOAK_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(600),
    );
    let phase_length = total / PHASES.len() as u32;
    let identity = IdentityEmulator::start().await;
    let vault = KeyVaultEmulator::start(&identity.token).await;
    vault.set_secret("fluid-tenant-t1", "soak-tenant-key");
    let mut settings = vault.app_settings(&identity);
    settings.extend([
        ("AUTH_MODE", "none".to_string()),
        ("FUNCTIONS_CUSTOMHANDLER_PORT", "0".to_string()),
        ("KEY_CACHE_TTL_SECONDS", "5".to_string()),
        ("KEY_VAULT_TIMEOUT_MS", "500".to_string()),
        ("KEY_VAULT_PRELOAD_TENANTS", "t1".to_string()),
    ]);
    let mut child = handler_process(&settings).spawn().unwrap();
    let pid = child.id().unwrap();

    // stdout read like the host does, except while a phase stalls it.
    let stalled = Arc::new(AtomicBool::new(false));
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let port = listening_port(&mut stdout).await;
    let reader = {
        let stalled = Arc::clone(&stalled);
        tokio::spawn(async move {
            let mut lines = stdout.lines();
            let mut count = 0usize;
            loop {
                while stalled.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                match lines.next_line().await {
                    Ok(Some(_)) => count += 1,
                    _ => return count,
                }
            }
        })
    };

    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the handler never answered");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The warm tenant is warm.
    let warm = format!("{base}/api/TokenFunction?tenantId=t1&userId=soak");
    assert_eq!(client.get(&warm).send().await.unwrap().status(), 200);

    let stats = Arc::new(std::sync::Mutex::new(vec![
        PhaseStats::default();
        PHASES.len()
    ]));
    let phase_now = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let running = Arc::new(AtomicBool::new(true));
    let mut workers = Vec::new();
    for worker in 0..8 {
        let (client, warm, stats, phase_now, running) = (
            client.clone(),
            warm.clone(),
            Arc::clone(&stats),
            Arc::clone(&phase_now),
            Arc::clone(&running),
        );
        let base = base.clone();
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while running.load(Ordering::SeqCst) {
                n += 1;
                // One request in 50 is for a tenant nobody has (the miss budget at work).
                let url = if worker == 0 && n.is_multiple_of(50) {
                    format!("{base}/api/TokenFunction?tenantId=unknown-{n}")
                } else {
                    warm.clone()
                };
                let started = Instant::now();
                let status = client
                    .get(&url)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(599);
                let phase = phase_now.load(Ordering::SeqCst);
                let mut stats = stats.lock().unwrap();
                let entry = &mut stats[phase];
                if url == warm {
                    entry
                        .latencies_ms
                        .push(started.elapsed().as_secs_f64() * 1000.0);
                    match status {
                        200 => entry.ok += 1,
                        500..=599 => entry.server_errors += 1,
                        _ => entry.other += 1,
                    }
                }
            }
        }));
    }

    for (index, phase) in PHASES.iter().enumerate() {
        phase_now.store(index, Ordering::SeqCst);
        vault.set_fault(match *phase {
            "vault down" => Some(Fault::Drop),
            "vault throttling" => Some(Fault::Status(429)),
            "vault slow (3 s)" => Some(Fault::Delay(Duration::from_secs(3))),
            _ => None,
        });
        stalled.store(*phase == "stdout stalled", Ordering::SeqCst);
        let ends = Instant::now() + phase_length;
        while Instant::now() < ends {
            tokio::time::sleep(Duration::from_secs(1)).await;
            stats.lock().unwrap()[index].rss_kib.push(rss_kib(pid));
        }
    }
    stalled.store(false, Ordering::SeqCst);
    running.store(false, Ordering::SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }
    let pid_string = pid.to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid_string])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().await.unwrap().success());
    let lines = reader.await.unwrap();

    let stats = stats.lock().unwrap().clone();
    let median = |v: &[u64]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    let mut report = format!(
        "# Soak run\n\n{} s in {} phases of {} s; 8 clients in a loop on the warm tenant (one request in 400 for an unknown tenant), {} build, loopback Key Vault and managed identity emulators (KEY_CACHE_TTL_SECONDS=5, KEY_VAULT_TIMEOUT_MS=500). Measured {} by `bench/soak`.\n\n| phase | warm-tenant requests | 200 | 5xx | other | p50 ms | p99 ms | RSS median KiB |\n|---|---|---|---|---|---|---|---|\n",
        total.as_secs(),
        PHASES.len(),
        phase_length.as_secs(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        std::process::Command::new("date")
            .arg("-u")
            .arg("+%Y-%m-%d %H:%M UTC")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default(),
    );
    for (phase, s) in PHASES.iter().zip(&stats) {
        let mut sorted = s.latencies_ms.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        report.push_str(&format!(
            "| {phase} | {} | {} | {} | {} | {:.2} | {:.2} | {} |\n",
            sorted.len(),
            s.ok,
            s.server_errors,
            s.other,
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.99),
            median(&s.rss_kib)
        ));
    }
    let start = median(&stats[0].rss_kib) as f64;
    let first = median(&stats[2].rss_kib) as f64;
    let last = median(&[median(&stats[8].rss_kib), median(&stats[9].rss_kib)]) as f64;
    let server_errors: usize = stats.iter().map(|s| s.server_errors).sum();
    report.push_str(&format!(
        "\nRSS of the last normal phases / the normal phase after the first outage (warm-up done): {:.3} (target ≤ 1.10); / the very first phase: {:.3}. 5xx for the warm tenant: {server_errors} (target 0). Log lines read: {lines}.\n",
        last / first,
        last / start
    ));
    std::fs::write(repo_root().join("bench/SOAK.md"), &report).unwrap();
    println!("{report}");
    assert_eq!(server_errors, 0, "the warm tenant got 5xx");
    assert!(last <= first * 1.10, "RSS grew from {first} to {last} KiB");
}
