//! The document functions' parameters, parsed once (from the query string or a JSON object
//! body; the query wins, as for tokens).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use warp::http::Method;

use super::{DocumentRef, Role};
use crate::domain::{DocumentId, TenantId, UserField};
use crate::invocation::QueryParams;
use crate::problem::Problem;
use crate::request::{Params, Raw, parse_body};
use serde_json::Value;

/// `DocumentCreated`: the new container's id and the creation token the service returned.
#[derive(Debug)]
pub struct CreatedRequest {
    pub document_id: DocumentId,
    pub token: String,
}

impl CreatedRequest {
    pub fn parse(query: &QueryParams, body: &[u8]) -> Result<Self, Problem> {
        let body = parse_body(body)?;
        let params = Params { query, body: &body };
        let document_id = document_id(&params)?;
        let token = params
            .string("token")?
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Problem::invalid("token", "is required"))?
            .to_string();
        Ok(CreatedRequest { document_id, token })
    }
}

/// `DocumentMembers`: which container, and what to do with its members.
#[derive(Debug)]
pub struct MembersRequest {
    pub document: DocumentRef,
    pub action: MembersAction,
}

#[derive(Debug, PartialEq, Eq)]
pub enum MembersAction {
    /// `GET`: one page of them, ordered by user id: at most `limit`, after the user id `after`
    /// (what the previous page's `continuationToken` stands for).
    List { limit: usize, after: Option<String> },
    /// `POST`: add `user_id` as `role` (reader or writer), or change their role.
    Set { user_id: String, role: Role },
    /// `POST ?action=setOwner`: record `user_id` as the owner of a container that has none (an
    /// operator holding the `Documents.Admin` app role, migrating to `members`).
    SetOwner { user_id: String },
    /// `DELETE`: remove `user_id`.
    Remove { user_id: String },
}

/// `limit` of a member page: the default and the most.
pub const PAGE_DEFAULT: usize = 100;
pub const PAGE_MAX: usize = 1000;

/// The `continuationToken` that continues a member list after `user_id`.
pub fn continuation_token(user_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(user_id.as_bytes())
}

impl MembersRequest {
    pub fn parse(method: &Method, query: &QueryParams, body: &[u8]) -> Result<Self, Problem> {
        let body = parse_body(body)?;
        let params = Params { query, body: &body };
        let tenant_id = match params.string(TenantId::PARAMETER)? {
            Some(value) => TenantId::parse(value)?,
            None => return Err(Problem::invalid(TenantId::PARAMETER, "is required")),
        };
        let document = DocumentRef {
            tenant_id,
            document_id: document_id(&params)?,
        };
        let user_id = || {
            let id = params
                .string("userId")?
                .map(|id| UserField::parse("userId", id))
                .transpose()?
                .flatten()
                .map(UserField::into_string)
                .ok_or_else(|| Problem::invalid("userId", "is required"))?;
            if id.chars().any(is_invisible) {
                return Err(Problem::invalid(
                    "userId",
                    "must not contain control or invisible formatting characters",
                ));
            }
            Ok(id)
        };
        let action = match (method, params.string("action")?) {
            (&Method::GET, _) => MembersAction::List {
                limit: page_limit(&params)?,
                after: match params.string("continuationToken")? {
                    None | Some("") => None,
                    Some(token) => Some(
                        URL_SAFE_NO_PAD
                            .decode(token)
                            .ok()
                            .and_then(|bytes| String::from_utf8(bytes).ok())
                            .ok_or_else(|| {
                                Problem::invalid(
                                    "continuationToken",
                                    "is not one this service gave out",
                                )
                            })?,
                    ),
                },
            },
            (&Method::POST, Some("setOwner")) => MembersAction::SetOwner {
                user_id: user_id()?,
            },
            (&Method::POST, Some(other)) if !other.is_empty() => {
                return Err(Problem::invalid("action", "must be setOwner (or absent)"));
            }
            (&Method::POST, _) => {
                let role = match params.string("role")? {
                    Some("reader") => Role::Reader,
                    Some("writer") => Role::Writer,
                    _ => return Err(Problem::invalid("role", "must be reader or writer")),
                };
                MembersAction::Set {
                    user_id: user_id()?,
                    role,
                }
            }
            (&Method::DELETE, _) => MembersAction::Remove {
                user_id: user_id()?,
            },
            _ => {
                return Err(Problem::MethodNotAllowed {
                    allow: "GET, POST, DELETE",
                });
            }
        };
        Ok(MembersRequest { document, action })
    }
}

