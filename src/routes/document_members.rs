//! `DocumentMembers`: who may open a container, managed by its owner.
//!
//! caller → request → members (the domain checks the caller's role) → response.
//!
//! - `GET ?tenantId=&documentId=`: the members and their roles, for any member.
//! - `POST {tenantId, documentId, userId, role}`: adds a member or changes their role (`reader`
//!   or `writer`); owner only.
//! - `DELETE ?tenantId=&documentId=&userId=`: removes a member; owner only, never the owner.
//!
//! Anyone else — a non-member, or anyone for a container nobody registered — gets the same 403.

use serde_json::json;
use warp::http::StatusCode;

use crate::audit;
use crate::caller::Caller;
use crate::documents::request::{MembersAction, MembersRequest};
use crate::invocation::{Invocation, Reply, RequestLog};
use crate::problem::Problem;
use crate::routes::AppState;

pub async fn document_members_function(
    state: &AppState,
    invocation: &Invocation,
    log: &mut RequestLog,
) -> Result<Reply, Problem> {
    let caller = state.auth.caller(&invocation.headers).await?;
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
    state.policy.admit_tenant(&request.document.tenant_id)?;
    let document = &request.document;
    let me = principal.id.as_str();
    let mut body = match &request.action {
        MembersAction::List => {
            let members = documents.members(document, me).await?;
            json!({ "members": members })
        }
        MembersAction::Set { user_id, role } => {
            documents.set_member(document, me, user_id, *role).await?;
            audit::document("member-set", document, user_id, role.as_str(), me);
            json!({ "userId": user_id, "role": role.as_str() })
        }
        MembersAction::Remove { user_id } => {
            documents.remove_member(document, me, user_id).await?;
            audit::document("member-removed", document, user_id, "none", me);
            json!({ "userId": user_id, "removed": true })
        }
    };
    body["tenantId"] = document.tenant_id.as_str().into();
    body["documentId"] = document.document_id.as_str().into();
    Ok(Reply::new(
        StatusCode::OK,
        "application/json",
        body.to_string().into_bytes(),
    ))
}
