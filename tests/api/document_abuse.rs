//! The member surface under abuse (`DOCUMENT_ACCESS=members`, Table Storage in Azurite behind a
//! counting, slowing proxy): what a signed-in caller can make the store do is bounded, a removal
//! is never undone by a read in flight, members and keys are bounded and valid, and an operator
//! can give containers created before `members` an owner.

use std::time::Duration;

use serde_json::json;

use crate::documents::{ANN, BOB, Store, User, creation_token, members_app, ok_json};
use crate::support::azurite::Azurite;
use crate::support::table_proxy::TableProxy;
use crate::support::*;

const MEMBERS: &str = "/api/DocumentMembers";

/// Azurite behind a counting, slowing proxy, and a members-mode app with its store there.
async fn on_proxied_table(
    protocol: Protocol,
    extra: &[(&str, &str)],
) -> (Azurite, TableProxy, TestApp) {
    let azurite = Azurite::start().await;
    let proxy = TableProxy::start(&azurite).await;
    let app = members_app(protocol, &Store::Table(&proxy.connection_string), extra).await;
    (azurite, proxy, app)
}

#[tokio::test]
async fn an_unknown_tenant_costs_no_store_read() {
    // One caller sending many requests: without the per-caller limit, to see the store alone.
    let (_azurite, proxy, app) =
        on_proxied_table(Protocol::Forwarding, &[("CALLER_RATE_LIMIT", "off")]).await;
    let before = proxy.reads();
    for n in 0..50 {
        let token = app
            .send(ANN.sign(PublicRequest::get(format!(
                "/api/TokenFunction?tenantId=made-up-{n}&documentId=d-{n}"
            ))))
            .await;
        assert_problem_type(&token, 404, "unknown-tenant");
        let members = app
            .send(ANN.sign(PublicRequest::get(format!(
                "{MEMBERS}?tenantId=made-up-{n}&documentId=d-{n}"
            ))))
            .await;
        assert_problem_type(&members, 404, "unknown-tenant");
    }
    assert_eq!(proxy.reads(), before, "the store was not read");
}

#[tokio::test]
async fn store_reads_past_the_budget_are_503_while_cached_members_keep_their_tokens() {
    let azurite = Azurite::start().await;
    let proxy = TableProxy::start(&azurite).await;
    for protocol in PROTOCOLS {
        let app = members_app(
            protocol,
            &Store::Table(&proxy.connection_string),
            // Many made-up documents from one caller: the per-caller limit would stop them first
            // (it is the first line; this budget protects the store from many callers).
            &[
                ("DOCUMENT_STORE_MISS_RATE", "2"),
                ("CALLER_RATE_LIMIT", "off"),
            ],
        )
        .await;
        let doc = format!("budget-{protocol:?}");
        assert_eq!(ANN.create(&app, &doc).await.status, 201);
        // Ann's role is read once (a miss) and then served from memory.
        assert_eq!(
            ANN.token(&app, &format!("documentId={doc}")).await.status,
            200
        );
        let before = proxy.reads();
        let mut refused = 0;
        for n in 0..40 {
            let answer = BOB.token(&app, &format!("documentId=made-up-{n}")).await;
            match answer.status {
                403 => {}
                503 => {
                    assert_problem_type(&answer, 503, "document-store-unavailable");
                    let retry: u64 = answer.header("retry-after").unwrap().parse().unwrap();
                    assert!((1..=2).contains(&retry), "{retry}");
                    refused += 1;
                }
                other => panic!("{protocol:?}: {other} {}", answer.text()),
            }
        }
        let reads = proxy.reads() - before;
        // A burst of 4 (twice the rate), less Ann's read, plus what the rate refills meanwhile.
        assert!(
            reads <= 8,
            "{protocol:?}: {reads} store reads for 40 made-up documents"
        );
        assert!(refused >= 30, "{protocol:?}: only {refused} refused");
        // Ann's cached role still gets her tokens.
        for _ in 0..5 {
            assert_eq!(
                ANN.token(&app, &format!("documentId={doc}")).await.status,
                200
            );
        }
    }
}

#[tokio::test]
async fn member_listings_draw_on_the_store_budget() {
    // The owner's role is cached, but every listing reads the member rows: past the budget it is
    // refused, not read.
    let (_azurite, proxy, app) = on_proxied_table(
        Protocol::Forwarding,
        &[
            ("DOCUMENT_STORE_MISS_RATE", "2"),
            ("CALLER_RATE_LIMIT", "off"),
        ],
    )
    .await;
    let doc = "listed-often";
    assert_eq!(ANN.create(&app, doc).await.status, 201);
    let before = proxy.reads();
    let mut refused = 0;
    for _ in 0..20 {
        let answer = ANN.members(&app, doc).await;
        match answer.status {
            200 => {}
            503 => {
                assert_problem_type(&answer, 503, "document-store-unavailable");
                assert!(answer.header("retry-after").is_some());
                refused += 1;
            }
            other => panic!("{other} {}", answer.text()),
        }
    }
    let reads = proxy.reads() - before;
    assert!(reads <= 10, "{reads} store reads for 20 listings");
    assert!(refused >= 10, "only {refused} of 20 listings refused");
}