/// `limit`: 1 to [`PAGE_MAX`], [`PAGE_DEFAULT`] when absent.
fn page_limit(params: &Params<'_>) -> Result<usize, Problem> {
    let invalid = || Problem::invalid("limit", format!("must be an integer from 1 to {PAGE_MAX}"));
    match params.get("limit") {
        None => Ok(PAGE_DEFAULT),
        Some(Raw::Query(text)) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=PAGE_MAX).contains(n))
            .ok_or_else(invalid),
        Some(Raw::Body(Value::String(text))) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=PAGE_MAX).contains(n))
            .ok_or_else(invalid),
        Some(Raw::Body(Value::Number(n))) => n
            .as_u64()
            .map(|n| n as usize)
            .filter(|n| (1..=PAGE_MAX).contains(n))
            .ok_or_else(invalid),
        Some(Raw::Body(_)) => Err(invalid()),
    }
}

/// A container's id: required here (a create token's empty id names no container).
fn document_id(params: &Params<'_>) -> Result<DocumentId, Problem> {
    match params.string(DocumentId::PARAMETER)? {
        Some(value) if !value.is_empty() => DocumentId::parse(value),
        _ => Err(Problem::invalid(DocumentId::PARAMETER, "is required")),
    }
}

/// Characters that would let one member id pass for another in a listing or an audit line:
/// control characters, and every character that renders as nothing — Unicode's
/// `Default_Ignorable_Code_Point` (zero-width characters, bidirectional controls such as `U+202E`,
/// which shows `nna` as `ann`, variation selectors, tag characters, Hangul fillers, the soft
/// hyphen, the BOM), the other format characters (`General_Category=Cf`) and the line and
/// paragraph separators. No identity provider puts them in a user id.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode 16).
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFF8}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
                // The format characters that are not default-ignorable.
                | '\u{0600}'..='\u{0605}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{FFF9}'..='\u{FFFB}'
                // Line and paragraph separators.
                | '\u{2028}'..='\u{2029}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(method: Method, query: &str, body: &str) -> Result<MembersRequest, Problem> {
        MembersRequest::parse(
            &method,
            &QueryParams::parse(query).unwrap(),
            body.as_bytes(),
        )
    }

    fn parameter(result: Result<impl std::fmt::Debug, Problem>) -> &'static str {
        match result {
            Err(Problem::InvalidParameter { parameter, .. }) => parameter,
            other => panic!("expected an invalid parameter, got {other:?}"),
        }
    }

    #[test]
    fn created_takes_query_or_body() {
        let from_query =
            CreatedRequest::parse(&QueryParams::parse("documentId=d&token=t").unwrap(), b"")
                .unwrap();
        assert_eq!(
            (from_query.document_id.as_str(), from_query.token.as_str()),
            ("d", "t")
        );
        let from_body = CreatedRequest::parse(
            &QueryParams::default(),
            br#"{"documentId":"d2","token":"t2"}"#,
        )
        .unwrap();
        assert_eq!(
            (from_body.document_id.as_str(), from_body.token.as_str()),
            ("d2", "t2")
        );
        let empty = QueryParams::default();
        assert_eq!(
            parameter(CreatedRequest::parse(&empty, br#"{"token":"t"}"#)),
            "documentId"
        );
        assert_eq!(
            parameter(CreatedRequest::parse(
                &empty,
                br#"{"documentId":"","token":"t"}"#
            )),
            "documentId"
        );
        assert_eq!(
            parameter(CreatedRequest::parse(&empty, br#"{"documentId":"d"}"#)),
            "token"
        );
        assert_eq!(
            parameter(CreatedRequest::parse(
                &empty,
                br#"{"documentId":"d","token":7}"#
            )),
            "token"
        );
    }

    #[test]
    fn members_actions_by_method() {
        let list = members(Method::GET, "tenantId=t&documentId=d", "").unwrap();
        assert_eq!(
            list.action,
            MembersAction::List {
                limit: PAGE_DEFAULT,
                after: None
            }
        );
        assert_eq!(list.document.document_id.as_str(), "d");
        let set = members(
            Method::POST,
            "",
            r#"{"tenantId":"t","documentId":"d","userId":"bob","role":"writer"}"#,
        )
        .unwrap();
        assert_eq!(
            set.action,
            MembersAction::Set {
                user_id: "bob".into(),
                role: Role::Writer
            }
        );
        let remove = members(Method::DELETE, "tenantId=t&documentId=d&userId=bob", "").unwrap();
        assert_eq!(
            remove.action,
            MembersAction::Remove {
                user_id: "bob".into()
            }
        );
    }

    #[test]
    fn members_parameters_are_checked() {
        let post = |body: &str| members(Method::POST, "", body);
        assert_eq!(
            parameter(post(r#"{"documentId":"d","userId":"b","role":"reader"}"#)),
            "tenantId"
        );
        assert_eq!(
            parameter(post(r#"{"tenantId":"t","userId":"b","role":"reader"}"#)),
            "documentId"
        );
        assert_eq!(
            parameter(post(r#"{"tenantId":"t","documentId":"d","role":"reader"}"#)),
            "userId"
        );
        assert_eq!(
            parameter(post(
                r#"{"tenantId":"t","documentId":"d","userId":"","role":"reader"}"#
            )),
            "userId"
        );
        for role in [r#""owner""#, r#""admin""#, "1", "null"] {
            let body = format!(r#"{{"tenantId":"t","documentId":"d","userId":"b","role":{role}}}"#);
            assert!(post(&body).is_err(), "{role}");
        }
        assert_eq!(
            parameter(members(Method::DELETE, "tenantId=t&documentId=d", "")),
            "userId"
        );
        assert!(matches!(
            members(Method::PUT, "tenantId=t&documentId=d", ""),
            Err(Problem::MethodNotAllowed { .. })
        ));
    }

    #[test]
    fn member_pages() {
        let token = continuation_token("bob");
        let page = members(
            Method::GET,
            &format!("tenantId=t&documentId=d&limit=2&continuationToken={token}"),
            "",
        )
        .unwrap();
        assert_eq!(
            page.action,
            MembersAction::List {
                limit: 2,
                after: Some("bob".into())
            }
        );
        for query in [
            "limit=0",
            "limit=1001",
            "limit=x",
            "continuationToken=%25%25",
        ] {
            let result = members(Method::GET, &format!("tenantId=t&documentId=d&{query}"), "");
            let name = query.split('=').next().unwrap();
            assert_eq!(parameter(result), name, "{query}");
        }
        let most = members(Method::GET, "tenantId=t&documentId=d&limit=1000", "").unwrap();
        assert!(matches!(
            most.action,
            MembersAction::List { limit: 1000, .. }
        ));
    }

    #[test]
    fn user_ids_with_control_or_invisible_characters_are_refused() {
        for id in [
            r"a\nb",
            r"\u0000",
            r"tab\there",
            r"ann\u200b",
            r"\u202eann",
            r"a\u2028b",
            r"\u2066ann\u2069",
            r"\ufeffann",
            r"an\u00adn",
            // Found accepted by a review: other format characters and default-ignorables.
            r"ann\u061c",
            r"ann\u180e",
            r"ann\u034f",
            r"ann\ufe0f",
            r"ann\udb40\udd00",
            r"ann\udb40\udc01",
            r"ann\udb40\udc7f",
            r"ann\u115f",
            r"ann\u1160",
            r"ann\u3164",
            r"ann\uffa0",
            r"ann\u17b4",
            r"\u0600ann",
            r"ann\u06dd",
            r"ann\u070f",
            r"ann\u08e2",
            r"ann\ufff9",
            r"ann\ud834\udd73",
            r"ann\ud82f\udca0",
            r"ann\ud80d\udc3f",
            r"ann\ud804\udcbd",
            r"a\u2029b",
        ] {
            let body =
                format!(r#"{{"tenantId":"t","documentId":"d","userId":"{id}","role":"reader"}}"#);
            assert_eq!(
                parameter(members(Method::POST, "", &body)),
                "userId",
                "{id}"
            );
        }
    }

    #[test]
    fn user_ids_in_any_script_are_kept() {
        for id in [
            "zoë",
            "李雷",
            "ann@contoso.com",
            "github:12345",
            "ㅎ한",
            "ann smith",
            "ខ្មែរ",
            "𝄞",
        ] {
            let body =
                format!(r#"{{"tenantId":"t","documentId":"d","userId":"{id}","role":"reader"}}"#);
            assert!(members(Method::POST, "", &body).is_ok(), "{id}");
        }
    }

    #[test]
    fn set_owner_is_a_post_action() {
        let owner = members(
            Method::POST,
            "action=setOwner",
            r#"{"tenantId":"t","documentId":"d","userId":"ann"}"#,
        )
        .unwrap();
        assert_eq!(
            owner.action,
            MembersAction::SetOwner {
                user_id: "ann".into()
            }
        );
        assert_eq!(
            parameter(members(
                Method::POST,
                "action=steal",
                r#"{"tenantId":"t","documentId":"d","userId":"x"}"#
            )),
            "action"
        );
        // An empty action is no action: a member is added.
        let added = members(
            Method::POST,
            "action=",
            r#"{"tenantId":"t","documentId":"d","userId":"ann","role":"reader"}"#,
        )
        .unwrap();
        assert_eq!(
            added.action,
            MembersAction::Set {
                user_id: "ann".into(),
                role: Role::Reader
            }
        );
    }
}
