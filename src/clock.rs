//! The wall clock in the unit JWT time claims use (`exp`, `nbf`, `iat`): whole seconds since the
//! Unix epoch. A clock set before 1970 reads as 0.

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
