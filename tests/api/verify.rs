//! `deploy/verify`, the first thing to run against a new deployment, run here against the host
//! emulator behind a public listener: it passes in each auth mode on a safe setup, and fails —
//! naming the check — where the setup is unsafe (Easy Auth trusted with no platform in front).

use std::process::Command;
use std::sync::Arc;

use serde_json::json;

use crate::support::host_emulator::Platform;
use crate::support::openid_emulator::{AUDIENCE, OpenIdEmulator, TENANT_ID};
use crate::support::public_front::PublicFront;
use crate::support::*;

const ORIGIN: &str = "https://app.example";

struct Run {
    success: bool,
    stdout: String,
}

/// Serves `app` on a public listener and runs deploy/verify against it with `args`.
async fn verify_against(app: TestApp, args: &[&str]) -> Run {
    let front = PublicFront::serve(Arc::new(app)).await;
    let mut command = Command::new(repo_root().join("deploy/verify"));
    command
        .args(["--url", &front.base_url, "--tenant", TENANT])
        .args(args);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.is_empty(), "{stderr}");
    Run {
        success: output.status.success(),
        stdout,
    }
}

/// The verdict line and every check line, so a failure shows the whole report.
fn checks(run: &Run) -> Vec<(&str, &str)> {
    run.stdout
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(status, _)| ["PASS", "FAIL", "SKIP"].contains(status))
        .map(|(status, rest)| (status, rest.split(':').next().unwrap()))
        .collect()
}

