//! A tiny HTTP/1.1 server on 127.0.0.1, plain or TLS, for the loopback emulators.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// A request with its body read.
pub struct Received {
    pub method: hyper::Method,
    pub uri: hyper::Uri,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

/// `Err(())` closes the connection without an answer (a dropped connection).
pub type Answer = Result<Response<Full<Bytes>>, ()>;
pub type Handler =
    Arc<dyn Fn(Received) -> Pin<Box<dyn Future<Output = Answer> + Send>> + Send + Sync>;

/// A self-signed end-entity certificate for `127.0.0.1` (not a CA: rustls refuses CA
/// certificates as server certificates), written as PEM for `SSL_CERT_FILE`.
pub struct TestCertificate {
    pub pem_file: tempfile::NamedTempFile,
    /// The private key (PKCS#8 PEM), for servers started as other processes (Azurite).
    pub key_file: tempfile::NamedTempFile,
    config: Arc<rustls::ServerConfig>,
}

impl TestCertificate {
    pub fn new() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
        ])
        .expect("certificate");
        let pem_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(pem_file.path(), certified.cert.pem()).unwrap();
        let key_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(key_file.path(), certified.signing_key.serialize_pem()).unwrap();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .unwrap();
        TestCertificate {
            pem_file,
            key_file,
            config: Arc::new(config),
        }
    }
}

/// Serves `handler` on a fresh loopback port until the test's runtime ends.
pub async fn serve(handler: Handler, tls: Option<&TestCertificate>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tls.map(|cert| TlsAcceptor::from(Arc::clone(&cert.config)));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // As real services do: without it a TLS flight written in several pieces waits for
            // the client's delayed ACK (Nagle), adding ~40 ms to a handshake that Azure does not.
            let _ = stream.set_nodelay(true);
            let handler = Arc::clone(&handler);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let handler = Arc::clone(&handler);
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let received = Received {
                            method: parts.method,
                            uri: parts.uri,
                            headers: parts.headers,
                            body,
                        };
                        handler(received).await.map_err(|()| DropConnection)
                    }
                });
                let builder = hyper::server::conn::http1::Builder::new();
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(stream).await {
                            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                        }
                    }
                    None => {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    });
    addr
}

#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the emulator")
    }
}

impl std::error::Error for DropConnection {}

/// A JSON response.
pub fn json(status: u16, body: &serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// The query parameters of a request URI.
pub fn query(uri: &hyper::Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}
