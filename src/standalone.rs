//! What a standalone run (`cargo run`, no Functions host in front) must do itself.
//!
//! Under the Functions host, the host decides which requests reach the handler. Standalone, the
//! handler listens on 127.0.0.1 for a developer — and a web page the developer visits can reach
//! 127.0.0.1 too. So a standalone run:
//! - answers only requests whose `Host` is `localhost`, `127.0.0.1` or `[::1]` (any port): with
//!   DNS rebinding, a page on `evil.example` resolves its own name to 127.0.0.1 and calls the
//!   handler as a same-origin request; its `Host` header still says `evil.example`.
//!
//! (`Host.CORS` from local.settings.json is applied like `CORS_ALLOWED_ORIGINS`, by
//! [`crate::cors`] for every function.)

use warp::http::HeaderMap;
use warp::http::header::HOST;

/// Whether the request names this machine in `Host` (`localhost`, `127.0.0.1`, `[::1]`, any port).
pub fn is_local_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        // `[::1]:7071`: the address is inside the brackets.
        Some(rest) => match rest.split_once(']') {
            Some((address, port)) if port.is_empty() || is_port(port) => {
                return address == "::1";
            }
            _ => return false,
        },
        None => match host.split_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => host,
        },
    };
    name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1"
}

fn is_port(text: &str) -> bool {
    text.strip_prefix(':')
        .unwrap_or(text)
        .parse::<u16>()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_host(host: Option<&str>) -> bool {
        let mut headers = HeaderMap::new();
        if let Some(host) = host {
            headers.insert(HOST, host.parse().unwrap());
        }
        is_local_host(&headers)
    }

    #[test]
    fn only_this_machine_by_name() {
        for local in [
            "localhost",
            "LOCALHOST:7071",
            "127.0.0.1",
            "127.0.0.1:7071",
            "[::1]",
            "[::1]:7071",
        ] {
            assert!(with_host(Some(local)), "{local}");
        }
        for foreign in [
            "evil.example",
            "evil.example:7071",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "127.0.0.2:7071",
            "[::2]:7071",
            "[::1]x",
            "localhost:http",
            "localhost:70710",
            "",
        ] {
            assert!(!with_host(Some(foreign)), "{foreign}");
        }
        assert!(!with_host(None), "no Host at all");
    }
}
