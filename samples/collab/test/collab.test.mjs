// The sample in a real browser: two headless Chromium windows (separate browser contexts, as two
// people) edit one container through tinylicious — verifying token signatures like Azure Fluid
// Relay — with tokens from the release handler run standalone (`cargo run --release`'s mode, CORS
// from local.settings.json). In AUTH_MODE=none, and in entra with the pages sending bearer tokens
// (so every token request is preflighted). A page on an origin CORS does not name gets no token.
// Then the same under the Functions host (the handler started as the host starts it, reached
// through the host's public side in both protocol modes) with the handler answering CORS from
// CORS_ALLOWED_ORIGINS, as it does in Azure where the platform does not.
// Console errors in the collaborating pages fail the test. Loopback only.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

// The provider package's test support: the browser, the handler launcher, the verifying preload.
import { launchBrowser, recordErrors } from "../../../clients/typescript/test/browser.mjs";
import { freePort, startHandler, stop, waitForHttp } from "../../../clients/typescript/test/helpers.mjs";
import { serveSample } from "../server.mjs";
import { serveHostFront } from "./host-front.mjs";
import { startOpenIdEmulator } from "./openid-emulator.mjs";

const clientsDir = fileURLToPath(new URL("../../../clients/typescript/", import.meta.url));
const TENANT_KEY = "collab-sample-tenant-key-7d3e9b1a5c";
const children = [];
const fronts = [];
let browser, sample, foreign, fluidEndpoint, openid;

before(async () => {
	const port = await freePort();
	const tinylicious = spawn(
		process.execPath,
		["-r", join(clientsDir, "test", "verify-tokens.cjs"), createRequire(clientsDir).resolve("tinylicious/dist/index.js")],
		{
			cwd: clientsDir,
			env: { PATH: process.env.PATH, PORT: String(port), FLUID_TENANT_KEY1: TENANT_KEY, storage: mkdtempSync(join(tmpdir(), "tinylicious-")), logger__level: "error" },
			stdio: ["ignore", "ignore", "inherit"],
		},
	);
	children.push(tinylicious);
	fluidEndpoint = `http://127.0.0.1:${port}`;
	[sample, foreign, openid, browser] = await Promise.all([serveSample(), serveSample(), startOpenIdEmulator(), launchBrowser()]);
	await waitForHttp(`${fluidEndpoint}/`, tinylicious);
}, { timeout: 90_000 });

after(async () => {
	await browser?.close();
	await Promise.all([...children.map(stop), ...fronts.map((f) => f.close()), sample?.close(), foreign?.close(), openid?.close()]);
});

/** The token service, standalone, with local.settings.json allowing only the sample's origin. */
async function tokenService(values) {
	const handler = await startHandler(
		{},
		{
			localSettings: {
				Values: { TENANT_KEYS: JSON.stringify({ local: TENANT_KEY }), ...values },
				Host: { CORS: sample.origin },
			},
		},
	);
	children.push(handler.child);
	return { ...handler, tokenUrl: `${handler.url}/api/TokenFunction` };
}

/**
 * The token service as the Functions host runs it (not standalone), behind the host's public
 * side in `mode`: CORS for the sample's origin comes from CORS_ALLOWED_ORIGINS and is answered by
 * the handler, as in Azure with deploy/main.bicep's default `corsMode: handler`.
 */
async function hostedTokenService(values, mode) {
	const handler = await startHandler({ TENANT_KEYS: JSON.stringify({ local: TENANT_KEY }), CORS_ALLOWED_ORIGINS: sample.origin, ...values });
	children.push(handler.child);
	const front = await serveHostFront(handler.url, mode);
	fronts.push(front);
	return { ...handler, front, tokenUrl: `${front.url}/api/TokenFunction` };
}

function appUrl(origin, tokenUrl, name, hash = "") {
	const query = new URLSearchParams({ tokenUrl, endpoint: fluidEndpoint, name });
	return `${origin}/?${query}${hash}`;
}

