//! AcsTokenFunction end to end: the handler under the host emulator calls a loopback ACS
//! Identity emulator that verifies every request's HMAC signature; in authenticated modes the
//! caller → identity bindings live in Azurite's Table Storage.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::acs_emulator::{AcsEmulator, AcsFault};
use crate::support::azurite::Azurite;
use crate::support::identity_emulator::IdentityEmulator;
use crate::support::keyvault_emulator::{Fault, KeyVaultEmulator};
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

/// An app whose callers sign in with Easy Auth, its identity bindings in `azurite`.
async fn signed_in_acs_app(protocol: Protocol, acs: &AcsEmulator, azurite: &Azurite) -> TestApp {
    acs_app(
        protocol,
        acs,
        &[
            ("AUTH_MODE", "easyauth"),
            ("WEBSITE_AUTH_ENABLED", "True"),
            ("AzureWebJobsStorage", azurite.connection_string.as_str()),
        ],
    )
    .await
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
        let mut app = acs_app(protocol, &acs, &[]).await;
        let created = issued(&app.send(PublicRequest::post(PATH)).await);
        assert_eq!(
            acs.last_body(),
            json!({"createTokenWithScopes": ["voip"], "expiresInMinutes": 60})
        );
        assert_eq!(created, acs.last_answer(), "exactly what ACS answered");

        let id = created["communicationUserId"].as_str().unwrap().to_string();
        let refresh = app
            .send(PublicRequest::post(PATH).json(&json!({"communicationUserId": id, "scopes": ["chat", "voip"], "expiresInMinutes": 1440})))
            .await;
        let refreshed = issued(&refresh);
        assert_eq!(refreshed["communicationUserId"], id.as_str());
        assert_eq!(refreshed, acs.last_answer());
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
            !app.host.finish().await.contains(&acs.access_key),
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

    // Throttling is retried, for a create too (ACS did not process the request).
    acs.fail_next(&[AcsFault::Status(429)]);
    let created = issued(&app.send(PublicRequest::post(PATH)).await);
    let identity = created["communicationUserId"].as_str().unwrap().to_string();

    // A server error on a create is not: ACS may have created the identity before failing, and
    // a retry would create a second one.
    let before = acs.signed_requests();
    acs.fail_next(&[AcsFault::Status(500)]);
    assert_problem(&app.send(PublicRequest::post(PATH)).await, 503);
    assert_eq!(acs.signed_requests(), before + 1, "one create, not retried");

    // Issuing a token for an existing identity is idempotent: server errors are retried.
    let refresh =
        || PublicRequest::post(PATH).json(&serde_json::json!({ "communicationUserId": identity }));
    acs.fail_next(&[AcsFault::Status(429), AcsFault::Status(500)]);
    issued(&app.send(refresh()).await);

    // Until they are not: 503 with Retry-After.
    acs.fail_next(&[AcsFault::Status(503); 3]);
    let unavailable = app.send(refresh()).await;
    assert!(
        assert_problem(&unavailable, 503)["type"]
            .as_str()
            .unwrap()
            .ends_with("acs-unavailable")
    );
    assert!(unavailable.header("retry-after").is_some());

    // Slow ACS: cut off by ACS_TIMEOUT_MS on every try (a create is tried once).
    acs.fail_next(&[AcsFault::Delay(Duration::from_secs(30)); 4]);
    let started = Instant::now();
    assert_problem(&app.send(refresh()).await, 503);
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
    easyauth_principal(&[("oid", oid), ("name", oid)])
}

fn as_user(request: PublicRequest, oid: &str) -> PublicRequest {
    request.header("X-MS-CLIENT-PRINCIPAL", &principal(oid))
}

#[tokio::test]
async fn callers_refresh_only_identities_they_created() {
    let azurite = Azurite::start().await;
    let acs = AcsEmulator::start().await;
    for protocol in PROTOCOLS {
        let app = signed_in_acs_app(protocol, &acs, &azurite).await;
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

        // An identity nobody bound (one ACS knows, created by another app of the resource) is
        // nobody's to refresh: 403, and ACS is not asked.
        let elsewhere = acs.create_identity_elsewhere();
        let before = acs.signed_requests();
        let foreign = as_user(
            PublicRequest::post(PATH).json(&json!({"communicationUserId": elsewhere})),
            "oid-ann",
        );
        assert_problem_type(&app.send(foreign).await, 403, "forbidden");
        assert_eq!(acs.signed_requests(), before, "no token was asked of ACS");
        // And one another caller created is not Ann's either.
        let other = issued(
            &app.send(as_user(PublicRequest::post(PATH), "oid-carol"))
                .await,
        );
        let theirs = as_user(
            PublicRequest::post(PATH)
                .json(&json!({"communicationUserId": other["communicationUserId"]})),
            "oid-ann",
        );
        assert_problem(&app.send(theirs).await, 403);
        assert!(!app.host.output().contains(&acs.access_key));
    }
}

