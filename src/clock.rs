//! The wall clock, in the two forms the crate needs: whole seconds since the Unix epoch (JWT time
//! claims `exp`, `nbf`, `iat`) and RFC 1123 dates (the `x-ms-date` of signed Azure requests). A
//! leaf module, so every module that needs the time can import it.

/// Whole seconds since the Unix epoch; a clock set before 1970 reads as 0.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Now as an RFC 1123 date (`Wed, 13 Apr 2022 18:09:12 GMT`), what `x-ms-date` carries.
pub fn rfc1123_now() -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc1123_dates_have_the_fixed_length_of_the_format() {
        let date = super::rfc1123_now();
        assert_eq!(date.len(), "Wed, 13 Apr 2022 18:09:12 GMT".len());
        assert!(date.ends_with(" GMT"), "{date}");
    }
}
