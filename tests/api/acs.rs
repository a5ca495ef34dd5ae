//! AcsTokenFunction end to end: the handler under the host emulator calls a loopback ACS
//! Identity emulator that verifies every request's HMAC signature; in authenticated modes the
//! caller → identity bindings live in Azurite's Table Storage.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::acs_emulator::{AcsEmulator, AcsFault};
use crate::support::azurite::Azurite;
use crate::support::identity_emulator::IdentityEmulator;
use crate::support::keyvault_emulator::KeyVaultEmulator;
use crate::support::*;

const PATH: &str = "/api/AcsTokenFunction";

async fn acs_app(protocol: Protocol, acs: &AcsEmulator, extra: &[(&str, &str)]) -> TestApp {
    let connection = acs.connection_string();
    let mut settings = vec![
        ("ACS_CONNECTION_STRING", connection.as_str()),
        ("ACS_TIMEOUT_MS", "1000"),
    ];
    settings.extend_from_slice(extra);
    TestApp::spawn_with(protocol, &settings).await
}

fn issued(response: &PublicResponse) -> Value {
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let doc = response.json();
    assert!(
        doc["communicationUserId"]
            .as_str()
            .unwrap()
            .starts_with("8:acs:")
    );
    assert!(!doc["token"].as_str().unwrap().is_empty());
    let expires = doc["expiresOn"].as_str().unwrap();
    assert!(
        expires.ends_with("+00:00") && expires.split('.').nth(1).unwrap().len() == 7 + 6,
        "{expires}"
    );
    doc
}

#[tokio::test]
async fn create_then_refresh_with_signed_requests() {
    for protocol in PROTOCOLS {
        let acs = AcsEmulator::start().await;
        let app = acs_app(protocol, &acs, &[]).await;
        let created = issued(&app.send(PublicRequest::post(PATH)).await);
        assert_eq!(
            acs.last_body(),
            json!({"createTokenWithScopes": ["voip"], "expiresInMinutes": 60})
        );

        let id = created["communicationUserId"].as_str().unwrap().to_string();
        let refresh = app
            .send(PublicRequest::post(PATH).json(&json!({"communicationUserId": id, "scopes": ["chat", "voip"], "expiresInMinutes": 1440})))
            .await;
        let refreshed = issued(&refresh);
        assert_eq!(refreshed["communicationUserId"], id.as_str());
        assert_eq!(
            acs.last_body(),
            json!({"scopes": ["chat", "voip"], "expiresInMinutes": 1440})
        );

        let by_get = app
            .host
            .get(&format!(
                "{PATH}?scopes=chat.join,voip.join&expiresInMinutes=90"
            ))
            .await;
        issued(&by_get);
        assert_eq!(
            acs.last_body()["createTokenWithScopes"],
            json!(["chat.join", "voip.join"])
        );

        assert_eq!(acs.signed_requests(), 3);
        assert_eq!(acs.refused_signatures(), 0);
        assert!(
            !app.host.output().contains(&acs.access_key),
            "the access key is never logged"
        );
    }
}

#[tokio::test]
async fn bounds_and_bad_input() {
    let acs = AcsEmulator::start().await;
    for protocol in PROTOCOLS {
        let app = acs_app(protocol, &acs, &[]).await;
        for (target, parameter) in [
            (format!("{PATH}?scopes=video"), "scopes"),
            (format!("{PATH}?scopes="), "scopes"),
            (format!("{PATH}?expiresInMinutes=59"), "expiresInMinutes"),
            (format!("{PATH}?expiresInMinutes=1441"), "expiresInMinutes"),
            (
                format!("{PATH}?communicationUserId=8:acs:x%2F..%2Fy"),
                "communicationUserId",
            ),
        ] {
            let doc = assert_problem(&app.host.get(&target).await, 400);
            assert_eq!(doc["parameter"], parameter, "{target}");
        }
        assert_problem(&app.send(PublicRequest::post(PATH).body("[1]")).await, 400);
        let put = app
            .send(PublicRequest::new(reqwest::Method::PUT, PATH))
            .await;
        assert_eq!(put.header("allow"), Some("GET, POST"));
        assert_problem(&put, 405);
        let unknown = app
            .host
            .get(&format!("{PATH}?communicationUserId=8:acs:nobody_1"))
            .await;
        assert!(
            assert_problem(&unknown, 404)["type"]
                .as_str()
                .unwrap()
                .ends_with("unknown-identity")
        );
    }
}

