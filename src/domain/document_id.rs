//! The container a token is for.

use crate::problem::Problem;

use super::check_length;

/// A container id, or `""` when the token is for creating a container (the service assigns the
/// id then). At most 256 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DocumentId(String);

impl DocumentId {
    pub const PARAMETER: &'static str = "documentId";

    pub fn parse(value: &str) -> Result<Self, Problem> {
        check_length(Self::PARAMETER, value, 256)?;
        if value.chars().any(char::is_control) {
            return Err(Problem::invalid(
                Self::PARAMETER,
                "must not contain control characters",
            ));
        }
        Ok(DocumentId(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
