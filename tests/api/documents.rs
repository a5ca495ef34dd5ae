//! Who may open which container: `DocumentCreated` (Fluid's `documentPostCreateCallback`),
//! `DocumentMembers`, and `DOCUMENT_ACCESS=members` on the token path — in both host modes,
//! with memberships in memory and in Azurite's Table Storage.
//!
//! Creation tokens are signed here the way Azure Fluid Relay signs them:
//! `generateToken(tenantId, documentId, tenantKey, [], user)`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::azurite::Azurite;
use crate::support::*;

const CREATED: &str = "/api/DocumentCreated";
const MEMBERS: &str = "/api/DocumentMembers";

/// A creation token as the service returns it: HS256 with the tenant key, no scopes.
pub(crate) fn creation_token(
    tenant: &str,
    document: &str,
    key: &str,
    user: &str,
    exp_in: i64,
) -> String {
    let now = now() as i64;
    let claims = json!({
        "documentId": document, "scopes": [], "tenantId": tenant,
        "user": { "id": user, "name": user }, "iat": now, "exp": now + exp_in, "ver": "1.0",
        "jti": "3a0c5c2e-0000-4000-8000-000000000000",
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

/// Where the memberships of a test app live.
pub(crate) enum Store<'a> {
    Memory,
    /// Table Storage with this `AzureWebJobsStorage` (Azurite, or a proxy in front of it).
    Table(&'a str),
}

/// An app with Easy Auth callers, `DOCUMENT_ACCESS=members`, and `store`.
pub(crate) async fn members_app(
    protocol: Protocol,
    store: &Store<'_>,
    extra: &[(&str, &str)],
) -> TestApp {
    let mut settings = vec![
        ("AUTH_MODE", "easyauth"),
        ("WEBSITE_AUTH_ENABLED", "True"),
        ("DOCUMENT_ACCESS", "members"),
    ];
    match store {
        Store::Memory => settings.push(("DOCUMENT_STORE", "memory")),
        Store::Table(connection_string) => settings.extend([
            ("DOCUMENT_STORE", "table"),
            ("AzureWebJobsStorage", connection_string),
        ]),
    }
    settings.extend_from_slice(extra);
    TestApp::spawn_with(protocol, &settings).await
}

/// A signed-in user, as App Service Authentication presents them.
pub(crate) struct User(pub &'static str);

impl User {
    pub(crate) fn sign(&self, request: PublicRequest) -> PublicRequest {
        request
            .header("X-MS-CLIENT-PRINCIPAL-ID", self.0)
            .header("X-MS-CLIENT-PRINCIPAL-NAME", self.0)
            .header(
                "X-MS-CLIENT-PRINCIPAL",
                &easyauth_principal(&[
                    (
                        "http://schemas.microsoft.com/identity/claims/objectidentifier",
                        self.0,
                    ),
                    ("name", self.0),
                ]),
            )
    }

    pub(crate) async fn register(
        &self,
        app: &TestApp,
        document: &str,
        token: &str,
    ) -> PublicResponse {
        app.send(
            self.sign(PublicRequest::post(CREATED))
                .json(&json!({ "documentId": document, "token": token })),
        )
        .await
    }

    pub(crate) async fn create(&self, app: &TestApp, document: &str) -> PublicResponse {
        let token = creation_token(TENANT, document, KEY, self.0, 300);
        self.register(app, document, &token).await
    }

    pub(crate) async fn token(&self, app: &TestApp, query: &str) -> PublicResponse {
        app.send(self.sign(PublicRequest::get(format!(
            "/api/TokenFunction?tenantId={TENANT}&{query}"
        ))))
        .await
    }

    pub(crate) async fn members(&self, app: &TestApp, document: &str) -> PublicResponse {
        app.send(self.sign(PublicRequest::get(format!(
            "{MEMBERS}?tenantId={TENANT}&documentId={document}"
        ))))
        .await
    }

    pub(crate) async fn add(
        &self,
        app: &TestApp,
        document: &str,
        user: &str,
        role: &str,
    ) -> PublicResponse {
        app.send(self.sign(PublicRequest::post(MEMBERS)).json(
            &json!({ "tenantId": TENANT, "documentId": document, "userId": user, "role": role }),
        ))
        .await
    }

    pub(crate) async fn remove(&self, app: &TestApp, document: &str, user: &str) -> PublicResponse {
        app.send(self.sign(PublicRequest::new(
            reqwest::Method::DELETE,
            format!("{MEMBERS}?tenantId={TENANT}&documentId={document}&userId={user}"),
        )))
        .await
    }
}

pub(crate) const ANN: User = User("ann-oid");
pub(crate) const BOB: User = User("bob-oid");

fn scopes(claims: &Value) -> Vec<&str> {
    claims["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

pub(crate) fn ok_json(response: &PublicResponse, status: u16) -> Value {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    response.json()
}

/// The whole model, for one store, in one app: the creator becomes the owner, only members get
/// tokens, with their role's scopes, and only the owner changes who is a member.
async fn the_access_model(app: &TestApp, doc: &str) {
    let registered = ok_json(&ANN.create(app, doc).await, 201);
    assert_eq!(
        registered,
        json!({ "tenantId": TENANT, "documentId": doc, "userId": ANN.0, "role": "owner" })
    );
    ok_json(&ANN.create(app, doc).await, 200);

    // The creation token is Ann's: Bob cannot register with it, nor with his own for her document.
    let anns = creation_token(TENANT, doc, KEY, ANN.0, 300);
    assert_problem_type(&BOB.register(app, doc, &anns).await, 403, "forbidden");
    assert_problem_type(&BOB.create(app, doc).await, 409, "conflict");

    // Ann gets full tokens; Bob none for her document, and the same answer for one nobody
    // registered; a create token is anyone's.
    let claims = assert_token(&ANN.token(app, &format!("documentId={doc}")).await, KEY);
    assert_eq!(scopes(&claims), ["doc:read", "doc:write", "summary:write"]);
    assert_eq!(claims["user"]["id"], ANN.0);
    let stranger = assert_problem_type(
        &BOB.token(app, &format!("documentId={doc}")).await,
        403,
        "forbidden",
    );
    let unregistered = assert_problem_type(
        &BOB.token(app, "documentId=nobody-made-this").await,
        403,
        "forbidden",
    );
    assert_eq!(stranger, unregistered, "existence is not revealed");
    assert_token(&BOB.token(app, "").await, KEY);
    assert_problem_type(&BOB.members(app, doc).await, 403, "forbidden");

    // Ann adds Bob as a reader: read-only tokens, more is refused, he can list but not change.
    let added = ok_json(&ANN.add(app, doc, BOB.0, "reader").await, 200);
    assert_eq!(added["role"], "reader");
    let claims = assert_token(&BOB.token(app, &format!("documentId={doc}")).await, KEY);
    assert_eq!(scopes(&claims), ["doc:read"]);
    assert_problem_type(
        &BOB.token(app, &format!("documentId={doc}&scopes=doc:read,doc:write"))
            .await,
        403,
        "forbidden",
    );
    let listed = ok_json(&BOB.members(app, doc).await, 200);
    let mut members = listed["members"].as_array().unwrap().clone();
    members.sort_by_key(|m| m["userId"].as_str().unwrap().to_string());
    assert_eq!(
        members,
        [
            json!({ "userId": ANN.0, "role": "owner" }),
            json!({ "userId": BOB.0, "role": "reader" })
        ]
    );
    assert_problem_type(
        &BOB.add(app, doc, "eve-oid", "writer").await,
        403,
        "forbidden",
    );
    assert_problem_type(&BOB.add(app, doc, BOB.0, "writer").await, 403, "forbidden");
    assert_problem_type(&BOB.remove(app, doc, ANN.0).await, 403, "forbidden");

    // Promoted to writer, Bob writes; the owner cannot demote or remove herself.
    ok_json(&ANN.add(app, doc, BOB.0, "writer").await, 200);
    let claims = assert_token(&BOB.token(app, &format!("documentId={doc}")).await, KEY);
    assert_eq!(scopes(&claims), ["doc:read", "doc:write", "summary:write"]);
    assert_problem_type(&ANN.add(app, doc, ANN.0, "reader").await, 409, "conflict");
    assert_problem_type(&ANN.remove(app, doc, ANN.0).await, 409, "conflict");
    let doc_ = assert_problem(&ANN.add(app, doc, BOB.0, "owner").await, 400);
    assert_eq!(doc_["parameter"], "role");

    // Removed, Bob loses access at once on this instance.
    ok_json(&ANN.remove(app, doc, BOB.0).await, 200);
    assert_problem_type(
        &BOB.token(app, &format!("documentId={doc}")).await,
        403,
        "forbidden",
    );
    assert_token(&ANN.token(app, &format!("documentId={doc}")).await, KEY);
}

#[tokio::test]
async fn members_mode_in_memory() {
    for protocol in PROTOCOLS {
        let mut app = members_app(protocol, &Store::Memory, &[]).await;
        the_access_model(&app, "doc-7f3a").await;
        let output = app.host.finish().await;
        assert!(
            output.contains(
                "DOCUMENT_STORE=memory: document owners and members are kept in this instance only"
            ),
            "a memory store under the host is announced as per instance"
        );
        assert!(
            output.contains(r#""message":"document access","store":"memory","access":"members""#),
            "the startup line spells DOCUMENT_ACCESS as it is set: {output}"
        );
        assert!(!output.contains(KEY), "no key in the logs");
        // Every change is in the audit trail.
        for action in ["owner-registered", "member-set", "member-removed"] {
            assert!(
                output.contains(&format!("\"action\":\"{action}\"")),
                "{action}"
            );
        }
    }
}

#[tokio::test]
async fn members_mode_in_table_storage_is_shared_by_every_instance() {
    let azurite = Azurite::start().await;
    for protocol in PROTOCOLS {
        let store = Store::Table(&azurite.connection_string);
        let app = members_app(protocol, &store, &[]).await;
        the_access_model(&app, &format!("doc-{protocol:?}")).await;

        // A second instance reads the same table: Ann owns her document there too, and a member
        // removed on the first instance loses access on the second within the cache's few
        // seconds.
        let other = members_app(protocol, &store, &[]).await;
        let doc = format!("shared-{protocol:?}");
        ok_json(&ANN.create(&app, &doc).await, 201);
        ok_json(&ANN.create(&other, &doc).await, 200);
        ok_json(&ANN.add(&app, &doc, BOB.0, "reader").await, 200);
        assert_token(&BOB.token(&other, &format!("documentId={doc}")).await, KEY);
        ok_json(&ANN.remove(&app, &doc, BOB.0).await, 200);
        let removed_at = Instant::now();
        loop {
            let response = BOB.token(&other, &format!("documentId={doc}")).await;
            if response.status == 403 {
                break;
            }
            assert_token(&response, KEY);
            assert!(
                removed_at.elapsed() < Duration::from_secs(10),
                "a removed member still gets tokens after 10 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test]
async fn creation_tokens_are_checked() {
    for protocol in PROTOCOLS {
        let app = members_app(protocol, &Store::Memory, &[("ALLOWED_TENANTS", "t1,t9")]).await;
        let register = |document: &'static str, token: String| {
            let app = &app;
            async move { ANN.register(app, document, &token).await }
        };
        let rejected = |response: PublicResponse| {
            assert_problem_type(&response, 403, "forbidden")["detail"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let detail = rejected(register("d1", creation_token(TENANT, "d1", KEY, ANN.0, -61)).await);
        assert!(detail.contains("expired"), "{detail}");
        // 60 s of clock skew are allowed.
        ok_json(
            &register("d1", creation_token(TENANT, "d1", KEY, ANN.0, -50)).await,
            201,
        );
        let detail = rejected(register("d2", creation_token(TENANT, "d1", KEY, ANN.0, 300)).await);
        assert!(detail.contains("another document"), "{detail}");
        let detail =
            rejected(register("d3", creation_token(TENANT, "d3", OTHER_KEY, ANN.0, 300)).await);
        assert!(detail.contains("signature"), "{detail}");
        // A tenant without a key here, and one the policy does not serve.
        let unknown = rejected(register("d4", creation_token("t9", "d4", KEY, ANN.0, 300)).await);
        assert!(unknown.contains("signature"), "{unknown}");
        rejected(
            register(
                "d4",
                creation_token(OTHER_TENANT, "d4", OTHER_KEY, ANN.0, 300),
            )
            .await,
        );

        // An access token (with scopes) from this very service is not a creation token.
        let access = ANN.token(&app, "documentId=d1").await.text();
        assert!(!scopes(&claims(&access)).is_empty());
        let detail = rejected(register("d1", access).await);
        assert!(detail.contains("scopes"), "{detail}");

        for (body, parameter) in [
            (json!({ "token": "a.b.c" }), "documentId"),
            (json!({ "documentId": "d5" }), "token"),
            (json!({ "documentId": "d5", "token": "not-a-jwt" }), "token"),
            (
                json!({ "documentId": "d5", "token": "e30.e30.c2ln" }),
                "token",
            ),
        ] {
            let response = app
                .send(ANN.sign(PublicRequest::post(CREATED)).json(&body))
                .await;
            assert_eq!(
                assert_problem_type(&response, 400, "invalid-parameter")["parameter"],
                parameter,
                "{body}"
            );
        }
        // As in the docs' sample: GET with the query works too; other methods do not.
        let token = creation_token(TENANT, "d6", KEY, ANN.0, 300);
        let response = app
            .send(ANN.sign(PublicRequest::get(format!(
                "{CREATED}?documentId=d6&token={token}"
            ))))
            .await;
        ok_json(&response, 201);
        let put = app
            .send(ANN.sign(PublicRequest::new(reqwest::Method::PUT, CREATED)))
            .await;
        assert_problem_type(&put, 405, "method-not-allowed");
        // Unauthenticated callers are refused before anything is read.
        let anonymous = app
            .send(PublicRequest::post(CREATED).json(&json!({ "documentId": "d6", "token": token })))
            .await;
        assert_problem_type(&anonymous, 401, "unauthenticated");
    }
}

#[tokio::test]
async fn without_a_signed_in_caller_the_token_names_the_owner() {
    for protocol in PROTOCOLS {
        let app = TestApp::spawn_with(protocol, &[("DOCUMENT_STORE", "memory")]).await;
        let token = creation_token(TENANT, "d1", KEY, "user-from-token", 300);
        let response = app
            .send(PublicRequest::post(CREATED).json(&json!({ "documentId": "d1", "token": token })))
            .await;
        assert_eq!(ok_json(&response, 201)["userId"], "user-from-token");
        // Open access: tokens for the document are anyone's, as before.
        assert_token(&app.get_token("tenantId=t1&documentId=d1").await, KEY);
        // Managing members needs to know who asks.
        let listed = app
            .send(PublicRequest::get(format!(
                "{MEMBERS}?tenantId={TENANT}&documentId=d1"
            )))
            .await;
        assert_problem_type(&listed, 403, "forbidden");
    }
}

#[tokio::test]
async fn without_a_store_the_functions_say_so_and_tokens_are_unchanged() {
    for protocol in PROTOCOLS {
        let app = TestApp::spawn(protocol).await;
        let token = creation_token(TENANT, "d1", KEY, "u", 300);
        let response = app
            .send(PublicRequest::post(CREATED).json(&json!({ "documentId": "d1", "token": token })))
            .await;
        assert_problem_type(&response, 404, "documents-not-configured");
        let listed = app
            .host
            .get(&format!("{MEMBERS}?tenantId={TENANT}&documentId=d1"))
            .await;
        assert_problem_type(&listed, 404, "documents-not-configured");
        assert_token(&app.get_token("tenantId=t1&documentId=d1").await, KEY);
    }
}

#[tokio::test]
async fn an_unreachable_table_is_a_503_never_a_token() {
    // Nothing listens on this port: every table request fails.
    let closed = format!(
        "AccountName=gone;AccountKey=Z29uZQ==;TableEndpoint=http://127.0.0.1:{}/gone",
        crate::support::ports::free_port()
    );
    for protocol in PROTOCOLS {
        let app = members_app(
            protocol,
            &Store::Memory,
            &[
                ("DOCUMENT_STORE", "table"),
                ("AzureWebJobsStorage", closed.as_str()),
            ],
        )
        .await;
        let response = ANN.create(&app, "d1").await;
        let problem = assert_problem_type(&response, 503, "document-store-unavailable");
        assert!(response.header("retry-after").is_some(), "{problem}");
        let response = ANN.token(&app, "documentId=d1").await;
        assert_problem_type(&response, 503, "document-store-unavailable");
        // A create token needs no membership, so no store.
        assert_token(&ANN.token(&app, "").await, KEY);
    }
}
