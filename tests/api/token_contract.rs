//! The request and response contract of TokenFunction, row by row, in both protocol modes.

use serde_json::{Value, json};

use crate::support::*;

fn uuid_v4(value: &Value) -> bool {
    let text = value.as_str().unwrap_or_default();
    let bytes = text.as_bytes();
    text.len() == 36
        && text.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit() && !c.is_ascii_uppercase()
            }
        })
        && bytes[14] == b'4'
        && matches!(bytes[19], b'8' | b'9' | b'a' | b'b')
}

#[tokio::test]
async fn minimal_request_gets_a_raw_jwt_with_default_claims() {
    for protocol in PROTOCOLS {
        let app = TestApp::spawn(protocol).await;
        let response = app.get_token("tenantId=t1").await;
        assert_eq!(response.status, 200, "{protocol:?}: {}", response.text());
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(response.header("cache-control"), Some("no-store"));
        let jwt = response.text();
        assert_eq!(jwt.trim(), jwt, "no whitespace around the token");
        assert!(!jwt.contains('"') && !jwt.contains('='));
        assert!(jwt.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));

        let claims = verify(&jwt, KEY).expect("signed with the tenant key");
        assert_eq!(claims["documentId"], "");
        assert_eq!(
            claims["scopes"],
            json!(["doc:read", "doc:write", "summary:write"])
        );
        assert_eq!(claims["tenantId"], "t1");
        assert!(uuid_v4(&claims["user"]["id"]), "{}", claims["user"]);
        assert_eq!(claims["user"]["name"], claims["user"]["id"]);
        let iat = claims["iat"].as_u64().unwrap();
        assert!(iat.abs_diff(now()) <= 2);
        assert_eq!(claims["exp"].as_u64().unwrap(), iat + 3600);
        assert_eq!(claims["ver"], "1.0");
        assert!(uuid_v4(&claims["jti"]));
        assert!(
            verify(&jwt, OTHER_KEY).is_err(),
            "not valid with another key"
        );
    }
}

#[tokio::test]
async fn claims_follow_the_request_in_fluid_order() {
    for protocol in PROTOCOLS {
        let app = TestApp::spawn(protocol).await;
        let details = r#"{"email":"a@b.c","tags":["x"],"n":1}"#;
        let query = format!(
            "tenantId=t1&documentId=doc-42&userId=u1&userName=Zo%C3%AB%20%F0%9F%98%80&scopes=doc:read&lifetime=600&additionalDetails={}",
            form_urlencoded::byte_serialize(details.as_bytes()).collect::<String>()
        );
        let jwt = app.get_token(&query).await.text();
        let claims = verify(&jwt, KEY).unwrap();
        let iat = claims["iat"].as_u64().unwrap();
        let jti = claims["jti"].as_str().unwrap();
        // Byte for byte what generateToken's JSON.stringify produces for the same inputs.
        let expected = format!(
            r#"{{"documentId":"doc-42","scopes":["doc:read"],"tenantId":"t1","user":{{"id":"u1","name":"Zoë 😀","additionalDetails":{details}}},"iat":{iat},"exp":{},"ver":"1.0","jti":"{jti}"}}"#,
            iat + 600
        );
        let payload = jwt.split('.').nth(1).unwrap();
        let payload =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap();
        assert_eq!(
            String::from_utf8(payload).unwrap(),
            expected,
            "{protocol:?}"
        );
    }
}

#[tokio::test]
async fn post_json_body_and_query_wins() {
    for protocol in PROTOCOLS {
        let app = TestApp::spawn(protocol).await;
        let body = json!({
            "tenantId": OTHER_TENANT, "documentId": "from-body", "userId": "body-user",
            "userName": "Body", "scopes": ["doc:write", "doc:read", "doc:write"],
            "additionalDetails": {"z": 1, "a": {"deep": [true, null]}}, "lifetime": 120
        });
        let response = app
            .send(PublicRequest::post("/api/TokenFunction?documentId=from-query").json(&body))
            .await;
        assert_eq!(response.status, 200, "{protocol:?}: {}", response.text());
        let claims = verify(&response.text(), OTHER_KEY).unwrap();
        assert_eq!(claims["tenantId"], OTHER_TENANT);
        assert_eq!(claims["documentId"], "from-query");
        assert_eq!(
            claims["user"],
            json!({"id": "body-user", "name": "Body", "additionalDetails": {"z": 1, "a": {"deep": [true, null]}}})
        );
        assert_eq!(claims["scopes"], json!(["doc:write", "doc:read"]));
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            120
        );
    }
}

