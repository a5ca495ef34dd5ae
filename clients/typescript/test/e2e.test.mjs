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
import { startOpenIdEmulator } from "../../../samples/collab/test/openid-emulator.mjs";
import { freePort, startHandler, stop, waitForHttp } from "./helpers.mjs";
import { startRelayProxy } from "./relay-proxy.mjs";

// Fluid's browser-first code expects a navigator.
globalThis.navigator ??= { userAgent: "node" };

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const TENANT_KEY = "e2e-tenant-key-8b1f0c4d2e6a9f37";
const schema = { initialObjects: { map: SharedMap } };
const children = [];
const closers = [];
let fluidEndpoint;
let fluidPort;

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
	fluidPort = port;
	fluidEndpoint = `http://127.0.0.1:${port}`;
	await waitForHttp(`${fluidEndpoint}/`, tinylicious);
}, { timeout: 60_000 });

after(() => Promise.all([...children.map(stop), ...closers.map((close) => close())]));

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

test("members only: the creator owns the container, a stranger is refused, a reader reads", { timeout: 120_000 }, async () => {
	// Azure Fluid Relay's creation answer (with a creation token) in front of tinylicious; callers
	// sign in with Entra ID access tokens (a loopback emulator); memberships in the handler.
	const relay = await startRelayProxy(fluidPort, TENANT_KEY);
	closers.push(relay.close);
	const entra = await startOpenIdEmulator();
	closers.push(entra.close);
	const { child, url } = await startHandler({
		...entra.settings,
		TENANT_KEYS: JSON.stringify({ local: TENANT_KEY }),
		DOCUMENT_ACCESS: "members",
		DOCUMENT_STORE: "memory",
	});
	children.push(child);
	const tokenUrl = `${url}/api/TokenFunction`;
	const documentCreatedUrl = `${url}/api/DocumentCreated`;
	const users = { ann: entra.token("ann-oid", "Ann"), bob: entra.token("bob-oid", "Bob") };
	const events = [];
	const memberClient = (who) =>
		new AzureClient({
			logger: { send: (event) => events.push(event) },
			connection: {
				type: "local",
				endpoint: relay.endpoint,
				tokenProvider: new FunctionTokenProvider({
					url: tokenUrl,
					documentCreatedUrl,
					getAccessToken: async () => users[who],
				}),
			},
		});
	const members = (who, init = {}) =>
		fetch(`${url}/api/DocumentMembers${init.query ?? ""}`, {
			...init,
			headers: { authorization: `Bearer ${users[who]}`, "content-type": "application/json" },
		});

	// Ann creates: the driver asks for a creation token, the provider registers her as owner.
	const { container, services } = await memberClient("ann").createContainer(schema, "2");
	container.initialObjects.map.set("note", "for members only");
	const id = await container.attach();
	assert.deepEqual(relay.creations, [{ id, user: { id: "ann-oid", name: "Ann" } }]);
	await waitFor(() => container.connectionState === 2, "the owner to connect");
	const listed = await members("ann", { query: `?tenantId=local&documentId=${encodeURIComponent(id)}` });
	assert.equal(listed.status, 200);
	assert.deepEqual((await listed.json()).members, [{ userId: "ann-oid", role: "owner" }]);

	// Bob is not a member: no token, so no container. The provider's TokenRequestError is a Fluid
	// error, so the loader closes the container with it as it is (not normalized into a
	// "genericError" of untrusted origin): getContainer rejects with the close reason.
	let refusal;
	await assert.rejects(memberClient("bob").getContainer(id, schema, "2"), (error) => {
		assert.match(error.message, /403 .*you are not a member of this document/);
		refusal = error;
		return true;
	});
	assert.deepEqual(
		{ name: refusal.name, errorType: refusal.errorType, statusCode: refusal.statusCode, canRetry: refusal.canRetry },
		{ name: "TokenRequestError", errorType: "authorizationError", statusCode: 403, canRetry: false },
	);
	assert.equal(refusal.getTelemetryProperties().untrustedOrigin, undefined);
	// The container's close, as the loader logs it: this very error.
	const closes = events.filter((event) => event.eventName.endsWith(":ContainerClose") && event.error !== undefined);
	assert.deepEqual(
		closes.map(({ errorType, errorInstanceId, statusCode, untrustedOrigin }) => ({ errorType, errorInstanceId, statusCode, untrustedOrigin })),
		[{ errorType: "authorizationError", errorInstanceId: refusal.errorInstanceId, statusCode: 403, untrustedOrigin: undefined }],
	);

	// Ann adds Bob as a reader: he loads the container read-only and sees her data.
	const added = await members("ann", {
		method: "POST",
		body: JSON.stringify({ tenantId: "local", documentId: id, userId: "bob-oid", role: "reader" }),
	});
	assert.equal(added.status, 200, await added.clone().text());
	const loaded = await memberClient("bob").getContainer(id, schema, "2");
	const map = loaded.container.initialObjects.map;
	await waitFor(() => map.get("note") === "for members only", "the reader to see the data");
	await waitFor(() => loaded.container.connectionState === 2, "the reader to connect");
	// The service connects a token without doc:write in read mode.
	const modes = (audience) => audience.getMyself()?.connections.map((connection) => connection.mode);
	assert.deepEqual(modes(loaded.services.audience), ["read"], "a reader's token has doc:read only");
	await waitFor(() => modes(services.audience)?.includes("write"), "the owner to write");
	container.dispose();
	loaded.container.dispose();
});