#[tokio::test]
async fn acs_faults() {
    let acs = AcsEmulator::start().await;
    let app = acs_app(Protocol::Forwarding, &acs, &[]).await;

    acs.fail_next(&[AcsFault::Status(400)]);
    let rejected = assert_problem(&app.send(PublicRequest::post(PATH)).await, 400);
    assert!(
        rejected["detail"]
            .as_str()
            .unwrap()
            .contains("expiresInMinutes value"),
        "ACS's message: {rejected}"
    );

    // Throttling and server errors are retried.
    acs.fail_next(&[AcsFault::Status(429), AcsFault::Status(500)]);
    issued(&app.send(PublicRequest::post(PATH)).await);

    // Until they are not: 503 with Retry-After.
    acs.fail_next(&[AcsFault::Status(503); 3]);
    let unavailable = app.send(PublicRequest::post(PATH)).await;
    assert!(
        assert_problem(&unavailable, 503)["type"]
            .as_str()
            .unwrap()
            .ends_with("acs-unavailable")
    );
    assert!(unavailable.header("retry-after").is_some());

    // Slow ACS: cut off by ACS_TIMEOUT_MS on every try.
    acs.fail_next(&[AcsFault::Delay(Duration::from_secs(30)); 3]);
    let started = Instant::now();
    assert_problem(&app.send(PublicRequest::post(PATH)).await, 503);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // 401/403: a key problem, logged clearly, 503 for the caller.
    acs.fail_next(&[AcsFault::Status(401)]);
    assert_problem(&app.send(PublicRequest::post(PATH)).await, 503);
    app.host.wait_for_output("check the access key").await;
}

#[tokio::test]
async fn a_wrong_access_key_is_refused_by_acs() {
    let acs = AcsEmulator::start().await;
    let wrong = format!(
        "endpoint={}/;accesskey={}",
        acs.endpoint,
        base64::engine::general_purpose::STANDARD.encode("not-the-resource-access-key")
    );
    let app = TestApp::spawn_with(
        Protocol::Forwarding,
        &[("ACS_CONNECTION_STRING", wrong.as_str())],
    )
    .await;
    assert_problem(&app.send(PublicRequest::post(PATH)).await, 503);
    assert_eq!(acs.refused_signatures(), 1);
    assert_eq!(acs.signed_requests(), 0);
}

#[tokio::test]
async fn without_acs_settings_the_function_says_so() {
    let app = TestApp::spawn(Protocol::Forwarding).await;
    let doc = assert_problem(&app.send(PublicRequest::post(PATH)).await, 404);
    assert!(
        doc["type"]
            .as_str()
            .unwrap()
            .ends_with("acs-not-configured")
    );
}

fn principal(oid: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(
        json!({"auth_typ": "aad", "claims": [{"typ": "oid", "val": oid}, {"typ": "name", "val": oid}]}).to_string(),
    )
}

fn as_user(request: PublicRequest, oid: &str) -> PublicRequest {
    request.header("X-MS-CLIENT-PRINCIPAL", &principal(oid))
}