#[tokio::test]
async fn passes_in_entra_mode_with_a_caller_and_handler_cors() {
    let idp = OpenIdEmulator::start().await;
    let app = TestApp::spawn_with(
        Protocol::Forwarding,
        &[
            ("AUTH_MODE", "entra"),
            ("ENTRA_AUTHORITY", idp.authority.as_str()),
            ("ENTRA_TENANT_ID", TENANT_ID),
            ("ENTRA_AUDIENCE", AUDIENCE),
            ("ENTRA_REQUIRED_SCOPE", "Token.Issue"),
            ("CORS_ALLOWED_ORIGINS", ORIGIN),
        ],
    )
    .await;
    let bearer = idp.token("oid-verify-caller", json!({}));
    let dir = tempfile::tempdir().unwrap();
    let bearer_file = dir.path().join("bearer");
    std::fs::write(&bearer_file, &bearer).unwrap();
    let command = format!("cat '{}'", bearer_file.display());
    let run = verify_against(app, &["--bearer-command", &command, "--origin", ORIGIN]).await;
    assert!(run.success, "{}", run.stdout);
    assert_eq!(
        checks(&run),
        [
            ("PASS", "anonymous"),
            ("PASS", "forged-principal"),
            ("PASS", "bearer"),
            ("PASS", "preflight"),
            ("PASS", "foreign-preflight"),
            ("PASS", "readiness"),
            ("PASS", "admin"),
            ("PASS", "unknown-tenant"),
        ],
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("user.id 'oid-verify-caller'"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("got 404 unknown-tenant"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.ends_with("verdict: PASS (8 checks)\n"),
        "{}",
        run.stdout
    );
    // Neither the caller's access token nor the issued token is printed.
    assert!(!run.stdout.contains(&bearer[..40]));
    assert!(
        !run.stdout
            .split_whitespace()
            .any(|w| w.matches('.').count() >= 2 && w.starts_with("ey")),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn fails_the_preflight_check_for_an_origin_the_deployment_does_not_allow() {
    let app = TestApp::spawn_with(Protocol::Envelope, &[("CORS_ALLOWED_ORIGINS", ORIGIN)]).await;
    let mut app = app;
    app.host.platform = Platform {
        function_key: Some("function-key-1".into()),
        easy_auth: false,
    };
    let run = verify_against(app, &["--origin", "https://other.example"]).await;
    assert!(!run.success, "{}", run.stdout);
    assert!(
        checks(&run).contains(&("FAIL", "preflight")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .ends_with("verdict: FAIL (1 of 7 checks failed: preflight)\n"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn passes_in_none_mode_behind_function_keys_and_in_easyauth_mode_behind_the_platform() {
    // AUTH_MODE=none: the function key is the only gate; without it the host refuses.
    let mut none = TestApp::spawn(Protocol::Forwarding).await;
    none.host.platform = Platform {
        function_key: Some("function-key-1".into()),
        easy_auth: false,
    };
    let run = verify_against(none, &[]).await;
    assert!(run.success, "{}", run.stdout);
    assert!(checks(&run).contains(&("SKIP", "bearer")), "{}", run.stdout);

    // Easy Auth in front (anonymous allowed, as with handler CORS): the platform strips forged
    // principal headers, and the handler refuses a request without one.
    let mut easyauth = TestApp::spawn_with(
        Protocol::Envelope,
        &[("AUTH_MODE", "easyauth"), ("WEBSITE_AUTH_ENABLED", "True")],
    )
    .await;
    easyauth.host.platform = Platform {
        function_key: None,
        easy_auth: true,
    };
    let run = verify_against(easyauth, &[]).await;
    assert!(run.success, "{}", run.stdout);
    assert!(
        run.stdout.contains("PASS forged-principal"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn fails_naming_the_forged_header_check_where_easy_auth_is_trusted_without_the_platform() {
    // Both protocol modes, and members mode too: a forged caller who is no member of some
    // document would get a 403 that must not pass for a refusal.
    for (protocol, access) in [
        (Protocol::Forwarding, "open"),
        (Protocol::Envelope, "open"),
        (Protocol::Forwarding, "members"),
    ] {
        // WEBSITE_AUTH_ENABLED set by hand, nothing in front that strips the headers.
        let unsafe_app = TestApp::spawn_with(
            protocol,
            &[
                ("AUTH_MODE", "easyauth"),
                ("WEBSITE_AUTH_ENABLED", "True"),
                ("DOCUMENT_ACCESS", access),
                ("DOCUMENT_STORE", "memory"),
            ],
        )
        .await;
        let run = verify_against(unsafe_app, &[]).await;
        assert!(!run.success, "{protocol:?} {access}: {}", run.stdout);
        assert_eq!(
            checks(&run)
                .into_iter()
                .filter(|(status, _)| *status == "FAIL")
                .collect::<Vec<_>>(),
            [("FAIL", "forged-principal")],
            "{protocol:?}: {}",
            run.stdout
        );
        assert!(
            run.stdout
                .contains("verdict: FAIL (1 of 5 checks failed: forged-principal)"),
            "{}",
            run.stdout
        );
    }
}

#[tokio::test]
async fn a_function_key_in_the_url_is_the_key_and_a_bearer_is_its_last_line() {
    // AUTH_MODE=none behind function keys, the key given in the URL: the anonymous request
    // carries it, so it gets a token — which is what verify must call a failure.
    let mut none = TestApp::spawn(Protocol::Forwarding).await;
    none.host.platform = Platform {
        function_key: Some("function-key-1".into()),
        easy_auth: false,
    };
    let front = PublicFront::serve(Arc::new(none)).await;
    let url = format!("{}/api/TokenFunction?code=function-key-1", front.base_url);
    let output = Command::new(repo_root().join("deploy/verify"))
        .args(["--url", &url, "--tenant", TENANT])
        .args([
            "--bearer-command",
            "printf 'a warning first\\nnot a token\\n'",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains("FAIL anonymous"), "{stdout}");
    assert!(
        !stdout.contains("function-key-1"),
        "the key is not printed: {stdout}"
    );
    assert!(String::from_utf8(output.stderr).unwrap().is_empty());
}

#[test]
fn refuses_plain_http_off_this_machine_and_missing_arguments() {
    let run = |args: &[&str]| {
        Command::new(repo_root().join("deploy/verify"))
            .args(args)
            .output()
            .unwrap()
    };
    let insecure = run(&["--url", "http://app.azurewebsites.net", "--tenant", "t"]);
    assert_eq!(insecure.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&insecure.stderr).contains("https://"));
    assert_eq!(
        run(&["--url", "https://app.example"]).status.code(),
        Some(2)
    );
}
