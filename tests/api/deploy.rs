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
                "+ az bicep version",
                format!("+ deploy/package --auth-level {auth_level}").as_str(),
                "+ az group create --name rg-fluid --location northeurope --output none",
                format!("+ az deployment group create --resource-group rg-fluid --template-file deploy/main.bicep --parameters @deploy/main.parameters.json --parameters authMode={auth_mode} --query properties.outputs --output json").as_str(),
                "+ timeout 900 az functionapp deployment source config-zip --resource-group rg-fluid --name FUNCTION_APP_NAME --src dist/app.zip",
                "+ az functionapp show --resource-group rg-fluid --name FUNCTION_APP_NAME --query state --output tsv",
                "+ az account show --query user.type --output tsv",
                "+ az ad signed-in-user show --query id --output tsv",
                "+ az keyvault show --name KEY_VAULT_NAME --query id --output tsv",
                "+ az role assignment create --assignee-object-id SIGNED_IN_OBJECT_ID --assignee-principal-type User --role Key\\ Vault\\ Secrets\\ Officer --scope KEY_VAULT_RESOURCE_ID --output none",
                "+ az keyvault secret set --vault-name KEY_VAULT_NAME --name fluid-tenant-0b7c1e2d --file PRIVATE_TEMP_FILE_WITH_FLUID_TENANT_KEY --encoding utf-8 --output none",
                "+ deploy/verify --url FUNCTION_URL --tenant 0b7c1e2d --wait 300",
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
    assert!(String::from_utf8_lossy(&bad_mode.stderr).contains("entra, easyauth or none"));
    // The default is entra: the handler verifies every bearer itself, whatever the plan enforces.
    let default_mode = run(&["--resource-group", "rg", "--dry-run"]);
    let stdout = String::from_utf8_lossy(&default_mode.stdout);
    assert!(default_mode.status.success(), "{stdout}");
    assert!(stdout.contains("--parameters authMode=entra "), "{stdout}");
    assert!(
        stdout.contains("+ deploy/package --auth-level anonymous"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Verify it: deploy/verify --url FUNCTION_URL --tenant <tenant id>"),
        "without a tenant id, verify is named, not run: {stdout}"
    );
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
/// while a new role assignment propagates (and the first zip deploy, as storage does). The Bicep
/// version is `$BICEP_VERSION`; a zip deploy sleeps `$ZIP_SECONDS` when set.
const FAKE_AZ: &str = r#"#!/usr/bin/env bash
printf '%s\n' "$*" >> "$AZ_LOG"
case "$*" in
  "bicep version") echo "Bicep CLI version ${BICEP_VERSION:-0.33.93} (7a77c7f2a5)" ;;
  "functionapp show"*) echo Running ;;
  "functionapp deployment source config-zip"*)
    [ -n "$ZIP_SECONDS" ] && sleep "$ZIP_SECONDS"
    zips=$(( $(cat "$AZ_STATE.zip" 2>/dev/null || echo 0) + 1 )); echo "$zips" > "$AZ_STATE.zip"
    if [ "$zips" -le 1 ]; then echo "(AuthorizationPermissionMismatch) not authorized" >&2; exit 1; fi ;;
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

/// A stand-in for deploying: the fake `az` on PATH, a package made earlier with the authLevel
/// entra needs, and a stand-in `deploy/verify` (DEPLOY_VERIFY) that records its arguments and
/// exits with `$VERIFY_STATUS` — the real one is tested against the host emulator (verify.rs).
struct FakeAzure {
    dir: tempfile::TempDir,
}

