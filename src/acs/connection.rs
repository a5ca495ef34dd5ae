//! `endpoint=https://<resource>.communication.azure.com/;accesskey=<base64 key>`, parsed once.

use crate::acs::signing::AccessKey;
use crate::config::is_loopback_host;

/// Where ACS is and the key to sign requests with.
#[derive(Debug, Clone)]
pub struct AcsConnection {
    /// `https://host[:port]` without a trailing slash.
    pub endpoint: String,
    /// The authority as it goes into `Host` and the signature.
    pub host: String,
    pub key: AccessKey,
}

impl AcsConnection {
    /// Parses a connection string. Errors name the problem, never the key. An `http://`
    /// endpoint is accepted only for loopback hosts (emulators).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut endpoint = None;
        let mut key = None;
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or("must be endpoint=…;accesskey=…")?;
            match name.trim().to_ascii_lowercase().as_str() {
                "endpoint" => endpoint = Some(value.trim().trim_end_matches('/').to_string()),
                // The base64 key itself may end in '=': split_once kept them in `value`.
                "accesskey" => key = Some(value.trim().to_string()),
                _ => {}
            }
        }
        let endpoint = endpoint.ok_or("has no endpoint")?;
        let key = AccessKey::from_base64(&key.ok_or("has no accesskey")?)
            .ok_or("has an accesskey that is not base64")?;
        let uri: warp::http::Uri = endpoint
            .parse()
            .map_err(|_| "has an invalid endpoint URL")?;
        let host = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .ok_or("has an endpoint without a host")?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if is_loopback_host(uri.host().unwrap_or("")) => {}
            _ => {
                return Err(
                    "needs an https:// endpoint (http:// only for a loopback emulator)".into(),
                );
            }
        }
        Ok(AcsConnection {
            endpoint,
            host,
            key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_portal_format() {
        let c = AcsConnection::parse(
            "endpoint=https://my-acs.communication.azure.com/;accesskey=c2VjcmV0LWtleQ==",
        )
        .unwrap();
        assert_eq!(c.endpoint, "https://my-acs.communication.azure.com");
        assert_eq!(c.host, "my-acs.communication.azure.com");
        let local =
            AcsConnection::parse("Endpoint=http://127.0.0.1:8443;AccessKey=c2VjcmV0LWtleQ==")
                .unwrap();
        assert_eq!(local.host, "127.0.0.1:8443");
    }

    #[test]
    fn rejects_bad_strings_without_echoing_the_key() {
        for bad in [
            "accesskey=c2VjcmV0LWtleQ==",
            "endpoint=https://x.communication.azure.com",
            "endpoint=https://x;accesskey=%%%",
            "endpoint=http://acs.example.com;accesskey=c2VjcmV0LWtleQ==",
            "garbage",
        ] {
            let error = AcsConnection::parse(bad).unwrap_err();
            assert!(!error.contains("c2VjcmV0"), "{error}");
        }
    }
}
