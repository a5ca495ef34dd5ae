//! Caller authentication and the token policy: Entra ID access tokens validated against a
//! loopback OpenID/JWKS emulator, App Service Authentication principals, identity binding and
//! the tenant/scope limits, through the host emulator in both protocol modes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::support::openid_emulator::{AUDIENCE, OpenIdEmulator, SigningKey, TENANT_ID};
use crate::support::*;

async fn entra_app(protocol: Protocol, idp: &OpenIdEmulator, extra: &[(&str, &str)]) -> TestApp {
    let mut settings = vec![
        ("AUTH_MODE", "entra"),
        ("ENTRA_AUTHORITY", idp.authority.as_str()),
        ("ENTRA_TENANT_ID", TENANT_ID),
        ("ENTRA_AUDIENCE", AUDIENCE),
        ("ENTRA_REQUIRED_SCOPE", "Token.Issue"),
    ];
    settings.extend_from_slice(extra);
    TestApp::spawn_with(protocol, &settings).await
}

async fn with_bearer(app: &TestApp, query: &str, token: &str) -> PublicResponse {
    app.send(
        PublicRequest::get(format!("/api/TokenFunction?{query}"))
            .header("Authorization", &format!("Bearer {token}")),
    )
    .await
}

fn assert_unauthenticated(response: &PublicResponse, invalid_token: bool) -> Value {
    let doc = assert_problem(response, 401);
    let expected = if invalid_token {
        "Bearer error=\"invalid_token\""
    } else {
        "Bearer"
    };
    assert_eq!(response.header("www-authenticate"), Some(expected), "{doc}");
    doc
}

#[tokio::test]
async fn a_valid_access_token_gets_a_token_for_its_own_user() {
    let idp = OpenIdEmulator::start().await;
    for protocol in PROTOCOLS {
        let mut app = entra_app(protocol, &idp, &[]).await;
        let token = idp.token("oid-ann", json!({}));
        // userName from the request is ignored; userId may only repeat the caller's own id.
        let response = with_bearer(&app, "tenantId=t1&documentId=d&userName=Mallory", &token).await;
        assert_eq!(response.status, 200, "{protocol:?}: {}", response.text());
        let claims = verify(&response.text(), KEY).unwrap();
        assert_eq!(
            claims["user"],
            json!({"id": "oid-ann", "name": "Name of oid-ann"})
        );
        assert_eq!(
            with_bearer(&app, "tenantId=t1&userId=oid-ann", &token)
                .await
                .status,
            200
        );

        let impersonation = with_bearer(&app, "tenantId=t1&userId=oid-bob", &token).await;
        let doc = assert_problem(&impersonation, 403);
        assert!(doc["detail"].as_str().unwrap().contains("userId"));

        // additionalDetails are kept.
        let details = with_bearer(
            &app,
            "tenantId=t1&additionalDetails=%7B%22avatar%22%3A%22a.png%22%7D",
            &token,
        )
        .await;
        assert_eq!(
            claims_of(&details)["user"]["additionalDetails"],
            json!({"avatar": "a.png"})
        );
        assert!(
            !app.host.finish().await.contains(&token),
            "the access token is never logged"
        );
    }
}

fn claims_of(response: &PublicResponse) -> Value {
    assert_eq!(response.status, 200, "{}", response.text());
    claims(&response.text())
}

#[tokio::test]
async fn missing_and_malformed_tokens_are_401() {
    let idp = OpenIdEmulator::start().await;
    for protocol in PROTOCOLS {
        let app = entra_app(protocol, &idp, &[]).await;
        // 401 before anything else: not even a missing tenantId is revealed.
        assert_unauthenticated(&app.get_token("").await, false);
        let basic = app
            .send(
                PublicRequest::get("/api/TokenFunction?tenantId=t1")
                    .header("Authorization", "Basic dXNlcjpwYXNz"),
            )
            .await;
        assert_unauthenticated(&basic, false);
        let oversized_header = format!(
            "{}.e30.c2ln",
            URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "kid": "x".repeat(9000)}).to_string())
        );
        for garbage in [
            "not-a-jwt",
            "abc.def.ghi",
            "%%%.%%%.%%%",
            &format!(
                "{}.{}.sig",
                URL_SAFE_NO_PAD.encode("{not json"),
                URL_SAFE_NO_PAD.encode("{}")
            ),
            &oversized_header,
        ] {
            assert_unauthenticated(&with_bearer(&app, "tenantId=t1", garbage).await, true);
        }
    }
}

