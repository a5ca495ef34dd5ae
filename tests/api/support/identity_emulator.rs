//! The App Service managed identity endpoint (`IDENTITY_ENDPOINT`), as Azure Functions exposes it
//! to the app: `GET {endpoint}?api-version=2019-08-01&resource=…[&client_id=…]` with the
//! `x-identity-header: $IDENTITY_HEADER` header, answered with an access token whose `expires_on`
//! is a string of Unix seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::loopback_server::{self, Handler, Received, json};

pub struct IdentityEmulator {
    pub endpoint: String,
    /// The value the platform puts in `IDENTITY_HEADER`.
    pub header: String,
    /// The token it hands out; the Key Vault emulator accepts only this one.
    pub token: String,
    calls: Arc<AtomicUsize>,
}

impl IdentityEmulator {
    pub async fn start() -> IdentityEmulator {
        let header = format!("identity-header-{}", std::process::id());
        let token = format!("mi-access-token-{}", std::process::id());
        let calls = Arc::new(AtomicUsize::new(0));
        let handler: Handler = {
            let (header, token, calls) = (header.clone(), token.clone(), Arc::clone(&calls));
            Arc::new(move |request: Received| {
                calls.fetch_add(1, Ordering::SeqCst);
                let answer = answer(&request, &header, &token);
                Box::pin(async move { Ok(answer) })
            })
        };
        let addr = loopback_server::serve(handler, None).await;
        IdentityEmulator {
            endpoint: format!("http://{addr}/msi/token"),
            header,
            token,
            calls,
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn answer(
    request: &Received,
    header: &str,
    token: &str,
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
    let expires_on = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    json(
        200,
        &json!({
            "access_token": token,
            "expires_on": expires_on.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": param("client_id").unwrap_or("00000000-0000-0000-0000-00000000a11d"),
        }),
    )
}
