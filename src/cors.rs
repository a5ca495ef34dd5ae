//! CORS answered by the handler: `CORS_ALLOWED_ORIGINS` (any launch) or, standalone, `Host.CORS`
//! of local.settings.json as `func start` applies it.
//!
//! A browser app on another origin (a Fluid app on `https://app.contoso.com`, say) sends its token
//! requests cross-origin, and every one that carries `Authorization` is preflighted. In Azure the
//! Function App's platform CORS can answer — but Flex Consumption's documentation has listed
//! platform CORS as unsupported, and with Easy Auth in front a preflight (which carries no
//! credentials) must get through to be answered at all. So the handler answers itself, the same
//! way the host's ASP.NET Core CORS middleware does: any method and any request header for an
//! allowed origin, preflights answered `204`, `Vary: Origin` when the answer depends on it.
//!
//! It works on the [`Invocation`], not the HTTP request, so a preflight is answered the same in
//! both protocol modes (in envelope mode the client's `OPTIONS` arrives inside the envelope).
//! Configure exactly one of platform CORS and this: two `Access-Control-Allow-Origin` headers make
//! browsers reject the answer.

use warp::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, CACHE_CONTROL, ORIGIN, VARY,
};
use warp::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::invocation::{Invocation, Reply};

/// The allowed origins and whether credentials may be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    origins: AllowedOrigins,
    credentials: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AllowedOrigins {
    Any,
    /// Without trailing slashes; compared case-insensitively, as ASP.NET Core does.
    List(Vec<String>),
}

/// Why a list of origins was refused; the caller names the setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsError {
    /// Browsers refuse `*` with credentials; the host refuses the setting too.
    AnyWithCredentials,
    /// Not `*` and not `scheme://host[:port]`: a browser never sends such an `Origin`.
    NotAnOrigin(String),
}

impl Cors {
    /// `origins`: `*` or a comma-separated list of origins (`https://app.example`).
    pub fn parse(origins: &str, credentials: bool) -> Result<Self, CorsError> {
        let list: Vec<String> = origins
            .split(',')
            .map(|origin| origin.trim().trim_end_matches('/').to_owned())
            .filter(|origin| !origin.is_empty())
            .collect();
        if list.is_empty() {
            return Err(CorsError::NotAnOrigin(origins.trim().to_owned()));
        }
        let origins = if list.iter().any(|origin| origin == "*") {
            if credentials {
                return Err(CorsError::AnyWithCredentials);
            }
            AllowedOrigins::Any
        } else {
            if let Some(bad) = list.iter().find(|origin| !is_origin(origin)) {
                return Err(CorsError::NotAnOrigin(bad.clone()));
            }
            AllowedOrigins::List(list)
        };
        Ok(Cors {
            origins,
            credentials,
        })
    }

    /// Whether every origin is allowed (`*`).
    pub fn allows_any_origin(&self) -> bool {
        self.origins == AllowedOrigins::Any
    }