#[tokio::test]
async fn forged_and_confused_tokens_are_401() {
    for protocol in PROTOCOLS {
        forged_and_confused_tokens(protocol).await;
    }
}

async fn forged_and_confused_tokens(protocol: Protocol) {
    let idp = OpenIdEmulator::start().await;
    let app = entra_app(protocol, &idp, &[]).await;
    let claims = idp.claims("oid-eve", json!({}));
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());

    // alg none
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"kid-1"}"#)
    );
    assert_unauthenticated(&with_bearer(&app, "tenantId=t1", &none).await, true);

    // HS256 keyed with the public key (algorithm confusion)
    let published = {
        let jwks: Value =
            reqwest::get(format!("{}/{TENANT_ID}/discovery/v2.0/keys", idp.authority))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        jwks["keys"][0].to_string()
    };
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some("kid-1".into());
    let public_der = idp.published_key_der();
    for secret in [published.as_bytes(), public_der.as_slice()] {
        let confused = jsonwebtoken::encode(
            &hs_header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap();
        assert_unauthenticated(&with_bearer(&app, "tenantId=t1", &confused).await, true);
    }

    // Signed by a key that is not the tenant's, claiming the tenant key's kid.
    let attacker = SigningKey::generate("kid-1");
    assert_unauthenticated(
        &with_bearer(&app, "tenantId=t1", &attacker.sign("kid-1", &claims)).await,
        true,
    );

    // A tampered payload under a genuine signature.
    let genuine = idp.token("oid-eve", json!({}));
    let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(idp.claims("oid-admin", json!({})).to_string());
    let tampered = assert_unauthenticated(
        &with_bearer(&app, "tenantId=t1", &parts.join(".")).await,
        true,
    );
    assert_eq!(
        tampered["detail"],
        "The access token's signature is invalid."
    );
    assert_eq!(with_bearer(&app, "tenantId=t1", &genuine).await.status, 200);
}

#[tokio::test]
async fn time_issuer_audience_and_scope_are_checked() {
    for protocol in PROTOCOLS {
        claim_checks(protocol).await;
    }
}

async fn claim_checks(protocol: Protocol) {
    let idp = OpenIdEmulator::start().await;
    let app = entra_app(protocol, &idp, &[]).await;
    let t = now();
    // Refusals say why (RFC 6750 error_description style); "" where the reason is not pinned.
    for (claims, expected, why) in [
        (json!({"exp": t - 120}), 401, "has expired"),
        (json!({"exp": t - 30}), 200, ""), // within the 60 s skew
        (json!({"nbf": t + 120}), 401, "not valid yet"),
        (json!({"nbf": t + 30}), 200, ""),
        (json!({"exp": null}), 401, "is invalid"),
        (
            json!({"iss": "https://login.microsoftonline.com/another-tenant/v2.0"}),
            401,
            "(iss)",
        ),
        (json!({"iss": null}), 401, "lacks a required claim"),
        (json!({"aud": "api://someone-else"}), 401, "(aud)"),
        (json!({"aud": [AUDIENCE, "api://other"]}), 200, ""),
        (json!({"scp": "User.Read"}), 403, ""),
        (json!({"scp": null}), 403, ""),
        (json!({"scp": null, "roles": ["Token.Issue"]}), 200, ""),
        (json!({"scp": "Token.IssueX Token"}), 403, ""),
        (json!({"oid": null}), 200, ""), // falls back to sub
        (
            json!({"oid": null, "sub": null}),
            401,
            "neither oid nor sub",
        ),
    ] {
        let response = with_bearer(&app, "tenantId=t1", &idp.token("oid-x", claims.clone())).await;
        assert_eq!(
            response.status,
            expected,
            "{protocol:?} {claims}: {}",
            response.text()
        );
        let doc = match expected {
            401 => assert_unauthenticated(&response, true),
            403 => assert_problem(&response, 403),
            _ => continue,
        };
        let detail = doc["detail"].as_str().unwrap();
        assert!(detail.contains(why), "{claims}: {detail}");
    }
    let by_sub = with_bearer(
        &app,
        "tenantId=t1",
        &idp.token("oid-y", json!({"oid": null})),
    )
    .await;
    assert_eq!(claims_of(&by_sub)["user"]["id"], "sub-of-oid-y");
    let by_username = with_bearer(
        &app,
        "tenantId=t1",
        &idp.token("oid-z", json!({"name": null})),
    )
    .await;
    assert_eq!(
        claims_of(&by_username)["user"]["name"],
        "oid-z@contoso.example"
    );
}

