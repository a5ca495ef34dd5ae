//! The tenant a token is for.

use crate::problem::Problem;

/// An Azure Fluid Relay tenant id: 1–128 characters of `[A-Za-z0-9._-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    pub const PARAMETER: &'static str = "tenantId";

    pub fn parse(value: &str) -> Result<Self, Problem> {
        if value.is_empty() {
            return Err(Problem::invalid(Self::PARAMETER, "is required"));
        }
        if value.len() > 128 {
            return Err(Problem::invalid(
                Self::PARAMETER,
                "must be at most 128 characters",
            ));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(Problem::invalid(
                Self::PARAMETER,
                "may contain only letters, digits, '.', '_' and '-'",
            ));
        }
        Ok(TenantId(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