#[tokio::test]
async fn callers_refresh_only_identities_they_created() {
    let azurite = Azurite::start().await;
    let acs = AcsEmulator::start().await;
    for protocol in PROTOCOLS {
        let app = acs_app(
            protocol,
            &acs,
            &[
                ("AUTH_MODE", "easyauth"),
                ("AzureWebJobsStorage", azurite.connection_string.as_str()),
            ],
        )
        .await;
        assert_eq!(
            app.send(PublicRequest::post(PATH)).await.status,
            401,
            "a caller is required"
        );

        let ann = issued(
            &app.send(as_user(PublicRequest::post(PATH), "oid-ann"))
                .await,
        );
        let id = ann["communicationUserId"].as_str().unwrap();
        let refresh = |oid: &'static str| {
            as_user(
                PublicRequest::post(PATH).json(&json!({"communicationUserId": id})),
                oid,
            )
        };
        issued(&app.send(refresh("oid-ann")).await);
        let stolen = app.send(refresh("oid-bob")).await;
        assert!(
            assert_problem(&stolen, 403)["detail"]
                .as_str()
                .unwrap()
                .contains("communicationUserId")
        );

        // An identity nobody bound (even one ACS knows) is nobody's to refresh.
        let other = issued(
            &app.send(as_user(PublicRequest::post(PATH), "oid-carol"))
                .await,
        );
        let foreign = as_user(
            PublicRequest::post(PATH)
                .json(&json!({"communicationUserId": other["communicationUserId"]})),
            "oid-ann",
        );
        assert_problem(&app.send(foreign).await, 403);
        assert!(!app.host.output().contains(&acs.access_key));
    }
}

#[tokio::test]
async fn the_connection_string_can_come_from_key_vault() {
    let acs = AcsEmulator::start().await;
    let identity = IdentityEmulator::start().await;
    let vault = KeyVaultEmulator::start(&identity.token).await;
    vault.set_secret("acs-connection", &acs.connection_string());
    let vault_settings = vault.app_settings(&identity);
    let mut settings: Vec<(&str, &str)> = vault_settings
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .collect();
    settings.push(("ACS_CONNECTION_STRING_SECRET_NAME", "acs-connection"));
    let app = TestApp::spawn_with(Protocol::Forwarding, &settings).await;
    issued(&app.send(PublicRequest::post(PATH)).await);
    issued(&app.send(PublicRequest::post(PATH)).await);
    assert_eq!(vault.reads("acs-connection"), 1, "read once, then cached");
    assert!(!app.host.output().contains(&acs.access_key));
}

/// The emulator's own check, so the tests above can fail: a request signed by the production
/// signer passes, and the same request with a tampered body, a tampered path or a date more than
/// 15 minutes off is refused.
#[tokio::test]
async fn the_emulator_refuses_tampered_and_stale_requests() {
    use fluid_token_service::acs::connection::AcsConnection;
    use fluid_token_service::acs::signing::sign;

    let acs = AcsEmulator::start().await;
    let connection = AcsConnection::parse(&acs.connection_string()).unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let path = "/identities?api-version=2023-10-01";
    let body = br#"{"createTokenWithScopes":["voip"],"expiresInMinutes":60}"#;
    let send = |signed_path: &'static str,
                sent_path: &'static str,
                date: String,
                sent_body: &'static [u8]| {
        let signed = sign(
            &connection.key,
            "POST",
            signed_path,
            &connection.host,
            &date,
            body,
        );
        let request = client
            .post(format!("{}{sent_path}", connection.endpoint))
            .header("x-ms-date", signed.date)
            .header("x-ms-content-sha256", signed.content_sha256)
            .header("authorization", signed.authorization)
            .body(sent_body.to_vec());
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let now = httpdate::fmt_http_date(std::time::SystemTime::now());
    let stale =
        httpdate::fmt_http_date(std::time::SystemTime::now() - Duration::from_secs(16 * 60));
    assert_eq!(send(path, path, now.clone(), body).await, 201);
    assert_eq!(
        send(
            path,
            path,
            now.clone(),
            br#"{"createTokenWithScopes":["chat"],"expiresInMinutes":60}"#
        )
        .await,
        401
    );
    assert_eq!(
        send(path, "/identities?api-version=2023-10-01&x=1", now, body).await,
        401
    );
    assert_eq!(send(path, path, stale, body).await, 401);
    assert_eq!((acs.signed_requests(), acs.refused_signatures()), (1, 3));
}
