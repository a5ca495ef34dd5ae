//! Deployment tooling: the packaged app (deploy/package → dist/app.zip) runs under the host
//! emulator, and the deploy script's dry run prints the right commands without the tenant key.

use std::process::Command;

use serde_json::Value;

use crate::support::*;

#[test]
fn deploy_dry_run_prints_the_commands_and_never_the_key() {
    let output = Command::new(repo_root().join("deploy/deploy"))
        .args([
            "--resource-group",
            "rg-fluid",
            "--location",
            "northeurope",
            "--fluid-tenant-id",
            "0b7c1e2d",
            "--dry-run",
        ])
        .env("FLUID_TENANT_KEY", "tenant-key-that-must-not-print")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stdout}{stderr}");
    let commands: Vec<&str> = stdout.lines().filter(|l| l.starts_with("+ ")).collect();
    assert_eq!(
        commands,
        [
            "+ az group create --name rg-fluid --location northeurope --output none",
            "+ az deployment group create --resource-group rg-fluid --template-file deploy/main.bicep --parameters @deploy/main.parameters.json --query properties.outputs --output json",
            "+ az functionapp deployment source config-zip --resource-group rg-fluid --name FUNCTION_APP_NAME --src dist/app.zip",
            "+ az role assignment create --assignee-object-id SIGNED_IN_USER_OBJECT_ID --assignee-principal-type User --role Key\\ Vault\\ Secrets\\ Officer --scope KEY_VAULT_RESOURCE_ID --output none",
            "+ az keyvault secret set --vault-name KEY_VAULT_NAME --name fluid-tenant-0b7c1e2d --file PRIVATE_TEMP_FILE_WITH_FLUID_TENANT_KEY --encoding utf-8 --output none",
        ]
    );
    assert!(stdout.contains("Function URL: FUNCTION_URL"));
    assert!(
        !stdout.contains("tenant-key-that-must-not-print")
            && !stderr.contains("tenant-key-that-must-not-print")
    );

    let missing = Command::new(repo_root().join("deploy/deploy"))
        .arg("--dry-run")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let no_key = Command::new(repo_root().join("deploy/deploy"))
        .args([
            "--resource-group",
            "rg",
            "--fluid-tenant-id",
            "t",
            "--dry-run",
        ])
        .env_remove("FLUID_TENANT_KEY")
        .output()
        .unwrap();
    assert_eq!(no_key.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_key.stderr).contains("FLUID_TENANT_KEY"));
}

/// Unpacks `zip` into `dir` with the modes its entries carry; returns (name, mode) per entry.
fn unpack(zip: &std::path::Path, dir: &std::path::Path) -> Vec<(String, u32)> {
    let script = r#"
import json, os, sys, zipfile
entries = []
with zipfile.ZipFile(sys.argv[1]) as archive:
    for info in archive.infolist():
        mode = (info.external_attr >> 16) & 0o777
        path = archive.extract(info, sys.argv[2])
        os.chmod(path, mode)
        entries.append([info.filename, mode])
print(json.dumps(entries))
"#;
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(zip)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<Vec<(String, u32)>>(&output.stdout).unwrap()
}

/// Run by ./tests/run.sh after `deploy/package` (it needs dist/app.zip, which takes a release
/// build to make), by its exact name.
#[tokio::test]
#[ignore = "needs dist/app.zip from deploy/package"]
async fn packaged_app_serves_tokens_under_the_host() {
    let zip = repo_root().join("dist/app.zip");
    assert!(zip.exists(), "run deploy/package first");
    let root = tempfile::tempdir().unwrap();
    let mut entries = unpack(&zip, root.path());
    entries.sort();
    assert_eq!(
        entries,
        [
            ("AcsTokenFunction/function.json".to_string(), 0o644),
            ("TokenFunction/function.json".to_string(), 0o644),
            ("handler".to_string(), 0o755),
            ("host.json".to_string(), 0o644),
        ]
    );

    // The glibc it needs is at most 2.28 (the oldest Functions Linux images).
    let symbols = Command::new("objdump")
        .arg("-T")
        .arg(root.path().join("handler"))
        .output()
        .unwrap();
    assert!(symbols.status.success());
    let newest = String::from_utf8_lossy(&symbols.stdout)
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
            Some((parts.next()?, parts.next().unwrap_or(0)))
        })
        .max()
        .unwrap();
    assert!(newest <= (2, 28), "needs GLIBC {newest:?}");

    for protocol in [Protocol::Forwarding, Protocol::Envelope] {
        let host_json = root.path().join("host.json");
        let mut host: Value =
            serde_json::from_str(&std::fs::read_to_string(&host_json).unwrap()).unwrap();
        use_protocol(&mut host, protocol);
        std::fs::write(&host_json, host.to_string()).unwrap();
        let settings = default_settings();
        let settings: Vec<(&str, &str)> = settings.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let emulator = HostEmulator::start(root.path(), &settings).await;
        let response = emulator
            .get("/api/TokenFunction?tenantId=t1&userId=u1")
            .await;
        assert_eq!(response.status, 200, "{protocol:?}: {}", response.text());
        assert_eq!(verify(&response.text(), KEY).unwrap()["user"]["id"], "u1");
    }
}