#[tokio::test]
async fn scopes_in_every_form() {
    for protocol in PROTOCOLS {
        let app = TestApp::spawn(protocol).await;
        for (query, expected) in [
            (
                "scopes=doc:read,summary:write",
                json!(["doc:read", "summary:write"]),
            ),
            (
                "scopes=doc:read&scopes=doc:write&scopes=doc:read",
                json!(["doc:read", "doc:write"]),
            ),
            ("scopes=doc:write", json!(["doc:write"])),
        ] {
            let response = app.get_token(&format!("tenantId=t1&{query}")).await;
            assert_eq!(response.status, 200, "{query}");
            assert_eq!(
                claims(&response.text())["scopes"],
                expected,
                "{protocol:?} {query}"
            );
        }
        for query in [
            "scopes=",
            "scopes=doc:delete",
            "scopes=doc:read,summary:read",
            "scopes=DOC:READ",
        ] {
            let doc = assert_problem(&app.get_token(&format!("tenantId=t1&{query}")).await, 400);
            assert_eq!(doc["parameter"], "scopes", "{query}");
        }
        let doc = assert_problem(
            &app.send(
                PublicRequest::post("/api/TokenFunction")
                    .json(&json!({"tenantId": "t1", "scopes": []})),
            )
            .await,
            400,
        );
        assert_eq!(doc["parameter"], "scopes");
    }
}

#[tokio::test]
async fn tenant_id_is_required_and_checked() {
    for protocol in PROTOCOLS {
        let app = TestApp::spawn(protocol).await;
        let missing = assert_problem(&app.get_token("documentId=d").await, 400);
        assert_eq!(missing["parameter"], "tenantId");
        assert!(missing["detail"].as_str().unwrap().contains("tenantId"));
        for bad in ["", "a%20b", "t1%2F..", "%C3%A9", &"a".repeat(129)] {
            let doc = assert_problem(&app.get_token(&format!("tenantId={bad}")).await, 400);
            assert_eq!(doc["parameter"], "tenantId", "{bad}");
        }
        let unknown = assert_problem(&app.get_token("tenantId=nobody").await, 404);
        assert!(
            unknown["type"]
                .as_str()
                .unwrap()
                .ends_with("unknown-tenant")
        );
        assert!(unknown["detail"].as_str().unwrap().contains("nobody"));
        assert_eq!(
            app.get_token(&format!("tenantId={}", "a".repeat(128)))
                .await
                .status,
            404
        );
    }
}

#[tokio::test]
async fn document_and_user_fields_are_bounded() {
    for protocol in PROTOCOLS {
        let app = TestApp::spawn(protocol).await;
        let ok = app
            .get_token(&format!("tenantId=t1&documentId={}", "d".repeat(256)))
            .await;
        assert_eq!(
            claims(&ok.text())["documentId"].as_str().unwrap().len(),
            256
        );
        for (query, parameter) in [
            (format!("documentId={}", "d".repeat(257)), "documentId"),
            ("documentId=a%00b".to_string(), "documentId"),
            ("documentId=a%1Bb".to_string(), "documentId"),
            (format!("userId={}", "u".repeat(257)), "userId"),
            (format!("userName={}", "n".repeat(257)), "userName"),
        ] {
            let doc = assert_problem(&app.get_token(&format!("tenantId=t1&{query}")).await, 400);
            assert_eq!(doc["parameter"], parameter, "{protocol:?} {query}");
        }
        let named = claims(&app.get_token("tenantId=t1&userId=u9").await.text());
        assert_eq!(named["user"], json!({"id": "u9", "name": "u9"}));
    }
}

