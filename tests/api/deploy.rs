//! Deployment tooling: the packaged app (deploy/package → dist/app.zip) runs under the host
//! emulator, and the deploy script's dry run prints the right commands without the tenant key.

use std::process::Command;

use serde_json::Value;

use crate::support::*;

fn dry_run(auth_mode: &str) -> std::process::Output {
    Command::new(repo_root().join("deploy/deploy"))
        .args([
            "--resource-group",
            "rg-fluid",
            "--location",
            "northeurope",
            "--auth-mode",
            auth_mode,
            "--fluid-tenant-id",
            "0b7c1e2d",
            "--dry-run",
        ])
        .env("FLUID_TENANT_KEY", "tenant-key-that-must-not-print")
        .output()
        .unwrap()
}

#[test]
fn deploy_dry_run_prints_the_commands_for_each_auth_mode_and_never_the_key() {
    for (auth_mode, auth_level) in [
        ("none", "function"),
        ("easyauth", "anonymous"),
        ("entra", "anonymous"),
    ] {
        let output = dry_run(auth_mode);
        let stdout = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(output.status.success(), "{stdout}{stderr}");
        let commands: Vec<&str> = stdout.lines().filter(|l| l.starts_with("+ ")).collect();
        assert_eq!(
            commands,
            [
                format!("+ deploy/package --auth-level {auth_level}").as_str(),
                "+ az group create --name rg-fluid --location northeurope --output none",
                format!("+ az deployment group create --resource-group rg-fluid --template-file deploy/main.bicep --parameters @deploy/main.parameters.json --parameters authMode={auth_mode} --query properties.outputs --output json").as_str(),
                "+ az functionapp deployment source config-zip --resource-group rg-fluid --name FUNCTION_APP_NAME --src dist/app.zip",
                "+ az account show --query user.type --output tsv",
                "+ az ad signed-in-user show --query id --output tsv",
                "+ az keyvault show --name KEY_VAULT_NAME --query id --output tsv",
                "+ az role assignment create --assignee-object-id SIGNED_IN_OBJECT_ID --assignee-principal-type User --role Key\\ Vault\\ Secrets\\ Officer --scope KEY_VAULT_RESOURCE_ID --output none",
                "+ az keyvault secret set --vault-name KEY_VAULT_NAME --name fluid-tenant-0b7c1e2d --file PRIVATE_TEMP_FILE_WITH_FLUID_TENANT_KEY --encoding utf-8 --output none",
            ],
            "{auth_mode}"
        );
        assert!(stdout.contains("Function URL: FUNCTION_URL"));
        assert_eq!(stdout.contains("?code="), auth_mode == "none", "{stdout}");
        assert!(
            !stdout.contains("tenant-key-that-must-not-print")
                && !stderr.contains("tenant-key-that-must-not-print")
        );
    }

    let run = |args: &[&str]| {
        Command::new(repo_root().join("deploy/deploy"))
            .args(args)
            .env("FLUID_TENANT_KEY", "k")
            .output()
            .unwrap()
    };
    assert_eq!(run(&["--dry-run"]).status.code(), Some(2));
    let bad_mode = run(&["--resource-group", "rg", "--auth-mode", "open", "--dry-run"]);
    assert_eq!(bad_mode.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_mode.stderr).contains("none, easyauth or entra"));
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

