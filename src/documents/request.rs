//! The document functions' parameters, parsed once (from the query string or a JSON object
//! body; the query wins, as for tokens).

use warp::http::Method;

use super::{DocumentRef, Role};
use crate::domain::{DocumentId, TenantId, UserField};
use crate::invocation::QueryParams;
use crate::problem::Problem;
use crate::request::{Params, parse_body};

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
    /// `GET`: list them.
    List,
    /// `POST`: add `user_id` as `role` (reader or writer), or change their role.
    Set { user_id: String, role: Role },
    /// `DELETE`: remove `user_id`.
    Remove { user_id: String },
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
            params
                .string("userId")?
                .map(|id| UserField::parse("userId", id))
                .transpose()?
                .flatten()
                .map(UserField::into_string)
                .ok_or_else(|| Problem::invalid("userId", "is required"))
        };
        let action = match *method {
            Method::GET => MembersAction::List,
            Method::POST => {
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
            Method::DELETE => MembersAction::Remove {
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

/// A container's id: required here (a create token's empty id names no container).
fn document_id(params: &Params<'_>) -> Result<DocumentId, Problem> {
    match params.string(DocumentId::PARAMETER)? {
        Some(value) if !value.is_empty() => DocumentId::parse(value),
        _ => Err(Problem::invalid(DocumentId::PARAMETER, "is required")),
    }
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
        assert_eq!(list.action, MembersAction::List);
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
}
