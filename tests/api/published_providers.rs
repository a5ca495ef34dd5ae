//! Drop-in for every published `AzureFunctionTokenProvider`: the real classes that
//! `@fluidframework/azure-client` shipped from 0.49 to 2.0.0-rc.5 — one version per way they
//! serialize a request (JSON text, raw bracket keys, percent-encoded bracket keys, `id`/`name`),
//! installed from npm by the test command into `tests/published-providers` — get tokens from the
//! app through the host emulator, in both protocol modes. Every token is verified with the tenant
//! key and must carry the user's id, name and additionalDetails, for a load (documentId) and a
//! create (no documentId).
//!
//! `#[ignore]`d in a plain `cargo test` because it needs Node and those packages;
//! `./tests/run.sh` installs them and runs it by its exact name.

use std::process::Command;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::support::public_front::PublicFront;
use crate::support::{KEY, PROTOCOLS, TENANT, TestApp, repo_root, verify};

const DOCUMENT: &str = "doc-7";

#[tokio::test]
#[ignore = "needs Node and tests/published-providers installed (./tests/run.sh does both)"]
async fn every_published_provider_gets_its_users_tokens() {
    let user = &json!({
        "id": "u1",
        "name": "Alice Zoë",
        "additionalDetails": { "email": "a@b.c", "n": 1, "tags": ["x", "y"] },
    });
    for protocol in PROTOCOLS {
        let app = Arc::new(TestApp::spawn(protocol).await);
        let front = PublicFront::serve(Arc::clone(&app)).await;
        let url = format!("{}/api/TokenFunction", front.base_url);
        let dir = repo_root().join("tests/published-providers");
        let user = user.to_string();
        let output = tokio::task::spawn_blocking(move || {
            Command::new("node")
                .arg("drive.mjs")
                .args([url.as_str(), TENANT, DOCUMENT, user.as_str()])
                .current_dir(dir)
                .output()
                .expect("node runs")
        })
        .await
        .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let results: Value = serde_json::from_slice(&output.stdout).unwrap();

        for (version, typed) in [
            ("1.1", true),
            ("1.2", false),
            ("2.0.0-rc.1", false),
            ("2.0.0-rc.5", false),
        ] {
            let got = &results[version];
            assert!(got["error"].is_null(), "{protocol:?} {version}: {got}");
            // A query has no types: bracket keys arrive as strings.
            let details = if typed {
                json!({ "email": "a@b.c", "n": 1, "tags": ["x", "y"] })
            } else {
                json!({ "email": "a@b.c", "n": "1", "tags": ["x", "y"] })
            };
            let expected_user =
                json!({ "id": "u1", "name": "Alice Zoë", "additionalDetails": details });
            for (call, document) in [("load", DOCUMENT), ("storage", DOCUMENT), ("create", "")] {
                let jwt = got[call]
                    .as_str()
                    .unwrap_or_else(|| panic!("{version} {call}: {got}"));
                let claims = verify(jwt, KEY)
                    .unwrap_or_else(|e| panic!("{protocol:?} {version} {call}: {e}"));
                assert_eq!(
                    claims["user"], expected_user,
                    "{protocol:?} {version} {call}"
                );
                assert_eq!(
                    claims["documentId"], document,
                    "{protocol:?} {version} {call}"
                );
                assert_eq!(claims["tenantId"], TENANT);
                assert_eq!(
                    claims["scopes"],
                    json!(["doc:read", "doc:write", "summary:write"])
                );
            }
        }

        // Each serialization really was exercised (three requests per version, in order).
        let targets = front.targets();
        assert_eq!(targets.len(), 12, "{targets:#?}");
        // (version, in its first query: what must be there, what must not)
        let sent: [(usize, &[&str], &[&str]); 4] = [
            (0, &["userId=u1", "additionalDetails=%7B"], &[]),
            // Arrays come with indexes (`[tags][0]`) from both axios lines.
            (
                1,
                &[
                    "additionalDetails[email]=a%40b.c",
                    "additionalDetails[tags][0]=x",
                ],
                &[],
            ),
            (2, &["additionalDetails%5Bemail%5D=a%40b.c"], &[]),
            (
                3,
                &["id=u1", "additionalDetails%5Btags%5D%5B0%5D=x"],
                &["userId="],
            ),
        ];
        for (version, present, absent) in sent {
            let query = targets[version * 3].as_str();
            assert!(present.iter().all(|p| query.contains(p)), "{query}");
            assert!(!absent.iter().any(|a| query.contains(a)), "{query}");
        }
    }
}
