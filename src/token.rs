//! The Azure Fluid Relay token: claims, encoding and the HS256 signature, by hand.
//!
//! The output is byte-compatible with `generateToken` of `@fluidframework/azure-service-utils`:
//! header `{"alg":"HS256","typ":"JWT"}`, compact JSON claims in the order `documentId, scopes,
//! tenantId, user, iat, exp, ver, jti`, base64url without padding, and an HMAC-SHA256 over
//! `header.payload` keyed by the UTF-8 bytes of the tenant key.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::Mac;
use serde::Serialize;
use uuid::Uuid;

use crate::domain::{AdditionalDetails, DocumentId, Lifetime, Scopes, TenantId};
use crate::json;
use crate::keys::TenantKey;

/// base64url of `{"alg":"HS256","typ":"JWT"}`, the exact header bytes `generateToken` signs.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// The `user` claim. Serialized as `{"id","name"[,"additionalDetails"]}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FluidUser {
    pub id: String,
    pub name: String,
    #[serde(
        rename = "additionalDetails",
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_details"
    )]
    pub additional_details: Option<AdditionalDetails>,
}

fn serialize_details<S: serde::Serializer>(
    details: &Option<AdditionalDetails>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match details {
        Some(details) => details.as_value().serialize(serializer),
        None => serializer.serialize_none(),
    }
}

/// What the service has decided to grant: everything in the token except time and `jti`.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub tenant_id: TenantId,
    pub document_id: DocumentId,
    pub user: FluidUser,
    pub scopes: Scopes,
    pub lifetime: Lifetime,
}

/// A signed token and the times in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedToken {
    pub jwt: String,
    pub issued_at: u64,
    pub expires_at: u64,
    /// The token's `jti`, for the audit log.
    pub jti: Uuid,
}

/// Signs `grant` now, with a fresh random `jti`.
pub fn issue(grant: &Grant, key: &TenantKey) -> SignedToken {
    encode(grant, key, unix_now_rounded(), Uuid::new_v4())
}

/// Signs `grant` as issued at `issued_at` (seconds since the epoch) with id `jti`.
///
/// One allocation per token, the JWT itself: the claims JSON is written into a buffer that each
/// thread reuses, base64url-encoded straight into the JWT's final place, and the MAC state comes
/// pre-keyed from the [`TenantKey`].
pub fn encode(grant: &Grant, key: &TenantKey, issued_at: u64, jti: Uuid) -> SignedToken {
    let expires_at = issued_at + u64::from(grant.lifetime.seconds());
    let jwt = CLAIMS.with_borrow_mut(|claims| {
        claims.clear();
        write_claims(claims, grant, issued_at, expires_at, jti);
        let jwt = signed_jwt(claims, key);
        if claims.capacity() > CLAIMS_KEPT_CAPACITY {
            // One token with large additionalDetails must not pin that memory to the thread.
            *claims = Vec::with_capacity(CLAIMS_INITIAL_CAPACITY);
        }
        jwt
    });
    SignedToken {
        jwt,
        issued_at,
        expires_at,
        jti,
    }
}

const CLAIMS_INITIAL_CAPACITY: usize = 512;
const CLAIMS_KEPT_CAPACITY: usize = 8 * 1024;

thread_local! {
    /// The claims JSON of the token being signed on this thread (it only lives inside `encode`).
    static CLAIMS: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(CLAIMS_INITIAL_CAPACITY));
}

/// `header.payload.signature`, each base64url, appended to one exactly sized string.
fn signed_jwt(claims: &[u8], key: &TenantKey) -> String {
    const SIGNATURE_B64_LEN: usize = 43; // 32 bytes of HMAC-SHA256, unpadded
    let base64url = &base64_simd::URL_SAFE_NO_PAD;
    let len = HEADER_B64.len() + 1 + base64url.encoded_length(claims.len()) + 1 + SIGNATURE_B64_LEN;
    let mut jwt = String::with_capacity(len);
    jwt.push_str(HEADER_B64);
    jwt.push('.');
    base64url.encode_append(claims, &mut jwt);
    let signature = sign(key.mac(), jwt.as_bytes());
    jwt.push('.');
    base64url.encode_append(signature, &mut jwt);
    debug_assert_eq!(jwt.len(), len);
    jwt
}