#[tokio::test]
async fn signing_key_rotation_is_picked_up_and_refreshes_are_rate_limited() {
    for protocol in PROTOCOLS {
        key_rotation(protocol).await;
    }
}

async fn key_rotation(protocol: Protocol) {
    let idp = OpenIdEmulator::start().await;
    let app = entra_app(protocol, &idp, &[]).await;
    assert_eq!(
        with_bearer(&app, "tenantId=t1", &idp.token("u", json!({})))
            .await
            .status,
        200
    );
    let before = idp.jwks_fetches();

    // Entra publishes a new key and starts signing with it.
    let rotated = SigningKey::generate("kid-2");
    let token = rotated.sign("kid-2", &idp.claims("u", json!({})));
    idp.publish(rotated);
    assert_eq!(
        with_bearer(&app, "tenantId=t1", &token).await.status,
        200,
        "new kid fetched"
    );
    assert_eq!(idp.jwks_fetches(), before + 1);

    // Unknown kids within the minute do not make us fetch again.
    for kid in ["kid-3", "kid-4", "kid-5"] {
        let stranger = SigningKey::generate(kid);
        let forged = stranger.sign(kid, &idp.claims("u", json!({})));
        assert_unauthenticated(&with_bearer(&app, "tenantId=t1", &forged).await, true);
    }
    assert_eq!(idp.jwks_fetches(), before + 1);
    assert_eq!(with_bearer(&app, "tenantId=t1", &token).await.status, 200);
}

/// A JWKS may hold keys for other uses (encryption) or of other types; only RSA signing keys
/// may verify a token, whatever `n` and `e` the others carry.
#[tokio::test]
async fn only_rsa_signing_keys_of_the_jwks_verify_tokens() {
    let idp = OpenIdEmulator::start().await;
    let app = entra_app(Protocol::Forwarding, &idp, &[]).await;
    let mut forged = Vec::new();
    for (kid, kty, usage) in [("kid-enc", "RSA", "enc"), ("kid-oct", "oct", "sig")] {
        let key = SigningKey::generate(kid).published_as(kty, usage);
        forged.push(key.sign(kid, &idp.claims("u", json!({}))));
        idp.publish(key);
    }
    for token in &forged {
        assert_unauthenticated(&with_bearer(&app, "tenantId=t1", token).await, true);
    }
    // The published signing key still verifies.
    let signed = idp.token("u", json!({}));
    assert_eq!(with_bearer(&app, "tenantId=t1", &signed).await.status, 200);
}

#[tokio::test]
async fn an_unreachable_identity_provider_is_503() {
    for protocol in PROTOCOLS {
        unreachable_identity_provider(protocol).await;
    }
}

async fn unreachable_identity_provider(protocol: Protocol) {
    let closed = format!("http://127.0.0.1:{}", ports::free_port());
    let settings = [
        ("AUTH_MODE", "entra"),
        ("ENTRA_AUTHORITY", closed.as_str()),
        ("ENTRA_TENANT_ID", TENANT_ID),
        ("ENTRA_AUDIENCE", AUDIENCE),
        ("ENTRA_REQUIRED_SCOPE", "Token.Issue"),
    ];
    let app = TestApp::spawn_with(protocol, &settings).await;
    let idp = OpenIdEmulator::start().await;
    let response = with_bearer(&app, "tenantId=t1", &idp.token("u", json!({}))).await;
    let doc = assert_problem(&response, 503);
    assert!(
        doc["type"]
            .as_str()
            .unwrap()
            .ends_with("identity-provider-unavailable")
    );
    assert!(response.header("retry-after").is_some());
}

