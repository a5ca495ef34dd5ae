#!/usr/bin/env bash
# The one test command: Rust unit and integration tests, then Fluid conformance checks in Node.
# Installs what it needs (crates via cargo, npm packages via `npm ci`); talks only to loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

# Node tooling first: Fluid's token packages for conformance, Azurite for the ACS tests.
npm ci --prefix tests/conformance --ignore-scripts --no-audit --no-fund

cargo build --locked --bin handler
cargo test --locked

# The deployable package: a portable release build (cargo-zigbuild, glibc 2.28) zipped as the app
# root, then unpacked and run under the host emulator.
deploy/package
cargo test --locked --test api -- --ignored packaged_app

export HANDLER_BIN="$PWD/target/debug/handler"
node --test tests/conformance/conformance.test.mjs

# A real browser for the provider's browser tests: Debian's Chromium (playwright-core, pinned to
# the release for its major, drives it and downloads nothing).
if ! command -v "${CHROMIUM_PATH:-chromium}" > /dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
fi

# The TypeScript token provider: unit tests, against the handler, in headless Chromium, packed and
# installed into a fresh app, and end to end with tinylicious.
npm ci --prefix clients/typescript --ignore-scripts --no-audit --no-fund
npm test --prefix clients/typescript

# The sample app: two headless Chromium windows collaborating through tinylicious, with tokens from
# the release handler (the packaged build) run standalone with Host.CORS; none and entra modes.
npm ci --prefix samples/collab --ignore-scripts --no-audit --no-fund
HANDLER_BIN="$PWD/dist/app/handler" npm test --prefix samples/collab