/** A person: their own browser context (storage, session), page and console errors. */
async function person({ origin = sample.origin, tokenUrl, name, accessToken, hash }) {
	const context = await browser.newContext({ viewport: { width: 520, height: 560 } });
	if (accessToken !== undefined) {
		// What the app's sign-in code (MSAL, say) provides.
		await context.addInitScript((token) => {
			globalThis.collabGetAccessToken = async () => token;
		}, accessToken);
	}
	const page = await context.newPage();
	const errors = recordErrors(page);
	await page.goto(appUrl(origin, tokenUrl, name, hash));
	return { page, errors, close: () => context.close() };
}

const present = (page, name) =>
	page.waitForFunction((n) => [...document.querySelectorAll("#present li")].some((li) => li.textContent === n), name, { timeout: 15_000 });
const rollsText = (page) => page.textContent("#rolls");

/** Waits until the app is connected to its container; a failure says what the page shows. */
async function connected(person) {
	try {
		await person.page.waitForFunction(() => location.hash.length > 1 && !document.getElementById("roll").disabled, null, { timeout: 30_000 });
	} catch (error) {
		const status = await person.page.textContent("#status").catch(() => "?");
		throw new Error(`the app did not connect; it shows "${status}"; errors: ${person.errors.join("; ")}`, { cause: error });
	}
}

/** The README's picture: the two windows side by side (`COLLAB_SCREENSHOT=path.png npm test`). */
async function screenshot(pages, path) {
	const shots = await Promise.all(pages.map(async (page) => (await page.screenshot()).toString("base64")));
	const sheet = await browser.newPage({ viewport: { width: 1060, height: 580 } });
	const windows = shots.map((png, i) => `<figure><figcaption>${["Alice", "Bob"][i]}'s window</figcaption><img src="data:image/png;base64,${png}"></figure>`);
	await sheet.setContent(`<body style="margin:0;display:flex;gap:20px;padding:0 0 0 0;font:14px system-ui;background:#dde">${windows.join("")}</body>`);
	await sheet.screenshot({ path, fullPage: true });
	await sheet.close();
}