fn easyauth_request(query: &str, principal: &str) -> PublicRequest {
    PublicRequest::get(format!("/api/TokenFunction?{query}"))
        .header("X-MS-CLIENT-PRINCIPAL", principal)
        .header("X-MS-CLIENT-PRINCIPAL-ID", "oid-ann")
        .header("X-MS-CLIENT-PRINCIPAL-NAME", "ann@contoso.example")
        .header("X-MS-CLIENT-PRINCIPAL-IDP", "aad")
}

#[tokio::test]
async fn easy_auth_principals() {
    let ann = easyauth_principal(&[
        (
            "http://schemas.microsoft.com/identity/claims/objectidentifier",
            "oid-ann",
        ),
        ("name", "Ann Smith"),
        ("preferred_username", "ann@contoso.example"),
    ]);
    for protocol in PROTOCOLS {
        let app = TestApp::spawn_with(
            protocol,
            &[("AUTH_MODE", "easyauth"), ("WEBSITE_AUTH_ENABLED", "True")],
        )
        .await;
        let ok = app
            .send(easyauth_request("tenantId=t1&userName=Mallory", &ann))
            .await;
        assert_eq!(
            claims_of(&ok)["user"],
            json!({"id": "oid-ann", "name": "Ann Smith"}),
            "{protocol:?}"
        );
        verify(&ok.text(), KEY).unwrap();

        let impersonation = app
            .send(easyauth_request("tenantId=t1&userId=oid-bob", &ann))
            .await;
        assert_problem(&impersonation, 403);

        assert_unauthenticated(&app.get_token("tenantId=t1&userId=oid-ann").await, false);
        let malformed = app
            .send(
                PublicRequest::get("/api/TokenFunction?tenantId=t1")
                    .header("X-MS-CLIENT-PRINCIPAL", "{not base64}"),
            )
            .await;
        assert_unauthenticated(&malformed, false);
    }
}

#[tokio::test]
async fn policy_limits_tenants_and_scopes_without_revealing_tenants() {
    for protocol in PROTOCOLS {
        policy_limits(protocol).await;
    }
}

async fn policy_limits(protocol: Protocol) {
    let ann = easyauth_principal(&[("oid", "oid-ann"), ("name", "Ann")]);
    let app = TestApp::spawn_with(
        protocol,
        &[
            ("AUTH_MODE", "easyauth"),
            ("WEBSITE_AUTH_ENABLED", "True"),
            ("ALLOWED_TENANTS", "t1"),
            ("ALLOWED_SCOPES", "doc:read,doc:write"),
            ("ALLOW_CALLER_USER_NAME", "true"),
        ],
    )
    .await;
    let default_scopes = claims_of(
        &app.send(easyauth_request("tenantId=t1&userName=Annie", &ann))
            .await,
    );
    assert_eq!(default_scopes["scopes"], json!(["doc:read", "doc:write"]));
    assert_eq!(
        default_scopes["user"]["name"], "Annie",
        "ALLOW_CALLER_USER_NAME"
    );

    let more = app
        .send(easyauth_request(
            "tenantId=t1&scopes=doc:read,summary:write",
            &ann,
        ))
        .await;
    assert!(
        assert_problem(&more, 403)["detail"]
            .as_str()
            .unwrap()
            .contains("summary:write")
    );

    // A tenant that has a key and one that does not get the same answer.
    let existing = app
        .send(easyauth_request(&format!("tenantId={OTHER_TENANT}"), &ann))
        .await;
    let missing = app
        .send(easyauth_request("tenantId=no-such-tenant", &ann))
        .await;
    assert_eq!(existing.status, 403);
    assert_eq!(existing.body, missing.body);
}

