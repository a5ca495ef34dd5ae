//! One HTTP invocation of a function, independent of how the Functions host delivered it.
//!
//! The host either forwards the original HTTP request or wraps it in a JSON envelope
//! (see [`crate::host`]). Both are turned into an [`Invocation`] and every function answers with a
//! [`Reply`], which the host module turns back into whichever form the host expects. Because the
//! functions only ever see these two types, the same request gives the same status, headers and
//! body in both protocol modes by construction.

use bytes::Bytes;
use warp::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

/// Largest request body a function accepts; larger bodies are answered with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A protocol-neutral HTTP request.
#[derive(Debug)]
pub struct Invocation {
    pub method: Method,
    pub query: QueryParams,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Query parameters with the Functions host's semantics: a name given several times has its
/// values joined with `,` (ASP.NET's `StringValues.ToString()`), which is what the host forwards
/// and what it puts in the envelope's `Query` object. Standalone requests are folded the same way,
/// so every mode sees identical parameters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// Parses a raw (percent-encoded, `+` for space) query string.
    pub fn parse(raw: &str) -> Self {
        let mut params = QueryParams::default();
        for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
            params.insert(name.into_owned(), value.into_owned());
        }
        params
    }

    /// Adds a value, joining it to an earlier value of the same name with `,`.
    pub fn insert(&mut self, name: String, value: String) {
        match self.0.iter_mut().find(|(existing, _)| *existing == name) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            None => self.0.push((name, value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

impl FromIterator<(String, String)> for QueryParams {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut params = QueryParams::default();
        for (name, value) in iter {
            params.insert(name, value);
        }
        params
    }
}

/// A protocol-neutral HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl Reply {
    /// A response with `Content-Type` and `Cache-Control: no-store` (tokens and errors about
    /// them must never be cached by a browser or a proxy).
    pub fn new(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Reply {
            status,
            headers: vec![
                (
                    warp::http::header::CONTENT_TYPE,
                    HeaderValue::from_static(content_type),
                ),
                (
                    warp::http::header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store"),
                ),
            ],
            body: body.into(),
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::QueryParams;

    #[test]
    fn repeated_names_are_joined_like_the_host_does() {
        let q = QueryParams::parse("scopes=doc:read&tenantId=t&scopes=doc:write");
        assert_eq!(q.get("scopes"), Some("doc:read,doc:write"));
        assert_eq!(q.get("tenantId"), Some("t"));
        assert_eq!(q.get("missing"), None);
    }

    #[test]
    fn percent_and_plus_decoding() {
        let q = QueryParams::parse("userName=Zo%C3%AB+Smith&x=%7B%22a%22%3A1%7D");
        assert_eq!(q.get("userName"), Some("Zoë Smith"));
        assert_eq!(q.get("x"), Some("{\"a\":1}"));
    }
}