async function collaborate(service, alice, bob) {
	const a = await person({ tokenUrl: service.tokenUrl, ...alice });
	await connected(a);
	const hash = await a.page.evaluate(() => location.hash);
	const b = await person({ tokenUrl: service.tokenUrl, ...bob, hash });
	await connected(b);

	// Each sees the other (the names come from the tokens this service signed).
	await present(a.page, "Bob");
	await present(b.page, "Alice");
	await present(a.page, "Alice");

	// A roll in one window appears in the other within 5 s, both ways.
	for (const [from, to] of [[a, b], [b, a]]) {
		await from.page.click("#roll");
		const text = await rollsText(from.page);
		assert.match(text, /^Roll #\d+: [1-6] by (Alice|Bob)$/);
		await to.page.waitForFunction((t) => document.getElementById("rolls").textContent === t, text, { timeout: 5_000 });
	}
	if (process.env.COLLAB_SCREENSHOT) {
		await screenshot([a.page, b.page], process.env.COLLAB_SCREENSHOT);
	}
	assert.deepEqual([...a.errors, ...b.errors], []);
	await Promise.all([a.close(), b.close()]);
}

test("two windows edit one container with tokens from the service (AUTH_MODE=none)", { timeout: 120_000 }, async () => {
	const service = await tokenService({ AUTH_MODE: "none" });
	await collaborate(service, { name: "Alice" }, { name: "Bob" });
});

test("the same with Entra bearer tokens: preflighted requests with Authorization (AUTH_MODE=entra)", { timeout: 120_000 }, async () => {
	const service = await tokenService(openid.settings);
	await collaborate(
		service,
		{ name: "ignored", accessToken: openid.token("oid-alice", "Alice") },
		{ name: "ignored", accessToken: openid.token("oid-bob", "Bob") },
	);
	// Cross-origin requests with Authorization are sent only after the preflight (OPTIONS) was
	// answered for this origin: each GET the handler logged is the proof.
	const tokenRequests = service.logs.map((line) => JSON.parse(line)).filter((e) => e.message === "request" && e.path?.endsWith("/TokenFunction"));
	assert.ok(tokenRequests.some((e) => e.method === "GET" && e.status === 200), JSON.stringify(tokenRequests));
});

/** A page on `foreign`'s origin: the browser blocks its token requests, so it gets nowhere. */
async function getsNoToken(stranger) {
	// Fluid keeps retrying a retryable failure, so the page does not give up: wait for the
	// browser's own report of the blocked response, then check that nothing was obtained.
	const blocked = (text) => /CORS policy/.test(text);
	if (!stranger.errors.some(blocked)) {
		await stranger.page.waitForEvent("console", { predicate: (m) => blocked(m.text()), timeout: 30_000 });
	}
	assert.equal(await stranger.page.evaluate(() => location.hash), "", "no container was created");
	assert.doesNotMatch(await stranger.page.textContent("#status"), /Connected/);
	assert.equal(await stranger.page.evaluate(() => document.getElementById("roll").disabled), true);
	await stranger.close();
}

test("a page on an origin the CORS settings do not allow gets no token", { timeout: 60_000 }, async () => {
	const service = await tokenService({ AUTH_MODE: "none" });
	await getsNoToken(await person({ origin: foreign.origin, tokenUrl: service.tokenUrl, name: "Mallory" }));
});

const tokenRequests = (front, method) => front.requests.filter((r) => r.method === method && new URL(r.url, "http://x").pathname === "/api/TokenFunction");

for (const mode of ["forwarding", "envelope"]) {
	test(`under the Functions host (${mode}), the handler's CORS lets the sample's origin get tokens with bearer tokens (AUTH_MODE=entra)`, { timeout: 120_000 }, async () => {
		const service = await hostedTokenService(openid.settings, mode);
		await collaborate(
			service,
			{ name: "ignored", accessToken: openid.token("oid-alice", "Alice") },
			{ name: "ignored", accessToken: openid.token("oid-bob", "Bob") },
		);
		// The browser preflighted the token requests, asking to send Authorization, and sent
		// them with the bearer only after the handler allowed it.
		const preflights = tokenRequests(service.front, "OPTIONS");
		assert.ok(preflights.length > 0, "the token requests were preflighted");
		for (const preflight of preflights) {
			assert.equal(preflight.headers.origin, sample.origin);
			assert.match(preflight.headers["access-control-request-headers"], /\bauthorization\b/);
		}
		const gets = tokenRequests(service.front, "GET");
		assert.ok(gets.length > 0 && gets.every((g) => /^Bearer /.test(g.headers.authorization)), JSON.stringify(gets));
		// What azure-client asks of the token service for one person creating (or loading) a
		// container and collaborating: the figures behind CALLER_RATE_LIMIT's default burst (30).
		const counts = new Map();
		for (const g of gets) counts.set(g.headers.authorization, (counts.get(g.headers.authorization) ?? 0) + 1);
		const perPerson = [...counts.values()];
		console.log(`token requests per person (${mode}): ${JSON.stringify(perPerson)}`);
		assert.equal(perPerson.length, 2);
		assert.ok(perPerson.every((n) => n <= 30), JSON.stringify(perPerson));
	});
}

test("under the Functions host, a page on another origin gets no token (AUTH_MODE=entra)", { timeout: 60_000 }, async () => {
	const service = await hostedTokenService(openid.settings, "forwarding");
	await getsNoToken(await person({ origin: foreign.origin, tokenUrl: service.tokenUrl, name: "ignored", accessToken: openid.token("oid-mallory", "Mallory") }));
	// Its preflight reached the handler and was not allowed, so no request with the bearer followed.
	assert.ok(tokenRequests(service.front, "OPTIONS").length > 0);
	assert.deepEqual(tokenRequests(service.front, "GET"), []);
});
