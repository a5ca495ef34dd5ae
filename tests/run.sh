#!/usr/bin/env bash
# The one test command: Rust unit, property and integration tests (host emulator, loopback
# emulators, the published AzureFunctionTokenProvider packages, the packaged release build),
# Fluid conformance checks in Node, the TypeScript provider, and the sample app in headless
# Chromium. Installs what it needs (crates via cargo, npm packages via `npm ci`, Debian's
# chromium via apt-get when missing); talks only to loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

# Runs one #[ignore]d integration test by its exact name, and fails if that ran no test (a
# renamed test would otherwise pass silently by running nothing).
run_ignored() {
    local output
    output=$(cargo test --locked --test api -- --ignored --exact "$1" 2>&1) || { echo "$output"; return 1; }
    echo "$output"
    grep -q "test result: ok. 1 passed" <<< "$output" || { echo "error: $1 ran no test" >&2; return 1; }
}

# Installs that need no build start now and run beside the Rust builds (they wait on the network
# and the disk, the builds on the CPU); `installed` waits for one, shows its output, and fails the
# run if it failed.
installs=$(mktemp -d)
trap 'rm -rf "$installs"' EXIT
in_background() {
    local name=$1
    shift
    ("$@") > "$installs/$name.log" 2>&1 &
    echo $! > "$installs/$name.pid"
}
installed() {
    local name=$1 status=0
    wait "$(cat "$installs/$name.pid")" || status=$?
    cat "$installs/$name.log"
    if [ "$status" -ne 0 ]; then
        echo "error: installing $name failed ($status)" >&2
        return 1
    fi
}
install_chromium() {
    # A real browser for the provider's and the sample's tests: Debian's Chromium
    # (playwright-core, pinned to the release for its major, drives it and downloads nothing).
    if ! command -v "${CHROMIUM_PATH:-chromium}" > /dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
    fi
}
in_background chromium install_chromium
in_background provider npm ci --prefix clients/typescript --ignore-scripts --no-audit --no-fund
in_background sample npm ci --prefix samples/collab --ignore-scripts --no-audit --no-fund

# Node tooling first: Fluid's token packages for conformance, Azurite for the ACS tests, and the
# AzureFunctionTokenProvider versions azure-client published (0.49 to 2.0.0-rc.5).
npm ci --prefix tests/conformance --ignore-scripts --no-audit --no-fund
npm ci --prefix tests/published-providers --ignore-scripts --no-audit --no-fund

cargo build --locked --bin handler
cargo test --locked
run_ignored published_providers::every_published_provider_gets_its_users_tokens

# The deployable package: a portable release build (cargo-zigbuild, glibc 2.28) zipped as the app
# root, then unpacked and run under the host emulator.
deploy/package
run_ignored deploy::packaged_app_serves_tokens_under_the_host

export HANDLER_BIN="$PWD/target/debug/handler"
node --test tests/conformance/conformance.test.mjs

installed chromium

# The TypeScript token provider: unit tests, against the handler, in headless Chromium, packed and
# installed into a fresh app, and end to end with tinylicious.
installed provider
npm test --prefix clients/typescript

# The sample app: two headless Chromium windows collaborating through tinylicious, with tokens from
# the release handler (the packaged build) run standalone with Host.CORS; none and entra modes.
installed sample
HANDLER_BIN="$PWD/dist/app/handler" npm test --prefix samples/collab
