//! CORS answered by the handler under the Functions host (`CORS_ALLOWED_ORIGINS`), the same in
//! both protocol modes: where the platform does not answer CORS (Flex Consumption has listed
//! platform CORS as unsupported), a browser app still gets its preflights answered — and only its
//! own origin does.

use reqwest::Method;

use crate::support::*;

const APP: &str = "https://app.example";
const TOKEN: &str = "/api/TokenFunction?tenantId=t1&userId=u1";

fn preflight(origin: &str, target: &str) -> PublicRequest {
    PublicRequest::new(Method::OPTIONS, target)
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
}

fn all<'a>(response: &'a PublicResponse, name: &str) -> Vec<&'a str> {
    response
        .headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[tokio::test]
async fn preflights_from_the_allowed_origin_are_answered_under_the_host_in_both_modes() {
    for protocol in [Protocol::Forwarding, Protocol::Envelope] {
        let app = TestApp::spawn_with(
            protocol,
            &[(
                "CORS_ALLOWED_ORIGINS",
                &format!("{APP}, http://localhost:3000"),
            )],
        )
        .await;
        for function in ["TokenFunction", "AcsTokenFunction", "DocumentMembers"] {
            let answer = app
                .send(preflight(APP, &format!("/api/{function}?tenantId=t1")))
                .await;
            assert_eq!(
                answer.status,
                204,
                "{protocol:?} {function}: {}",
                answer.text()
            );
            assert_eq!(all(&answer, "access-control-allow-origin"), [APP]);
            assert_eq!(
                all(&answer, "access-control-allow-headers"),
                ["authorization"]
            );
            assert_eq!(all(&answer, "access-control-allow-methods"), ["GET"]);
            assert_eq!(all(&answer, "vary"), ["Origin"]);
            assert!(answer.body.is_empty());
            assert_eq!(all(&answer, "cache-control"), ["no-store"]);
        }

        // The request itself: one Access-Control-Allow-Origin, the caller's origin.
        let token = app
            .send(PublicRequest::get(TOKEN).header("Origin", APP))
            .await;
        assert_eq!(token.status, 200, "{protocol:?}");
        assert_eq!(all(&token, "access-control-allow-origin"), [APP]);
        assert!(all(&token, "access-control-allow-credentials").is_empty());
        verify(&token.text(), KEY).unwrap();
        // Errors carry it too, so the page can read the problem.
        let refused = app
            .send(PublicRequest::get("/api/TokenFunction?tenantId=nope").header("Origin", APP))
            .await;
        assert!(refused.status >= 400);
        assert_eq!(all(&refused, "access-control-allow-origin"), [APP]);
        // A page reads Retry-After (429, 503) and WWW-Authenticate (401) only when exposed.
        assert_eq!(
            all(&refused, "access-control-expose-headers"),
            ["Retry-After, WWW-Authenticate"]
        );
        // So do refusals made before the function runs: a body over the limit.
        let too_large = app
            .send(
                PublicRequest::new(Method::POST, TOKEN)
                    .header("Origin", APP)
                    .header("Content-Type", "application/json")
                    .body(vec![b' '; 64 * 1024 + 1]),
            )
            .await;
        assert_problem_type(&too_large, 413, "body-too-large");
        assert_eq!(all(&too_large, "access-control-allow-origin"), [APP]);

        // Another origin: its preflight reaches the function (405, no CORS headers), and its
        // requests name no origin, so the browser withholds the answer.
        let foreign = app.send(preflight("https://evil.example", TOKEN)).await;
        assert_problem_type(&foreign, 405, "method-not-allowed");
        assert!(all(&foreign, "access-control-allow-origin").is_empty());
        let foreign = app
            .send(PublicRequest::get(TOKEN).header("Origin", "https://evil.example"))
            .await;
        assert_eq!(
            foreign.status, 200,
            "CORS is the browser's check, not an auth check"
        );
        assert!(all(&foreign, "access-control-allow-origin").is_empty());
        // The answer depends on the origin all the same: a cache must not reuse it for another.
        assert_eq!(all(&foreign, "vary"), ["Origin"]);
    }
}

