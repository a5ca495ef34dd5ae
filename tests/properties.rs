//! Property tests: generated hostile input for every parser a request reaches — the query string
//! (bracket keys included), the JSON body, the host's invocation envelope, the Easy Auth
//! principal, the bearer token, the ACS parameters, the document functions and their creation
//! tokens — through the real HTTP surface (warp's
//! in-process client, both protocol modes) or the parser itself. The properties: no panic, no
//! 5xx, and every error a problem document with its status.
//!
//! The count per property is `PROPTEST_CASES` (default 256, what the test command runs). The long
//! run, over a million cases in all:
//!
//! ```sh
//! PROPTEST_CASES=200000 cargo test --release --test properties
//! ```

use std::sync::Arc;

use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{Value, json};
use warp::http::StatusCode;

use fluid_token_service::acs::request::AcsTokenRequest;
use fluid_token_service::caller::Authenticator;
use fluid_token_service::caller::easyauth::UserIdForm;
use fluid_token_service::documents::store::MemoryStore;
use fluid_token_service::documents::{DocumentAccess, DocumentLimits, Documents};
use fluid_token_service::domain::{Lifetime, Scopes, TenantId};
use fluid_token_service::host::{self, Routing};
use fluid_token_service::invocation::QueryParams;
use fluid_token_service::keys::local::LocalKeys;
use fluid_token_service::policy::Policy;
use fluid_token_service::problem::Problem;
use fluid_token_service::routes::AppState;
use fluid_token_service::secret::Secret;

/// Characters escaped on the wire (controls, space, non-ASCII and URI delimiters).
const WIRE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^');

fn state(auth: Authenticator) -> Arc<AppState> {
    state_with(auth, DocumentAccess::Open)
}

/// The app with `access`, its memberships in memory.
fn state_with(auth: Authenticator, access: DocumentAccess) -> Arc<AppState> {
    let tenant = TenantId::parse("t1").unwrap();
    let key = Secret::new("property-test-key".to_string());
    Arc::new(AppState {
        auth,
        policy: Policy {
            allowed_tenants: None,
            allowed_scopes: Scopes::all(),
            max_lifetime: Lifetime::HARD_CAP,
            allow_caller_user_name: false,
        },
        keys: Arc::new(LocalKeys::new([(&tenant, &key)])),
        acs: None,
        documents: Some(Documents::new(
            access,
            Arc::new(MemoryStore::default()),
            DocumentLimits::default(),
        )),
        cors: None,
        limiter: None,
    })
}

/// The response must be a success, or a problem document with the status it claims.
fn check(response: &warp::http::Response<warp::hyper::body::Bytes>) -> Result<(), TestCaseError> {
    let status = response.status();
    prop_assert!(status.as_u16() < 500, "{status}: {:?}", response.body());
    if status.is_client_error() {
        prop_assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json")
        );
        let doc: Value = serde_json::from_slice(response.body())
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(doc["status"].as_u64(), Some(u64::from(status.as_u16())));
        prop_assert!(
            doc["type"].is_string() && doc["title"].is_string() && doc["detail"].is_string()
        );
    } else {
        prop_assert!(
            status == StatusCode::OK || status == StatusCode::CREATED,
            "{status}"
        );
    }
    Ok(())
}

