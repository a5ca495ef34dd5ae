//! The functions of this app, one file each, all of one shape: a function takes the
//! [`Invocation`] and returns `Result<Reply, Problem>`. Domain errors become problems through the
//! `From` impls in [`problems`]; [`Function::invoke`] renders a problem, and adds CORS around
//! every function.

pub mod acs_token;
pub mod document_created;
pub mod document_members;
mod problems;
pub mod token;

use std::sync::Arc;

use warp::http::{HeaderMap, Method};

use crate::acs::AcsService;
use crate::caller::rate_limit::CallerLimiter;
use crate::caller::{Authenticator, Caller};
use crate::cors::Cors;
use crate::documents::Documents;
use crate::invocation::{Invocation, Reply};
use crate::keys::TenantKeys;
use crate::policy::Policy;
use crate::problem::Problem;
use crate::request_log::RequestLog;

/// What the functions share: built once at startup, read-only afterwards.
pub struct AppState {
    pub auth: Authenticator,
    pub policy: Policy,
    pub keys: Arc<dyn TenantKeys>,
    /// `None` when no ACS connection is configured.
    pub acs: Option<AcsService>,
    /// `None` when no document store is configured.
    pub documents: Option<Documents>,
    /// `None` when the handler answers no CORS (the platform's, or none, is in charge).
    pub cors: Option<Cors>,
    /// `None` with `CALLER_RATE_LIMIT=off` (and with `AUTH_MODE=none`: there is no caller).
    pub limiter: Option<CallerLimiter>,
}

/// Who is calling, authenticated and within their rate (`CALLER_RATE_LIMIT`): the first step of
/// `TokenFunction`, `AcsTokenFunction` and `DocumentMembers`.
async fn signed_in(state: &AppState, invocation: &Invocation) -> Result<Caller, Problem> {
    let caller = state.auth.caller(&invocation.headers).await?;
    if let (Some(limiter), Some(id)) = (&state.limiter, caller.id()) {
        limiter
            .check(id, tokio::time::Instant::now())
            .map_err(|retry_after| Problem::RateLimited { retry_after })?;
    }
    Ok(caller)
}

/// A function of the app; its name is the folder holding its `function.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Token,
    AcsToken,
    DocumentCreated,
    DocumentMembers,
}

impl Function {
    pub const ALL: [Function; 4] = [
        Function::Token,
        Function::AcsToken,
        Function::DocumentCreated,
        Function::DocumentMembers,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Function::Token => "TokenFunction",
            Function::AcsToken => "AcsTokenFunction",
            Function::DocumentCreated => "DocumentCreated",
            Function::DocumentMembers => "DocumentMembers",
        }
    }

    /// The function with this name; ASP.NET routing (and so the host) ignores case.
    pub fn from_name(name: &str) -> Option<Function> {
        Function::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// Runs the function, with CORS around it when the handler answers CORS: a preflight from an
    /// allowed origin is answered here, and every answer to an allowed origin names it.
    pub async fn invoke(
        self,
        state: &AppState,
        invocation: Invocation,
        log: &mut RequestLog,
    ) -> Reply {
        let Some(cors) = &state.cors else {
            return self.run(state, invocation, log).await;
        };
        if let Some(preflight) = cors.preflight(&invocation) {
            return preflight;
        }
        let origin = cors.allowed_origin(&invocation.headers);
        let mut reply = self.run(state, invocation, log).await;
        cors.answer(origin.as_ref(), &mut reply.headers);
        reply
    }

    /// The function itself. It notes in `log` what the request's one line should say (the
    /// tenant, the audit fields); a refusal notes its problem type.
    async fn run(self, state: &AppState, invocation: Invocation, log: &mut RequestLog) -> Reply {
        let answer = match self {
            Function::Token => token::token_function(state, &invocation, log).await,
            Function::AcsToken => acs_token::acs_token_function(state, &invocation, log).await,
            Function::DocumentCreated => {
                document_created::document_created_function(state, &invocation, log).await
            }
            Function::DocumentMembers => {
                document_members::document_members_function(state, &invocation, log).await
            }
        };
        answer.unwrap_or_else(|problem| {
            log.problem = Some(problem.slug());
            problem.to_reply()
        })
    }
}

/// A refusal made before any function ran (a query that is not UTF-8, a body over the limit),
/// with the CORS headers a function's answer would have, so a page can read why.
pub fn refusal(state: &AppState, headers: &HeaderMap, problem: &Problem) -> Reply {
    let mut reply = problem.to_reply();
    if let Some(cors) = &state.cors {
        cors.answer(cors.allowed_origin(headers).as_ref(), &mut reply.headers);
    }
    reply
}

/// The token functions serve GET and POST; anything else is a 405 naming them in `Allow`.
fn require_get_or_post(method: &Method) -> Result<(), Problem> {
    if method == Method::GET || method == Method::POST {
        Ok(())
    } else {
        Err(Problem::MethodNotAllowed { allow: "GET, POST" })
    }
}