/// An app whose ACS connection string is the Key Vault secret `acs-connection` (the vault failing
/// with `fault` from the start), with `extra` settings.
async fn acs_in_vault(
    extra: &[(&str, &str)],
    fault: Option<Fault>,
) -> (TestApp, AcsEmulator, KeyVaultEmulator) {
    let acs = AcsEmulator::start().await;
    let identity = IdentityEmulator::start().await;
    let vault = KeyVaultEmulator::start(&identity.token).await;
    vault.set_secret("acs-connection", &acs.connection_string());
    vault.set_fault(fault);
    let vault_settings = vault.app_settings(&identity);
    let mut settings: Vec<(&str, &str)> = vault_settings
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .collect();
    settings.push(("ACS_CONNECTION_STRING_SECRET_NAME", "acs-connection"));
    settings.extend_from_slice(extra);
    let app = TestApp::spawn_with(Protocol::Forwarding, &settings).await;
    (app, acs, vault)
}

#[tokio::test]
async fn the_connection_string_can_come_from_key_vault() {
    let (app, acs, vault) = acs_in_vault(
        &[
            ("KEY_CACHE_TTL_SECONDS", "1"),
            ("KEY_VAULT_TIMEOUT_MS", "500"),
        ],
        None,
    )
    .await;
    issued(&app.send(PublicRequest::post(PATH)).await);
    issued(&app.send(PublicRequest::post(PATH)).await);
    assert_eq!(vault.reads("acs-connection"), 1, "read once, then cached");

    // After the TTL it is read again (a regenerated key is picked up) — once for concurrent
    // requests.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let concurrent: Vec<_> = (0..5)
        .map(|_| app.send(PublicRequest::post(PATH)))
        .collect();
    for response in futures_util::future::join_all(concurrent).await {
        issued(&response);
    }
    assert_eq!(
        vault.reads("acs-connection"),
        2,
        "re-read after the TTL, single-flight"
    );

    // The vault slow or down after that: the last good connection keeps serving, and no request
    // waits past KEY_VAULT_TIMEOUT_MS for the vault.
    vault.set_fault(Some(Fault::Delay(Duration::from_secs(30))));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let started = Instant::now();
    issued(&app.send(PublicRequest::post(PATH)).await);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(!app.host.output().contains(&acs.access_key));
}

/// Never read yet and the vault is slow: the ACS request fails with 503 within the vault
/// deadline, not after the SDK's own timeouts.
#[tokio::test]
async fn a_slow_vault_costs_an_acs_request_no_more_than_the_deadline() {
    let (app, _acs, _vault) = acs_in_vault(
        &[("KEY_VAULT_TIMEOUT_MS", "500")],
        Some(Fault::Delay(Duration::from_secs(30))),
    )
    .await;
    let started = Instant::now();
    let response = app.send(PublicRequest::post(PATH)).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        assert_problem(&response, 503)["type"]
            .as_str()
            .unwrap()
            .ends_with("acs-unavailable")
    );
    assert!(response.header("retry-after").is_some());
    // Backing off: the next request does not wait for the vault again.
    let started = Instant::now();
    assert_problem(&app.send(PublicRequest::post(PATH)).await, 503);
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
}

/// The emulator's own check, so the tests above can fail: a request signed by the production
/// signer passes, and the same request with a tampered body, a tampered path or a date more than
/// 15 minutes off is refused.
#[tokio::test]
async fn the_emulator_refuses_tampered_and_stale_requests() {
    use fluid_token_service::acs::connection::{AcsAuth, AcsConnection};
    use fluid_token_service::acs::signing::sign;

    let acs = AcsEmulator::start().await;
    let connection = AcsConnection::parse(&acs.connection_string()).unwrap();
    let AcsAuth::AccessKey(key) = &connection.auth else {
        panic!("a connection string carries an access key")
    };
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let path = "/identities?api-version=2026-09-23";
    let body = br#"{"createTokenWithScopes":["voip"],"expiresInMinutes":60}"#;
    let send = |signed_path: &'static str,
                sent_path: &'static str,
                date: String,
                sent_body: &'static [u8]| {
        let signed = sign(key, "POST", signed_path, &connection.host, &date, body);
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
        send(path, "/identities?api-version=2026-09-23&x=1", now, body).await,
        401
    );
    assert_eq!(send(path, path, stale, body).await, 401);
    assert_eq!((acs.signed_requests(), acs.refused_signatures()), (1, 3));
}

