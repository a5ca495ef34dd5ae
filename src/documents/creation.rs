//! The creation token Azure Fluid Relay returns with a new container, and its check.
//!
//! When the client's token provider implements `documentPostCreateCallback`, the driver asks the
//! service to create the container with `generateToken: true`, and the service answers with the
//! container's id and `generateToken(tenantId, id, tenantKey, [], user)`: an HS256 JWT signed with
//! the tenant key, with **no scopes** (it grants nothing) and the user whose token created the
//! container. Only the service and this app know the tenant key, so a token that verifies is the
//! service's word that this user created this container.
//!
//! Reading happens in two steps because the key depends on the token: [`read`] decodes it
//! without trusting anything (to learn which tenant's key to use), and [`Unverified::verify`]
//! checks the signature first and the claims after.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use serde::Deserialize;
use serde_json::Value;

use crate::domain::{DocumentId, TenantId};
use crate::keys::TenantKey;

/// Clock skew allowed on `exp` and `iat`.
pub const SKEW_SECONDS: u64 = 60;
/// Longer than any creation token (a few hundred bytes); longer input is not decoded.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a creation token is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreationError {
    /// Not a JWT of the expected shape (a 400).
    Malformed(&'static str),
    /// A JWT, but not a valid creation token for this container (a 403).
    Rejected(&'static str),
}

/// A creation token decoded but not yet trusted.
#[derive(Debug)]
pub struct Unverified<'a> {
    signing_input: &'a str,
    signature: Vec<u8>,
    algorithm: Option<String>,
    claims: Claims,
    tenant_id: TenantId,
}

/// What a creation token proves: `user_id` created `document_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creation {
    pub tenant_id: TenantId,
    pub document_id: DocumentId,
    pub user_id: String,
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(rename = "documentId")]
    document_id: String,
    scopes: Vec<Value>,
    #[serde(rename = "tenantId")]
    tenant_id: String,
    user: User,
    /// Required, as Azure Fluid Relay's own tokens carry it: without it the lifetime is unknown.
    iat: Option<u64>,
    exp: u64,
}

/// Azure Fluid Relay's maximum token lifetime (`exp - iat`), which its creation tokens keep to.
pub const MAX_LIFETIME_SECONDS: u64 = 3600;

#[derive(Debug, Deserialize)]
struct User {
    id: String,
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
}

/// Decodes `token` without trusting it.
pub fn read(token: &str) -> Result<Unverified<'_>, CreationError> {
    const NOT_A_JWT: CreationError =
        CreationError::Malformed("token: must be a JWT (header.payload.signature, base64url)");
    if token.len() > MAX_TOKEN_BYTES {
        return Err(CreationError::Malformed("token: is too long"));
    }
    let (signing_input, signature) = token.rsplit_once('.').ok_or(NOT_A_JWT)?;
    let (header, payload) = signing_input.split_once('.').ok_or(NOT_A_JWT)?;
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| NOT_A_JWT);
    let header: Header = serde_json::from_slice(&decode(header)?).map_err(|_| NOT_A_JWT)?;
    let claims: Claims = serde_json::from_slice(&decode(payload)?).map_err(|_| {
        CreationError::Malformed(
            "token: its claims must hold documentId, scopes, tenantId, user.id and exp",
        )
    })?;
    let tenant_id = TenantId::parse(&claims.tenant_id)
        .map_err(|_| CreationError::Malformed("token: its tenantId is not a tenant id"))?;
    Ok(Unverified {
        signing_input,
        signature: decode(signature)?,
        algorithm: header.alg,
        claims,
        tenant_id,
    })
}

