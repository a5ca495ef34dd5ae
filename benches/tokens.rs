//! Micro-benchmarks (criterion): signing one token (ours against the `jsonwebtoken` crate for
//! the same claims), parsing a request, a tenant key from the Key Vault cache, and one request
//! through the host protocol in forwarding and in envelope mode. `cargo bench --bench tokens`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use fluid_token_service::caller::Authenticator;
use fluid_token_service::caller::Caller;
use fluid_token_service::domain::{Lifetime, TenantId};
use fluid_token_service::host::{self, Routing};
use fluid_token_service::invocation::QueryParams;
use fluid_token_service::keys::cache::{CachePolicy, CachedKeys};
use fluid_token_service::keys::local::LocalKeys;
use fluid_token_service::keys::{FetchFuture, KeySource, TenantKey, TenantKeys};
use fluid_token_service::policy::Policy;
use fluid_token_service::request::TokenRequest;
use fluid_token_service::routes::AppState;
use fluid_token_service::secret::Secret;
use fluid_token_service::token;
use serde::Serialize;
use uuid::Uuid;

const KEY: &str = "0123456789abcdef0123456789abcdef";
const QUERY: &str = "tenantId=t1&documentId=doc-1&userId=u1&userName=Ann";

fn grant() -> token::Grant {
    let request =
        TokenRequest::parse(&QueryParams::parse(QUERY).unwrap(), b"", Lifetime::HARD_CAP).unwrap();
    Policy::open(Lifetime::HARD_CAP)
        .grant(Caller::Anonymous, request)
        .unwrap()
}

/// The same claims as ours, for the `jsonwebtoken` crate.
#[derive(Serialize)]
struct Claims<'a> {
    #[serde(rename = "documentId")]
    document_id: &'a str,
    scopes: [&'a str; 3],
    #[serde(rename = "tenantId")]
    tenant_id: &'a str,
    user: User<'a>,
    iat: u64,
    exp: u64,
    ver: &'a str,
    jti: String,
}

#[derive(Serialize)]
struct User<'a> {
    id: &'a str,
    name: &'a str,
}

fn signing(c: &mut Criterion) {
    let grant = grant();
    let key = TenantKey::from_secret(KEY);
    let mut group = c.benchmark_group("sign + encode one token");
    group.bench_function("ours (hmac + sha2 + base64, pre-keyed)", |b| {
        b.iter(|| token::issue(black_box(&grant), black_box(&key)))
    });
    let encoding = jsonwebtoken::EncodingKey::from_secret(KEY.as_bytes());
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    group.bench_function("jsonwebtoken crate", |b| {
        b.iter(|| {
            let now = 1_795_549_032;
            let claims = Claims {
                document_id: "doc-1",
                scopes: ["doc:read", "doc:write", "summary:write"],
                tenant_id: "t1",
                user: User {
                    id: "u1",
                    name: "Ann",
                },
                iat: now,
                exp: now + 3600,
                ver: "1.0",
                jti: Uuid::new_v4().to_string(),
            };
            jsonwebtoken::encode(black_box(&header), &claims, black_box(&encoding)).unwrap()
        })
    });
    group.finish();
}

fn parsing(c: &mut Criterion) {
    c.bench_function("parse a token request (query)", |b| {
        b.iter(|| {
            let query = QueryParams::parse(black_box(QUERY)).unwrap();
            TokenRequest::parse(&query, b"", Lifetime::HARD_CAP).unwrap()
        })
    });
}

/// A key source that always has the key (the cache asks it once).
struct AlwaysThere;

impl KeySource for AlwaysThere {
    type Value = TenantKey;

    fn fetch<'a>(&'a self, _tenant: &'a TenantId) -> FetchFuture<'a> {
        Box::pin(async { Ok(TenantKey::from_secret(KEY)) })
    }
}

fn cached_key(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let hour = std::time::Duration::from_secs(3600);
    let keys = CachedKeys::new(
        AlwaysThere,
        CachePolicy {
            ttl: hour,
            max_stale: hour,
            negative_ttl: hour,
            fetch_timeout: hour,
            miss_rate: 10,
        },
    );
    let tenant = TenantId::parse("t1").unwrap();
    runtime.block_on(keys.key(&tenant)).unwrap();
    c.bench_function("tenant key from the Key Vault cache (hit)", |b| {
        b.iter(|| runtime.block_on(keys.key(black_box(&tenant))).unwrap())
    });
}

fn round_trip(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tenant = TenantId::parse("t1").unwrap();
    let secret = Secret::new(KEY.to_string());
    let state = Arc::new(AppState {
        auth: Authenticator::None,
        policy: Policy::open(Lifetime::HARD_CAP),
        keys: Arc::new(LocalKeys::new([(&tenant, &secret)])),
        acs: None,
        documents: None,
        cors: None,
        limiter: None,
    });
    let filter = host::handler(
        state,
        Routing {
            route_prefix: "api".into(),
            forwarding: false,
        },
        false,
    );
    let envelope = serde_json::json!({"Data": {"req": {
        "Url": format!("http://localhost:7071/api/TokenFunction?{QUERY}"), "Method": "GET",
        "Query": {"tenantId": "t1", "documentId": "doc-1", "userId": "u1", "userName": "Ann"},
        "Headers": {"Host": ["localhost:7071"]}, "Params": {}, "Identities": []}}, "Metadata": {}})
    .to_string();
    let mut group = c.benchmark_group("one request through the host protocol");
    group.bench_function("forwarding", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let response = warp::test::request()
                    .path(&format!("/api/TokenFunction?{QUERY}"))
                    .reply(&filter)
                    .await;
                assert_eq!(response.status(), 200);
            })
        })
    });
    group.bench_function("envelope", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let response = warp::test::request()
                    .method("POST")
                    .path("/TokenFunction")
                    .body(envelope.clone())
                    .reply(&filter)
                    .await;
                assert_eq!(response.status(), 200);
            })
        })
    });
    group.finish();
}

criterion_group!(benches, signing, parsing, cached_key, round_trip);
criterion_main!(benches);