/// A signed-in caller keeps one identity: later requests without `communicationUserId` get
/// tokens for it, `newIdentity=true` makes another; `POST ?action=revoke` revokes its tokens and
/// `?action=delete` deletes it and its binding — only for its owner (404 for anyone else).
#[tokio::test]
async fn callers_keep_their_identity_and_can_revoke_or_delete_it() {
    let azurite = Azurite::start().await;
    let acs = AcsEmulator::start().await;
    for (n, protocol) in PROTOCOLS.into_iter().enumerate() {
        let app = signed_in_acs_app(protocol, &acs, &azurite).await;
        let (dana, eve) = (format!("oid-dana-{n}"), format!("oid-eve-{n}"));
        let post =
            |query: &str, oid: &str| as_user(PublicRequest::post(format!("{PATH}{query}")), oid);
        let first = issued(&app.send(post("", &dana)).await);
        let identity = first["communicationUserId"].as_str().unwrap().to_string();
        let again = issued(&app.send(post("", &dana)).await);
        assert_eq!(
            again["communicationUserId"], identity,
            "{protocol:?}: the same identity"
        );
        assert_eq!(
            again,
            acs.last_answer(),
            "a token issued for it, not a new identity"
        );
        assert!(
            again["token"]
                .as_str()
                .unwrap()
                .starts_with("acs-user-token-refreshed")
        );

        // Nobody else can revoke or delete it, nor learn that it exists.
        let foreign = |action: &str| {
            as_user(
                PublicRequest::post(format!("{PATH}?action={action}"))
                    .json(&json!({ "communicationUserId": identity })),
                &eve,
            )
        };
        for action in ["revoke", "delete"] {
            let doc = assert_problem(&app.send(foreign(action)).await, 404);
            assert!(
                doc["type"].as_str().unwrap().ends_with("unknown-identity"),
                "{doc}"
            );
            assert_problem(
                &app.send(post(&format!("?action={action}"), &eve)).await,
                404,
            );
        }
        assert!(acs.exists(&identity) && acs.revoked().is_empty());
        // Actions change state: POST only.
        let get = as_user(PublicRequest::get(format!("{PATH}?action=revoke")), &dana);
        let refused = app.send(get).await;
        assert_problem(&refused, 405);
        assert_eq!(refused.header("allow"), Some("POST"));

        let revoked = app.send(post("?action=revoke", &dana)).await;
        assert_eq!(revoked.status, 200, "{}", revoked.text());
        assert_eq!(
            revoked.json(),
            json!({ "communicationUserId": identity, "action": "revoked" })
        );
        assert_eq!(acs.revoked(), std::slice::from_ref(&identity));

        let deleted = app.send(post("?action=delete", &dana)).await;
        assert_eq!(
            deleted.json(),
            json!({ "communicationUserId": identity, "action": "deleted" })
        );
        assert!(!acs.exists(&identity), "deleted at ACS");
        // The binding went with it: the next request creates a new identity.
        let fresh = issued(&app.send(post("", &dana)).await);
        let fresh_id = fresh["communicationUserId"].as_str().unwrap().to_string();
        assert_ne!(fresh_id, identity);
        let stale = as_user(
            PublicRequest::post(PATH).json(&json!({ "communicationUserId": identity })),
            &dana,
        );
        assert_problem(&app.send(stale).await, 403);

        // newIdentity=true: another identity even though the caller has one.
        let extra = issued(&app.send(post("?newIdentity=true", &dana)).await);
        assert_ne!(extra["communicationUserId"], fresh_id);
        acs.clear_revoked();

        // The audit trail: every token and every change, with the caller, never a token.
        let extra_id = extra["communicationUserId"].as_str().unwrap();
        let output = app.host.wait_for_output(extra_id).await;
        let audit = |kind: &str| -> Vec<Value> {
            output
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|l| l["audit"] == kind)
                .collect()
        };
        let tokens = audit("acs-token");
        assert_eq!(tokens.len(), 4, "{output}");
        assert!(tokens.iter().all(|t| t["caller"] == dana.as_str()
            && t["message"] == "request"
            && t["status"] == 200
            && t["scopes"] == "voip"));
        assert_eq!(tokens[3]["communication_user_id"], extra_id);
        assert_eq!(tokens[3]["expires_on"], extra["expiresOn"]);
        let changes: Vec<(Value, Value)> = audit("acs-identity")
            .into_iter()
            .map(|c| (c["action"].clone(), c["communication_user_id"].clone()))
            .collect();
        assert_eq!(
            changes,
            [
                (json!("revoked"), json!(identity)),
                (json!("deleted"), json!(identity))
            ]
        );
        assert!(
            !output.contains("acs-user-token"),
            "no ACS token in the log"
        );
    }
}

