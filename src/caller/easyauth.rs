//! App Service Authentication ("Easy Auth"): the platform signs the user in and tells the app who
//! they are in `X-MS-CLIENT-PRINCIPAL` (base64 JSON `{auth_typ, claims:[{typ,val}], name_typ,
//! role_typ}`) and `X-MS-CLIENT-PRINCIPAL-ID` / `-NAME` / `-IDP`.
//!
//! These headers are trustworthy only because App Service strips any copy a client sends when
//! authentication is enabled on the app. With it disabled, anyone could send them, so this mode
//! must only be used behind Easy Auth (the README says so).
//!
//! User ids are not namespaced by identity provider: with several providers whose ids could
//! collide, `EASYAUTH_USER_ID=idp:id` makes the user id `<idp>:<id>` (the provider from
//! `X-MS-CLIENT-PRINCIPAL-IDP`, else the principal's `auth_typ`).

use base64::Engine as _;
use serde::Deserialize;
use warp::http::HeaderMap;

use crate::caller::{DOCUMENTS_ADMIN, Principal};
use crate::problem::Problem;

const PRINCIPAL: &str = "x-ms-client-principal";
const PRINCIPAL_ID: &str = "x-ms-client-principal-id";
const PRINCIPAL_NAME: &str = "x-ms-client-principal-name";
const PRINCIPAL_IDP: &str = "x-ms-client-principal-idp";

/// `EASYAUTH_USER_ID`: how the user id is made from the principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserIdForm {
    /// The provider's id as it is (`id`, the default).
    #[default]
    Id,
    /// `<idp>:<id>`, so two providers' ids never meet (`idp:id`).
    IdpAndId,
}

/// The claim types App Service uses for roles (besides the principal's own `role_typ`).
const ROLE: [&str; 2] = [
    "roles",
    "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
];

/// Larger principals are refused rather than decoded.
const MAX_PRINCIPAL_BYTES: usize = 16 * 1024;

const OBJECT_ID: [&str; 2] = [
    "http://schemas.microsoft.com/identity/claims/objectidentifier",
    "oid",
];
const SUBJECT: [&str; 2] = [
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier",
    "sub",
];

#[derive(Deserialize)]
struct ClientPrincipal {
    #[serde(default)]
    claims: Vec<Claim>,
    #[serde(default)]
    name_typ: Option<String>,
    #[serde(default)]
    role_typ: Option<String>,
    #[serde(default)]
    auth_typ: Option<String>,
    /// Static Web Apps' schema names the user directly.
    #[serde(default, rename = "userId")]
    user_id: Option<String>,
    #[serde(default, rename = "userDetails")]
    user_details: Option<String>,
    #[serde(default, rename = "identityProvider")]
    identity_provider: Option<String>,
    #[serde(default, rename = "userRoles")]
    user_roles: Vec<String>,
}

#[derive(Deserialize)]
struct Claim {
    typ: String,
    /// Usually a string; Static Web Apps may send numbers.
    val: serde_json::Value,
}

impl ClientPrincipal {
    fn claim(&self, types: &[&str]) -> Option<String> {
        types.iter().find_map(|wanted| {
            self.claims
                .iter()
                .find(|c| c.typ.eq_ignore_ascii_case(wanted))
                .and_then(|c| match &c.val {
                    serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                    // Integers only: a number past 64 bits (or a fraction) would be read as
                    // a float and printed rounded, so two users' ids could become one.
                    serde_json::Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
                    _ => None,
                })
        })
    }

    /// Whether any role claim (or Static Web Apps role) is `role`.
    fn has_role(&self, role: &str) -> bool {
        let is_role_type = |typ: &str| {
            ROLE.iter().any(|r| typ.eq_ignore_ascii_case(r))
                || self
                    .role_typ
                    .as_deref()
                    .is_some_and(|t| typ.eq_ignore_ascii_case(t))
        };
        self.claims
            .iter()
            .any(|c| is_role_type(&c.typ) && c.val.as_str() == Some(role))
            || self.user_roles.iter().any(|r| r == role)
    }
}