/// The claims as `JSON.stringify` writes them in `generateToken`: compact, in the order
/// `documentId, scopes, tenantId, user, iat, exp, ver, jti`. Written straight into one buffer
/// (this is the hot path); `additionalDetails`, an arbitrary value, goes through serde_json.
fn write_claims(out: &mut Vec<u8>, grant: &Grant, issued_at: u64, expires_at: u64, jti: Uuid) {
    out.extend_from_slice(b"{\"documentId\":");
    json::push_string(out, grant.document_id.as_str());
    out.extend_from_slice(b",\"scopes\":[");
    for (i, scope) in grant.scopes.as_slice().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(scope.as_str().as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b"],\"tenantId\":");
    json::push_string(out, grant.tenant_id.as_str());
    out.extend_from_slice(b",\"user\":{\"id\":");
    json::push_string(out, &grant.user.id);
    out.extend_from_slice(b",\"name\":");
    json::push_string(out, &grant.user.name);
    if let Some(details) = &grant.user.additional_details {
        out.extend_from_slice(b",\"additionalDetails\":");
        serde_json::to_writer(&mut *out, details.as_value())
            .expect("a JSON value always serializes");
    }
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(b"},\"iat\":");
    out.extend_from_slice(digits.format(issued_at).as_bytes());
    out.extend_from_slice(b",\"exp\":");
    out.extend_from_slice(digits.format(expires_at).as_bytes());
    out.extend_from_slice(b",\"ver\":\"1.0\",\"jti\":\"");
    out.extend_from_slice(
        jti.hyphenated()
            .encode_lower(&mut Uuid::encode_buffer())
            .as_bytes(),
    );
    out.extend_from_slice(b"\"}");
}

/// HMAC-SHA256 of the JWS signing input with an already keyed MAC.
fn sign(mut mac: hmac::Hmac<sha2::Sha256>, signing_input: &[u8]) -> [u8; 32] {
    mac.update(signing_input);
    mac.finalize().into_bytes().into()
}