#[tokio::test]
async fn additional_details_must_be_json() {
    for protocol in PROTOCOLS {
        let app = TestApp::spawn(protocol).await;
        let doc = assert_problem(
            &app.get_token("tenantId=t1&additionalDetails=%7Bnot-json")
                .await,
            400,
        );
        assert_eq!(doc["parameter"], "additionalDetails");
        let token = app
            .get_token("tenantId=t1&additionalDetails=%5B1%2C%22two%22%5D")
            .await;
        assert_eq!(
            claims(&token.text())["user"]["additionalDetails"],
            json!([1, "two"])
        );
    }
}

#[tokio::test]
async fn lifetime_bounds_and_configured_maximum() {
    for protocol in PROTOCOLS {
        let app = TestApp::spawn(protocol).await;
        for bad in ["0", "3601", "-1", "1e3", "abc", ""] {
            let doc = assert_problem(
                &app.get_token(&format!("tenantId=t1&lifetime={bad}")).await,
                400,
            );
            assert_eq!(doc["parameter"], "lifetime", "{bad}");
        }
        let one = claims(&app.get_token("tenantId=t1&lifetime=1").await.text());
        assert_eq!(
            one["exp"].as_u64().unwrap() - one["iat"].as_u64().unwrap(),
            1
        );

        let capped = TestApp::spawn_with(protocol, &[("TOKEN_MAX_LIFETIME_SECONDS", "600")]).await;
        let default = claims(&capped.get_token("tenantId=t1").await.text());
        assert_eq!(
            default["exp"].as_u64().unwrap() - default["iat"].as_u64().unwrap(),
            600
        );
        let doc = assert_problem(&capped.get_token("tenantId=t1&lifetime=601").await, 400);
        assert!(doc["detail"].as_str().unwrap().contains("600"));
    }
}

#[tokio::test]
async fn only_get_and_post_are_allowed() {
    for protocol in PROTOCOLS {
        let app = TestApp::spawn(protocol).await;
        for method in ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let response = app
                .send(PublicRequest::new(
                    method.clone(),
                    "/api/TokenFunction?tenantId=t1",
                ))
                .await;
            assert_eq!(response.status, 405, "{protocol:?} {method}");
            assert_eq!(response.header("allow"), Some("GET, POST"));
            if method != reqwest::Method::HEAD {
                assert_problem(&response, 405);
            }
        }
    }
}

#[tokio::test]
async fn body_must_be_a_json_object_within_64_kib() {
    for protocol in PROTOCOLS {
        let app = TestApp::spawn(protocol).await;
        for body in ["[1,2]", "\"t1\"", "tenantId=t1", "{\"tenantId\":", "null"] {
            let response = app
                .send(
                    PublicRequest::post("/api/TokenFunction")
                        .header("Content-Type", "application/json")
                        .body(body),
                )
                .await;
            let doc = assert_problem(&response, 400);
            assert!(
                doc["type"].as_str().unwrap().ends_with("invalid-body"),
                "{body}"
            );
        }
        // Exactly 64 KiB is accepted, one byte more is not.
        let filler = |total: usize| {
            let base = r#"{"tenantId":"t1","pad":""}"#.len();
            format!(
                r#"{{"tenantId":"t1","pad":"{}"}}"#,
                "x".repeat(total - base)
            )
        };
        let at_limit = app
            .send(PublicRequest::post("/api/TokenFunction").body(filler(64 * 1024)))
            .await;
        assert_eq!(at_limit.status, 200, "{protocol:?} {}", at_limit.text());
        let over = app
            .send(PublicRequest::post("/api/TokenFunction").body(filler(64 * 1024 + 1)))
            .await;
        assert_problem(&over, 413);
    }
}