fn unauthenticated(detail: &str) -> Problem {
    Problem::Unauthenticated {
        detail: detail.to_string(),
        invalid_token: false,
    }
}

/// The signed-in user named by the Easy Auth headers, with the user id in `form`.
pub fn principal(headers: &HeaderMap, form: UserIdForm) -> Result<Principal, Problem> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let decoded = match header(PRINCIPAL) {
        None => None,
        Some(encoded) => Some(decode(encoded).ok_or_else(|| {
            unauthenticated(
                "The X-MS-CLIENT-PRINCIPAL header is not a valid App Service principal.",
            )
        })?),
    };
    let header_id = header(PRINCIPAL_ID).map(str::to_owned);
    let header_name = header(PRINCIPAL_NAME).map(str::to_owned);

    let id = match &decoded {
        Some(p) => p
            .claim(&OBJECT_ID)
            .or_else(|| header_id.clone())
            .or_else(|| p.claim(&SUBJECT))
            .or_else(|| p.user_id.clone()),
        None => header_id,
    }
    .ok_or_else(|| {
        unauthenticated(
            "Sign in first: no App Service Authentication principal came with the request.",
        )
    })?;

    let name = match &decoded {
        Some(p) => p
            .claim(&["name"])
            .or_else(|| p.claim(&["preferred_username"]))
            .or_else(|| header_name.clone())
            .or_else(|| p.name_typ.as_deref().and_then(|t| p.claim(&[t])))
            .or_else(|| p.user_details.clone()),
        None => header_name,
    };
    let id = match form {
        UserIdForm::Id => id,
        UserIdForm::IdpAndId => {
            let idp = header(PRINCIPAL_IDP)
                .map(str::to_owned)
                .or_else(|| decoded.as_ref().and_then(|p| p.auth_typ.clone()))
                .or_else(|| decoded.as_ref().and_then(|p| p.identity_provider.clone()))
                .filter(|idp| !idp.is_empty())
                .ok_or_else(|| {
                    unauthenticated(
                        "The App Service principal names no identity provider (EASYAUTH_USER_ID=idp:id needs one).",
                    )
                })?;
            format!("{}:{id}", idp.to_ascii_lowercase())
        }
    };
    let client_app = decoded.as_ref().and_then(|p| p.claim(&["azp", "appid"]));
    Ok(Principal {
        id,
        name,
        client_app,
        document_admin: decoded
            .as_ref()
            .is_some_and(|p| p.has_role(DOCUMENTS_ADMIN)),
    })
}

