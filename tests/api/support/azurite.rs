//! Azurite (Microsoft's Azure Storage emulator, from npm) serving Table Storage on 127.0.0.1,
//! for the ACS identity bindings. Installed by `./tests/run.sh` (`npm ci` in tests/conformance).
//!
//! Two ways, as the app meets storage: with the account key (a connection string, plain HTTP), or
//! over HTTPS with Azurite's OAuth mode (`--oauth basic`), where a request with a bearer token is
//! accepted only if the token is for Azure Storage (`aud`), from an Entra issuer (`iss`) and
//! currently valid — and the handler is given no key at all.

use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::process::{Child, Command};

use super::loopback_server::TestCertificate;
use super::ports::free_port;
use super::repo_root;

const ACCOUNT: &str = "bindingsacct";

pub struct Azurite {
    /// The `AzureWebJobsStorage` connection string for this account (key-based runs).
    pub connection_string: String,
    /// The account's table endpoint, `http(s)://127.0.0.1:{port}/{account}`.
    pub table_endpoint: String,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl Azurite {
    /// Plain HTTP, shared-key authentication.
    pub async fn start() -> Azurite {
        Self::launch(None).await
    }

    /// HTTPS with `certificate`, and bearer tokens accepted (`--oauth basic`).
    pub async fn start_with_oauth(certificate: &TestCertificate) -> Azurite {
        Self::launch(Some(certificate)).await
    }

    async fn launch(tls: Option<&TestCertificate>) -> Azurite {
        let bin = repo_root().join("tests/conformance/node_modules/.bin/azurite-table");
        assert!(
            bin.exists(),
            "Azurite is not installed: run `npm ci --prefix tests/conformance` (./tests/run.sh does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let key = base64::engine::general_purpose::STANDARD
            .encode(format!("azurite-test-key-{}", std::process::id()));
        let mut command = Command::new(bin);
        command
            .args(["--tableHost", "127.0.0.1", "--tablePort", &port.to_string()])
            .args([
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--silent",
            ]);
        if let Some(certificate) = tls {
            command
                .arg("--cert")
                .arg(certificate.pem_file.path())
                .arg("--key")
                .arg(certificate.key_file.path())
                .args(["--oauth", "basic"]);
        }
        let mut child = command
            .current_dir(dir.path())
            .env("AZURITE_ACCOUNTS", format!("{ACCOUNT}:{key}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start azurite-table");
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("azurite-table exited ({status})");
            }
            assert!(Instant::now() < deadline, "azurite-table did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        let table_endpoint = format!("{scheme}://127.0.0.1:{port}/{ACCOUNT}");
        Azurite {
            connection_string: format!(
                "DefaultEndpointsProtocol={scheme};AccountName={ACCOUNT};AccountKey={key};TableEndpoint={table_endpoint};"
            ),
            table_endpoint,
            _child: child,
            _dir: dir,
        }
    }
}
