//! `AcsTokenFunction`: an Azure Communication Services identity and user access token.
//!
//! caller → request → (ownership) → ACS → response. Without `communicationUserId` a new identity
//! is created with its first token; with one, a new token is issued for it. In authenticated
//! modes the caller → identity binding is stored on creation and checked on refresh, so a caller
//! only ever gets tokens for identities it created.

use std::time::Duration;

use warp::http::StatusCode;

use crate::acs::identity::AcsError;
use crate::acs::request::AcsTokenRequest;
use crate::caller::Caller;
use crate::invocation::{Invocation, Reply};
use crate::problem::Problem;
use crate::routes::AppState;

const RETRY_AFTER: Duration = Duration::from_secs(5);

pub async fn acs_token_function(state: &AppState, invocation: Invocation) -> Reply {
    issue(state, &invocation)
        .await
        .unwrap_or_else(|problem| problem.to_reply())
}

async fn issue(state: &AppState, invocation: &Invocation) -> Result<Reply, Problem> {
    super::require_get_or_post(&invocation.method)?;
    let caller = state.auth.caller(&invocation.headers).await?;
    let acs = state.acs.as_ref().ok_or(Problem::AcsNotConfigured)?;
    let request = AcsTokenRequest::parse(&invocation.query, &invocation.body)?;
    let unavailable = Problem::AcsUnavailable {
        retry_after: RETRY_AFTER,
    };
    let owner = match (&caller, &acs.bindings) {
        (Caller::Principal(principal), Some(bindings)) => Some((principal.id.as_str(), bindings)),
        _ => None,
    };

    if let (Some(identity), Some((caller_id, bindings))) = (&request.communication_user_id, owner)
        && !bindings
            .owns(caller_id, identity)
            .await
            .map_err(|_| unavailable.clone())?
    {
        return Err(Problem::Forbidden {
            detail: "communicationUserId: tokens are issued only for identities you created."
                .to_string(),
        });
    }

    let connection = acs
        .connection
        .connection()
        .await
        .ok_or(unavailable.clone())?;
    let issued = match &request.communication_user_id {
        Some(identity) => {
            acs.client
                .issue_token(
                    &connection,
                    identity,
                    &request.scopes,
                    request.expires_in_minutes,
                )
                .await
        }
        None => {
            acs.client
                .create_identity(&connection, &request.scopes, request.expires_in_minutes)
                .await
        }
    }
    .map_err(|error| match error {
        AcsError::BadRequest(detail) => Problem::AcsRejected { detail },
        AcsError::NotFound => Problem::UnknownIdentity,
        AcsError::Denied | AcsError::Unavailable => unavailable.clone(),
    })?;

    if request.communication_user_id.is_none()
        && let Some((caller_id, bindings)) = owner
    {
        // Without the binding the caller could never refresh this identity: fail rather than
        // hand out a token that cannot be renewed.
        bindings
            .remember(caller_id, &issued.communication_user_id)
            .await
            .map_err(|_| unavailable.clone())?;
    }

    let json = serde_json::to_vec(&issued).expect("an ACS token always serializes");
    Ok(Reply::new(StatusCode::OK, "application/json", json))
}