#[tokio::test]
async fn accept_json_returns_the_token_document() {
    for protocol in PROTOCOLS {
        let app = TestApp::spawn(protocol).await;
        let response = app
            .send(
                PublicRequest::get("/api/TokenFunction?tenantId=t1&documentId=d1&userId=u1&userName=Ann&scopes=doc:read")
                    .header("Accept", "application/json"),
            )
            .await;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.header("cache-control"), Some("no-store"));
        let doc = response.json();
        let token_claims = verify(doc["token"].as_str().unwrap(), KEY).unwrap();
        assert_eq!(doc["expiresAt"], token_claims["exp"]);
        assert_eq!(doc["tenantId"], "t1");
        assert_eq!(doc["documentId"], "d1");
        assert_eq!(doc["user"], json!({"id": "u1", "name": "Ann"}));
        assert_eq!(doc["scopes"], json!(["doc:read"]));

        // axios' default Accept ranks JSON and text equally: the raw token, as Fluid's old
        // AzureFunctionTokenProvider expects.
        let axios = app
            .send(
                PublicRequest::get("/api/TokenFunction?tenantId=t1")
                    .header("Accept", "application/json, text/plain, */*"),
            )
            .await;
        assert_eq!(
            axios.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        verify(&axios.text(), KEY).unwrap();
    }
}

#[tokio::test]
async fn every_token_is_fresh_and_tenants_use_their_own_keys() {
    let app = TestApp::spawn(Protocol::Forwarding).await;
    let a = claims(&app.get_token("tenantId=t1&userId=u").await.text());
    let b = claims(&app.get_token("tenantId=t1&userId=u").await.text());
    assert_ne!(a["jti"], b["jti"]);
    let other = app
        .get_token(&format!("tenantId={OTHER_TENANT}"))
        .await
        .text();
    assert!(verify(&other, OTHER_KEY).is_ok());
    assert!(verify(&other, KEY).is_err());
    let first = claims(&app.get_token("tenantId=t1").await.text());
    let second = claims(&app.get_token("tenantId=t1").await.text());
    assert_ne!(
        first["user"]["id"], second["user"]["id"],
        "a fresh user id per anonymous request"
    );
}

/// What the published `AzureFunctionTokenProvider` versions send: `id`/`name`, and
/// `additionalDetails` as bracket keys with raw or percent-encoded brackets.
#[tokio::test]
async fn published_provider_spellings_give_the_same_user_in_both_modes() {
    for protocol in PROTOCOLS {
        let app = TestApp::spawn(protocol).await;
        for query in [
            "tenantId=t1&id=u1&name=Ann&additionalDetails[email]=a%40b.c&additionalDetails[l][0]=x&additionalDetails[l][1]=y,z",
            "tenantId=t1&userId=u1&userName=Ann&additionalDetails%5Bemail%5D=a%40b.c&additionalDetails%5Bl%5D%5B%5D=x&additionalDetails%5Bl%5D%5B%5D=y%2Cz",
            "tenantId=t1&id=u1&userId=u1&name=Ann&additionalDetails=%7B%22email%22%3A%22a%40b.c%22%2C%22l%22%3A%5B%22x%22%2C%22y%2Cz%22%5D%7D",
        ] {
            let response = app.get_token(query).await;
            assert_eq!(
                response.status,
                200,
                "{protocol:?} {query}: {}",
                response.text()
            );
            let claims = verify(&response.text(), KEY).unwrap();
            let l = if query.contains("%5B%5D") {
                // Repeated `[]` values reach the handler joined with ',' by the host.
                json!(["x", "y", "z"])
            } else {
                json!(["x", "y,z"])
            };
            assert_eq!(
                claims["user"],
                json!({"id": "u1", "name": "Ann", "additionalDetails": {"email": "a@b.c", "l": l}}),
                "{protocol:?} {query}"
            );
        }
        for (query, parameter) in [
            ("tenantId=t1&id=u1&userId=u2", "userId"),
            ("tenantId=t1&name=A&userName=B", "userName"),
            (
                "tenantId=t1&additionalDetails=%7B%7D&additionalDetails[a]=1",
                "additionalDetails",
            ),
            (
                "tenantId=t1&additionalDetails[a][b]=1&additionalDetails[a]=2",
                "additionalDetails",
            ),
            (
                "tenantId=t1&additionalDetails[a][256]=1",
                "additionalDetails",
            ),
            (
                "tenantId=t1&additionalDetails[a][b][c][d][e][f][g][h][i]=1",
                "additionalDetails",
            ),
        ] {
            let doc = assert_problem(&app.get_token(query).await, 400);
            assert!(
                doc["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{parameter}:")),
                "{protocol:?} {query}: {doc}"
            );
        }
    }
}
