//! The values a token is made of, as types that cannot hold invalid ones: each parses once, in
//! its constructor, and the rest of the crate never re-checks. Shared by the token request, the
//! policy, the document access, the key sources and the token itself.

mod document_id;
mod lifetime;
mod scopes;
mod tenant_id;
mod user;

pub use document_id::DocumentId;
pub use lifetime::Lifetime;
pub use scopes::{Scope, Scopes};
pub use tenant_id::TenantId;
pub use user::{AdditionalDetails, UserField};

use crate::problem::Problem;

/// At most `max` characters.
fn check_length(parameter: &'static str, value: &str, max: usize) -> Result<(), Problem> {
    // Byte length bounds char count from above, so most values skip the count.
    if value.len() > max && value.chars().count() > max {
        return Err(Problem::invalid(
            parameter,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}
