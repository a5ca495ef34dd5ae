//! The token request, parsed once into the [`crate::domain`] types.
//!
//! Every rule of the request contract lives in a domain type's constructor or below, so code
//! after [`TokenRequest::parse`] never re-checks. [`params`] is the parameter reader the other
//! request parsers (ACS, documents) share.

mod bracket_details;
mod params;

use serde_json::Value;

use crate::domain::{AdditionalDetails, DocumentId, Lifetime, Scopes, TenantId, UserField};
use crate::invocation::QueryParams;
use crate::problem::Problem;
pub(crate) use params::{Params, Raw, parse_body};

/// Everything a caller may ask for, validated. Defaults (a generated user id, all scopes, the
/// maximum lifetime) are decided later by the policy, not here.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRequest {
    pub tenant_id: TenantId,
    pub document_id: DocumentId,
    pub user_id: Option<UserField>,
    pub user_name: Option<UserField>,
    pub scopes: Option<Scopes>,
    pub additional_details: Option<AdditionalDetails>,
    pub lifetime: Option<Lifetime>,
}

impl TokenRequest {
    /// Parses the query string and body of one invocation. `max_lifetime` bounds `lifetime`.
    pub fn parse(
        query: &QueryParams,
        body: &[u8],
        max_lifetime: Lifetime,
    ) -> Result<Self, Problem> {
        let body = parse_body(body)?;
        let params = Params { query, body: &body };

        let tenant_id = match params.string(TenantId::PARAMETER)? {
            Some(value) => TenantId::parse(value)?,
            None => return Err(Problem::invalid(TenantId::PARAMETER, "is required")),
        };
        let document_id = match params.string(DocumentId::PARAMETER)? {
            Some(value) => DocumentId::parse(value)?,
            None => DocumentId::default(),
        };
        let user_id = match params.aliased("userId", "id")? {
            Some(value) => UserField::parse("userId", value)?,
            None => None,
        };
        let user_name = match params.aliased("userName", "name")? {
            Some(value) => UserField::parse("userName", value)?,
            None => None,
        };
        let scopes = match params.get(Scopes::PARAMETER) {
            None => None,
            Some(Raw::Query(list)) => Some(Scopes::parse_list(list)?),
            Some(Raw::Body(Value::Array(items))) => {
                let names = items
                    .iter()
                    .map(|item| item.as_str().ok_or_else(not_a_scope_array))
                    .collect::<Result<Vec<_>, _>>()?;
                Some(Scopes::from_names(names)?)
            }
            Some(Raw::Body(_)) => return Err(not_a_scope_array()),
        };
        let additional_details = match params.get(AdditionalDetails::PARAMETER) {
            _ if params.has_bracket_details() => {
                if query.get(AdditionalDetails::PARAMETER).is_some() {
                    return Err(Problem::invalid(
                        AdditionalDetails::PARAMETER,
                        "send either JSON text or bracket keys, not both",
                    ));
                }
                let pairs = query
                    .iter()
                    .filter(|(name, _)| bracket_details::is_bracket_key(name));
                Some(AdditionalDetails::new(bracket_details::assemble(pairs)?)?)
            }
            None => None,
            Some(Raw::Query(text)) => {
                let value = serde_json::from_str(text).map_err(|_| {
                    Problem::invalid(AdditionalDetails::PARAMETER, "must be valid JSON")
                })?;
                (value != Value::Null)
                    .then(|| AdditionalDetails::new(value))
                    .transpose()?
            }
            Some(Raw::Body(value)) => Some(AdditionalDetails::new(value.clone())?),
        };
        let lifetime = match params.get(Lifetime::PARAMETER) {
            None => None,
            Some(raw) => {
                let seconds = match raw {
                    Raw::Query(text) => text.parse::<u64>().ok(),
                    Raw::Body(Value::Number(n)) => n.as_u64(),
                    Raw::Body(Value::String(text)) => text.parse::<u64>().ok(),
                    Raw::Body(_) => None,
                };
                let lifetime = seconds
                    .ok_or_else(|| {
                        format!("must be an integer from 1 to {}", max_lifetime.seconds())
                    })
                    .and_then(|s| Lifetime::new(s, max_lifetime))
                    .map_err(|detail| Problem::invalid(Lifetime::PARAMETER, detail))?;
                Some(lifetime)
            }
        };

        Ok(TokenRequest {
            tenant_id,
            document_id,
            user_id,
            user_name,
            scopes,
            additional_details,
            lifetime,
        })
    }
}