/// A stand-in `az` on PATH: records every call, answers the queries deploy/deploy makes as a
/// service principal would see them, and refuses the first two secret writes as Key Vault does
/// while a new role assignment propagates.
const FAKE_AZ: &str = r#"#!/usr/bin/env bash
printf '%s\n' "$*" >> "$AZ_LOG"
case "$*" in
  "account show --query user.type --output tsv") echo servicePrincipal ;;
  "account show --query user.name --output tsv") echo sp-app-id ;;
  "ad sp show --id sp-app-id --query id --output tsv") echo sp-object-id ;;
  "ad signed-in-user show"*) echo "a service principal has no signed-in user" >&2; exit 1 ;;
  "keyvault show"*) echo /subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1 ;;
  "deployment group create"*) echo '{"functionAppName":{"value":"app1"},"keyVaultName":{"value":"kv1"},"functionUrl":{"value":"https://app1/api/TokenFunction"}}' ;;
  "keyvault secret set"*)
    tries=$(( $(cat "$AZ_STATE" 2>/dev/null || echo 0) + 1 )); echo "$tries" > "$AZ_STATE"
    if [ "$tries" -le 2 ]; then echo "(Forbidden) Caller is not authorized (ForbiddenByRbac)" >&2; exit 1; fi
    while [ $# -gt 0 ]; do [ "$1" = --file ] && cp "$2" "$AZ_SECRET"; shift; done ;;
esac
"#;

#[test]
fn deploy_as_a_service_principal_waits_for_the_role_and_writes_the_key_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let az = bin.join("az");
    std::fs::write(&az, FAKE_AZ).unwrap();
    std::fs::set_permissions(&az, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // A package made earlier with the authLevel entra needs.
    let zip = dir.path().join("app.zip");
    let script = "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n    for f in ['TokenFunction', 'AcsTokenFunction', 'DocumentCreated', 'DocumentMembers']:\n        z.writestr(f + '/function.json', '{\"bindings\":[{\"type\":\"httpTrigger\",\"authLevel\":\"anonymous\"}]}')\n";
    assert!(
        Command::new("python3")
            .args(["-c", script])
            .arg(&zip)
            .status()
            .unwrap()
            .success()
    );

    let key = "service-principal-deploy-key-7f2e";
    let (log, secret) = (dir.path().join("az.log"), dir.path().join("secret"));
    let output = Command::new(repo_root().join("deploy/deploy"))
        .args([
            "--resource-group",
            "rg",
            "--auth-mode",
            "entra",
            "--fluid-tenant-id",
            "t9",
        ])
        .arg("--package")
        .arg(&zip)
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("FLUID_TENANT_KEY", key)
        .env("DEPLOY_RETRY_SECONDS", "0")
        .env("AZ_LOG", &log)
        .env("AZ_STATE", dir.path().join("state"))
        .env("AZ_SECRET", &secret)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stdout}{stderr}");
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        key,
        "the key reached az through the file"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls.contains("role assignment create --assignee-object-id sp-object-id --assignee-principal-type ServicePrincipal"),
        "{calls}"
    );
    assert!(calls.contains(&format!(
        "functionapp deployment source config-zip --resource-group rg --name app1 --src {}",
        zip.display()
    )));
    assert!(!calls.contains("signed-in-user"), "{calls}");
    assert_eq!(calls.matches("keyvault secret set").count(), 3, "{calls}");
    assert_eq!(
        stderr
            .matches("waiting for the Key Vault role assignment")
            .count(),
        2,
        "{stderr}"
    );
    for text in [&stdout, &stderr, &calls] {
        assert!(!text.contains(key), "the key was printed");
    }
    assert!(stdout.contains("Function URL: https://app1/api/TokenFunction"));

    // A package whose authLevel does not match the auth mode is refused before anything runs.
    let mismatch = Command::new(repo_root().join("deploy/deploy"))
        .args(["--resource-group", "rg", "--auth-mode", "none", "--package"])
        .arg(&zip)
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("AZ_LOG", dir.path().join("mismatch.log"))
        .output()
        .unwrap();
    assert_eq!(mismatch.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&mismatch.stderr).contains("needs function"));
    assert!(
        !dir.path().join("mismatch.log").exists(),
        "no az call was made"
    );
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
            ("DocumentCreated/function.json".to_string(), 0o644),
            ("DocumentMembers/function.json".to_string(), 0o644),
            ("TokenFunction/function.json".to_string(), 0o644),
            ("handler".to_string(), 0o755),
            ("host.json".to_string(), 0o644),
        ]
    );

    // authLevel: as in the repository by default, or what --auth-level says, in every function.
    let auth_levels = |root: &std::path::Path| -> Vec<String> {
        [
            "TokenFunction",
            "AcsTokenFunction",
            "DocumentCreated",
            "DocumentMembers",
        ]
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(root.join(f).join("function.json")).unwrap();
            serde_json::from_str::<Value>(&text).unwrap()["bindings"][0]["authLevel"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
    };
    assert_eq!(auth_levels(root.path()), ["function"; 4]);
    for level in ["anonymous", "function"] {
        let out = tempfile::tempdir().unwrap();
        let status = Command::new(repo_root().join("deploy/package"))
            .args(["--no-build", "--auth-level", level, "--out"])
            .arg(out.path())
            .status()
            .unwrap();
        assert!(status.success());
        let unpacked = tempfile::tempdir().unwrap();
        unpack(&out.path().join("app.zip"), unpacked.path());
        assert_eq!(auth_levels(unpacked.path()), [level; 4]);
    }

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

/// The Bicep CLI cannot run here, so deploy/main.bicep is checked statically against what Flex
/// Consumption accepts (its docs' lists of unsupported site settings and app settings, and the
/// official Flex samples), against being keyless, and against dead parameters.
#[test]
fn main_bicep_is_flex_consumption_shaped_keyless_and_has_no_dead_parameters() {
    let text = std::fs::read_to_string(repo_root().join("deploy/main.bicep")).unwrap();
    // The template without comments: descriptions and comments may name what the code must not.
    let code: String = text
        .lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('\'') || line.trim_start().starts_with("//") => {
                &line[..at]
            }
            _ => line,
        })
        .filter(|line| !line.trim_start().starts_with("@description("))
        .collect::<Vec<_>>()
        .join("\n");

    for rejected in [
        "ftpsState",
        "alwaysOn",
        "linuxFxVersion",
        "use32BitWorkerProcess",
        "functionAppScaleLimit",
        "minimumElasticInstanceCount",
        "preWarmedInstanceCount",
        "javaVersion",
        "netFrameworkVersion",
        "powerShellVersion",
        "containerSize",
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_EXTENSION_VERSION",
        "WEBSITE_RUN_FROM_PACKAGE",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "WEBSITE_CONTENTSHARE",
        "WEBSITE_NODE_DEFAULT_VERSION",
        "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
        "WEBSITES_ENABLE_APP_SERVICE_STORAGE",
    ] {
        assert!(
            !code.contains(rejected),
            "Flex Consumption rejects {rejected}"
        );
    }
    for required in [
        "tier: 'FlexConsumption', name: 'FC1'",
        "runtime: { name: 'custom', version: '1.0' }",
        "authentication: { type: 'SystemAssignedIdentity' }",
        "identity: { type: 'SystemAssigned' }",
        "allowSharedKeyAccess: false",
        "allowedOrigins: allowedOrigins",
        "allowedApplications: allowedClientApplications",
        "{ name: 'AzureWebJobsStorage__accountName', value: storage.name }",
    ] {
        assert!(code.contains(required), "main.bicep lacks {required}");
    }
    // Keyless: no account key is read or handed to the app.
    for keyed in [
        "listKeys(",
        "AccountKey=",
        "name: 'AzureWebJobsStorage'",
        "accesskey=",
    ] {
        assert!(!code.contains(keyed), "main.bicep uses a key: {keyed}");
    }
    // Unsafe deployments fail with a reason instead of deploying an app that refuses everyone.
    assert!(code.contains("fail('authMode ${authMode} needs entraClientId"));
    assert!(code.contains("fail('authMode entra needs entraRequiredScope"));

    // Every parameter and variable is used; every value in main.parameters.json is a parameter.
    let declared = |keyword: &str| -> Vec<String> {
        code.lines()
            .filter_map(|l| l.strip_prefix(keyword))
            .map(|rest| rest.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    let params = declared("param ");
    assert!(params.len() > 10);
    for name in params.iter().chain(declared("var ").iter()) {
        assert!(
            words.iter().filter(|w| **w == name.as_str()).count() >= 2,
            "{name} is declared but never used"
        );
    }
    let parameters: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("deploy/main.parameters.json")).unwrap(),
    )
    .unwrap();
    for name in parameters["parameters"].as_object().unwrap().keys() {
        assert!(
            params.contains(name),
            "main.parameters.json sets {name}, which main.bicep does not declare"
        );
    }

    // Every app setting is one the host or the handler reads: a misspelt or imagined setting
    // would deploy silently and do nothing.
    let settings = &code[code.find("var appSettings = concat(").unwrap()..];
    let settings = &settings[..settings.find("\n\n").unwrap()];
    let handler_source: String = ["src/config.rs", "src/config"]
        .iter()
        .flat_map(|p| {
            let path = repo_root().join(p);
            if path.is_dir() {
                std::fs::read_dir(path)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .collect::<Vec<_>>()
            } else {
                vec![path]
            }
        })
        .filter(|p| p.exists())
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let mut names = 0;
    for part in settings.split("{ name: '").skip(1) {
        let name = &part[..part.find('\'').unwrap()];
        names += 1;
        let host_setting = ["APPLICATIONINSIGHTS_CONNECTION_STRING"].contains(&name);
        assert!(
            host_setting || handler_source.contains(&format!("\"{name}\"")),
            "app setting {name} is read by neither the Functions host nor the handler"
        );
    }
    assert!(names >= 10, "{names} app settings found");

    // azd's wrapper (azure.yaml → deploy/azd) passes only parameters main.bicep declares, uses
    // every parameter it declares, and gets each from the azd environment.
    let azure_yaml = std::fs::read_to_string(repo_root().join("azure.yaml")).unwrap();
    assert!(azure_yaml.contains("path: deploy/azd") && azure_yaml.contains("module: main"));
    let wrapper = std::fs::read_to_string(repo_root().join("deploy/azd/main.bicep")).unwrap();
    let module = &wrapper[wrapper.find("params: {").unwrap()..];
    let module = &module[..module.find("\n  }").unwrap()];
    for line in module.lines().skip(1) {
        let name = line.trim().split(':').next().unwrap();
        assert!(
            params.iter().any(|p| p == name),
            "deploy/azd passes {name}, which main.bicep does not declare"
        );
    }
    let azd_parameters =
        std::fs::read_to_string(repo_root().join("deploy/azd/main.parameters.json")).unwrap();
    for line in wrapper.lines().filter_map(|l| l.strip_prefix("param ")) {
        let name = line.split_whitespace().next().unwrap();
        assert!(
            wrapper.matches(name).count() >= 2,
            "deploy/azd declares {name} but never uses it"
        );
        assert!(
            azd_parameters.contains(&format!("\"{name}\"")),
            "deploy/azd/main.parameters.json does not set {name}"
        );
    }
}