fn decode(encoded: &str) -> Option<ClientPrincipal> {
    if encoded.len() > MAX_PRINCIPAL_BYTES {
        return None;
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let bytes = engine
        .decode(encoded)
        .or_else(|_| {
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded.trim_end_matches('='))
        })
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal_of(headers: &HeaderMap) -> Result<Principal, Problem> {
        super::principal(headers, UserIdForm::Id)
    }
    use serde_json::json;
    use warp::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                warp::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn encode(value: serde_json::Value) -> String {
        base64::engine::general_purpose::STANDARD.encode(value.to_string())
    }

    #[test]
    fn entra_principal() {
        let principal = encode(json!({
            "auth_typ": "aad",
            "claims": [
                {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": "oid-1"},
                {"typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier", "val": "sub-1"},
                {"typ": "preferred_username", "val": "ann@contoso.com"},
                {"typ": "name", "val": "Ann Smith"}
            ],
            "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
            "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
        }));
        let p = principal_of(&headers(&[
            ("X-MS-CLIENT-PRINCIPAL", &principal),
            ("X-MS-CLIENT-PRINCIPAL-ID", "header-id"),
        ]))
        .unwrap();
        assert_eq!(
            p,
            Principal {
                id: "oid-1".into(),
                name: Some("Ann Smith".into()),
                client_app: None,
                document_admin: false,
            }
        );
    }

    #[test]
    fn numeric_claims_are_read_and_empty_ones_skipped() {
        // Static Web Apps may send numbers; an empty value is no value.
        let principal = encode(json!({
            "auth_typ": "github",
            "claims": [
                {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": ""},
                {"typ": "sub", "val": 12345},
                {"typ": "name", "val": ""},
                {"typ": "preferred_username", "val": "octo"}
            ]
        }));
        let p = principal_of(&headers(&[("X-MS-CLIENT-PRINCIPAL", &principal)])).unwrap();
        assert_eq!(p.id, "12345");
        assert_eq!(p.name.as_deref(), Some("octo"));

        // Two ids past 64 bits would round to the same float: such a number is no id.
        for val in ["110169484474386276334", "1.5"] {
            let principal = base64::engine::general_purpose::STANDARD.encode(format!(
                r#"{{"auth_typ":"google","claims":[{{"typ":"sub","val":{val}}},{{"typ":"name","val":"x"}}]}}"#
            ));
            let p = principal_of(&headers(&[("X-MS-CLIENT-PRINCIPAL", &principal)]));
            assert!(p.is_err(), "{val}: {:?}", p.map(|p| p.id));
        }
        let principal = encode(json!({"claims": [{"typ": "sub", "val": -7}]}));
        let p = principal_of(&headers(&[("X-MS-CLIENT-PRINCIPAL", &principal)])).unwrap();
        assert_eq!(p.id, "-7");
    }

    #[test]
    fn fallbacks() {
        let sub_only = encode(
            json!({"auth_typ": "google", "claims": [{"typ": "sub", "val": "g-1"}, {"typ": "preferred_username", "val": "g@x"}]}),
        );
        let p = principal_of(&headers(&[("x-ms-client-principal", &sub_only)])).unwrap();
        assert_eq!(
            p,
            Principal {
                id: "g-1".into(),
                name: Some("g@x".into()),
                client_app: None,
                document_admin: false,
            }
        );

        let p = principal_of(&headers(&[
            ("X-MS-CLIENT-PRINCIPAL-ID", "only-id"),
            ("X-MS-CLIENT-PRINCIPAL-NAME", "Only"),
        ]))
        .unwrap();
        assert_eq!(
            p,
            Principal {
                id: "only-id".into(),
                name: Some("Only".into()),
                client_app: None,
                document_admin: false,
            }
        );

        let swa = encode(
            json!({"identityProvider": "github", "userId": "swa-1", "userDetails": "octo", "userRoles": ["authenticated"]}),
        );
        let p = principal_of(&headers(&[("x-ms-client-principal", &swa)])).unwrap();
        assert_eq!(
            p,
            Principal {
                id: "swa-1".into(),
                name: Some("octo".into()),
                client_app: None,
                document_admin: false,
            }
        );
    }

    #[test]
    fn missing_or_malformed_is_unauthenticated() {
        for bad in [
            headers(&[]),
            headers(&[("x-ms-client-principal", "%%%not base64")]),
            headers(&[(
                "x-ms-client-principal",
                &base64::engine::general_purpose::STANDARD.encode("not json"),
            )]),
            headers(&[(
                "x-ms-client-principal",
                &encode(json!({"claims": [{"typ": "name", "val": "no id"}]})),
            )]),
            headers(&[(
                "x-ms-client-principal",
                &"A".repeat(MAX_PRINCIPAL_BYTES + 4),
            )]),
        ] {
            assert!(matches!(
                principal_of(&bad),
                Err(Problem::Unauthenticated { .. })
            ));
        }
    }

    /// A principal of exactly `len` bytes of JSON: Ann with many group claims (Entra puts up to
    /// 200 in a token), padded by the last group's name.
    fn principal_json_of(len: usize) -> String {
        let group = |n: usize| json!({"typ": "groups", "val": format!("{n:08}-5f1c-4a2b-9d3e-000000000000")});
        let mut claims = vec![json!({"typ": "oid", "val": "oid-ann"})];
        claims.extend((0..150).map(group));
        let mut text = json!({"auth_typ": "aad", "claims": claims}).to_string();
        text.truncate(text.len() - "]}".len());
        text.push_str(r#",{"typ":"groups","val":""#);
        let end = r#""}]}"#;
        text.push_str(&"x".repeat(len - text.len() - end.len()));
        text.push_str(end);
        assert_eq!(text.len(), len);
        text
    }

    #[test]
    fn large_principals_up_to_the_limit_are_read() {
        let engine = base64::engine::general_purpose::STANDARD;
        // 12,288 bytes of JSON are exactly MAX_PRINCIPAL_BYTES of base64; one more byte is not.
        let at_limit = engine.encode(principal_json_of(MAX_PRINCIPAL_BYTES / 4 * 3));
        assert_eq!(at_limit.len(), MAX_PRINCIPAL_BYTES);
        let p = principal_of(&headers(&[("x-ms-client-principal", &at_limit)])).unwrap();
        assert_eq!(p.id, "oid-ann");
        let past = engine.encode(principal_json_of(MAX_PRINCIPAL_BYTES / 4 * 3 + 1));
        assert!(past.len() > MAX_PRINCIPAL_BYTES);
        assert!(matches!(
            principal_of(&headers(&[("x-ms-client-principal", &past)])),
            Err(Problem::Unauthenticated { .. })
        ));
    }

    #[test]
    fn user_ids_namespaced_by_provider_when_asked() {
        let google =
            encode(json!({"auth_typ": "google", "claims": [{"typ": "sub", "val": "1234"}]}));
        let plain = principal_of(&headers(&[("x-ms-client-principal", &google)])).unwrap();
        assert_eq!(plain.id, "1234");
        let namespaced = |pairs: &[(&'static str, &str)]| {
            super::principal(&headers(pairs), UserIdForm::IdpAndId).map(|p| p.id)
        };
        assert_eq!(
            namespaced(&[("x-ms-client-principal", &google)]),
            Ok("google:1234".into())
        );
        // The platform's IDP header names the provider too, and wins.
        assert_eq!(
            namespaced(&[
                ("x-ms-client-principal-id", "1234"),
                ("x-ms-client-principal-idp", "AAD")
            ]),
            Ok("aad:1234".into())
        );
        let swa = encode(json!({"identityProvider": "github", "userId": "77"}));
        assert_eq!(
            namespaced(&[("x-ms-client-principal", &swa)]),
            Ok("github:77".into())
        );
        assert!(matches!(
            namespaced(&[("x-ms-client-principal-id", "1234")]),
            Err(Problem::Unauthenticated { .. })
        ));
    }

    #[test]
    fn the_documents_admin_role_from_role_claims() {
        let with_roles = |claims: serde_json::Value| {
            let encoded = encode(claims);
            principal_of(&headers(&[("x-ms-client-principal", &encoded)]))
                .unwrap()
                .document_admin
        };
        assert!(with_roles(
            json!({"claims": [{"typ": "oid", "val": "o"}, {"typ": "roles", "val": "Documents.Admin"}]})
        ));
        assert!(with_roles(
            json!({"role_typ": "custom-role", "claims": [{"typ": "oid", "val": "o"}, {"typ": "custom-role", "val": "Documents.Admin"}]})
        ));
        assert!(with_roles(
            json!({"claims": [{"typ": "oid", "val": "o"}, {"typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role", "val": "Documents.Admin"}]})
        ));
        assert!(with_roles(
            json!({"userId": "u", "userRoles": ["authenticated", "Documents.Admin"]})
        ));
        assert!(!with_roles(
            json!({"claims": [{"typ": "oid", "val": "o"}, {"typ": "roles", "val": "Documents.Reader"}]})
        ));
        assert!(
            !with_roles(
                json!({"claims": [{"typ": "oid", "val": "o"}, {"typ": "name", "val": "Documents.Admin"}]})
            ),
            "not a role claim"
        );
        assert!(
            !principal_of(&headers(&[("x-ms-client-principal-id", "x")]))
                .unwrap()
                .document_admin
        );
    }
}
