//! Fair use per caller (`CALLER_RATE_LIMIT`, `CALLER_RATE_BURST`): past their rate a signed-in
//! caller gets `429 rate-limited` with `Retry-After` in whole seconds, on every function that
//! serves them, while other callers are unaffected; `AUTH_MODE=none` has no caller and is not
//! limited; memory stays flat however many callers there are; the log says when a caller starts
//! and stops being limited, once each.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use crate::support::*;

/// An Easy Auth caller (the emulated platform passes the principal id through).
fn as_user(user: &str, request: PublicRequest) -> PublicRequest {
    request.header("X-MS-CLIENT-PRINCIPAL-ID", user)
}

async fn limited_app(protocol: Protocol) -> TestApp {
    TestApp::spawn_with(
        protocol,
        &[
            ("AUTH_MODE", "easyauth"),
            ("WEBSITE_AUTH_ENABLED", "True"),
            ("DOCUMENT_STORE", "memory"),
            ("CALLER_RATE_LIMIT", "1"),
            ("CALLER_RATE_BURST", "3"),
        ],
    )
    .await
}

#[tokio::test]
async fn past_its_rate_a_caller_gets_429_and_others_do_not() {
    for protocol in PROTOCOLS {
        let app = limited_app(protocol).await;
        let token = |user: &str| {
            as_user(
                user,
                PublicRequest::get(format!("/api/TokenFunction?tenantId={TENANT}&documentId=d")),
            )
        };
        for _ in 0..3 {
            assert_eq!(app.send(token("ann")).await.status, 200, "{protocol:?}");
        }
        // The burst is spent: every function that serves callers refuses her, the same way.
        for request in [
            token("ann"),
            as_user(
                "ann",
                PublicRequest::get(format!(
                    "/api/DocumentMembers?tenantId={TENANT}&documentId=d"
                )),
            ),
            as_user("ann", PublicRequest::post("/api/AcsTokenFunction")),
        ] {
            let refused = app.send(request).await;
            assert_problem_type(&refused, 429, "rate-limited");
            assert_eq!(
                refused.header("retry-after"),
                Some("1"),
                "whole seconds, rounded up"
            );
        }
        // Bob has his own budget.
        assert_eq!(app.send(token("bob")).await.status, 200);

        // The log: one line when ann started being limited, the refusals' own request lines
        // saying why, and one line when she is allowed again.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(app.send(token("ann")).await.status, 200);
        let output = app.host.wait_for_output("no longer rate-limited").await;
        let lines: Vec<Value> = output
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let started: Vec<&Value> = lines
            .iter()
            .filter(|l| l["message"] == "caller rate-limited (CALLER_RATE_LIMIT)")
            .collect();
        assert_eq!(started.len(), 1, "{output}");
        assert_eq!(started[0]["caller_id"], "ann");
        assert_eq!(started[0]["level"], "WARN");
        let stopped: Vec<&Value> = lines
            .iter()
            .filter(|l| l["message"] == "caller no longer rate-limited")
            .collect();
        assert_eq!(stopped.len(), 1, "{output}");
        assert_eq!(stopped[0]["refused"], 3);
        let refused_lines = lines
            .iter()
            .filter(|l| l["message"] == "request" && l["problem"] == "rate-limited")
            .count();
        assert_eq!(refused_lines, 3, "{output}");
    }
}

#[tokio::test]
async fn without_a_caller_there_is_no_limit() {
    let app = TestApp::spawn_with(
        Protocol::Forwarding,
        &[("CALLER_RATE_LIMIT", "1"), ("CALLER_RATE_BURST", "1")],
    )
    .await;
    for _ in 0..20 {
        assert_eq!(app.get_token("tenantId=t1&userId=u1").await.status, 200);
    }
}

#[tokio::test]
async fn off_turns_it_off() {
    let app = TestApp::spawn_with(
        Protocol::Envelope,
        &[
            ("AUTH_MODE", "easyauth"),
            ("WEBSITE_AUTH_ENABLED", "True"),
            ("CALLER_RATE_LIMIT", "off"),
        ],
    )
    .await;
    for _ in 0..50 {
        let answer = app
            .send(as_user(
                "ann",
                PublicRequest::get("/api/TokenFunction?tenantId=t1"),
            ))
            .await;
        assert_eq!(answer.status, 200);
    }
}

/// 100,000 distinct callers, straight to the handler: the tracked callers stay bounded, so the
/// resident memory after 100,000 is what it was after the first 30,000 (once the table is full).
#[tokio::test]
async fn memory_stays_flat_whatever_the_number_of_callers() {
    let settings: Vec<(&str, String)> = [
        ("FUNCTIONS_CUSTOMHANDLER_PORT", "0"),
        ("AUTH_MODE", "easyauth"),
        ("WEBSITE_AUTH_ENABLED", "True"),
        ("TENANT_KEYS", r#"{"t1":"k"}"#),
    ]
    .iter()
    .map(|(n, v)| (*n, v.to_string()))
    .collect();
    let mut child = handler_process(&settings).spawn().unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let port = listening_port(&mut stdout).await;
    // Read (and drop) what it logs, so stdout never stalls.
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut sink = Vec::new();
        let _ = stdout.read_to_end(&mut sink).await;
    });
    let client = direct_client();
    let url = format!("http://127.0.0.1:{port}/api/TokenFunction?tenantId=t1");
    let send = |range: std::ops::Range<usize>| {
        let (client, url) = (&client, &url);
        futures_util::stream::iter(range)
            .map(move |n| async move {
                let answer = client
                    .get(url)
                    .header("X-MS-CLIENT-PRINCIPAL-ID", format!("caller-{n}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status(), 200);
            })
            .buffer_unordered(32)
            .collect::<Vec<()>>()
    };
    let pid = child.id().unwrap();
    send(0..30_000).await;
    let full = rss_kib(pid);
    send(30_000..100_000).await;
    let after = rss_kib(pid);
    assert!(
        (after as f64) < full as f64 * 1.10,
        "RSS grew from {full} KiB to {after} KiB"
    );
}
