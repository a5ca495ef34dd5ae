//! Tenant keys from Azure Key Vault, end to end: the handler under the host emulator reads
//! secrets from the Key Vault emulator (HTTPS, challenge flow) with a token from the managed
//! identity emulator, as it does in a Function App.

use std::time::{Duration, Instant};

use crate::support::identity_emulator::IdentityEmulator;
use crate::support::keyvault_emulator::{Fault, KeyVaultEmulator};
use crate::support::*;

const VAULT_KEY: &str = "vault-key-of-t1-4f9e1d";
const ROTATED_KEY: &str = "rotated-key-of-t1-77ab20";
const SECRET: &str = "fluid-tenant-t1";

struct VaultApp {
    app: TestApp,
    vault: KeyVaultEmulator,
    identity: IdentityEmulator,
}

impl VaultApp {
    /// The vault holds `fluid-tenant-t1`; `settings` override the Key Vault settings below.
    async fn start(protocol: Protocol, settings: &[(&str, &str)]) -> VaultApp {
        Self::start_with(protocol, settings, |vault| {
            vault.set_secret(SECRET, VAULT_KEY)
        })
        .await
    }

    async fn start_with(
        protocol: Protocol,
        settings: &[(&str, &str)],
        prepare: impl FnOnce(&KeyVaultEmulator),
    ) -> VaultApp {
        let identity = IdentityEmulator::start().await;
        let vault = KeyVaultEmulator::start(&identity.token).await;
        prepare(&vault);
        let defaults = vault.app_settings(&identity);
        let mut all: Vec<(&str, &str)> = defaults.iter().map(|(n, v)| (*n, v.as_str())).collect();
        for (name, value) in settings {
            all.retain(|(n, _)| n != name);
            all.push((name, value));
        }
        let app = TestApp::spawn_with(protocol, &all).await;
        VaultApp {
            app,
            vault,
            identity,
        }
    }

    /// A token for t1 that verifies with `key`; returns how long the request took.
    async fn token_with(&self, key: &str) -> Duration {
        let started = Instant::now();
        let response = self.app.get_token("tenantId=t1&userId=u").await;
        let elapsed = started.elapsed();
        assert_eq!(
            response.status,
            200,
            "{}\n{}",
            response.text(),
            self.app.host.output()
        );
        verify(&response.text(), key)
            .unwrap_or_else(|e| panic!("not signed with the expected key: {e}"));
        elapsed
    }

    /// Stops the app and checks everything it wrote (not just what was written so far).
    async fn assert_no_secret_in_output(&mut self) {
        let output = self.app.host.finish().await;
        for secret in [
            VAULT_KEY,
            ROTATED_KEY,
            KEY,
            self.identity.header.as_str(),
            self.identity.token.as_str(),
        ] {
            assert!(
                !output.contains(secret),
                "a secret is in the output:\n{output}"
            );
        }
    }
}

#[tokio::test]
async fn tokens_are_signed_with_the_key_from_the_vault() {
    for protocol in [Protocol::Forwarding, Protocol::Envelope] {
        let mut env = VaultApp::start(protocol, &[]).await;
        env.token_with(VAULT_KEY).await;
        env.token_with(VAULT_KEY).await;
        let response = env.app.get_token("tenantId=t1").await;
        assert!(
            verify(&response.text(), KEY).is_err(),
            "TENANT_KEYS is ignored"
        );

        // One challenge round trip, one authenticated read, one identity token, the SDK's API version.
        assert_eq!(env.vault.reads(SECRET), 1);
        assert_eq!(env.vault.unauthenticated(), 1);
        assert_eq!(env.identity.calls(), 1);
        assert_eq!(env.vault.api_versions(), ["2025-07-01"]);

        let output = env
            .app
            .host
            .wait_for_output("\"source\":\"key-vault\"")
            .await;
        assert!(
            output.contains(&env.vault.url)
                && output.contains("managed-identity")
                && output.contains("app-service")
        );
        assert!(output.contains("TENANT_KEYS is ignored"));
        assert!(output.contains("KEY_VAULT_VERIFY_CHALLENGE_RESOURCE=false"));
        env.assert_no_secret_in_output().await;
    }
}