    /// The request's `Origin`, if CORS allows it.
    pub fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(ORIGIN)?;
        let allowed = match &self.origins {
            AllowedOrigins::Any => true,
            AllowedOrigins::List(list) => {
                let origin = origin.to_str().ok()?;
                list.iter()
                    .any(|allowed| allowed.eq_ignore_ascii_case(origin))
            }
        };
        allowed.then(|| origin.clone())
    }

    /// Answers a preflight (`OPTIONS` with `Access-Control-Request-Method`) from an allowed
    /// origin with `204`; `None` for anything else, which goes to the function (a preflight from
    /// another origin then gets the function's `405`, without CORS headers, and the browser
    /// stops there).
    pub fn preflight(&self, invocation: &Invocation) -> Option<Reply> {
        if invocation.method != Method::OPTIONS {
            return None;
        }
        let headers = &invocation.headers;
        let requested_method = headers.get(ACCESS_CONTROL_REQUEST_METHOD)?;
        let origin = self.allowed_origin(headers)?;
        let mut reply = Reply {
            status: StatusCode::NO_CONTENT,
            headers: vec![(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            body: Default::default(),
        };
        self.allow(&origin, &mut reply.headers);
        reply
            .headers
            .push((ACCESS_CONTROL_ALLOW_METHODS, requested_method.clone()));
        if let Some(requested_headers) = headers.get(ACCESS_CONTROL_REQUEST_HEADERS) {
            reply
                .headers
                .push((ACCESS_CONTROL_ALLOW_HEADERS, requested_headers.clone()));
        }
        Some(reply)
    }

    /// Adds the CORS response headers to an answer for a request whose origin is `origin` (from
    /// [`Cors::allowed_origin`]). An allowed origin is named, and a page reads `Retry-After`
    /// (429, 503) and `WWW-Authenticate` (401) only when they are exposed. Any other answer
    /// still says `Vary: Origin` when an allow-list decides, so a cache never hands an answer
    /// made for one origin to another.
    pub fn answer(&self, origin: Option<&HeaderValue>, out: &mut Vec<(HeaderName, HeaderValue)>) {
        match origin {
            Some(origin) => {
                self.allow(origin, out);
                out.push((
                    ACCESS_CONTROL_EXPOSE_HEADERS,
                    HeaderValue::from_static("Retry-After, WWW-Authenticate"),
                ));
            }
            None if matches!(self.origins, AllowedOrigins::List(_)) => {
                out.push((VARY, HeaderValue::from_static("Origin")));
            }
            None => {}
        }
    }

    /// Adds the CORS response headers for a request from `origin`, an allowed origin.
    fn allow(&self, origin: &HeaderValue, out: &mut Vec<(HeaderName, HeaderValue)>) {
        match self.origins {
            AllowedOrigins::Any => {
                out.push((ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")));
            }
            AllowedOrigins::List(_) => {
                out.push((ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()));
                out.push((VARY, HeaderValue::from_static("Origin")));
            }
        }
        if self.credentials {
            out.push((
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            ));
        }
    }
}

/// `scheme://host[:port]` with an http(s) scheme, a host of letters, digits, `-`, `.` (or a
/// bracketed IPv6 address), a port that is a port, and nothing after — what a browser sends.
fn is_origin(text: &str) -> bool {
    let Some((scheme, authority)) = text.split_once("://") else {
        return false;
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        }
    };
    (scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http"))
        && host_ok
        && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.parse().unwrap(), HeaderValue::from_static(value)))
            .collect()
    }

    fn invocation(method: Method, pairs: &[(&'static str, &'static str)]) -> Invocation {
        Invocation {
            method,
            query: Default::default(),
            headers: headers(pairs),
            body: Default::default(),
        }
    }

    fn find<'a>(out: &'a [(HeaderName, HeaderValue)], name: &str) -> Vec<&'a str> {
        out.iter()
            .filter(|(n, _)| n.as_str() == name)
            .map(|(_, v)| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn parses_origin_lists() {
        assert_eq!(
            Cors::parse("*", false).unwrap().origins,
            AllowedOrigins::Any
        );
        assert_eq!(
            Cors::parse(" http://localhost:3000/ ,https://app.example", true)
                .unwrap()
                .origins,
            AllowedOrigins::List(vec![
                "http://localhost:3000".into(),
                "https://app.example".into()
            ])
        );
        assert_eq!(Cors::parse("*", true), Err(CorsError::AnyWithCredentials));
        for good in [
            "http://localhost:3000",
            "https://[::1]:8443",
            "https://a-b.example.com",
        ] {
            assert!(Cors::parse(good, false).is_ok(), "{good}");
        }
        assert_eq!(
            Cors::parse(" , ", false),
            Err(CorsError::NotAnOrigin(",".into()))
        );
        for bad in [
            "app.example",
            "https://",
            "https://app.example/path",
            "ftp://app.example",
            "https://app.example?x",
            "https://user@app.example",
            "https://app.example:abc",
            "https://app.example:99999",
            "https://[::1",
            "https://*.example",
            "http://*",
            "https://app.example\u{1}",
        ] {
            assert_eq!(
                Cors::parse(&format!("https://ok.example,{bad}"), false),
                Err(CorsError::NotAnOrigin(bad.trim_end_matches('/').into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn listed_origins_are_echoed_and_others_get_nothing() {
        let cors = Cors::parse("http://localhost:3000", true).unwrap();
        let origin = cors
            .allowed_origin(&headers(&[("origin", "HTTP://LOCALHOST:3000")]))
            .unwrap();
        let mut out = Vec::new();
        cors.answer(Some(&origin), &mut out);
        assert_eq!(
            find(&out, "access-control-allow-origin"),
            ["HTTP://LOCALHOST:3000"]
        );
        assert_eq!(find(&out, "access-control-allow-credentials"), ["true"]);
        assert_eq!(
            find(&out, "access-control-expose-headers"),
            ["Retry-After, WWW-Authenticate"]
        );
        assert_eq!(find(&out, "vary"), ["Origin"]);

        assert!(
            cors.allowed_origin(&headers(&[("origin", "http://evil.example")]))
                .is_none()
        );
        assert!(cors.allowed_origin(&HeaderMap::new()).is_none());
        // Another origin, or none: no CORS headers, but the answer still varies by Origin.
        let mut out = Vec::new();
        cors.answer(None, &mut out);
        assert_eq!(find(&out, "vary"), ["Origin"]);
        assert_eq!(out.len(), 1);

        // Any origin: `*`, no Vary (the answer does not depend on it), no credentials unless set.
        let any = Cors::parse("*", false).unwrap();
        let mut out = Vec::new();
        any.answer(Some(&origin), &mut out);
        assert_eq!(find(&out, "access-control-allow-origin"), ["*"]);
        assert!(find(&out, "vary").is_empty());
        assert!(find(&out, "access-control-allow-credentials").is_empty());
        let mut out = Vec::new();
        any.answer(None, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn preflights_from_allowed_origins_are_answered() {
        let cors = Cors::parse("*", false).unwrap();
        let preflight = [
            ("origin", "http://localhost:3000"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type,authorization",
            ),
        ];
        let reply = cors
            .preflight(&invocation(Method::OPTIONS, &preflight))
            .unwrap();
        assert_eq!(reply.status, StatusCode::NO_CONTENT);
        assert!(reply.body.is_empty());
        assert_eq!(find(&reply.headers, "cache-control"), ["no-store"]);
        assert_eq!(find(&reply.headers, "access-control-allow-origin"), ["*"]);
        assert_eq!(
            find(&reply.headers, "access-control-allow-methods"),
            ["POST"]
        );
        assert_eq!(
            find(&reply.headers, "access-control-allow-headers"),
            ["content-type,authorization"]
        );
        // Not a preflight: a plain OPTIONS, or another method.
        let plain = [("origin", "http://localhost:3000")];
        assert!(
            cors.preflight(&invocation(Method::OPTIONS, &plain))
                .is_none()
        );
        assert!(
            cors.preflight(&invocation(Method::POST, &preflight))
                .is_none()
        );
        // Not allowed.
        let listed = Cors::parse("https://app.example", false).unwrap();
        assert!(
            listed
                .preflight(&invocation(Method::OPTIONS, &preflight))
                .is_none()
        );
    }
}
