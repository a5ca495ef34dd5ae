//! Entra ID's token-signing side, on 127.0.0.1: the tenant's OpenID configuration
//! (`/{tenant}/v2.0/.well-known/openid-configuration`) and its JWKS, with RSA keys generated
//! here, plus a minting helper that signs access tokens the way Entra does (RS256, `kid`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::loopback_server::{self, Handler, Received, json};

pub const TENANT_ID: &str = "3f2a9c1e-8d4b-4e6f-9a7c-1b2d3e4f5a6b";
pub const AUDIENCE: &str = "api://fluid-token-service";

/// An RSA signing key and its public JWK.
pub struct SigningKey {
    pub kid: String,
    pub private_pem: String,
    pub public_der: Vec<u8>,
    n: String,
    e: String,
    /// The JWK's `kty` and `use`: `RSA` and `sig` unless a test publishes it as something else.
    kty: &'static str,
    usage: &'static str,
}

impl SigningKey {
    pub fn generate(kid: &str) -> SigningKey {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let pkcs8 = pair.as_der().unwrap();
        let body = STANDARD.encode(pkcs8.as_ref());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let private_pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        );
        let public = pair.public_key();
        SigningKey {
            kid: kid.to_string(),
            private_pem,
            public_der: public.as_ref().to_vec(),
            n: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            e: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            kty: "RSA",
            usage: "sig",
        }
    }

    /// The same key material, published with another `kty` or `use` (an encryption key, say).
    pub fn published_as(mut self, kty: &'static str, usage: &'static str) -> SigningKey {
        self.kty = kty;
        self.usage = usage;
        self
    }

    fn jwk(&self) -> Value {
        json!({"kty": self.kty, "use": self.usage, "kid": self.kid, "n": self.n, "e": self.e})
    }

    /// An RS256 token with this key, naming `kid` in its header.
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(kid.to_string());
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(self.private_pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }
}

pub struct OpenIdEmulator {
    /// `ENTRA_AUTHORITY` for the handler.
    pub authority: String,
    published: Arc<Mutex<Vec<SigningKey>>>,
    jwks_fetches: Arc<AtomicUsize>,
}

impl OpenIdEmulator {
    /// Starts with one published key, `kid-1`.
    pub async fn start() -> OpenIdEmulator {
        let published = Arc::new(Mutex::new(vec![SigningKey::generate("kid-1")]));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let base = Arc::new(Mutex::new(String::new()));
        let handler: Handler = {
            let (published, fetches, base) = (
                Arc::clone(&published),
                Arc::clone(&jwks_fetches),
                Arc::clone(&base),
            );
            Arc::new(move |request: Received| {
                let authority = base.lock().unwrap().clone();
                let path = request.uri.path().to_string();
                let response = if path
                    == format!("/{TENANT_ID}/v2.0/.well-known/openid-configuration")
                {
                    json(
                        200,
                        &json!({
                            "issuer": format!("{authority}/{TENANT_ID}/v2.0"),
                            "jwks_uri": format!("{authority}/{TENANT_ID}/discovery/v2.0/keys"),
                            "authorization_endpoint": format!("{authority}/{TENANT_ID}/oauth2/v2.0/authorize"),
                            "token_endpoint": format!("{authority}/{TENANT_ID}/oauth2/v2.0/token"),
                            "id_token_signing_alg_values_supported": ["RS256"],
                        }),
                    )
                } else if path == format!("/{TENANT_ID}/discovery/v2.0/keys") {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    let keys: Vec<Value> = published
                        .lock()
                        .unwrap()
                        .iter()
                        .map(SigningKey::jwk)
                        .collect();
                    json(200, &json!({ "keys": keys }))
                } else {
                    json(404, &json!({"error": "not_found"}))
                };
                Box::pin(async move { Ok(response) })
            })
        };
        let addr = loopback_server::serve(handler, None).await;
        let authority = format!("http://{addr}");
        *base.lock().unwrap() = authority.clone();
        OpenIdEmulator {
            authority,
            published,
            jwks_fetches,
        }
    }

    pub fn issuer(&self) -> String {
        format!("{}/{TENANT_ID}/v2.0", self.authority)
    }

    /// Publishes a new signing key (Entra's key rotation).
    pub fn publish(&self, key: SigningKey) {
        self.published.lock().unwrap().push(key);
    }

    /// Stops publishing the key `kid` (Entra withdrew it).
    pub fn withdraw(&self, kid: &str) {
        self.published.lock().unwrap().retain(|key| key.kid != kid);
    }

    /// An access token for `oid` signed with the published key `kid`.
    pub fn token_signed_by(&self, kid: &str, oid: &str, overrides: Value) -> String {
        let claims = self.claims(oid, overrides);
        let keys = self.published.lock().unwrap();
        let key = keys.iter().find(|k| k.kid == kid).expect("a published key");
        key.sign(kid, &claims)
    }

    /// The DER bytes of the first published public key (what an algorithm-confusion attacker
    /// would use as an HMAC secret).
    pub fn published_key_der(&self) -> Vec<u8> {
        self.published.lock().unwrap()[0].public_der.clone()
    }

    pub fn jwks_fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    /// An access token for `oid` signed with the first published key, with `overrides` applied
    /// to the standard claims (a `null` override removes the claim).
    pub fn token(&self, oid: &str, overrides: Value) -> String {
        let claims = self.claims(oid, overrides);
        let keys = self.published.lock().unwrap();
        keys[0].sign(&keys[0].kid, &claims)
    }

    /// The claims Entra puts in a v2.0 access token for this API.
    pub fn claims(&self, oid: &str, overrides: Value) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut claims = json!({
            "aud": AUDIENCE,
            "iss": self.issuer(),
            "iat": now - 10,
            "nbf": now - 10,
            "exp": now + 3600,
            "tid": TENANT_ID,
            "oid": oid,
            "sub": format!("sub-of-{oid}"),
            "name": format!("Name of {oid}"),
            "preferred_username": format!("{oid}@contoso.example"),
            "scp": "Token.Issue User.Read",
            "ver": "2.0",
        });
        for (name, value) in overrides.as_object().into_iter().flatten() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    }
}
