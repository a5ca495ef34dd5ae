//! `AcsTokenFunction`: an Azure Communication Services identity and user access token, and the
//! caller's control over their identity.
//!
//! caller → request → (ownership) → ACS → response.
//!
//! - A token: with `communicationUserId`, for that identity; without it, for the identity the
//!   caller already has (authenticated modes), else — or with `newIdentity=true` — for a new
//!   identity, whose binding to the caller is stored. A caller only ever gets tokens for
//!   identities it created.
//! - `POST ?action=revoke` revokes every token of the caller's identity; `POST ?action=delete`
//!   deletes the identity and its binding. Only the owner can: anyone else gets the same 404 as
//!   for an identity that does not exist.

use warp::http::{Method, StatusCode};

use crate::acs::AcsService;
use crate::acs::bindings::TableBindings;
use crate::acs::connection::AcsConnection;
use crate::acs::identity::{AcsError, IssuedToken};
use crate::acs::request::{AcsAction, AcsTokenRequest};
use crate::audit;
use crate::caller::Caller;
use crate::invocation::{Invocation, Reply};
use crate::problem::Problem;
use crate::request_log::RequestLog;
use crate::routes::AppState;

/// The caller's id and the store of their bindings (authenticated modes only).
type Owner<'a> = Option<(&'a str, &'a TableBindings)>;

pub async fn acs_token_function(
    state: &AppState,
    invocation: &Invocation,
    log: &mut RequestLog,
) -> Result<Reply, Problem> {
    super::require_get_or_post(&invocation.method)?;
    let caller = super::signed_in(state, invocation).await?;
    let acs = state.acs.as_ref().ok_or(Problem::AcsNotConfigured)?;
    let request = AcsTokenRequest::parse(&invocation.query, &invocation.body)?;
    let owner: Owner = match (&caller, &acs.bindings) {
        (Caller::Principal(principal), Some(bindings)) => Some((principal.id.as_str(), bindings)),
        _ => None,
    };
    match request.action {
        AcsAction::Token => {
            let issued = issue(acs, owner, &request).await?;
            log.audit = Some(audit::acs_token(&issued, &request.scopes, caller.id()));
            let json = serde_json::to_vec(&issued).expect("an ACS token always serializes");
            Ok(Reply::new(StatusCode::OK, "application/json", json))
        }
        AcsAction::Revoke | AcsAction::Delete => {
            if invocation.method != Method::POST {
                return Err(Problem::MethodNotAllowed { allow: "POST" });
            }
            let (identity, done) = manage(acs, owner, &request).await?;
            log.audit = Some(audit::acs_identity(
                done,
                &identity,
                caller.id().unwrap_or_default(),
            ));
            let body = serde_json::json!({ "communicationUserId": identity, "action": done });
            Ok(Reply::new(
                StatusCode::OK,
                "application/json",
                body.to_string().into_bytes(),
            ))
        }
    }
}

async fn issue(
    acs: &AcsService,
    owner: Owner<'_>,
    request: &AcsTokenRequest,
) -> Result<IssuedToken, Problem> {
    let (identity, reused) = match (&request.communication_user_id, owner) {
        (Some(identity), Some((caller_id, bindings))) => {
            if !bindings
                .owns(caller_id, identity)
                .await
                .map_err(AcsError::from)?
            {
                return Err(Problem::Forbidden {
                    detail:
                        "communicationUserId: tokens are issued only for identities you created."
                            .to_string(),
                });
            }
            (Some(identity.clone()), false)
        }
        (Some(identity), None) => (Some(identity.clone()), false),
        // The caller keeps the identity they have, unless they ask for a new one.
        (None, Some((caller_id, bindings))) if !request.new_identity => (
            bindings
                .identity_of(caller_id)
                .await
                .map_err(AcsError::from)?,
            true,
        ),
        (None, _) => (None, false),
    };

    let connection = acs
        .connection
        .connection()
        .await
        .ok_or(AcsError::Unavailable)?;
    let Some(identity) = identity else {
        return create(acs, owner, &connection, request).await;
    };
    match acs
        .client
        .issue_token(
            &connection,
            &identity,
            &request.scopes,
            request.expires_in_minutes,
        )
        .await
    {
        Ok(issued) => Ok(issued),
        // The identity the caller had is gone at ACS (deleted elsewhere): forget it, start anew.
        Err(AcsError::NotFound) if reused => {
            if let Some((caller_id, bindings)) = owner {
                bindings
                    .forget(caller_id, &identity)
                    .await
                    .map_err(AcsError::from)?;
            }
            create(acs, owner, &connection, request).await
        }
        Err(error) => Err(error.into()),
    }
}

/// A new identity with its first token, bound to the caller.
async fn create(
    acs: &AcsService,
    owner: Owner<'_>,
    connection: &AcsConnection,
    request: &AcsTokenRequest,
) -> Result<IssuedToken, Problem> {
    let created = acs
        .client
        .create_identity(connection, &request.scopes, request.expires_in_minutes)
        .await?;
    if let Some((caller_id, bindings)) = owner {
        // Without the binding the caller could never refresh this identity: fail rather than
        // hand out a token that cannot be renewed.
        bindings
            .remember(caller_id, &created.communication_user_id)
            .await
            .map_err(AcsError::from)?;
    }
    Ok(created)
}

/// Revokes or deletes the caller's identity; which identity, and what was done.
async fn manage(
    acs: &AcsService,
    owner: Owner<'_>,
    request: &AcsTokenRequest,
) -> Result<(String, &'static str), Problem> {
    let Some((caller_id, bindings)) = owner else {
        return Err(Problem::Forbidden {
            detail: "action: revoking or deleting an identity needs a signed-in caller (AUTH_MODE easyauth or entra)."
                .to_string(),
        });
    };
    let identity = match &request.communication_user_id {
        Some(identity) => bindings
            .owns(caller_id, identity)
            .await
            .map_err(AcsError::from)?
            .then(|| identity.clone()),
        None => bindings
            .identity_of(caller_id)
            .await
            .map_err(AcsError::from)?,
    };
    // Not the caller's: the same answer as for an identity that does not exist.
    let identity = identity.ok_or(Problem::UnknownIdentity)?;
    let connection = acs
        .connection
        .connection()
        .await
        .ok_or(AcsError::Unavailable)?;
    let done = match request.action {
        AcsAction::Delete => {
            match acs.client.delete_identity(&connection, &identity).await {
                // Already gone at ACS: the binding is what is left to remove.
                Ok(()) | Err(AcsError::NotFound) => {}
                Err(error) => return Err(error.into()),
            }
            bindings
                .forget(caller_id, &identity)
                .await
                .map_err(AcsError::from)?;
            "deleted"
        }
        _ => {
            acs.client.revoke_tokens(&connection, &identity).await?;
            "revoked"
        }
    };
    Ok((identity, done))
}
