//! One HTTP invocation of a function, independent of how the Functions host delivered it.
//!
//! The host either forwards the original HTTP request or wraps it in a JSON envelope
//! (see [`crate::host`]). Both are turned into an [`Invocation`] and every function answers with a
//! [`Reply`], which the host module turns back into whichever form the host expects. Because the
//! functions only ever see these two types, the same request gives the same status, headers and
//! body in both protocol modes by construction.

use std::borrow::Cow;

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
    /// Parses a raw (percent-encoded, `+` for space) query string. A name or value whose bytes
    /// are not UTF-8 is refused rather than silently replaced, so a caller never gets a token for
    /// a document id other than the one it sent.
    pub fn parse(raw: &str) -> Result<Self, QueryError> {
        let mut params = QueryParams::default();
        for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name).ok_or(QueryError::Name)?;
            let value = decode(value).ok_or_else(|| QueryError::Value { name: name.clone() })?;
            params.insert(name, value);
        }
        Ok(params)
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

    /// Every parameter in the order first seen (values of a repeated name joined with `,`).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A query string that is not percent-encoded UTF-8 (a `400 invalid-query` to the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// A parameter name.
    Name,
    /// The value of this parameter.
    Value { name: String },
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryError::Name => f.write_str("The query string is not valid percent-encoded UTF-8."),
            QueryError::Value { name } => write!(
                f,
                "The value of '{}' is not valid percent-encoded UTF-8.",
                name.escape_debug()
            ),
        }
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

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; `None` unless the
/// bytes are UTF-8. One allocation per value. The usual value has neither `+` nor `%`: it is
/// copied as it is, without a byte-by-byte decode or a second UTF-8 check of a `&str`.
fn decode(text: &str) -> Option<String> {
    if !text.bytes().any(|b| b == b'%' || b == b'+') {
        return Some(text.to_owned());
    }
    let plus_as_space = if text.contains('+') {
        Cow::Owned(text.replace('+', " "))
    } else {
        Cow::Borrowed(text)
    };
    match percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .ok()?
    {
        Cow::Borrowed(_) => Some(plus_as_space.into_owned()), // no `%` escape
        Cow::Owned(decoded) => Some(decoded),
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
    use super::{QueryError, QueryParams};

    #[test]
    fn repeated_names_are_joined_like_the_host_does() {
        let q = QueryParams::parse("scopes=doc:read&tenantId=t&scopes=doc:write").unwrap();
        assert_eq!(q.get("scopes"), Some("doc:read,doc:write"));
        assert_eq!(q.get("tenantId"), Some("t"));
        assert_eq!(q.get("missing"), None);
    }

    #[test]
    fn percent_and_plus_decoding() {
        let q = QueryParams::parse(
            "userName=Zo%C3%AB+Smith&x=%7B%22a%22%3A1%7D&plus=%2B&&flag&spaced=a+b+&id=d-1%&blank=++",
        )
        .unwrap();
        assert_eq!(q.get("userName"), Some("Zoë Smith"));
        assert_eq!(q.get("x"), Some("{\"a\":1}"));
        assert_eq!(q.get("plus"), Some("+"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("spaced"), Some("a b "));
        assert_eq!(q.get("blank"), Some("  "));
        // A `%` that starts no escape stays as it is (as in the host and URLSearchParams).
        assert_eq!(q.get("id"), Some("d-1%"));
    }

    #[test]
    fn invalid_utf8_is_refused_not_replaced() {
        assert!(matches!(
            QueryParams::parse("documentId=%FF"),
            Err(QueryError::Value { name }) if name == "documentId"
        ));
        assert!(matches!(QueryParams::parse("%C3=x"), Err(QueryError::Name)));
        // A malformed escape is kept literally, as browsers and ASP.NET do.
        assert_eq!(
            QueryParams::parse("tenantId=%ZZ").unwrap().get("tenantId"),
            Some("%ZZ")
        );
    }
}