impl Unverified<'_> {
    /// The tenant whose key must have signed the token.
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }

    /// Checks that `key` signed the token (HS256), that its time claims are what Azure Fluid
    /// Relay issues (`iat` present and not in the future, `exp - iat` at most an hour, `exp` at
    /// most an hour ahead, not expired — each with [`SKEW_SECONDS`] at `now`, seconds since the
    /// epoch), that it names `document_id`, and that it is a creation token (no scopes).
    pub fn verify(
        self,
        key: &TenantKey,
        document_id: &DocumentId,
        now: u64,
    ) -> Result<Creation, CreationError> {
        if self.algorithm.as_deref() != Some("HS256") {
            return Err(CreationError::Rejected("token: must be signed with HS256"));
        }
        let mut mac = key.mac();
        mac.update(self.signing_input.as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&self.signature)
            .map_err(|_| CreationError::Rejected("token: its signature is not the tenant's"))?;
        let claims = self.claims;
        if now > claims.exp.saturating_add(SKEW_SECONDS) {
            return Err(CreationError::Rejected("token: has expired"));
        }
        let iat = claims.iat.ok_or(CreationError::Rejected(
            "token: has no iat (issued-at time)",
        ))?;
        if iat > now.saturating_add(SKEW_SECONDS) {
            return Err(CreationError::Rejected("token: is issued in the future"));
        }
        // With iat at most the skew ahead, this also keeps exp within an hour (+ skew) of now.
        if claims.exp.saturating_sub(iat) > MAX_LIFETIME_SECONDS {
            return Err(CreationError::Rejected(
                "token: lives longer than an hour (exp - iat), more than Azure Fluid Relay issues",
            ));
        }
        if claims.document_id != document_id.as_str() {
            return Err(CreationError::Rejected(
                "token: is for another document than documentId",
            ));
        }
        if !claims.scopes.is_empty() {
            return Err(CreationError::Rejected(
                "token: has scopes, so it is an access token, not a creation token",
            ));
        }
        if claims.user.id.is_empty() {
            return Err(CreationError::Rejected("token: names no user"));
        }
        Ok(Creation {
            tenant_id: self.tenant_id,
            document_id: document_id.clone(),
            user_id: claims.user.id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Lifetime, Scopes};
    use crate::token::{FluidUser, Grant};
    use hmac::Hmac;
    use sha2::Sha256;

    const KEY: &str = "tenant-key";
    const NOW: u64 = 1_800_000_000;

    /// A token as `generateToken` signs it, from these claims and header.
    fn signed(header: &str, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    fn claims(document: &str, iat: u64, exp: u64) -> Value {
        serde_json::json!({
            "documentId": document, "scopes": [], "tenantId": "t",
            "user": { "id": "ann", "name": "Ann" }, "iat": iat, "exp": exp, "ver": "1.0", "jti": "j"
        })
    }

    const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

    fn check(token: &str, document: &str) -> Result<Creation, CreationError> {
        read(token)?.verify(
            &TenantKey::from_secret(KEY),
            &DocumentId::parse(document).unwrap(),
            NOW,
        )
    }

    #[test]
    fn a_creation_token_names_its_creator() {
        let token = signed(HS256, &claims("d1", NOW, NOW + 3600));
        assert_eq!(read(&token).unwrap().tenant_id().as_str(), "t");
        assert_eq!(
            check(&token, "d1"),
            Ok(Creation {
                tenant_id: TenantId::parse("t").unwrap(),
                document_id: DocumentId::parse("d1").unwrap(),
                user_id: "ann".into()
            })
        );
    }

    #[test]
    fn tokens_this_service_signs_verify_when_they_have_no_scopes() {
        // The signing code of this service writes the same bytes as generateToken; an access
        // token (with scopes) is refused as a creation token.
        let grant = Grant {
            tenant_id: TenantId::parse("t").unwrap(),
            document_id: DocumentId::parse("d1").unwrap(),
            user: FluidUser {
                id: "ann".into(),
                name: "Ann".into(),
                additional_details: None,
            },
            scopes: Scopes::all(),
            lifetime: Lifetime::HARD_CAP,
        };
        let access =
            crate::token::encode(&grant, &TenantKey::from_secret(KEY), NOW, uuid::Uuid::nil());
        assert!(matches!(
            check(&access.jwt, "d1"),
            Err(CreationError::Rejected(detail)) if detail.contains("scopes")
        ));
    }

    #[test]
    fn time_is_checked_with_sixty_seconds_of_skew() {
        let at_edge = signed(HS256, &claims("d", NOW - 100, NOW - SKEW_SECONDS));
        assert!(check(&at_edge, "d").is_ok());
        let expired = signed(HS256, &claims("d", NOW - 100, NOW - SKEW_SECONDS - 1));
        assert_eq!(
            check(&expired, "d"),
            Err(CreationError::Rejected("token: has expired"))
        );
        let early = signed(HS256, &claims("d", NOW + SKEW_SECONDS, NOW + 3600));
        assert!(check(&early, "d").is_ok());
        let future = signed(HS256, &claims("d", NOW + SKEW_SECONDS + 1, NOW + 3600));
        assert_eq!(
            check(&future, "d"),
            Err(CreationError::Rejected("token: is issued in the future"))
        );
    }

    #[test]
    fn time_claims_are_as_strict_as_azure_fluid_relays_tokens() {
        let no_iat = {
            let mut c = claims("d", NOW, NOW + 60);
            c.as_object_mut().unwrap().remove("iat");
            signed(HS256, &c)
        };
        assert_eq!(
            check(&no_iat, "d"),
            Err(CreationError::Rejected(
                "token: has no iat (issued-at time)"
            ))
        );
        let hour = signed(
            HS256,
            &claims("d", NOW - 10, NOW - 10 + MAX_LIFETIME_SECONDS),
        );
        assert!(check(&hour, "d").is_ok(), "an hour exactly");
        let longer = signed(
            HS256,
            &claims("d", NOW - 10, NOW - 10 + MAX_LIFETIME_SECONDS + 1),
        );
        assert!(
            matches!(check(&longer, "d"), Err(CreationError::Rejected(detail)) if detail.contains("longer than an hour"))
        );
        // Issued now, expiring in the year 2286.
        let far = signed(HS256, &claims("d", NOW, 9_999_999_999));
        assert!(check(&far, "d").is_err());
        // iat within the skew ahead, exp an hour after it: at the edge of "an hour from now".
        let edge = signed(
            HS256,
            &claims(
                "d",
                NOW + SKEW_SECONDS,
                NOW + SKEW_SECONDS + MAX_LIFETIME_SECONDS,
            ),
        );
        assert!(check(&edge, "d").is_ok());
        let past_edge = signed(
            HS256,
            &claims(
                "d",
                NOW + SKEW_SECONDS,
                NOW + SKEW_SECONDS + MAX_LIFETIME_SECONDS + 1,
            ),
        );
        assert!(check(&past_edge, "d").is_err());
    }

    #[test]
    fn anything_else_is_refused() {
        let good = signed(HS256, &claims("d", NOW, NOW + 60));
        assert!(matches!(
            check(&good, "other"),
            Err(CreationError::Rejected(_))
        ));

        let (input, _) = good.rsplit_once('.').unwrap();
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode([0u8; 32]));
        assert_eq!(
            check(&forged, "d"),
            Err(CreationError::Rejected(
                "token: its signature is not the tenant's"
            ))
        );
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            input.split_once('.').unwrap().1
        );
        assert!(matches!(
            check(&unsigned, "d"),
            Err(CreationError::Rejected(_))
        ));
        let hs512 = signed(
            r#"{"alg":"HS512","typ":"JWT"}"#,
            &claims("d", NOW, NOW + 60),
        );
        assert!(matches!(
            check(&hs512, "d"),
            Err(CreationError::Rejected(_))
        ));

        let mut nameless = claims("d", NOW, NOW + 60);
        nameless["user"]["id"] = "".into();
        assert!(matches!(
            check(&signed(HS256, &nameless), "d"),
            Err(CreationError::Rejected(_))
        ));

        for malformed in [
            "",
            "abc",
            "a.b",
            "a.b.c",
            "!!!.e30.c2ln",
            &format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(HS256)),
            &"a".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert!(
                matches!(check(malformed, "d"), Err(CreationError::Malformed(_))),
                "{malformed:.40}"
            );
        }
        // The length bound: at the limit a token is read (here: refused for its shape), past it
        // not even that; a real token with a long user name is well inside it.
        let too_long = CreationError::Malformed("token: is too long");
        assert_eq!(
            check(&"a".repeat(MAX_TOKEN_BYTES + 1), "d").unwrap_err(),
            too_long
        );
        assert_ne!(
            check(&"a".repeat(MAX_TOKEN_BYTES), "d").unwrap_err(),
            too_long
        );
        let mut long_name = claims("d", NOW, NOW + 60);
        long_name["user"]["name"] = "n".repeat(4000).into();
        let long = signed(HS256, &long_name);
        assert!(long.len() > 5000);
        assert!(check(&long, "d").is_ok());

        let mut bad_tenant = claims("d", NOW, NOW + 60);
        bad_tenant["tenantId"] = "a/b".into();
        assert!(matches!(
            check(&signed(HS256, &bad_tenant), "d"),
            Err(CreationError::Malformed(_))
        ));
    }
}
