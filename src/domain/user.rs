//! The user a token names, as far as the caller may supply it.

use serde_json::Value;

use crate::problem::Problem;

use super::check_length;

/// A user id or display name supplied by the caller: 1–256 characters. An empty value counts as
/// absent, as in `generateToken`, which replaces an empty id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserField(String);

impl UserField {
    pub fn parse(parameter: &'static str, value: &str) -> Result<Option<Self>, Problem> {
        check_length(parameter, value, 256)?;
        Ok((!value.is_empty()).then(|| UserField(value.to_owned())))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// `user.additionalDetails`: any JSON value other than `null`, at most 4 KiB once serialized.
/// Fluid broadcasts the user to every collaborator, so it is kept small.
#[derive(Debug, Clone, PartialEq)]
pub struct AdditionalDetails(Value);

impl AdditionalDetails {
    pub const PARAMETER: &'static str = "additionalDetails";
    const MAX_BYTES: usize = 4096;

    pub(crate) fn new(value: Value) -> Result<Self, Problem> {
        let size = serde_json::to_vec(&value)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > Self::MAX_BYTES {
            return Err(Problem::invalid(
                Self::PARAMETER,
                format!("must be at most {} bytes of JSON", Self::MAX_BYTES),
            ));
        }
        Ok(AdditionalDetails(value))
    }

    pub fn as_value(&self) -> &Value {
        &self.0
    }
}
