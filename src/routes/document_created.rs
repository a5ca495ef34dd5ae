//! `DocumentCreated`: Fluid's `documentPostCreateCallback` on the server side.
//!
//! caller → request → creation token (tenant policy, tenant key, signature, claims) → owner.
//!
//! The token provider calls this right after Azure Fluid Relay created a container, with the
//! container's id and the creation token the service returned (see [`crate::documents::creation`]).
//! In `easyauth` and `entra` the token's user must be the caller; then the caller is recorded as
//! the owner: `201`, or `200` when they already were; `409` when someone else is.

use serde_json::json;
use warp::http::StatusCode;

use crate::audit;
use crate::clock::unix_now;
use crate::documents::creation::{self, CreationError};
use crate::documents::request::CreatedRequest;
use crate::documents::{DocumentRef, Registration};
use crate::invocation::{Invocation, Reply};
use crate::keys::KeyError;
use crate::problem::Problem;
use crate::request_log::RequestLog;
use crate::routes::AppState;

pub async fn document_created_function(
    state: &AppState,
    invocation: &Invocation,
    log: &mut RequestLog,
) -> Result<Reply, Problem> {
    super::require_get_or_post(&invocation.method)?;
    let caller = state.auth.caller(&invocation.headers).await?;
    let documents = state
        .documents
        .as_ref()
        .ok_or(Problem::DocumentsNotConfigured)?;
    let request = CreatedRequest::parse(&invocation.query, &invocation.body)?;

    let unverified = creation::read(&request.token)?;
    log.tenant_id = Some(unverified.tenant_id().as_str().to_owned());
    state.policy.admit_tenant(unverified.tenant_id())?;
    let key = match state.keys.key(unverified.tenant_id()).await {
        Ok(key) => key,
        // Not revealed as "unknown tenant": to the caller it is a token nobody here signed.
        Err(KeyError::UnknownTenant) => {
            return Err(CreationError::Rejected("token: its signature is not the tenant's").into());
        }
        Err(KeyError::Unavailable { retry_after }) => {
            return Err(Problem::KeyStoreUnavailable { retry_after });
        }
    };
    let created = unverified.verify(&key, &request.document_id, unix_now())?;
    if caller.id().is_some_and(|id| id != created.user_id) {
        return Err(Problem::Forbidden {
            detail: "token: the document was created by another user.".to_string(),
        });
    }

    let document = DocumentRef {
        tenant_id: created.tenant_id,
        document_id: created.document_id,
    };
    let registration = documents
        .register_owner(&document, &created.user_id)
        .await?;
    let status = match registration {
        Registration::Created => {
            log.audit = Some(audit::document(
                "owner-registered",
                &document,
                &created.user_id,
                "owner",
                &created.user_id,
            ));
            StatusCode::CREATED
        }
        Registration::AlreadyOwner => StatusCode::OK,
    };
    let body = json!({
        "tenantId": document.tenant_id.as_str(),
        "documentId": document.document_id.as_str(),
        "userId": created.user_id,
        "role": "owner",
    });
    Ok(Reply::new(
        status,
        "application/json",
        body.to_string().into_bytes(),
    ))
}
