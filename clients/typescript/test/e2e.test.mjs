// End to end: a real AzureClient (azure-client 2.x) against a local Fluid service (tinylicious)
// that verifies token signatures like Azure Fluid Relay, with tokens from the Rust handler
// through FunctionTokenProvider. Everything listens on 127.0.0.1.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { AzureClient } from "@fluidframework/azure-client";
import { SharedMap } from "fluid-framework/legacy";

import { FunctionTokenProvider } from "../dist/esm/index.js";
import { freePort, startHandler, stop, waitForHttp } from "./helpers.mjs";

// Fluid's browser-first code expects a navigator.
globalThis.navigator ??= { userAgent: "node" };

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const TENANT_KEY = "e2e-tenant-key-8b1f0c4d2e6a9f37";
const schema = { initialObjects: { map: SharedMap } };
const children = [];
let fluidEndpoint;

before(async () => {
	const port = await freePort();
	const tinylicious = spawn(
		process.execPath,
		["-r", join(here, "verify-tokens.cjs"), require.resolve("tinylicious/dist/index.js")],
		{
			cwd: join(here, ".."),
			env: {
				PATH: process.env.PATH,
				PORT: String(port),
				FLUID_TENANT_KEY1: TENANT_KEY,
				storage: mkdtempSync(join(tmpdir(), "tinylicious-")),
				logger__level: "error",
			},
			stdio: ["ignore", "ignore", "inherit"],
		},
	);
	children.push(tinylicious);
	fluidEndpoint = `http://127.0.0.1:${port}`;
	await waitForHttp(`${fluidEndpoint}/`, tinylicious);
}, { timeout: 60_000 });

after(() => Promise.all(children.map(stop)));

async function tokenService(key) {
	const { child, url } = await startHandler({ AUTH_MODE: "none", TENANT_KEYS: JSON.stringify({ local: key }) });
	children.push(child);
	return `${url}/api/TokenFunction`;
}

function client(url, user) {
	return new AzureClient({
		connection: { type: "local", endpoint: fluidEndpoint, tokenProvider: new FunctionTokenProvider({ url, user }) },
	});
}

async function waitFor(condition, what, timeoutMs = 20_000) {
	const deadline = Date.now() + timeoutMs;
	while (!condition()) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((r) => setTimeout(r, 50));
	}
}

test("create, write, and read back from a second client with tokens from the service", { timeout: 90_000 }, async () => {
	const url = await tokenService(TENANT_KEY);
	const { container, services } = await client(url, { id: "ann", name: "Ann" }).createContainer(schema, "2");
	container.initialObjects.map.set("greeting", "hello through verified tokens");
	const id = await container.attach();
	await waitFor(() => container.connectionState === 2, "the creator to connect");
	assert.deepEqual(
		{ id: services.audience.getMyself()?.id, name: services.audience.getMyself()?.name },
		{ id: "ann", name: "Ann" },
	);

	const loaded = await client(url, { id: "bob", name: "Bob" }).getContainer(id, schema, "2");
	const map = loaded.container.initialObjects.map;
	await waitFor(() => map.get("greeting") === "hello through verified tokens", "the value to arrive");
	await waitFor(() => loaded.container.connectionState === 2, "the reader to connect");
	assert.equal(loaded.services.audience.getMyself()?.name, "Bob");

	map.set("reply", "hi Ann");
	await waitFor(() => container.initialObjects.map.get("reply") === "hi Ann", "the reply to reach the creator");
	container.dispose();
	loaded.container.dispose();
});

test("tokens signed with the wrong key are rejected by the service", { timeout: 90_000 }, async () => {
	const good = await tokenService(TENANT_KEY);
	const { container } = await client(good, { id: "ann", name: "Ann" }).createContainer(schema, "2");
	const id = await container.attach();
	container.dispose();

	const wrong = await tokenService("not-the-tenant-key-0000000000000000");
	await assert.rejects(
		(async () => {
			const { container: rejected } = await client(wrong, { id: "eve", name: "Eve" }).getContainer(id, schema, "2");
			// Loading may complete from storage; the signed connection is what the service refuses.
			await new Promise((resolve, reject) => {
				rejected.on("disposed", (error) => reject(error ?? new Error("disposed")));
				rejected.on("connected", () => resolve());
				setTimeout(() => reject(new Error("neither connected nor refused")), 20_000);
			});
		})(),
		(error) => /invalid|403|authoriz/i.test(`${error?.message} ${error?.errorType} ${error?.statusCode}`),
	);
});