#[tokio::test]
async fn unknown_disabled_and_unnameable_tenants_are_404_and_remembered() {
    let env = VaultApp::start_with(Protocol::Forwarding, &[], |vault| {
        vault.set_secret("fluid-tenant-gone", "old-key-value");
        vault.disable("fluid-tenant-gone");
    })
    .await;
    for _ in 0..3 {
        let doc = assert_problem(&env.app.get_token("tenantId=nobody").await, 404);
        assert!(doc["type"].as_str().unwrap().ends_with("unknown-tenant"));
        assert_problem(&env.app.get_token("tenantId=gone").await, 404);
    }
    assert_eq!(env.vault.reads("fluid-tenant-nobody"), 1, "negative cache");
    assert_eq!(
        env.vault.reads("fluid-tenant-gone"),
        1,
        "a disabled secret is an unknown tenant"
    );
    // `_` and `.` are valid in tenant ids but not in secret names: no vault call at all.
    assert_problem(&env.app.get_token("tenantId=has_underscore").await, 404);
    assert_problem(&env.app.get_token("tenantId=has.dot").await, 404);
    assert_eq!(env.vault.total_reads(), 2);
}

#[tokio::test]
async fn concurrent_first_requests_make_one_vault_read() {
    let env = VaultApp::start(Protocol::Forwarding, &[]).await;
    // Slow enough that every request arrives while the first read is still in flight.
    env.vault
        .set_fault(Some(Fault::Delay(Duration::from_millis(500))));
    let requests = (0..20).map(|_| env.app.get_token("tenantId=t1"));
    for response in futures_util::future::join_all(requests).await {
        assert_eq!(response.status, 200, "{}", response.text());
        verify(&response.text(), VAULT_KEY).unwrap();
    }
    assert_eq!(env.vault.reads(SECRET), 1);
}

