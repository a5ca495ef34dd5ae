//! `DocumentMembers`: who may open a container, managed by its owner.
//!
//! caller → request → members (the domain checks the caller's role) → response.
//!
//! - `GET ?tenantId=&documentId=`: the members and their roles, for any member.
//! - `POST {tenantId, documentId, userId, role}`: adds a member or changes their role (`reader`
//!   or `writer`); owner only.
//! - `DELETE ?tenantId=&documentId=&userId=`: removes a member; owner only, never the owner.
//! - `POST ?action=setOwner {tenantId, documentId, userId}`: records the owner of a container
//!   that has none (`201`; `409` when it has one); only for callers holding the
//!   `Documents.Admin` app role — the migration of containers created before `members`.
//!
//! The tenant must be one this service has a key for before any store read is made.
//!
//! Anyone else — a non-member, or anyone for a container nobody registered — gets the same 403.

use serde_json::json;
use warp::http::StatusCode;

use crate::audit;
use crate::caller::{Caller, DOCUMENTS_ADMIN};
use crate::documents::request::{MembersAction, MembersRequest, continuation_token};
use crate::invocation::{Invocation, Reply};
use crate::problem::Problem;
use crate::request_log::RequestLog;
use crate::routes::AppState;

pub async fn document_members_function(
    state: &AppState,
    invocation: &Invocation,
    log: &mut RequestLog,
) -> Result<Reply, Problem> {
    let caller = super::signed_in(state, invocation).await?;
    let documents = state
        .documents
        .as_ref()
        .ok_or(Problem::DocumentsNotConfigured)?;
    let request = MembersRequest::parse(&invocation.method, &invocation.query, &invocation.body)?;
    log.tenant_id = Some(request.document.tenant_id.as_str().to_owned());
    let Caller::Principal(principal) = caller else {
        return Err(Problem::Forbidden {
            detail:
                "Managing document members needs a signed-in caller (AUTH_MODE easyauth or entra)."
                    .to_string(),
        });
    };
    let document = &request.document;
    state.policy.admit_tenant(&document.tenant_id)?;
    state
        .keys
        .key(&document.tenant_id)
        .await
        .map_err(super::problems::key_problem(&document.tenant_id))?;
    let me = principal.id.as_str();
    let mut status = StatusCode::OK;
    let mut body = match &request.action {
        MembersAction::List { limit, after } => {
            let page = documents
                .members(document, me, *limit, after.as_deref())
                .await?;
            let mut body = json!({ "members": page.members });
            if let Some(after) = page.next_after {
                body["continuationToken"] = continuation_token(&after).into();
            }
            body
        }
        MembersAction::SetOwner { user_id } => {
            if !principal.document_admin {
                return Err(Problem::Forbidden {
                    detail: format!("action: setOwner needs the {DOCUMENTS_ADMIN} app role."),
                });
            }
            documents.set_owner(document, user_id).await?;
            log.audit = Some(audit::document("owner-set", document, user_id, "owner", me));
            status = StatusCode::CREATED;
            json!({ "userId": user_id, "role": "owner" })
        }
        MembersAction::Set { user_id, role } => {
            documents.set_member(document, me, user_id, *role).await?;
            log.audit = Some(audit::document(
                "member-set",
                document,
                user_id,
                role.as_str(),
                me,
            ));
            json!({ "userId": user_id, "role": role.as_str() })
        }
        MembersAction::Remove { user_id } => {
            documents.remove_member(document, me, user_id).await?;
            log.audit = Some(audit::document(
                "member-removed",
                document,
                user_id,
                "none",
                me,
            ));
            json!({ "userId": user_id, "removed": true })
        }
    };
    body["tenantId"] = document.tenant_id.as_str().into();
    body["documentId"] = document.document_id.as_str().into();
    Ok(Reply::new(
        status,
        "application/json",
        body.to_string().into_bytes(),
    ))
}
