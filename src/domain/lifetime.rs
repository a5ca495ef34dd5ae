//! How long a token lives.

/// Token lifetime in seconds: at least 1, at most the configured maximum (itself ≤ 3600, the
/// limit Azure Fluid Relay enforces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lifetime(u32);

impl Lifetime {
    pub const PARAMETER: &'static str = "lifetime";
    /// Azure Fluid Relay rejects tokens whose `exp - iat` exceeds one hour.
    pub const HARD_CAP: Lifetime = Lifetime(3600);

    /// A lifetime within `1..=max`.
    pub fn new(seconds: u64, max: Lifetime) -> Result<Self, String> {
        match u32::try_from(seconds) {
            Ok(s) if (1..=max.0).contains(&s) => Ok(Lifetime(s)),
            _ => Err(format!("must be an integer from 1 to {}", max.0)),
        }
    }

    pub fn seconds(self) -> u32 {
        self.0
    }
}