test("a 429 that outlasts maxWaitMs reaches Fluid as a throttlingError: the attach waits and retries", { timeout: 90_000 }, async () => {
	// The service throttles the first two creation-token requests with Retry-After: 1, longer than
	// the provider may wait (maxWaitMs: 500), so it gives up at once with a retryable
	// throttlingError; Fluid retries the attach after retryAfterSeconds and asks again.
	const url = await tokenService(TENANT_KEY);
	const asked = [];
	const throttling = async (request, init) => {
		const creation = !new URL(request).searchParams.has("documentId");
		if (creation) asked.push(Date.now());
		if (creation && asked.length <= 2) {
			const problem = { type: "about:blank", title: "Too Many Requests", status: 429 };
			return new Response(JSON.stringify(problem), { status: 429, headers: { "content-type": "application/problem+json", "retry-after": "1" } });
		}
		return fetch(request, init);
	};
	const events = [];
	const throttled = new AzureClient({
		logger: { send: (event) => events.push(event) },
		connection: {
			type: "local",
			endpoint: fluidEndpoint,
			tokenProvider: new FunctionTokenProvider({ url, user: { id: "ann", name: "Ann" }, maxWaitMs: 500, fetch: throttling }),
		},
	});
	const { container } = await throttled.createContainer(schema, "2");
	const id = await container.attach();
	assert.ok(id);
	assert.equal(asked.length, 3, "two throttled requests, then a token");
	assert.ok(asked[1] - asked[0] >= 950, `Fluid waited retryAfterSeconds before asking again (${asked[1] - asked[0]} ms)`);
	// What Fluid logged of the failed attach: the provider's error, its errorType and retryAfterSeconds kept.
	const failed = events.find((event) => event.eventName.endsWith(":containerAttach_firstFailed"));
	assert.deepEqual(
		{ errorType: failed?.errorType, retryAfterSeconds: failed?.retryAfterSeconds, statusCode: failed?.statusCode, canRetry: failed?.canRetry, untrustedOrigin: failed?.untrustedOrigin },
		{ errorType: "throttlingError", retryAfterSeconds: 1, statusCode: 429, canRetry: true, untrustedOrigin: undefined },
	);
	assert.ok(!events.some((event) => event.eventName.endsWith(":ContainerClose")), "a throttled attach does not close the container");
	container.dispose();
});