fn not_a_scope_array() -> Problem {
    Problem::invalid(Scopes::PARAMETER, "must be a JSON array of scope strings")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Scope;
    use serde_json::json;

    const MAX: Lifetime = Lifetime::HARD_CAP;

    fn parse(query: &str, body: &str) -> Result<TokenRequest, Problem> {
        TokenRequest::parse(&QueryParams::parse(query).unwrap(), body.as_bytes(), MAX)
    }

    fn parameter_of(result: Result<TokenRequest, Problem>) -> &'static str {
        match result {
            Err(Problem::InvalidParameter { parameter, .. }) => parameter,
            other => panic!("expected an invalid parameter, got {other:?}"),
        }
    }

    #[test]
    fn minimal_query() {
        let request = parse("tenantId=t1", "").unwrap();
        assert_eq!(request.tenant_id.as_str(), "t1");
        assert_eq!(request.document_id.as_str(), "");
        assert_eq!(request.user_id, None);
        assert_eq!(request.scopes, None);
        assert_eq!(request.lifetime, None);
    }

    #[test]
    fn query_wins_over_body() {
        let request = parse(
            "tenantId=fromQuery",
            r#"{"tenantId":"fromBody","documentId":"d"}"#,
        )
        .unwrap();
        assert_eq!(request.tenant_id.as_str(), "fromQuery");
        assert_eq!(request.document_id.as_str(), "d");
    }

    #[test]
    fn tenant_id_rules() {
        assert_eq!(parameter_of(parse("", "")), "tenantId");
        assert_eq!(parameter_of(parse("tenantId=", "")), "tenantId");
        assert_eq!(parameter_of(parse("tenantId=a%2Fb", "")), "tenantId");
        assert_eq!(
            parameter_of(parse(&format!("tenantId={}", "a".repeat(129)), "")),
            "tenantId"
        );
        assert!(parse(&format!("tenantId={}", "a".repeat(128)), "").is_ok());
        assert!(parse("tenantId=A-z_0.9", "").is_ok());
        assert_eq!(parameter_of(parse("", r#"{"tenantId":5}"#)), "tenantId");
    }

    #[test]
    fn length_and_character_rules() {
        let long_doc = "é".repeat(256);
        let ok = parse(&format!("tenantId=t&documentId={long_doc}"), "").unwrap();
        assert_eq!(
            ok.document_id.as_str(),
            long_doc,
            "256 characters, not bytes"
        );
        for (query, parameter) in [
            ("documentId=a%0Ab".to_string(), "documentId"),
            (format!("documentId={}", "x".repeat(257)), "documentId"),
            (format!("userId={}", "u".repeat(257)), "userId"),
            (format!("userName={}", "n".repeat(257)), "userName"),
        ] {
            assert_eq!(
                parameter_of(parse(&format!("tenantId=t&{query}"), "")),
                parameter
            );
        }
    }

    #[test]
    fn user_fields() {
        let request = parse("tenantId=t&userId=u1&userName=Ann", "").unwrap();
        assert_eq!(request.user_id.unwrap().into_string(), "u1");
        assert_eq!(request.user_name.unwrap().into_string(), "Ann");
        assert_eq!(parse("tenantId=t&userId=", "").unwrap().user_id, None);
    }

    #[test]
    fn id_and_name_are_second_spellings_of_user_id_and_user_name() {
        for (query, body) in [
            ("tenantId=t&id=u1&name=Ann", ""),
            ("", r#"{"tenantId":"t","id":"u1","name":"Ann"}"#),
            ("tenantId=t&id=u1&userId=u1&name=Ann&userName=Ann", ""),
            ("tenantId=t&id=u1", r#"{"name":"Ann","userId":"u1"}"#),
        ] {
            let request = parse(query, body).unwrap();
            assert_eq!(
                request.user_id.unwrap().into_string(),
                "u1",
                "{query} {body}"
            );
            assert_eq!(
                request.user_name.unwrap().into_string(),
                "Ann",
                "{query} {body}"
            );
        }
        assert_eq!(
            parameter_of(parse("tenantId=t&id=u1&userId=u2", "")),
            "userId"
        );
        assert_eq!(
            parameter_of(parse("tenantId=t&name=A&userName=B", "")),
            "userName"
        );
        assert_eq!(
            parameter_of(parse("tenantId=t&id=u1", r#"{"userId":"u2"}"#)),
            "userId"
        );
        assert_eq!(parameter_of(parse("", r#"{"tenantId":"t","id":7}"#)), "id");
        assert_eq!(
            parameter_of(parse(&format!("tenantId=t&id={}", "u".repeat(257)), "")),
            "userId"
        );
    }

    #[test]
    fn additional_details_as_bracket_keys_raw_or_encoded() {
        for query in [
            "tenantId=t&additionalDetails[email]=a%40b.c&additionalDetails[n]=1",
            "tenantId=t&additionalDetails%5Bemail%5D=a%40b.c&additionalDetails%5Bn%5D=1",
        ] {
            let request = parse(query, "").unwrap();
            assert_eq!(
                serde_json::to_string(request.additional_details.unwrap().as_value()).unwrap(),
                r#"{"email":"a@b.c","n":"1"}"#,
                "{query}"
            );
        }
        // The query's bracket keys win over a body's additionalDetails, as any query value does.
        let request = parse(
            "tenantId=t&additionalDetails[a]=q",
            r#"{"additionalDetails":{"a":"body"}}"#,
        )
        .unwrap();
        assert_eq!(
            request.additional_details.unwrap().as_value(),
            &json!({"a": "q"})
        );
        for query in [
            "tenantId=t&additionalDetails=%7B%7D&additionalDetails[a]=1",
            "tenantId=t&additionalDetails[a]=1&additionalDetails=2",
            "tenantId=t&additionalDetails[a]=1&additionalDetails[a][b]=2",
        ] {
            assert_eq!(
                parameter_of(parse(query, "")),
                "additionalDetails",
                "{query}"
            );
        }
    }

    #[test]
    fn the_four_kib_limit_applies_to_the_assembled_object() {
        // {"k":"…"} is 8 bytes of JSON around the value.
        let at_limit = format!("tenantId=t&additionalDetails[k]={}", "x".repeat(4096 - 8));
        assert!(parse(&at_limit, "").is_ok());
        let past = format!("tenantId=t&additionalDetails[k]={}", "x".repeat(4096 - 7));
        assert_eq!(parameter_of(parse(&past, "")), "additionalDetails");
        // Many small keys add up.
        let many: String = (0..400)
            .map(|i| format!("&additionalDetails[k{i}]=v"))
            .collect();
        assert_eq!(
            parameter_of(parse(&format!("tenantId=t{many}"), "")),
            "additionalDetails"
        );
    }

    #[test]
    fn scopes_from_query_dedupe_and_keep_order() {
        let request = parse("tenantId=t&scopes=doc:write,doc:read&scopes=doc:write", "").unwrap();
        assert_eq!(
            request.scopes.unwrap().as_slice(),
            &[Scope::DocWrite, Scope::DocRead]
        );
    }

    #[test]
    fn scopes_are_named_in_order_and_retain_keeps_order() {
        assert!(
            Scopes::all()
                .names()
                .eq(["doc:read", "doc:write", "summary:write"])
        );
        let asked = Scopes::parse_list("summary:write,doc:read").unwrap();
        assert!(asked.names().eq(["summary:write", "doc:read"]));
        let kept = Scopes::all().retain(|s| *s != Scope::DocWrite).unwrap();
        assert_eq!(kept.as_slice(), &[Scope::DocRead, Scope::SummaryWrite]);
        assert_eq!(asked.retain(|s| *s == Scope::DocWrite), None);
    }

    #[test]
    fn scopes_from_body() {
        let request = parse("", r#"{"tenantId":"t","scopes":["doc:read","doc:read"]}"#).unwrap();
        assert_eq!(request.scopes.unwrap().as_slice(), &[Scope::DocRead]);
        assert_eq!(
            parameter_of(parse("", r#"{"tenantId":"t","scopes":[]}"#)),
            "scopes"
        );
        assert_eq!(
            parameter_of(parse("", r#"{"tenantId":"t","scopes":"doc:read"}"#)),
            "scopes"
        );
        assert_eq!(
            parameter_of(parse("", r#"{"tenantId":"t","scopes":[1]}"#)),
            "scopes"
        );
    }

    #[test]
    fn unknown_or_empty_scopes_are_rejected() {
        assert_eq!(parameter_of(parse("tenantId=t&scopes=", "")), "scopes");
        assert_eq!(
            parameter_of(parse("tenantId=t&scopes=doc:delete", "")),
            "scopes"
        );
        assert_eq!(
            parameter_of(parse("tenantId=t&scopes=summary:read", "")),
            "scopes"
        );
    }

    #[test]
    fn additional_details() {
        let request = parse(
            "tenantId=t&additionalDetails=%7B%22b%22%3A1%2C%22a%22%3A2%7D",
            "",
        )
        .unwrap();
        let details = request.additional_details.unwrap();
        // Key order is the caller's, as JSON.stringify would keep it.
        assert_eq!(
            serde_json::to_string(details.as_value()).unwrap(),
            r#"{"b":1,"a":2}"#
        );
        assert_eq!(
            parameter_of(parse("tenantId=t&additionalDetails=%7Bnope", "")),
            "additionalDetails"
        );
        let body = parse(
            "",
            r#"{"tenantId":"t","additionalDetails":["x",{"y":true}]}"#,
        )
        .unwrap();
        assert_eq!(
            body.additional_details.unwrap().as_value(),
            &json!(["x", {"y": true}])
        );
        let big = json!({ "tenantId": "t", "additionalDetails": "x".repeat(5000) }).to_string();
        assert_eq!(parameter_of(parse("", &big)), "additionalDetails");
    }

    #[test]
    fn lifetime_bounds() {
        assert_eq!(
            parse("tenantId=t&lifetime=1", "")
                .unwrap()
                .lifetime
                .unwrap()
                .seconds(),
            1
        );
        assert_eq!(
            parse("tenantId=t&lifetime=3600", "")
                .unwrap()
                .lifetime
                .unwrap()
                .seconds(),
            3600
        );
        for bad in ["0", "3601", "-5", "1.5", "abc", "99999999999999999999"] {
            assert_eq!(
                parameter_of(parse(&format!("tenantId=t&lifetime={bad}"), "")),
                "lifetime",
                "{bad}"
            );
        }
        assert_eq!(
            parse("", r#"{"tenantId":"t","lifetime":60}"#)
                .unwrap()
                .lifetime
                .unwrap()
                .seconds(),
            60
        );
        assert_eq!(
            parameter_of(parse("", r#"{"tenantId":"t","lifetime":60.5}"#)),
            "lifetime"
        );
        let short = Lifetime::new(600, MAX).unwrap();
        assert_eq!(
            parameter_of(TokenRequest::parse(
                &QueryParams::parse("tenantId=t&lifetime=601").unwrap(),
                b"",
                short
            )),
            "lifetime"
        );
    }

    #[test]
    fn body_must_be_a_json_object() {
        for body in ["[1]", "\"t\"", "{", "tenantId=t", "\u{0}"] {
            assert!(
                matches!(parse("", body), Err(Problem::InvalidBody { .. })),
                "{body}"
            );
        }
        assert!(parse("tenantId=t", "  \n").is_ok());
    }

    #[test]
    fn null_counts_as_absent() {
        let request = parse(
            "",
            r#"{"tenantId":"t","documentId":null,"additionalDetails":null}"#,
        )
        .unwrap();
        assert_eq!(request.document_id.as_str(), "");
        assert_eq!(request.additional_details, None);
    }
}
