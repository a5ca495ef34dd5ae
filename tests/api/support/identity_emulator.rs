//! The App Service managed identity endpoint (`IDENTITY_ENDPOINT`), as Azure Functions exposes it
//! to the app: `GET {endpoint}?api-version=2019-08-01&resource=…[&client_id=…]` with the
//! `x-identity-header: $IDENTITY_HEADER` header, answered with an access token whose `expires_on`
//! is a string of Unix seconds.
//!
//! Like Entra's, each token is bound to the `resource` it was asked for and to the identity
//! (`client_id` for a user-assigned one): a JWT with that `aud` and `appid`, an
//! `https://sts.windows.net/{tenant}/` issuer and a day of validity (what Azurite's OAuth mode
//! checks), signed with a key of this emulator. The other emulators accept only the token for
//! their own resource ([`IdentityEmulator::token_for`]), so a handler that asks for the wrong
//! resource or the wrong identity is refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

/// The tenant in the tokens' issuer.
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// The client id of the system-assigned identity.
pub const SYSTEM_ASSIGNED_CLIENT_ID: &str = "00000000-0000-0000-0000-00000000a11d";
pub const VAULT_RESOURCE: &str = "https://vault.azure.net";
pub const STORAGE_RESOURCE: &str = "https://storage.azure.com";
pub const ACS_RESOURCE: &str = "https://communication.azure.com";

use super::loopback_server::{self, Handler, Received, json};

pub struct IdentityEmulator {
    pub endpoint: String,
    /// The value the platform puts in `IDENTITY_HEADER`.
    pub header: String,
    /// The system-assigned identity's token for Key Vault: the only one the vault emulator takes.
    pub token: String,
    minter: Minter,
    calls: Arc<AtomicUsize>,
}

/// Mints the deterministic tokens of one emulator.
#[derive(Clone)]
struct Minter {
    key: Vec<u8>,
    issued_at: u64,
}

impl Minter {
    fn token(&self, resource: &str, client_id: &str) -> String {
        let claims = json!({
            "aud": resource.trim_end_matches('/'),
            "iss": format!("https://sts.windows.net/{TENANT}/"),
            "iat": self.issued_at,
            "nbf": self.issued_at - 60,
            "exp": self.issued_at + 86_400,
            "appid": client_id,
            "oid": format!("object-id-of-{client_id}"),
            "tid": TENANT,
            "ver": "1.0",
        });
        let encode = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
        let input = format!(
            "{}.{}",
            encode(&json!({"alg": "HS256", "typ": "JWT"})),
            encode(&claims)
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).unwrap();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }
}

impl IdentityEmulator {
    pub async fn start() -> IdentityEmulator {
        let header = format!("identity-header-{}", std::process::id());
        let minter = Minter {
            key: format!("identity-emulator-signing-key-{}", std::process::id()).into_bytes(),
            issued_at: super::now(),
        };
        let calls = Arc::new(AtomicUsize::new(0));
        let handler: Handler = {
            let (header, minter, calls) = (header.clone(), minter.clone(), Arc::clone(&calls));
            Arc::new(move |request: Received| {
                calls.fetch_add(1, Ordering::SeqCst);
                let answer = answer(&request, &header, &minter);
                Box::pin(async move { Ok(answer) })
            })
        };
        let addr = loopback_server::serve(handler, None).await;
        IdentityEmulator {
            endpoint: format!("http://{addr}/msi/token"),
            header,
            token: minter.token(VAULT_RESOURCE, SYSTEM_ASSIGNED_CLIENT_ID),
            minter,
            calls,
        }
    }

    /// The token the system-assigned identity gets for `resource`.
    pub fn token_for(&self, resource: &str) -> String {
        self.minter.token(resource, SYSTEM_ASSIGNED_CLIENT_ID)
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn answer(
    request: &Received,
    header: &str,
    minter: &Minter,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let query = loopback_server::query(&request.uri);
    let param = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if request.uri.path() != "/msi/token" || param("api-version") != Some("2019-08-01") {
        return json(
            400,
            &json!({"error": "invalid_request", "error_description": "unsupported api-version"}),
        );
    }
    let sent = request
        .headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok());
    if sent != Some(header) {
        return json(
            401,
            &json!({"statusCode": 401, "message": "Unauthorized. Invalid or missing X-IDENTITY-HEADER."}),
        );
    }
    let Some(resource) = param("resource") else {
        return json(
            400,
            &json!({"error": "invalid_resource", "error_description": "resource is required"}),
        );
    };
    let client_id = param("client_id").unwrap_or(SYSTEM_ASSIGNED_CLIENT_ID);
    json(
        200,
        &json!({
            "access_token": minter.token(resource, client_id),
            "expires_on": (minter.issued_at + 86_400).to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": client_id,
        }),
    )
}
