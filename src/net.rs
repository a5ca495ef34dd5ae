//! Which names mean "this machine". One rule, used wherever it matters: the settings that accept
//! `http://` only for a loopback emulator (Entra authority, ACS endpoint, Key Vault, Table
//! Storage) and the `Host` check of a standalone run.
//!
//! This machine is `localhost`, any 127.0.0.0/8 address, or `::1` (brackets allowed). A leaf
//! module: it imports nothing from the crate, so config, acs and host can all use it.

use warp::http::HeaderMap;
use warp::http::header::HOST;

/// Whether a URL host is this machine: `localhost`, 127.0.0.0/8 or `::1` (brackets allowed).
pub fn is_loopback_host(host: &str) -> bool {
    let host = match host.strip_prefix('[') {
        Some(inner) => match inner.strip_suffix(']') {
            Some(address) => address,
            None => return false,
        },
        None => host,
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether a URL's host is this machine (see [`is_loopback_host`]).
pub fn is_loopback_url(url: &str) -> bool {
    url.parse::<warp::http::Uri>()
        .is_ok_and(|uri| uri.host().is_some_and(is_loopback_host))
}

/// Whether the request's `Host` names this machine, with any port. With DNS rebinding, a page on
/// `evil.example` resolves its own name to 127.0.0.1 and calls a local server as a same-origin
/// request — but its `Host` still says `evil.example`.
pub fn host_header_is_loopback(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = if host.starts_with('[') {
        // `[::1]:7071`: the address is the bracketed part.
        match host.find(']') {
            Some(end) if is_port_suffix(&host[end + 1..]) => &host[..=end],
            _ => return false,
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => host,
        }
    };
    is_loopback_host(name)
}

/// Nothing, or `:` and a port.
fn is_port_suffix(text: &str) -> bool {
    text.is_empty() || text.strip_prefix(':').is_some_and(is_port)
}

fn is_port(text: &str) -> bool {
    text.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for local in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.0.0.2",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(local), "{local}");
        }
        for foreign in [
            "",
            "example.com",
            "10.0.0.1",
            "::2",
            "[::1",
            "localhost.example",
            "[localhost]x",
        ] {
            assert!(!is_loopback_host(foreign), "{foreign}");
        }
        assert!(is_loopback_url("http://127.0.0.1:8080/x"));
        assert!(is_loopback_url("http://[::1]:8080"));
        assert!(!is_loopback_url("http://vault.example"));
        assert!(!is_loopback_url("not a url"));
    }

    fn with_host(host: Option<&str>) -> bool {
        let mut headers = HeaderMap::new();
        if let Some(host) = host {
            headers.insert(HOST, host.parse().unwrap());
        }
        host_header_is_loopback(&headers)
    }

    #[test]
    fn host_headers_naming_this_machine() {
        for local in [
            "localhost",
            "LOCALHOST:7071",
            "127.0.0.1",
            "127.0.0.1:7071",
            "127.0.0.2:7071",
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
            "[::2]:7071",
            "[::1]x",
            "[::1]:",
            "localhost:http",
            "localhost:70710",
            "localhost:",
            "",
        ] {
            assert!(!with_host(Some(foreign)), "{foreign}");
        }
        assert!(!with_host(None), "no Host at all");
    }
}
