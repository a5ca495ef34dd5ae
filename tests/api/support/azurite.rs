//! Azurite (Microsoft's Azure Storage emulator, from npm) serving Table Storage on 127.0.0.1,
//! for the ACS identity bindings. Installed by `./tests/run.sh` (`npm ci` in tests/conformance).

use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::process::{Child, Command};

use super::host_emulator::free_port;
use super::repo_root;

pub struct Azurite {
    /// The `AzureWebJobsStorage` connection string for this account.
    pub connection_string: String,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl Azurite {
    pub async fn start() -> Azurite {
        let bin = repo_root().join("tests/conformance/node_modules/.bin/azurite-table");
        assert!(
            bin.exists(),
            "Azurite is not installed: run `npm ci --prefix tests/conformance` (./tests/run.sh does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let account = "bindingsacct";
        let key = base64::engine::general_purpose::STANDARD
            .encode(format!("azurite-test-key-{}", std::process::id()));
        let mut child = Command::new(bin)
            .args(["--tableHost", "127.0.0.1", "--tablePort", &port.to_string()])
            .args([
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--silent",
            ])
            .current_dir(dir.path())
            .env("AZURITE_ACCOUNTS", format!("{account}:{key}"))
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
        Azurite {
            connection_string: format!(
                "DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};TableEndpoint=http://127.0.0.1:{port}/{account};"
            ),
            _child: child,
            _dir: dir,
        }
    }
}
