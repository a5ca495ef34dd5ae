//! Which function a request is for, and how the host delivered it: decided once per request from
//! the method, the path and host.json.

use warp::http::Method;

use crate::routes::Function;

/// Where requests are routed; fixed at startup.
#[derive(Debug, Clone)]
pub struct Routing {
    /// `extensions.http.routePrefix` from host.json, without slashes (`api` by default).
    pub route_prefix: String,
    /// Whether host.json turns on forwarding or proxying. Only consulted when `route_prefix` is
    /// empty, where `/{FunctionName}` could be either a forwarded request or an envelope.
    pub forwarding: bool,
}

#[derive(Clone, Copy)]
pub(super) enum Route {
    Readiness,
    Forwarded(Function),
    Envelope(Function),
    NotFound,
}

pub(super) fn route(method: &Method, path: &str, routing: &Routing) -> Route {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    if path == "/" {
        return Route::Readiness;
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Route::NotFound;
    };
    let prefix = routing.route_prefix.as_str();
    let forwarded_name = if prefix.is_empty() {
        routing.forwarding.then_some(rest)
    } else {
        rest.get(..prefix.len())
            .filter(|head| head.eq_ignore_ascii_case(prefix))
            .and_then(|_| rest[prefix.len()..].strip_prefix('/'))
    };
    if let Some(function) = forwarded_name.and_then(Function::from_name) {
        return Route::Forwarded(function);
    }
    match Function::from_name(rest) {
        Some(function) if *method == Method::POST => Route::Envelope(function),
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(prefix: &str, forwarding: bool) -> Routing {
        Routing {
            route_prefix: prefix.to_string(),
            forwarding,
        }
    }

    fn name(route: Route) -> String {
        match route {
            Route::Readiness => "ready".into(),
            Route::Forwarded(f) => format!("forwarded {}", f.name()),
            Route::Envelope(f) => format!("envelope {}", f.name()),
            Route::NotFound => "not found".into(),
        }
    }

    #[test]
    fn routes() {
        let api = routing("api", false);
        for (method, path, expected) in [
            (Method::GET, "/", "ready"),
            (Method::GET, "/api/TokenFunction", "forwarded TokenFunction"),
            (
                Method::PUT,
                "/API/tokenfunction/",
                "forwarded TokenFunction",
            ),
            (Method::POST, "/TokenFunction", "envelope TokenFunction"),
            (Method::GET, "/TokenFunction", "not found"),
            (Method::GET, "/apix/TokenFunction", "not found"),
            (Method::GET, "/api/Other", "not found"),
            (Method::GET, "/api", "not found"),
        ] {
            assert_eq!(
                name(route(&method, path, &api)),
                expected,
                "{method} {path}"
            );
        }
        // With an empty prefix, host.json's mode decides what `/TokenFunction` is.
        for (forwarding, expected) in [
            (true, "forwarded TokenFunction"),
            (false, "envelope TokenFunction"),
        ] {
            let routing = routing("", forwarding);
            assert_eq!(
                name(route(&Method::POST, "/TokenFunction", &routing)),
                expected
            );
        }
    }
}