impl FakeAzure {
    fn new() -> FakeAzure {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let verify = "#!/usr/bin/env bash\nprintf '%s\\n' \"$*\" > \"$VERIFY_LOG\"\necho \"verdict: stand-in\"\nexit \"${VERIFY_STATUS:-0}\"\n";
        for (name, script) in [("az", FAKE_AZ), ("verify", verify)] {
            std::fs::write(bin.join(name), script).unwrap();
            std::fs::set_permissions(
                bin.join(name),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
        }
        let script = "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n    for f in ['TokenFunction', 'AcsTokenFunction', 'DocumentCreated', 'DocumentMembers']:\n        z.writestr(f + '/function.json', '{\"bindings\":[{\"type\":\"httpTrigger\",\"authLevel\":\"anonymous\"}]}')\n";
        python(script, &[dir.path().join("app.zip").as_os_str()]);
        FakeAzure { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// deploy/deploy as a service principal with the package, `args` and `env`.
    fn deploy(&self, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
        let output = Command::new(repo_root().join("deploy/deploy"))
            .args(["--resource-group", "rg", "--package"])
            .arg(self.path("app.zip"))
            .args(args)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    self.path("bin").display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .env("DEPLOY_RETRY_SECONDS", "0")
            .env("DEPLOY_VERIFY", self.path("bin/verify"))
            .env("VERIFY_LOG", self.path("verify.log"))
            .env("AZ_LOG", self.path("az.log"))
            .env("AZ_STATE", self.path("state"))
            .env("AZ_SECRET", self.path("secret"))
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    }
}

#[test]
fn deploy_as_a_service_principal_waits_for_the_roles_writes_the_key_from_a_file_and_verifies() {
    let azure = FakeAzure::new();
    let key = "service-principal-deploy-key-7f2e";
    let (status, stdout, stderr) = azure.deploy(
        &["--auth-mode", "entra", "--fluid-tenant-id", "t9"],
        &[("FLUID_TENANT_KEY", key)],
    );
    assert_eq!(status, Some(0), "{stdout}{stderr}");
    assert_eq!(
        azure.read("secret"),
        key,
        "the key reached az through the file"
    );
    let calls = azure.read("az.log");
    assert!(calls.starts_with("bicep version\n"), "{calls}");
    assert!(
        calls.contains("role assignment create --assignee-object-id sp-object-id --assignee-principal-type ServicePrincipal"),
        "{calls}"
    );
    let zip_deploy = format!(
        "functionapp deployment source config-zip --resource-group rg --name app1 --src {}",
        azure.path("app.zip").display()
    );
    assert_eq!(calls.matches(&zip_deploy).count(), 2, "{calls}");
    assert!(!calls.contains("signed-in-user"), "{calls}");
    assert_eq!(calls.matches("keyvault secret set").count(), 3, "{calls}");
    for (what, times) in [("Key Vault", 2), ("storage", 1)] {
        assert_eq!(
            stderr
                .matches(&format!("waiting for the {what} role assignment"))
                .count(),
            times,
            "{stderr}"
        );
    }
    for text in [&stdout, &stderr, &calls] {
        assert!(!text.contains(key), "the key was printed");
    }
    assert!(stdout.contains("Function URL: https://app1/api/TokenFunction"));
    assert!(stdout.contains("App state: Running"), "{stdout}");
    // deploy/verify ran last, against the deployed URL and the tenant, and its verdict shows.
    assert_eq!(
        azure.read("verify.log"),
        "--url https://app1/api/TokenFunction --tenant t9 --wait 300\n"
    );
    assert!(stdout.trim_end().ends_with("verdict: stand-in"), "{stdout}");

    // A failed verification fails the deployment, saying so.
    let (status, _, stderr) = azure.deploy(
        &["--fluid-tenant-id", "t9"],
        &[("FLUID_TENANT_KEY", key), ("VERIFY_STATUS", "1")],
    );
    assert_eq!(status, Some(1));
    assert!(stderr.contains("deploy/verify failed"), "{stderr}");

    // A package whose authLevel does not match the auth mode is refused before anything runs.
    std::fs::remove_file(azure.path("az.log")).unwrap();
    let (status, _, stderr) = azure.deploy(&["--auth-mode", "none"], &[]);
    assert_eq!(status, Some(2));
    assert!(stderr.contains("needs function"), "{stderr}");
    assert!(!azure.path("az.log").exists(), "no az call was made");
}

#[test]
fn deploy_needs_bicep_0_33_and_bounds_the_zip_deploy_in_time() {
    let azure = FakeAzure::new();
    for (version, ok) in [
        ("0.32.4", false),
        ("0.4.1008", false),
        ("0.33.93", true),
        ("1.2.3", true),
    ] {
        let _ = std::fs::remove_file(azure.path("az.log"));
        let (status, stdout, stderr) = azure.deploy(&[], &[("BICEP_VERSION", version)]);
        assert_eq!(
            status,
            Some(if ok { 0 } else { 2 }),
            "{version}: {stdout}{stderr}"
        );
        if !ok {
            assert!(
                stderr.contains("need Bicep 0.33 or newer (az bicep upgrade)"),
                "{stderr}"
            );
            assert_eq!(azure.read("az.log"), "bicep version\n", "nothing else ran");
        }
    }

    // A zip deploy that never returns is stopped, reported, and the app's state follows.
    let _ = std::fs::remove_file(azure.path("state.zip"));
    std::fs::write(azure.path("state.zip"), "1").unwrap();
    let (status, stdout, stderr) = azure.deploy(
        &[],
        &[("ZIP_SECONDS", "5"), ("DEPLOY_ZIP_TIMEOUT_SECONDS", "1")],
    );
    assert_eq!(status, Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("did not finish within 1 s"), "{stderr}");
    assert!(
        !stderr.contains("waiting for the storage role"),
        "a timeout is not retried: {stderr}"
    );
    assert!(stdout.contains("App state: Running"), "{stdout}");
}

/// Runs a Python script with `args`; its standard output (a failure shows its standard error).
fn python(script: &str, args: &[&std::ffi::OsStr]) -> Vec<u8> {
    let output = Command::new("python3")
        .args(["-c", script])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
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
    let stdout = python(script, &[zip.as_os_str(), dir.as_os_str()]);
    serde_json::from_slice::<Vec<(String, u32)>>(&stdout).unwrap()
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
    // Unsafe deployments fail with a reason instead of deploying an app that refuses everyone
    // (or that the handler refuses to start).
    assert!(code.contains("fail('authMode ${authMode} needs entraClientId"));
    assert!(code.contains("entraClientId != '00000000-0000-0000-0000-000000000000'"));
    assert!(code.contains("fail('authMode entra needs entraRequiredScope"));
    assert!(
        code.contains("fail('Set acsResourceName or acsConnectionStringSecretName, not both.')")
    );
    assert!(code.contains("fail('allowedOrigins * with authMode none"));

    // Safe whatever the plan enforces: entra by default, CORS by the handler by default, and
    // exactly one of platform and handler CORS configured.
    assert!(code.contains("param authMode string = 'entra'"));
    assert!(code.contains("@allowed(['handler', 'platform'])\nparam corsMode string = 'handler'"));
    assert!(code.contains("allowedOrigins: corsMode == 'platform' ? origins : []"));
    assert!(code.contains("supportCredentials: corsMode == 'platform' && corsSupportCredentials"));
    assert!(code.contains("var handlerCors = corsMode == 'handler' && !empty(origins)"));
    assert!(code.contains(
        "], handlerCors ? [\n  { name: 'CORS_ALLOWED_ORIGINS', value: join(origins, ',') }"
    ));
    // Easy Auth lets preflights through to the handler when the handler answers CORS.
    assert!(code.contains("requireAuthentication: corsMode == 'platform'"));
    assert!(code.contains(
        "unauthenticatedClientAction: corsMode == 'platform' ? 'Return401' : 'AllowAnonymous'"
    ));

    // The ACS resource, conditional, never has an empty name (ARM validates it regardless).
    let acs = &code[code.find("resource acs '").unwrap()..];
    let acs = &acs[..acs.find("\n}").unwrap()];
    assert!(acs.contains("if (!empty(acsName))"), "{acs}");
    assert!(
        acs.contains("name: empty(acsName) ? 'no-acs-resource' : acsName"),
        "{acs}"
    );

    // The sovereign-cloud authority, and keyless Application Insights as in the Flex samples.
    assert!(code.contains(
        "{ name: 'ENTRA_AUTHORITY', value: environment().authentication.loginEndpoint }"
    ));
    assert!(code.contains(
        "{ name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'Authorization=AAD' }"
    ));
    assert!(code.contains("DisableLocalAuth: true"));
    assert!(
        code.contains("var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'")
    );
    assert!(code.contains("scope: insights"));
    // Per-instance miss budgets divided by the instance count, like Key Vault's.
    assert!(code.contains(
        "{ name: 'KEY_VAULT_MISS_RATE', value: string(max(1, 300 / maximumInstanceCount)) }"
    ));
    assert!(code.contains(
        "{ name: 'DOCUMENT_STORE_MISS_RATE', value: string(max(1, 2000 / maximumInstanceCount)) }"
    ));
    // Fair use per caller, passed through.
    assert!(code.contains("param callerRateLimit string = '5'"));
    assert!(code.contains("{ name: 'CALLER_RATE_LIMIT', value: callerRateLimit }"));
    assert!(code.contains("{ name: 'CALLER_RATE_BURST', value: string(callerRateBurst) }"));

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
        let host_setting = [
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
        ]
        .contains(&name);
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

/// A tiny evaluator for the Bicep expressions deploy/azd/main.bicep derives names with (string
/// literals with `${}`, the functions it calls, `!`, `&&`, `<`, `? :`), since the Bicep CLI cannot
/// run here. It evaluates the template's own `var` lines, in order.
const BICEP_VARS: &str = r#"
import re, sys
src, env_name = open(sys.argv[1]).read(), sys.argv[2]
funcs = {
    "toLower": lambda s: s.lower(), "replace": lambda s, a, b: s.replace(a, b),
    "take": lambda s, n: s[:n], "empty": lambda s: len(s) == 0, "length": len,
    "contains": lambda s, x: x in s,
}
def tokens(text):
    return re.findall(r"'(?:[^'\\]|\\.)*'|\d+|[A-Za-z_]\w*|&&|\|\||[<>!?:(),]", text)
class P:
    def __init__(self, toks, scope): self.t, self.i, self.scope = toks, 0, scope
    def peek(self): return self.t[self.i] if self.i < len(self.t) else None
    def eat(self, x=None):
        tok = self.t[self.i]; assert x is None or tok == x, (tok, x); self.i += 1; return tok
    def expr(self):
        c = self.orr()
        if self.peek() == "?":
            self.eat(); a = self.expr(); self.eat(":"); b = self.expr(); return a if c else b
        return c
    def orr(self):
        v = self.andd()
        while self.peek() == "||": self.eat(); w = self.andd(); v = v or w
        return v
    def andd(self):
        v = self.cmp()
        while self.peek() == "&&": self.eat(); w = self.cmp(); v = v and w
        return v
    def cmp(self):
        v = self.unary()
        if self.peek() == "<": self.eat(); return v < self.unary()
        return v
    def unary(self):
        if self.peek() == "!": self.eat(); return not self.unary()
        tok = self.eat()
        if tok == "(":
            v = self.expr(); self.eat(")"); return v
        if tok.startswith("'"):
            return re.sub(r"\$\{(\w+)\}", lambda m: self.scope[m.group(1)], tok[1:-1])
        if tok.isdigit(): return int(tok)
        if self.peek() == "(":
            self.eat(); args = []
            while self.peek() != ")":
                args.append(self.expr())
                if self.peek() == ",": self.eat()
            self.eat(")"); return funcs[tok](*args)
        return self.scope[tok]
scope = {"environmentName": env_name}
for name, text in re.findall(r"^var (\w+) = (.*)$", src, re.M):
    if name in ("cleanName", "letterFirst", "namePrefix"):
        scope[name] = P(tokens(text), scope).expr()
print(scope["namePrefix"])
"#;

#[test]
fn azd_environment_names_become_valid_resource_names() {
    let template = repo_root().join("deploy/azd/main.bicep");
    let text = std::fs::read_to_string(&template).unwrap();
    assert!(
        text.contains("    namePrefix: namePrefix\n"),
        "the module gets the sanitized prefix"
    );
    let derive = |environment: &str| -> String {
        let stdout = python(BICEP_VARS, &[template.as_os_str(), environment.as_ref()]);
        String::from_utf8(stdout).unwrap().trim().to_string()
    };
    // azd allows letters in either case, digits, '-', '_', '.', '(' and ')'.
    for (environment, expected) in [
        ("dev", "dev"),
        ("my-env", "myenv"),
        ("My_Env.(Prod)", "myenvprod"),
        ("2024-test", "f2024test"),
        ("Fluid-Tokens-Production-West", "fluidtokens"),
        ("a-b", "abtok"),
        ("(-)", "ftok"),
        ("9", "f9tok"),
        ("___x", "xtok"),
        ("UPPER", "upper"),
        ("a.b.c.d.e.f.g.h.i.j.k.l", "abcdefghijk"),
    ] {
        let prefix = derive(environment);
        assert_eq!(prefix, expected, "{environment}");
        // main.bicep's rules: 3 to 11 characters; its storage account and vault names then
        // hold only lowercase letters and digits (and '-' in the vault's), starting with a letter.
        assert!((3..=11).contains(&prefix.len()), "{environment}: {prefix}");
        assert!(
            prefix.starts_with(|c: char| c.is_ascii_lowercase()),
            "{prefix}"
        );
        assert!(
            prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{prefix}"
        );
    }
}
