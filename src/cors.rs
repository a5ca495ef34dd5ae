//! CORS for standalone runs (`cargo run`), as `func start` applies `Host.CORS` from
//! local.settings.json.
//!
//! Under the Functions host CORS is the host's job (`Host.CORS` locally, the Function App's CORS
//! setting in Azure) and this module is not used. Standalone, a browser app on another origin
//! (a Fluid app on `http://localhost:3000`, say) would otherwise be blocked, so the handler
//! answers the same way the host's ASP.NET Core CORS middleware does: any method and any request
//! header for an allowed origin, preflights answered `204`.

use warp::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD,
    ORIGIN, VARY,
};
use warp::http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

/// `Host.CORS` and `Host.CORSCredentials` of local.settings.json.
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

impl Cors {
    /// `origins` is `Host.CORS`: `*` or a comma-separated list of origins.
    pub fn parse(origins: &str, credentials: bool) -> Result<Self, String> {
        let list: Vec<String> = origins
            .split(',')
            .map(|origin| origin.trim().trim_end_matches('/').to_owned())
            .filter(|origin| !origin.is_empty())
            .collect();
        let origins = if list.iter().any(|origin| origin == "*") {
            if credentials {
                // Browsers refuse `*` with credentials; the host refuses the setting too.
                return Err("Host.CORSCredentials cannot be used with Host.CORS \"*\"".into());
            }
            AllowedOrigins::Any
        } else {
            AllowedOrigins::List(list)
        };
        Ok(Cors {
            origins,
            credentials,
        })
    }

    /// Whether every origin is allowed (`Host.CORS` `*`).
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

    /// A preflight (`OPTIONS` with `Access-Control-Request-Method`) from an allowed origin is
    /// answered here, before any function runs.
    pub fn preflight<B: Default>(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Option<Response<B>> {
        if method != Method::OPTIONS {
            return None;
        }
        let requested_method = headers.get(ACCESS_CONTROL_REQUEST_METHOD)?;
        let origin = self.allowed_origin(headers)?;
        let mut response = Response::new(B::default());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let out = response.headers_mut();
        self.allow(&origin, out);
        out.insert(ACCESS_CONTROL_ALLOW_METHODS, requested_method.clone());
        if let Some(requested_headers) = headers.get(ACCESS_CONTROL_REQUEST_HEADERS) {
            out.insert(ACCESS_CONTROL_ALLOW_HEADERS, requested_headers.clone());
        }
        Some(response)
    }

    /// Adds the CORS response headers for a request from `origin`, an allowed origin.
    pub fn allow(&self, origin: &HeaderValue, out: &mut HeaderMap) {
        match self.origins {
            AllowedOrigins::Any => {
                out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            }
            AllowedOrigins::List(_) => {
                out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                out.append(VARY, HeaderValue::from_static("Origin"));
            }
        }
        if self.credentials {
            out.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
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

    #[test]
    fn parses_the_host_setting() {
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
        assert!(Cors::parse("*", true).is_err());
    }

    #[test]
    fn listed_origins_are_echoed_and_others_get_nothing() {
        let cors = Cors::parse("http://localhost:3000", true).unwrap();
        let origin = cors
            .allowed_origin(&headers(&[("origin", "HTTP://LOCALHOST:3000")]))
            .unwrap();
        let mut out = HeaderMap::new();
        cors.allow(&origin, &mut out);
        assert_eq!(out["access-control-allow-origin"], "HTTP://LOCALHOST:3000");
        assert_eq!(out["access-control-allow-credentials"], "true");
        assert_eq!(out["vary"], "Origin");

        assert!(
            cors.allowed_origin(&headers(&[("origin", "http://evil.example")]))
                .is_none()
        );
        assert!(cors.allowed_origin(&HeaderMap::new()).is_none());
    }

    #[test]
    fn preflights_from_allowed_origins_are_answered() {
        let cors = Cors::parse("*", false).unwrap();
        let preflight = headers(&[
            ("origin", "http://localhost:3000"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type,authorization",
            ),
        ]);
        let response: Response<()> = cors.preflight(&Method::OPTIONS, &preflight).unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        assert_eq!(response.headers()["access-control-allow-methods"], "POST");
        assert_eq!(
            response.headers()["access-control-allow-headers"],
            "content-type,authorization"
        );
        // Not a preflight: a plain OPTIONS, or another method.
        let plain = headers(&[("origin", "http://localhost:3000")]);
        assert!(cors.preflight::<()>(&Method::OPTIONS, &plain).is_none());
        assert!(cors.preflight::<()>(&Method::POST, &preflight).is_none());
        // Not allowed.
        let listed = Cors::parse("https://app.example", false).unwrap();
        assert!(
            listed
                .preflight::<()>(&Method::OPTIONS, &preflight)
                .is_none()
        );
    }
}