/// Refusals made before any function runs still carry the CORS headers, so a page can read
/// why; a preflight is answered whatever its query; and a body too large to read even inside an
/// envelope is still the client's 413, not the host's 500.
#[tokio::test]
async fn refusals_made_before_a_function_runs_reach_the_page_in_both_modes() {
    for protocol in [Protocol::Forwarding, Protocol::Envelope] {
        let app = TestApp::spawn_with(protocol, &[("CORS_ALLOWED_ORIGINS", APP)]).await;
        // A query that is not UTF-8. Through the host it arrives decoded (lossily) and the
        // parameter is refused; sent to the handler directly (standalone, no host to decode
        // it), our decoder refuses the query itself — and still answers its preflight.
        let target = "/api/TokenFunction?tenantId=%FF";
        let bad_query = app
            .send(PublicRequest::get(target).header("Origin", APP))
            .await;
        assert_problem_type(&bad_query, 400, "invalid-parameter");
        assert_eq!(all(&bad_query, "access-control-allow-origin"), [APP]);
        assert_eq!(all(&bad_query, "vary"), ["Origin"]);
        if protocol == Protocol::Forwarding {
            let client = direct_client();
            let port = app.host.port();
            let direct = |method: Method, path: &str| {
                client
                    .request(method, format!("http://127.0.0.1:{port}{path}"))
                    .header("Origin", APP)
            };
            let bad_query = direct(Method::GET, target).send().await.unwrap();
            assert_eq!(bad_query.status(), 400);
            assert_eq!(bad_query.headers()["access-control-allow-origin"], APP);
            assert_eq!(bad_query.headers()["vary"], "Origin");
            let doc: serde_json::Value = bad_query.json().await.unwrap();
            assert!(
                doc["type"].as_str().unwrap().ends_with("/invalid-query"),
                "{doc}"
            );
            let preflight = direct(Method::OPTIONS, target)
                .header("Access-Control-Request-Method", "GET")
                .send()
                .await
                .unwrap();
            assert_eq!(preflight.status(), 204);
            assert_eq!(preflight.headers()["access-control-allow-origin"], APP);
            // A path no function serves: still answered for the origin.
            let not_found = direct(Method::GET, "/api/Nope").send().await.unwrap();
            assert_eq!(not_found.status(), 404);
            assert_eq!(not_found.headers()["vary"], "Origin");
        }

        // 600,000 control characters: 3.6 MB once JSON-escaped into an envelope.
        let huge = app
            .send(
                PublicRequest::new(Method::POST, TOKEN)
                    .header("Origin", APP)
                    .header("Content-Type", "application/json")
                    .body(vec![1u8; 600_000]),
            )
            .await;
        assert_problem_type(&huge, 413, "body-too-large");
        if protocol == Protocol::Forwarding {
            assert_eq!(all(&huge, "access-control-allow-origin"), [APP]);
        }
    }
}

#[tokio::test]
async fn without_the_setting_the_handler_answers_no_cors_under_the_host() {
    let app = TestApp::spawn(Protocol::Forwarding).await;
    let answer = app.send(preflight(APP, TOKEN)).await;
    assert_eq!(answer.status, 405);
    assert!(all(&answer, "access-control-allow-origin").is_empty());
    let token = app
        .send(PublicRequest::get(TOKEN).header("Origin", APP))
        .await;
    assert_eq!(token.status, 200);
    assert!(all(&token, "access-control-allow-origin").is_empty());
}

#[tokio::test]
async fn credentials_are_allowed_when_the_setting_says_so() {
    let app = TestApp::spawn_with(
        Protocol::Envelope,
        &[
            ("CORS_ALLOWED_ORIGINS", APP),
            ("CORS_ALLOW_CREDENTIALS", "true"),
        ],
    )
    .await;
    let answer = app.send(preflight(APP, TOKEN)).await;
    assert_eq!(answer.status, 204);
    assert_eq!(all(&answer, "access-control-allow-credentials"), ["true"]);
}

#[tokio::test]
async fn every_origin_with_real_keys_and_no_auth_stops_startup() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_handler"))
        .current_dir(dir.path())
        .env_clear()
        .envs([
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "0"),
            ("AUTH_MODE", "none"),
            ("KEY_VAULT_URL", "https://kv.vault.azure.net"),
            ("AZURE_CREDENTIAL", "developer-tools"),
            ("CORS_ALLOWED_ORIGINS", "*"),
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("error: CORS_ALLOWED_ORIGINS \"*\" with AUTH_MODE=none"),
        "{stderr}"
    );
}