/// `ENTRA_ALLOWED_CLIENT_APPS`: only access tokens issued to those client applications (`azp`,
/// or `appid` in v1.0 tokens); with `ENTRA_REQUIRED_SCOPE` too, both must hold.
#[tokio::test]
async fn entra_allowed_client_apps_are_matched_against_azp_or_appid() {
    let idp = OpenIdEmulator::start().await;
    for protocol in PROTOCOLS {
        let apps_only = [
            ("AUTH_MODE", "entra"),
            ("ENTRA_AUTHORITY", idp.authority.as_str()),
            ("ENTRA_TENANT_ID", TENANT_ID),
            ("ENTRA_AUDIENCE", AUDIENCE),
            ("ENTRA_ALLOWED_CLIENT_APPS", "spa-client-id, other-app"),
        ];
        let app = TestApp::spawn_with(protocol, &apps_only).await;
        let allowed = idp.token("u1", json!({ "azp": "spa-client-id", "scp": null }));
        let response = with_bearer(&app, "tenantId=t1", &allowed).await;
        assert_eq!(response.status, 200, "{protocol:?}: {}", response.text());
        assert_eq!(verify(&response.text(), KEY).unwrap()["user"]["id"], "u1");
        let v1 = idp.token("u2", json!({ "appid": "OTHER-APP", "ver": "1.0" }));
        assert_eq!(
            with_bearer(&app, "tenantId=t1", &v1).await.status,
            200,
            "{protocol:?} appid, any case"
        );
        for claims in [
            json!({ "azp": "client-credentials-app" }),
            json!({ "azp": null }),
            json!({ "azp": "spa-client-id-but-longer" }),
        ] {
            let token = idp.token("u3", claims.clone());
            let doc = assert_problem(&with_bearer(&app, "tenantId=t1", &token).await, 403);
            assert!(
                doc["detail"]
                    .as_str()
                    .unwrap()
                    .contains("client application"),
                "{claims}: {doc}"
            );
        }

        let both = entra_app(
            protocol,
            &idp,
            &[("ENTRA_ALLOWED_CLIENT_APPS", "spa-client-id")],
        )
        .await;
        let no_scope = idp.token("u1", json!({ "azp": "spa-client-id", "scp": "User.Read" }));
        assert_problem(&with_bearer(&both, "tenantId=t1", &no_scope).await, 403);
        let wrong_app = idp.token("u1", json!({ "azp": "other" }));
        assert_problem(&with_bearer(&both, "tenantId=t1", &wrong_app).await, 403);
        let right = idp.token("u1", json!({ "azp": "spa-client-id" }));
        assert_eq!(with_bearer(&both, "tenantId=t1", &right).await.status, 200);
    }
}

/// Every issued token leaves its audit fields on its request's one line: who got which token (by
/// `jti`) for what, through which client app, joined to the host's trace — never the token or its
/// signature (with a trace id and a client app, still under 450 bytes).
#[tokio::test]
async fn every_token_leaves_an_audit_line_without_the_token() {
    let idp = OpenIdEmulator::start().await;
    for protocol in PROTOCOLS {
        let app = entra_app(protocol, &idp, &[]).await;
        let bearer = idp.token("oid-audit", json!({ "azp": "spa-app-id" }));
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let response = app
            .send(
                PublicRequest::get(
                    "/api/TokenFunction?tenantId=t1&documentId=doc-9&scopes=doc:read",
                )
                .header("Authorization", &format!("Bearer {bearer}"))
                .header("traceparent", &format!("00-{trace}-00f067aa0ba902b7-01")),
            )
            .await;
        assert_eq!(response.status, 200);
        let jwt = response.text();
        let claims = verify(&jwt, KEY).unwrap();
        let jti = claims["jti"].as_str().unwrap();
        let output = app.host.wait_for_output(jti).await;
        let audit: Vec<Value> = output
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["audit"] == "fluid-token")
            .collect();
        assert_eq!(audit.len(), 1, "{output}");
        assert_eq!(
            output.matches(jti).count(),
            1,
            "one line per request: {output}"
        );
        let line = &audit[0];
        assert_eq!(line["message"], "request");
        assert_eq!(line["status"], 200);
        assert_eq!(line["trace_id"], trace);
        let text = output.lines().find(|l| l.contains(jti)).unwrap();
        assert!(text.len() <= 450, "{} bytes: {text}", text.len());
        assert_eq!(line["jti"], jti);
        assert_eq!(line["tenant_id"], "t1");
        assert_eq!(line["document_id"], "doc-9");
        assert_eq!(line["user_id"], "oid-audit");
        assert_eq!(line["scopes"], "doc:read");
        assert_eq!(line["expires_at"], claims["exp"]);
        assert_eq!(line["client_app"], "spa-app-id");
        let signature = jwt.rsplit('.').next().unwrap();
        assert!(
            !output.contains(signature) && !output.contains(&bearer),
            "no token in the log"
        );
    }
}