/// Without a signed-in caller there is no owner: revoke and delete are refused.
#[tokio::test]
async fn revoke_and_delete_need_a_signed_in_caller() {
    let acs = AcsEmulator::start().await;
    let app = acs_app(Protocol::Forwarding, &acs, &[]).await;
    let identity =
        issued(&app.send(PublicRequest::post(PATH)).await)["communicationUserId"].clone();
    for action in ["revoke", "delete"] {
        let request = PublicRequest::post(format!("{PATH}?action={action}"))
            .json(&json!({ "communicationUserId": identity }));
        let doc = assert_problem(&app.send(request).await, 403);
        assert!(
            doc["detail"].as_str().unwrap().contains("signed-in caller"),
            "{doc}"
        );
    }
    assert!(acs.revoked().is_empty());
    assert!(acs.exists(identity.as_str().unwrap()));
}

/// Keyless: no account key and no ACS access key anywhere in the settings. The bindings live in
/// an Azurite that takes bearer tokens (HTTPS, OAuth mode) and ACS takes the app identity's token
/// for Communication Services; both come from the managed identity emulator, each bound to its
/// resource — a handler asking for the wrong resource would be refused by both.
#[tokio::test]
async fn keyless_storage_and_acs_with_the_app_identity() {
    use crate::support::identity_emulator::{ACS_RESOURCE, STORAGE_RESOURCE};
    use crate::support::loopback_server::TestCertificate;

    let certificate = TestCertificate::new();
    let azurite = Azurite::start_with_oauth(&certificate).await;
    let identity = IdentityEmulator::start().await;
    let acs = AcsEmulator::start_accepting(Some(identity.token_for(ACS_RESOURCE))).await;
    let cert_file = certificate.pem_file.path().to_str().unwrap().to_string();
    for protocol in PROTOCOLS {
        let app = TestApp::spawn_with(
            protocol,
            &[
                ("AUTH_MODE", "easyauth"),
                ("WEBSITE_AUTH_ENABLED", "True"),
                ("ACS_ENDPOINT", acs.endpoint.as_str()),
                (
                    "AzureWebJobsStorage__tableServiceUri",
                    azurite.table_endpoint.as_str(),
                ),
                ("IDENTITY_ENDPOINT", identity.endpoint.as_str()),
                ("IDENTITY_HEADER", identity.header.as_str()),
                ("SSL_CERT_FILE", cert_file.as_str()),
                ("ACS_TIMEOUT_MS", "5000"),
            ],
        )
        .await;
        let before = (acs.bearer_requests(), acs.signed_requests());
        let created = issued(
            &app.send(as_user(PublicRequest::post(PATH), "oid-keyless"))
                .await,
        );
        let again = issued(
            &app.send(as_user(PublicRequest::post(PATH), "oid-keyless"))
                .await,
        );
        assert_eq!(
            again["communicationUserId"], created["communicationUserId"],
            "{protocol:?}: the binding was stored and read with bearer tokens"
        );
        let bearer = acs.bearer_requests() - before.0;
        assert!(
            bearer >= 1 && bearer == acs.signed_requests() - before.1,
            "every ACS call used the bearer"
        );
        let output = app.host.output();
        for secret in [
            identity.token_for(ACS_RESOURCE),
            identity.token_for(STORAGE_RESOURCE),
            identity.header.clone(),
        ] {
            assert!(!output.contains(&secret), "a token is in the output");
        }
    }
    // The same storage refuses what is not a storage token: the handler cannot have passed by
    // sending none, or the vault's.
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(certificate.pem_file.path()).unwrap())
                .unwrap(),
        )
        .build()
        .unwrap();
    for authorization in [
        None,
        Some(format!(
            "Bearer {}",
            identity.token_for("https://vault.azure.net")
        )),
    ] {
        let mut request = client
            .get(format!("{}/Tables", azurite.table_endpoint))
            .header("x-ms-version", "2019-02-02")
            .header(
                "x-ms-date",
                httpdate::fmt_http_date(std::time::SystemTime::now()),
            );
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        let status = request.send().await.unwrap().status().as_u16();
        assert!(
            status == 401 || status == 403,
            "{authorization:?}: {status}"
        );
    }
}