#[tokio::test]
async fn a_removal_is_never_undone_by_a_read_in_flight() {
    let (_azurite, proxy, app) = on_proxied_table(Protocol::Forwarding, &[]).await;
    let wes = User("wes-oid");
    assert_eq!(ANN.create(&app, "slow").await.status, 201);
    assert_eq!(ANN.add(&app, "slow", wes.0, "writer").await.status, 200);
    // Reads of wes's row take a second.
    proxy.slow_reads_of(&table_key(wes.0), Duration::from_secs(1));
    let app = std::sync::Arc::new(app);
    let in_flight = tokio::spawn({
        let app = std::sync::Arc::clone(&app);
        async move { User("wes-oid").token(&app, "documentId=slow").await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ANN.remove(&app, "slow", wes.0).await.status, 200);
    let answer = in_flight.await.unwrap();
    assert_problem_type(&answer, 403, "forbidden");
    assert_problem_type(&wes.token(&app, "documentId=slow").await, 403, "forbidden");
}

/// The RowKey a member's row has (base64url of the user id).
fn table_key(user: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(user)
}

#[tokio::test]
async fn members_are_bounded_paged_and_valid() {
    let azurite = Azurite::start().await;
    let app = members_app(
        Protocol::Envelope,
        &Store::Table(&azurite.connection_string),
        &[("DOCUMENT_MAX_MEMBERS", "4")],
    )
    .await;
    assert_eq!(ANN.create(&app, "team").await.status, 201);
    for user in ["u-c", "u-a", "u-b"] {
        assert_eq!(ANN.add(&app, "team", user, "reader").await.status, 200);
    }
    let full = ANN.add(&app, "team", "u-d", "reader").await;
    assert_problem_type(&full, 409, "conflict");
    assert!(
        full.json()["detail"]
            .as_str()
            .unwrap()
            .contains("DOCUMENT_MAX_MEMBERS")
    );

    // Pages of two, in user id order, continued by the token each page gives.
    let page = |query: String| {
        let app = &app;
        async move {
            ok_json(
                &app.send(ANN.sign(PublicRequest::get(format!(
                    "{MEMBERS}?tenantId={TENANT}&documentId=team&limit=2{query}"
                ))))
                .await,
                200,
            )
        }
    };
    let first = page(String::new()).await;
    let ids = |page: &serde_json::Value| -> Vec<String> {
        page["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["userId"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&first), ["ann-oid", "u-a"]);
    let token = first["continuationToken"].as_str().unwrap();
    let second = page(format!("&continuationToken={token}")).await;
    assert_eq!(ids(&second), ["u-b", "u-c"]);
    assert!(second.get("continuationToken").is_none(), "{second}");
    let too_many = app
        .send(ANN.sign(PublicRequest::get(format!(
            "{MEMBERS}?tenantId={TENANT}&documentId=team&limit=1001"
        ))))
        .await;
    assert_problem_type(&too_many, 400, "invalid-parameter");

    // A user id with control characters is refused as the parameter it is.
    let control = app
        .send(ANN.sign(PublicRequest::post(MEMBERS)).json(
            &json!({ "tenantId": TENANT, "documentId": "team", "userId": "eve\u{0}", "role": "reader" }),
        ))
        .await;
    assert_eq!(
        assert_problem_type(&control, 400, "invalid-parameter")["parameter"],
        "userId"
    );
}

#[tokio::test]
async fn ids_too_long_for_a_table_key_are_stored_under_their_digest() {
    let azurite = Azurite::start().await;
    let app = members_app(
        Protocol::Forwarding,
        &Store::Table(&azurite.connection_string),
        &[],
    )
    .await;
    // 256 four-byte characters: about 1,370 characters of base64url as a key, past Table
    // Storage's 1 KiB.
    let long = "😀".repeat(256);
    let encoded = percent_encoding::utf8_percent_encode(&long, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    let token = creation_token(TENANT, &long, KEY, ANN.0, 300);
    assert_eq!(ANN.register(&app, &long, &token).await.status, 201);
    let issued = ANN.token(&app, &format!("documentId={encoded}")).await;
    assert_eq!(issued.status, 200, "{}", issued.text());
    assert_eq!(
        verify(&issued.text(), KEY).unwrap()["documentId"],
        long.as_str()
    );
    assert_eq!(
        ANN.add(&app, &long, &"b".repeat(256), "reader")
            .await
            .status,
        200
    );
}

/// An operator with the `Documents.Admin` app role.
fn operator(request: PublicRequest) -> PublicRequest {
    request.header(
        "X-MS-CLIENT-PRINCIPAL",
        &easyauth_principal(&[
            (
                "http://schemas.microsoft.com/identity/claims/objectidentifier",
                "ops-oid",
            ),
            (
                "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
                "Documents.Admin",
            ),
        ]),
    )
}

fn set_owner(document: &str, user: &str) -> PublicRequest {
    PublicRequest::post(format!("{MEMBERS}?action=setOwner"))
        .json(&json!({ "tenantId": TENANT, "documentId": document, "userId": user }))
}

#[tokio::test]
async fn an_operator_gives_existing_containers_an_owner() {
    for protocol in PROTOCOLS {
        let app = members_app(protocol, &Store::Memory, &[]).await;
        // A container created before DOCUMENT_ACCESS=members: nobody can open it.
        assert_problem_type(
            &ANN.token(&app, "documentId=legacy").await,
            403,
            "forbidden",
        );
        // Only the admin role may set its owner.
        let refused = app.send(ANN.sign(set_owner("legacy", ANN.0))).await;
        let detail = assert_problem_type(&refused, 403, "forbidden");
        assert!(
            detail["detail"]
                .as_str()
                .unwrap()
                .contains("Documents.Admin")
        );
        // Another app role is not that role.
        let other_role = app
            .send(set_owner("legacy", ANN.0).header(
                "X-MS-CLIENT-PRINCIPAL",
                &easyauth_principal(&[
                    (
                        "http://schemas.microsoft.com/identity/claims/objectidentifier",
                        "ops-oid",
                    ),
                    (
                        "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
                        "Tokens.Reader",
                    ),
                ]),
            ))
            .await;
        assert_problem_type(&other_role, 403, "forbidden");
        let set = app.send(operator(set_owner("legacy", ANN.0))).await;
        assert_eq!(ok_json(&set, 201)["role"], "owner");
        assert_eq!(ANN.token(&app, "documentId=legacy").await.status, 200);
        assert_eq!(ANN.add(&app, "legacy", BOB.0, "reader").await.status, 200);
        // Once it has an owner, it keeps it.
        let again = app.send(operator(set_owner("legacy", BOB.0))).await;
        assert_problem_type(&again, 409, "conflict");
        let audit = app.host.wait_for_output("\"action\":\"owner-set\"").await;
        assert!(audit.contains("ops-oid"), "{audit}");
    }
}

#[tokio::test]
async fn easy_auth_ids_can_be_namespaced_by_provider() {
    let app = members_app(
        Protocol::Forwarding,
        &Store::Memory,
        &[("EASYAUTH_USER_ID", "idp:id"), ("DOCUMENT_ACCESS", "open")],
    )
    .await;
    let answer = app
        .send(
            PublicRequest::get(format!("/api/TokenFunction?tenantId={TENANT}&documentId=d"))
                .header("X-MS-CLIENT-PRINCIPAL-ID", "1234")
                .header("X-MS-CLIENT-PRINCIPAL-IDP", "google"),
        )
        .await;
    assert_eq!(
        verify(&answer.text(), KEY).unwrap()["user"]["id"],
        "google:1234"
    );
}

#[tokio::test]
async fn members_already_known_keep_their_tokens_through_a_slow_or_down_store() {
    let (_azurite, proxy, app) = on_proxied_table(Protocol::Forwarding, &[]).await;
    assert_eq!(ANN.create(&app, "steady").await.status, 201);
    assert_eq!(ANN.add(&app, "steady", BOB.0, "reader").await.status, 200);
    assert_eq!(ANN.token(&app, "documentId=steady").await.status, 200);

    // Slow: the read after the role's 5 s is slow, and still answers.
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.slow_all(Some(Duration::from_millis(500)));
    assert_eq!(ANN.token(&app, "documentId=steady").await.status, 200);
    proxy.slow_all(None);

    // Down: Ann's role, past its 5 s, still serves; Bob, never asked for, cannot be checked.
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.set_down(true);
    assert_eq!(ANN.token(&app, "documentId=steady").await.status, 200);
    let bob = BOB.token(&app, "documentId=steady").await;
    assert_problem_type(&bob, 503, "document-store-unavailable");
    assert!(bob.header("retry-after").is_some());
    proxy.set_down(false);
    assert_eq!(BOB.token(&app, "documentId=steady").await.status, 200);
}