#[tokio::test]
async fn a_new_secret_version_is_picked_up_after_the_ttl() {
    let mut env = VaultApp::start(Protocol::Forwarding, &[("KEY_CACHE_TTL_SECONDS", "1")]).await;
    env.token_with(VAULT_KEY).await;
    env.vault.set_secret(SECRET, ROTATED_KEY);
    let rotated_at = Instant::now();
    loop {
        let jwt = env.app.get_token("tenantId=t1").await.text();
        if verify(&jwt, ROTATED_KEY).is_ok() {
            break;
        }
        verify(&jwt, VAULT_KEY).expect("the old key until the TTL passes");
        assert!(
            rotated_at.elapsed() < Duration::from_secs(10),
            "rotation not picked up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(env.vault.reads(SECRET) >= 2);
    env.assert_no_secret_in_output().await;
}

/// After a first successful read, the vault fails; tokens keep coming, signed with the cached key,
/// and no request waits longer than the Key Vault timeout (plus slack for a busy machine).
async fn survives_after_warm_up(fault: Fault) {
    let env = VaultApp::start(
        Protocol::Forwarding,
        &[
            ("KEY_CACHE_TTL_SECONDS", "1"),
            ("KEY_VAULT_TIMEOUT_MS", "300"),
        ],
    )
    .await;
    env.token_with(VAULT_KEY).await;
    env.vault.set_fault(Some(fault));
    let deadline = Instant::now() + Duration::from_secs(15);
    // Until a refresh has really run into the fault (the TTL has passed), and a bit beyond.
    while env.vault.faulted_reads() < 2 {
        let took = env.token_with(VAULT_KEY).await;
        assert!(
            took < Duration::from_secs(3),
            "{fault:?}: a request waited {took:?}"
        );
        assert!(
            Instant::now() < deadline,
            "{fault:?}: no refresh reached the vault"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let output = env
        .app
        .host
        .wait_for_output("serving the last good key")
        .await;
    assert!(!output.contains(VAULT_KEY));
}

#[tokio::test]
async fn vault_down_after_warm_up() {
    survives_after_warm_up(Fault::Drop).await;
}

#[tokio::test]
async fn vault_slow_after_warm_up() {
    survives_after_warm_up(Fault::Delay(Duration::from_secs(30))).await;
}

#[tokio::test]
async fn vault_throttling_after_warm_up() {
    survives_after_warm_up(Fault::Status(429)).await;
}

#[tokio::test]
async fn vault_failing_after_warm_up() {
    survives_after_warm_up(Fault::Status(500)).await;
}

#[tokio::test]
async fn vault_down_before_any_read_is_503_with_retry_after() {
    for protocol in [Protocol::Forwarding, Protocol::Envelope] {
        let mut env = VaultApp::start(protocol, &[]).await;
        env.vault.set_fault(Some(Fault::Drop));
        let response = env.app.get_token("tenantId=t1").await;
        let doc = assert_problem(&response, 503);
        assert!(
            doc["type"]
                .as_str()
                .unwrap()
                .ends_with("key-store-unavailable")
        );
        let retry_after: u64 = response
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after));
        env.assert_no_secret_in_output().await;
    }
}

#[tokio::test]
async fn a_wrong_identity_header_is_503_and_a_clear_log() {
    let env = VaultApp::start(
        Protocol::Forwarding,
        &[("IDENTITY_HEADER", "not-the-platform-header")],
    )
    .await;
    assert_problem(&env.app.get_token("tenantId=t1").await, 503);
    let output = env
        .app
        .host
        .wait_for_output("cannot get an access token for Key Vault")
        .await;
    assert!(output.contains("IDENTITY_HEADER"), "{output}");
    assert_eq!(env.vault.total_reads(), 0);
    assert!(!output.contains("not-the-platform-header"));
}

#[tokio::test]
async fn a_missing_rbac_role_is_503_and_a_clear_log() {
    let env = VaultApp::start(Protocol::Forwarding, &[]).await;
    env.vault.set_fault(Some(Fault::Status(403)));
    assert_problem(&env.app.get_token("tenantId=t1").await, 503);
    env.app.host.wait_for_output("Key Vault Secrets User").await;
}

#[tokio::test]
async fn preloaded_tenants_are_read_at_startup() {
    let env = VaultApp::start(Protocol::Forwarding, &[("KEY_VAULT_PRELOAD_TENANTS", "t1")]).await;
    env.app.host.wait_for_output("tenant key preloaded").await;
    assert_eq!(env.vault.reads(SECRET), 1);
    env.token_with(VAULT_KEY).await;
    assert_eq!(
        env.vault.reads(SECRET),
        1,
        "the first request was served from the preloaded cache"
    );
}

/// One caller sending random tenant ids, or every spelling of a real one, cannot turn the app
/// into a Key Vault amplifier: reads for tenants without a key stop at KEY_VAULT_MISS_RATE (burst
/// twice that), the rest get 503 with Retry-After and no vault call; case variants share a read.
#[tokio::test]
async fn random_tenant_ids_cannot_flood_the_vault() {
    for protocol in PROTOCOLS {
        let env = VaultApp::start(protocol, &[("KEY_VAULT_MISS_RATE", "5")]).await;
        // 200 spellings of the real tenant: one read, every token signed with its key.
        let before = env.vault.reads(SECRET);
        for n in 0..200 {
            let spelling: String = "t1"
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if (n >> i) & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            let response = env.app.get_token(&format!("tenantId={spelling}")).await;
            let claims = assert_token(&response, VAULT_KEY);
            assert_eq!(
                claims["tenantId"],
                spelling.as_str(),
                "the token carries the id as asked"
            );
        }
        assert!(
            env.vault.reads(SECRET) - before <= 1,
            "case variants share the slot"
        );

        // Then the flood. A tenant that has a key keeps being served from the cache meanwhile.
        let started = std::time::Instant::now();
        let mut unavailable = 0;
        for n in 0..60 {
            let response = env.app.get_token(&format!("tenantId=random-{n}")).await;
            match response.status {
                404 => {}
                503 => {
                    let doc = assert_problem(&response, 503);
                    assert!(
                        doc["type"]
                            .as_str()
                            .unwrap()
                            .ends_with("key-store-unavailable")
                    );
                    assert!(response.header("retry-after").is_some());
                    unavailable += 1;
                }
                other => panic!("{protocol:?}: {other} {}", response.text()),
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let reads = env.vault.total_reads();
        assert!(
            reads as f64 <= 10.0 + 5.0 * elapsed + 1.0,
            "{protocol:?}: {reads} vault reads in {elapsed:.1} s"
        );
        assert!(unavailable >= 60 - reads, "{unavailable}");

        assert_eq!(env.app.get_token("tenantId=T1").await.status, 200);
    }
}

/// With the challenge-resource check on (the default), a vault whose challenge names a resource
/// outside its own domain never gets the managed identity's token: the emulator at 127.0.0.1
/// names `https://vault.azure.net`, so the SDK refuses before sending a bearer — which is what
/// protects the token from a vault URL that is not a vault. (The other tests turn it off.)
#[tokio::test]
async fn the_challenge_resource_check_keeps_the_token_from_a_mismatched_vault() {
    let env = VaultApp::start(
        Protocol::Forwarding,
        &[("KEY_VAULT_VERIFY_CHALLENGE_RESOURCE", "true")],
    )
    .await;
    let response = env.app.get_token("tenantId=t1").await;
    assert_problem_type(&response, 503, "key-store-unavailable");
    assert!(
        env.vault.unauthenticated() >= 1,
        "the challenge was asked for"
    );
    assert_eq!(env.vault.reads(SECRET), 0, "no read with a bearer");
    assert_eq!(env.identity.calls(), 0, "no token was even requested");
}