/// Off the public cloud (here: the emulator's authority) a v1.0 `sts.windows.net` issuer is not
/// accepted, though the token is otherwise valid: only the issuer the authority publishes is.
#[tokio::test]
async fn a_v1_issuer_is_refused_off_the_public_cloud() {
    let idp = OpenIdEmulator::start().await;
    let app = entra_app(Protocol::Forwarding, &idp, &[]).await;
    let v1 = idp.token(
        "oid-v1",
        json!({ "iss": format!("https://sts.windows.net/{TENANT_ID}/"), "ver": "1.0" }),
    );
    let doc = assert_unauthenticated(&with_bearer(&app, "tenantId=t1", &v1).await, true);
    assert!(doc["detail"].as_str().unwrap().contains("iss"), "{doc}");
    let v2 = idp.token("oid-v2", json!({}));
    assert_token(&with_bearer(&app, "tenantId=t1", &v2).await, KEY);
}

/// The policy decides before any key is looked up: a refused request costs the vault nothing.
#[tokio::test]
async fn refused_requests_never_reach_the_key_store() {
    let identity = crate::support::identity_emulator::IdentityEmulator::start().await;
    let vault = crate::support::keyvault_emulator::KeyVaultEmulator::start(&identity.token).await;
    vault.set_secret("fluid-tenant-t1", "vault-key");
    let idp = OpenIdEmulator::start().await;
    let mut settings = vault.app_settings(&identity);
    settings.push(("ALLOWED_TENANTS", "t1".to_string()));
    settings.push(("ALLOWED_SCOPES", "doc:read".to_string()));
    let extra: Vec<(&str, &str)> = settings.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let app = entra_app(Protocol::Forwarding, &idp, &extra).await;
    let bearer = idp.token("oid-p", json!({}));
    for (query, status) in [
        ("tenantId=t2", 403),                     // tenant not allowed
        ("tenantId=t1&scopes=doc:write", 403),    // scope not allowed
        ("tenantId=t1&userId=someone-else", 403), // another user
        ("tenantId=t1&lifetime=0", 400),          // malformed
    ] {
        assert_problem(&with_bearer(&app, query, &bearer).await, status);
    }
    assert_problem(&app.get_token("tenantId=t1").await, 401);
    assert_eq!(
        vault.total_reads(),
        0,
        "no key was read for a refused request"
    );
    assert_token(
        &with_bearer(&app, "tenantId=t1&scopes=doc:read", &bearer).await,
        "vault-key",
    );
    assert_eq!(vault.total_reads(), 1);
}

