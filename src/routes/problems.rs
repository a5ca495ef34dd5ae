//! Where domain errors become problems: every `From<…> for Problem` of the functions' domains,
//! in one place, so a route only writes `?` and the status and type a caller sees for each
//! domain outcome can be read in one file.
//!
//! The modules below routes do not know about HTTP: they say what happened (`KeyError`,
//! `DocumentError`, `CreationError`, `AcsError`, `QueryError`); this file says what the caller
//! is told.

use std::time::Duration;

use crate::acs::identity::AcsError;
use crate::documents::DocumentError;
use crate::documents::creation::CreationError;
use crate::domain::TenantId;
use crate::invocation::QueryError;
use crate::keys::KeyError;
use crate::problem::Problem;

/// How long a caller is asked to wait when a service behind us is unavailable.
const RETRY_AFTER: Duration = Duration::from_secs(5);

impl From<QueryError> for Problem {
    fn from(error: QueryError) -> Problem {
        Problem::InvalidQuery {
            detail: error.to_string(),
        }
    }
}

impl From<DocumentError> for Problem {
    fn from(error: DocumentError) -> Problem {
        match error {
            DocumentError::NotAllowed(detail) => Problem::Forbidden {
                detail: detail.to_string(),
            },
            DocumentError::Conflict(detail) => Problem::Conflict {
                detail: detail.to_string(),
            },
            DocumentError::Unavailable => Problem::DocumentStoreUnavailable {
                retry_after: RETRY_AFTER,
            },
            // The miss budget is spent: retry when the next read is allowed (whole seconds).
            DocumentError::Busy(retry_after) => Problem::DocumentStoreUnavailable { retry_after },
        }
    }
}

impl From<CreationError> for Problem {
    fn from(error: CreationError) -> Problem {
        match error {
            // An invalid-parameter problem names the parameter itself.
            CreationError::Malformed(detail) => {
                Problem::invalid("token", detail.strip_prefix("token: ").unwrap_or(detail))
            }
            CreationError::Rejected(detail) => Problem::Forbidden {
                detail: detail.to_string(),
            },
        }
    }
}

impl From<AcsError> for Problem {
    fn from(error: AcsError) -> Problem {
        match error {
            AcsError::BadRequest(detail) => Problem::AcsRejected { detail },
            AcsError::NotFound => Problem::UnknownIdentity,
            AcsError::Denied | AcsError::Unavailable => Problem::AcsUnavailable {
                retry_after: RETRY_AFTER,
            },
        }
    }
}

/// A failed key lookup for `tenant_id`, as the token caller sees it.
pub(super) fn key_problem(tenant_id: &TenantId) -> impl FnOnce(KeyError) -> Problem + '_ {
    move |error| match error {
        KeyError::UnknownTenant => Problem::UnknownTenant {
            tenant_id: tenant_id.as_str().to_owned(),
        },
        KeyError::Unavailable { retry_after } => Problem::KeyStoreUnavailable { retry_after },
    }
}
