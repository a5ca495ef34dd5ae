//! Where ACS is and how requests to it are authorized: a connection string
//! (`endpoint=https://<resource>.communication.azure.com/;accesskey=<base64 key>`, HMAC-signed
//! requests) or an endpoint alone (`ACS_ENDPOINT`, Microsoft Entra tokens of the app's identity).

use crate::acs::signing::AccessKey;
use crate::azure_credential::BearerToken;
use crate::net::is_loopback_host;

/// The token scope of the Communication Services data plane.
pub const ACS_SCOPE: &str = "https://communication.azure.com/.default";

/// An ACS endpoint, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcsEndpoint {
    /// `https://host[:port]` without a trailing slash.
    pub url: String,
    /// The authority as it goes into `Host` and the signature.
    pub host: String,
}

impl AcsEndpoint {
    /// An `https://` URL; `http://` only for loopback hosts (emulators).
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = text.trim().trim_end_matches('/').to_string();
        let uri: warp::http::Uri = url.parse().map_err(|_| "has an invalid endpoint URL")?;
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
        Ok(AcsEndpoint { url, host })
    }
}

/// How requests to ACS prove who sends them.
#[derive(Debug, Clone)]
pub enum AcsAuth {
    /// HMAC-SHA256 with the resource's access key.
    AccessKey(AccessKey),
    /// A Microsoft Entra token of the app's identity (a role on the ACS resource).
    Entra(BearerToken),
}

/// Where ACS is and how to authorize requests to it.
#[derive(Debug, Clone)]
pub struct AcsConnection {
    /// `https://host[:port]` without a trailing slash.
    pub endpoint: String,
    /// The authority as it goes into `Host` and the signature.
    pub host: String,
    pub auth: AcsAuth,
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
                "endpoint" => endpoint = Some(value.trim().to_string()),
                // The base64 key itself may end in '=': split_once kept them in `value`.
                "accesskey" => key = Some(value.trim().to_string()),
                _ => {}
            }
        }
        let endpoint = AcsEndpoint::parse(&endpoint.ok_or("has no endpoint")?)?;
        let key = AccessKey::from_base64(&key.ok_or("has no accesskey")?)
            .ok_or("has an accesskey that is not base64")?;
        Ok(AcsConnection {
            endpoint: endpoint.url,
            host: endpoint.host,
            auth: AcsAuth::AccessKey(key),
        })
    }

    /// A connection that authorizes with the app's identity.
    pub fn entra(endpoint: AcsEndpoint, token: BearerToken) -> Self {
        AcsConnection {
            endpoint: endpoint.url,
            host: endpoint.host,
            auth: AcsAuth::Entra(token),
        }
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
    fn endpoints_alone() {
        let e = AcsEndpoint::parse(" https://my-acs.communication.azure.com/ ").unwrap();
        assert_eq!(e.url, "https://my-acs.communication.azure.com");
        assert_eq!(e.host, "my-acs.communication.azure.com");
        assert_eq!(
            AcsEndpoint::parse("http://[::1]:9000").unwrap().host,
            "[::1]:9000"
        );
        for bad in [
            "http://acs.example.com",
            "my-acs.communication.azure.com",
            "https://",
        ] {
            assert!(AcsEndpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_bad_strings_without_echoing_the_key() {
        for bad in [
            "accesskey=c2VjcmV0LWtleQ==",
            "endpoint=ftp://x;accesskey=c2VjcmV0LWtleQ==",
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