/// Query text made of what parsers trip on: escapes, brackets, separators, known names.
fn query() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("tenantId=".to_string()),
        Just("t1".to_string()),
        Just("documentId=".to_string()),
        Just("userId=".to_string()),
        Just("id=".to_string()),
        Just("name=".to_string()),
        Just("userName=".to_string()),
        Just("scopes=".to_string()),
        Just("doc:read".to_string()),
        Just("lifetime=".to_string()),
        Just("token=".to_string()),
        Just("role=".to_string()),
        Just("reader".to_string()),
        Just("additionalDetails".to_string()),
        Just("additionalDetails=".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("%5B".to_string()),
        Just("%5D".to_string()),
        Just("&".to_string()),
        Just("=".to_string()),
        Just("+".to_string()),
        Just(",".to_string()),
        Just("%".to_string()),
        Just("%FF".to_string()),
        Just("%00".to_string()),
        Just("%7B%22a%22%3A1%7D".to_string()),
        "[0-9]{1,4}",
        "[a-zA-Z_.-]{0,8}",
        "\\PC{0,4}",
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

/// A JSON value, mostly objects with the names the functions read.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        "\\PC{0,12}".prop_map(Value::String),
        Just(json!("t1")),
        Just(json!("doc:read")),
    ];
    let value = leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("tenantId".to_string()),
                    Just("documentId".to_string()),
                    Just("userId".to_string()),
                    Just("id".to_string()),
                    Just("name".to_string()),
                    Just("scopes".to_string()),
                    Just("lifetime".to_string()),
                    Just("additionalDetails".to_string()),
                    Just("token".to_string()),
                    Just("role".to_string()),
                    "\\PC{0,6}",
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![
        4 => value.prop_map(|v| v.to_string().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

/// What a creation token parameter may hold: text, JWT-shaped text, and JWTs whose header and
/// claims are arbitrary JSON (signed with nothing in particular).
fn creation_token() -> impl Strategy<Value = String> {
    let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    prop_oneof![
        "\\PC{0,40}".prop_map(|s| s.to_string()),
        "[A-Za-z0-9_-]{0,30}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,43}",
        (body(), body(), "[A-Za-z0-9_-]{0,43}").prop_map(
            move |(header, claims, signature)| format!(
                "{}.{}.{signature}",
                b64(header),
                b64(claims)
            )
        ),
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn routing(forwarding: bool) -> Routing {
    Routing {
        route_prefix: "api".to_string(),
        forwarding,
    }
}

proptest! {
    #[test]
    fn forwarded_requests(query in query(), body in body(), post in any::<bool>(), principal in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..96))) {
        // What a client puts on the wire: characters a request target cannot hold are escaped.
        let query = percent_encoding::utf8_percent_encode(&query, WIRE).to_string();
        let path = format!("/api/TokenFunction?{query}");
        prop_assume!(path.parse::<warp::http::Uri>().is_ok());
        let filter = host::handler(state(Authenticator::EasyAuth(UserIdForm::Id)), routing(true), false);
        let mut request = warp::test::request()
            .method(if post { "POST" } else { "GET" })
            .path(&path)
            .body(body);
        if let Some(bytes) = principal {
            // Random JSON-ish bytes behind valid base64, or raw garbage.
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            request = request.header("x-ms-client-principal", encoded);
        } else {
            request = request.header("x-ms-client-principal-id", "oid-1");
        }
        let response = runtime().block_on(request.reply(&filter));
        check(&response)?;
    }

    #[test]
    fn envelopes(query in proptest::collection::btree_map("\\PC{0,12}", "\\PC{0,16}", 0..6), body in body(), raw in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..128))) {
        let filter = host::handler(state(Authenticator::None), routing(false), false);
        let envelope = match raw {
            Some(raw) => raw,
            None => json!({
                "Data": { "req": {
                    "Url": format!("http://localhost/api/TokenFunction"),
                    "Method": "POST",
                    "Query": query,
                    "Headers": { "Content-Type": ["application/json"] },
                    "Body": String::from_utf8_lossy(&body),
                }},
                "Metadata": {}
            }).to_string().into_bytes(),
        };
        let response = runtime().block_on(
            warp::test::request().method("POST").path("/TokenFunction").body(envelope).reply(&filter),
        );
        // The host's envelope answer is always 200 with the function's status inside; an
        // envelope the handler cannot read is a problem document itself.
        let status = response.status();
        prop_assert!(status.as_u16() < 500, "{status}");
        if status == StatusCode::OK {
            let outer: Value = serde_json::from_slice(response.body()).map_err(|e| TestCaseError::fail(format!("{e}")))?;
            // The host reads a missing statusCode as 200: the handler always names it.
            let inner = outer["Outputs"]["res"]["statusCode"].as_u64();
            prop_assert!(inner.is_some_and(|s| (200..500).contains(&s)), "inner status {inner:?}: {outer}");
        } else {
            check(&response)?;
        }
    }

    #[test]
    fn bearer_tokens(token in prop_oneof![
        "\\PC{0,40}",
        "[A-Za-z0-9_-]{0,30}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,20}",
        Just("eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.e30.x".to_string()),
        Just("eyJhbGciOiJub25lIn0.e30.".to_string()),
    ]) {
        // An authority nobody listens on: a token that gets as far as the key lookup is 503
        // identity-provider-unavailable; anything malformed must be refused before that, as 401.
        let closed = format!("http://127.0.0.1:{}", free_port());
        let validator = fluid_token_service::caller::entra::EntraValidator::new(
            fluid_token_service::caller::entra::EntraSettings {
                authority: closed,
                tenant_id: "t".to_string(),
                audiences: vec!["api://x".to_string()],
                required_scope: Some("s".to_string()),
                allowed_client_apps: Vec::new(),
            },
        ).unwrap();
        let filter = host::handler(state(Authenticator::Entra(Arc::new(validator))), routing(true), false);
        let response = runtime().block_on(
            warp::test::request()
                .path("/api/TokenFunction?tenantId=t1")
                .header("authorization", format!("Bearer {token}"))
                .reply(&filter),
        );
        let status = response.status().as_u16();
        if status == 503 {
            let doc: Value = serde_json::from_slice(response.body()).unwrap();
            prop_assert!(doc["type"].as_str().unwrap().ends_with("identity-provider-unavailable"));
        } else {
            prop_assert_eq!(status, 401);
            check(&response)?;
        }
    }

    #[test]
    fn document_functions(
        function in prop_oneof![Just("DocumentCreated"), Just("DocumentMembers")],
        method in prop_oneof![Just("GET"), Just("POST"), Just("DELETE"), Just("PUT")],
        query in query(),
        body in body(),
        token in creation_token(),
    ) {
        let query = percent_encoding::utf8_percent_encode(&query, WIRE).to_string();
        let token = percent_encoding::utf8_percent_encode(&token, percent_encoding::NON_ALPHANUMERIC);
        let path = format!("/api/{function}?{query}&token={token}");
        prop_assume!(path.parse::<warp::http::Uri>().is_ok());
        let filter = host::handler(
            state_with(Authenticator::EasyAuth(UserIdForm::Id), DocumentAccess::Members),
            routing(true), false);
        let response = runtime().block_on(
            warp::test::request()
                .method(method)
                .path(&path)
                .header("x-ms-client-principal-id", "oid-1")
                .body(body)
                .reply(&filter),
        );
        check(&response)?;
    }

    #[test]
    fn acs_parameters(query in query(), body in body()) {
        if let Ok(params) = QueryParams::parse(&query) {
            match AcsTokenRequest::parse(&params, &body) {
                Ok(_) => {}
                Err(problem) => prop_assert!(problem.status().as_u16() == 400, "{problem:?}"),
            }
        }
    }

    #[test]
    fn query_strings_round_trip_or_are_refused_as_400_invalid_query(query in query()) {
        match QueryParams::parse(&query) {
            // What was read is what was sent: encoded again, it reads the same.
            Ok(params) => {
                let encoded: Vec<String> = params
                    .iter()
                    .map(|(name, value)| {
                        let name = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
                        let value = percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC);
                        format!("{name}={value}")
                    })
                    .collect();
                prop_assert_eq!(QueryParams::parse(&encoded.join("&")), Ok(params));
            }
            // Refused: the caller is told so, as 400 invalid-query, through the whole handler.
            Err(error) => {
                let problem = Problem::from(error);
                prop_assert_eq!(problem.status(), StatusCode::BAD_REQUEST);
                // (A `#` starts the fragment, which never reaches a server.)
                prop_assume!(!query.contains('#'));
                let path = format!("/api/TokenFunction?{query}");
                prop_assume!(path.parse::<warp::http::Uri>().is_ok());
                let filter = host::handler(state(Authenticator::None), routing(true), false);
                let response = runtime().block_on(warp::test::request().path(&path).reply(&filter));
                prop_assert_eq!(response.status(), StatusCode::BAD_REQUEST);
                let doc: Value = serde_json::from_slice(response.body()).unwrap();
                prop_assert!(doc["type"].as_str().unwrap().ends_with("/invalid-query"), "{doc}");
            }
        }
    }
}

#[path = "api/support/ports.rs"]
mod ports;
use ports::free_port;