/// Validated bearer tokens are remembered (the same token is not verified again), but never past
/// their own `exp`/`nbf`, never across a signing-key change, and never when they failed.
#[tokio::test]
async fn remembered_bearer_tokens_keep_every_rule() {
    let idp = OpenIdEmulator::start().await;
    let app = entra_app(Protocol::Forwarding, &idp, &[]).await;
    let now = now();

    // Valid for two more seconds (the 60 s leeway included): accepted, then not, though cached.
    let closing = idp.token("oid-closing", json!({ "exp": now - 58 }));
    assert_token(&with_bearer(&app, "tenantId=t1", &closing).await, KEY);
    assert_token(&with_bearer(&app, "tenantId=t1", &closing).await, KEY);
    tokio::time::sleep(std::time::Duration::from_millis(3_100)).await;
    assert_unauthenticated(&with_bearer(&app, "tenantId=t1", &closing).await, true);

    // Not yet valid, and invalid tokens: refused every time they are sent.
    let early = idp.token("oid-early", json!({ "nbf": now + 120 }));
    let mut forged = idp.token("oid-forged", json!({}));
    forged.push('x');
    for _ in 0..5 {
        assert_unauthenticated(&with_bearer(&app, "tenantId=t1", &early).await, true);
        assert_unauthenticated(&with_bearer(&app, "tenantId=t1", &forged).await, true);
    }

    // A key change forgets everything: a token signed with a withdrawn key is refused, though
    // it was accepted (and remembered) a moment ago.
    let old = idp.token("oid-rotated", json!({}));
    assert_token(&with_bearer(&app, "tenantId=t1", &old).await, KEY);
    idp.publish(SigningKey::generate("kid-2"));
    idp.withdraw("kid-1");
    let new = idp.token_signed_by("kid-2", "oid-new", json!({}));
    assert_token(&with_bearer(&app, "tenantId=t1", &new).await, KEY); // refreshes the keys
    assert_unauthenticated(&with_bearer(&app, "tenantId=t1", &old).await, true);
    assert_token(&with_bearer(&app, "tenantId=t1", &new).await, KEY);
}

#[tokio::test]
async fn access_tokens_up_to_8_kib_are_read() {
    // Tokens with many group claims run to several KiB: up to 8 KiB is read, more is refused.
    let idp = OpenIdEmulator::start().await;
    let app = entra_app(Protocol::Forwarding, &idp, &[]).await;
    // A token of exactly `length` characters signed by `kid` (base64url has no length ≡ 1 mod
    // 4, so not every kid can make every length).
    let of_length = |kid: &str, length: usize| {
        let bare = idp
            .token_signed_by(kid, "oid-ann", json!({"pad": ""}))
            .len();
        let from = (length.saturating_sub(bare) * 3 / 4).saturating_sub(8);
        (from..from + 16)
            .map(|pad| idp.token_signed_by(kid, "oid-ann", json!({"pad": "x".repeat(pad)})))
            .find(|token| token.len() == length)
    };
    let at_limit = ["k", "kk", "kkk"]
        .into_iter()
        .find_map(|kid| {
            idp.publish(SigningKey::generate(kid));
            of_length(kid, 8 * 1024)
        })
        .expect("a token of exactly 8 KiB");
    let over = format!("{at_limit}x");
    let response = with_bearer(&app, "tenantId=t1", &at_limit).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let doc = assert_unauthenticated(&with_bearer(&app, "tenantId=t1", &over).await, true);
    assert!(
        doc["detail"].as_str().unwrap().contains("too large"),
        "{doc}"
    );
}

#[tokio::test]
async fn only_the_documents_admin_app_role_sets_owners() {
    let idp = OpenIdEmulator::start().await;
    let app = entra_app(
        Protocol::Forwarding,
        &idp,
        &[("DOCUMENT_ACCESS", "members"), ("DOCUMENT_STORE", "memory")],
    )
    .await;
    let set_owner = |token: &str| {
        PublicRequest::post("/api/DocumentMembers?action=setOwner")
            .header("Authorization", &format!("Bearer {token}"))
            .json(&json!({"tenantId": "t1", "documentId": "legacy", "userId": "oid-ann"}))
    };
    for roles in [json!(null), json!([]), json!(["Tokens.Reader"])] {
        let token = idp.token("oid-ops", json!({ "roles": roles }));
        let refused = app.send(set_owner(&token)).await;
        assert_problem_type(&refused, 403, "forbidden");
    }
    let token = idp.token(
        "oid-ops",
        json!({"roles": ["Tokens.Reader", "Documents.Admin"]}),
    );
    let set = app.send(set_owner(&token)).await;
    assert_eq!(set.status, 201, "{}", set.text());
}