/// Seconds since the epoch rounded to the nearest second, as `Math.round(Date.now() / 1000)`
/// in `generateToken`.
fn unix_now_rounded() -> u64 {
    rounded_seconds(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

/// `Math.round(ms / 1000)` for a non-negative time: half a second rounds up. Whole seconds plus
/// a comparison, because the `u128` division of `as_millis()` showed up in the signing profile.
fn rounded_seconds(since_epoch: Duration) -> u64 {
    since_epoch.as_secs() + u64::from(since_epoch.subsec_millis() >= 500)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use hmac::Hmac;
    use serde_json::json;

    fn grant(details: Option<serde_json::Value>) -> Grant {
        let query = format!(
            "tenantId=t1&documentId=doc&userId=u1&userName=Ann{}",
            details
                .map(|d| format!("&additionalDetails={}", urlencode(&d.to_string())))
                .unwrap_or_default()
        );
        let request = crate::request::TokenRequest::parse(
            &crate::invocation::QueryParams::parse(&query).unwrap(),
            b"",
            Lifetime::HARD_CAP,
        )
        .unwrap();
        Grant {
            tenant_id: request.tenant_id,
            document_id: request.document_id,
            user: FluidUser {
                id: "u1".into(),
                name: "Ann".into(),
                additional_details: request.additional_details,
            },
            scopes: Scopes::all(),
            lifetime: Lifetime::HARD_CAP,
        }
    }

    fn urlencode(s: &str) -> String {
        form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }

    fn decode_segment(segment: &str) -> String {
        String::from_utf8(URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
    }

    const JTI: &str = "57a58c27-a1dd-4d51-aadf-6766c74081d3";

    #[test]
    fn rfc7515_appendix_a1_hs256_signature() {
        // RFC 7515 A.1 (also RFC 7519 §3.1): a binary key, so the MAC is keyed directly.
        let key = URL_SAFE_NO_PAD
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
        let input = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(sign(mac, input.as_bytes())),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
    }

    #[test]
    fn simd_base64url_matches_the_base64_crate_at_every_length() {
        // Every length up to a few SIMD blocks, with every byte value, against the scalar crate,
        // appended after a prefix as `signed_jwt` does.
        let bytes: Vec<u8> = (0..=600u32).map(|i| (i * 151 % 256) as u8).collect();
        for len in 0..=bytes.len() {
            let mut appended = String::from("prefix.");
            base64_simd::URL_SAFE_NO_PAD.encode_append(&bytes[..len], &mut appended);
            let expected = format!("prefix.{}", URL_SAFE_NO_PAD.encode(&bytes[..len]));
            assert_eq!(appended, expected, "{len}");
        }
    }

    #[test]
    fn header_constant_is_the_fluid_header() {
        assert_eq!(decode_segment(HEADER_B64), r#"{"alg":"HS256","typ":"JWT"}"#);
    }

    #[test]
    fn claims_bytes_match_generate_token() {
        let key = TenantKey::from_secret("0123456789abcdef0123456789abcdef");
        let token = encode(
            &grant(Some(json!({"email": "a@b.c"}))),
            &key,
            1795549032,
            JTI.parse().unwrap(),
        );
        let segments: Vec<&str> = token.jwt.split('.').collect();
        assert_eq!(segments.len(), 3);
        assert_eq!(segments[0], HEADER_B64);
        // The reference bytes of JSON.stringify in generateToken for the same inputs.
        assert_eq!(
            decode_segment(segments[1]),
            r#"{"documentId":"doc","scopes":["doc:read","doc:write","summary:write"],"tenantId":"t1","user":{"id":"u1","name":"Ann","additionalDetails":{"email":"a@b.c"}},"iat":1795549032,"exp":1795552632,"ver":"1.0","jti":"57a58c27-a1dd-4d51-aadf-6766c74081d3"}"#
        );
        assert_eq!(token.issued_at, 1795549032);
        assert_eq!(token.expires_at, 1795552632);
        assert!(!token.jwt.contains('='));
    }

    #[test]
    fn user_without_details_has_no_details_member() {
        let key = TenantKey::from_secret("k");
        let token = encode(&grant(None), &key, 10, JTI.parse().unwrap());
        let payload = decode_segment(token.jwt.split('.').nth(1).unwrap());
        assert!(payload.contains(r#""user":{"id":"u1","name":"Ann"},"iat":10,"exp":3610,"#));
    }

    #[test]
    fn verifies_with_the_jsonwebtoken_crate() {
        for secret in ["0123456789abcdef0123456789abcdef", "clé-Zoë-😀"] {
            let token = issue(
                &grant(Some(json!({"n": "Zoë 😀"}))),
                &TenantKey::from_secret(secret),
            );
            let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
            validation.required_spec_claims.clear();
            validation.leeway = 0;
            let decoded = jsonwebtoken::decode::<serde_json::Value>(
                &token.jwt,
                &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
                &validation,
            )
            .unwrap();
            assert_eq!(decoded.claims["user"]["additionalDetails"]["n"], "Zoë 😀");
            assert_eq!(decoded.claims["exp"].as_u64(), Some(token.expires_at));
            assert_eq!(decoded.header.typ.as_deref(), Some("JWT"));

            let wrong = jsonwebtoken::decode::<serde_json::Value>(
                &token.jwt,
                &jsonwebtoken::DecodingKey::from_secret(b"another key"),
                &validation,
            );
            assert!(wrong.is_err());
        }
    }

    #[test]
    fn iat_rounds_like_math_round() {
        for (millis, seconds) in [
            (0, 0),
            (499, 0),
            (500, 1),
            (1_499, 1),
            (1_500, 2),
            (1_999, 2),
        ] {
            let since_epoch = Duration::from_millis(1_795_549_032_000 + millis);
            assert_eq!(
                rounded_seconds(since_epoch),
                1_795_549_032 + seconds,
                "{millis} ms"
            );
        }
        // Sub-millisecond parts do not round: Date.now() has whole milliseconds.
        assert_eq!(rounded_seconds(Duration::from_micros(499_999)), 0);
    }

    #[test]
    fn every_token_has_a_fresh_jti_and_a_current_iat() {
        let key = TenantKey::from_secret("k");
        let a = issue(&grant(None), &key);
        let b = issue(&grant(None), &key);
        assert_ne!(a.jwt, b.jwt);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(a.issued_at.abs_diff(now) <= 1);
        let jti = |t: &SignedToken| {
            let payload: serde_json::Value =
                serde_json::from_str(&decode_segment(t.jwt.split('.').nth(1).unwrap())).unwrap();
            Uuid::parse_str(payload["jti"].as_str().unwrap()).unwrap()
        };
        assert_eq!(jti(&a).get_version_num(), 4);
        assert_ne!(jti(&a), jti(&b));
    }
}
