//! HMAC-SHA256 request signing for the Azure Communication Services data plane, as the ACS SDKs
//! do it (`communicationAccessKeyCredentialPolicy` in JS, `HMACCredentialsPolicy` in Python):
//!
//! ```text
//! x-ms-date:           RFC 1123 date
//! x-ms-content-sha256: base64(SHA-256(body))            (of "" when there is no body)
//! Authorization:       HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=<sig>
//! sig = base64(HMAC-SHA256(base64-decoded access key, "VERB\n<path?query>\n<date>;<host>;<hash>"))
//! ```
//!
//! Unlike the Fluid tenant key (used as UTF-8 bytes), the ACS access key is base64 and is decoded
//! before use. The two never share a helper.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// An ACS access key, decoded. `Debug` never shows it.
#[derive(Clone)]
pub struct AccessKey(Vec<u8>);

impl AccessKey {
    /// Decodes the base64 access key of a connection string.
    pub fn from_base64(key: &str) -> Option<Self> {
        STANDARD
            .decode(key.trim())
            .ok()
            .filter(|k| !k.is_empty())
            .map(AccessKey)
    }
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessKey([redacted])")
    }
}

/// The three headers that authenticate one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub date: String,
    pub content_sha256: String,
    pub authorization: String,
}

/// Signs a request. `host` is the authority as sent in `Host` (with `:port` when not default).
pub fn sign(
    key: &AccessKey,
    method: &str,
    path_and_query: &str,
    host: &str,
    date: &str,
    body: &[u8],
) -> SignedHeaders {
    let content_sha256 = STANDARD.encode(Sha256::digest(body));
    let string_to_sign = format!(
        "{}\n{path_and_query}\n{date};{host};{content_sha256}",
        method.to_ascii_uppercase()
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    SignedHeaders {
        date: date.to_string(),
        content_sha256,
        authorization: format!(
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from the Azure SDK for JS (communication-common,
    // test/public/communicationKeyCredentialPolicy.spec.ts): key "pw==", date fixed, GET, no body.
    const DATE: &str = "Wed, 13 Apr 2022 18:09:12 GMT";

    #[test]
    fn matches_the_js_sdk_vectors() {
        let key = AccessKey::from_base64("pw==").unwrap();
        let with_query = sign(
            &key,
            "GET",
            "/testPath?testQuery=test",
            "example.com",
            DATE,
            b"",
        );
        assert_eq!(
            with_query.content_sha256,
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            with_query.authorization,
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=DGdgwggJWnQyc6EHjR/Vbqg1ES64KpD6U2XwTDDj3tU="
        );
        let no_query = sign(&key, "get", "/testPath", "example.com", DATE, b"");
        assert!(
            no_query
                .authorization
                .ends_with("Signature=+6tWkg3lNKVjQHHmxkdGQcJjUgzclsWTMebnuCz1ngU=")
        );
    }

    #[test]
    fn content_hashes_match_the_java_sdk_vectors() {
        // HmacAuthenticationPolicyTests: cross-language ASCII and Unicode body hashes.
        let key = AccessKey::from_base64("pw==").unwrap();
        assert_eq!(
            sign(&key, "POST", "/", "h", DATE, b"banana").content_sha256,
            "tJPUg2Sv5E0RwBZc9HCkFk0eJgmRHvmYvoaNRq3j3k4="
        );
        assert_eq!(
            sign(&key, "POST", "/", "h", DATE, "😀".as_bytes()).content_sha256,
            "8EQ6NCxe9UeDoRG1G6Vsk45HTDIyTZDDpgycjjo34tk="
        );
    }

    #[test]
    fn keys_must_be_base64_and_never_print() {
        assert!(AccessKey::from_base64("not base64!").is_none());
        assert!(AccessKey::from_base64("").is_none());
        let key = AccessKey::from_base64("c2VjcmV0LWtleS1ieXRlcw==").unwrap();
        assert_eq!(format!("{key:?}"), "AccessKey([redacted])");
    }
}
