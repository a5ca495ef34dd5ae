// The provider in a real browser (headless Chromium), bundled with esbuild, against the Rust
// handler run standalone (`cargo run`'s mode) with Host.CORS naming the page's origin.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { bundle, launchBrowser, recordErrors, serve } from "./browser.mjs";
import { startHandler, stop } from "./helpers.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const jwt = createRequire(import.meta.url)("jsonwebtoken");
const KEY = "browser-test-key-5e1c9a7b3d2f4a6c";
let browser, page, allowed, refused, handler, errors;

before(async () => {
	const files = { "/index.html": '<!doctype html><link rel="icon" href="data:,"><script type="module" src="/page.js"></script>', "/page.js": await bundle(join(here, "browser", "provider-page.mjs")) };
	allowed = await serve(files);
	refused = await serve(files); // same page, another origin
	handler = await startHandler(
		{},
		{
			localSettings: {
				Values: { AUTH_MODE: "none", TENANT_KEYS: JSON.stringify({ t1: KEY }) },
				Host: { CORS: allowed.origin },
			},
		},
	);
	browser = await launchBrowser();
}, { timeout: 60_000 });

after(async () => {
	await browser?.close();
	await Promise.all([allowed?.close(), refused?.close(), handler && stop(handler.child)]);
});

async function openPage(origin) {
	const page = await browser.newPage();
	errors = recordErrors(page);
	await page.goto(`${origin}/`);
	await page.waitForFunction(() => typeof globalThis.fetchToken === "function");
	return page;
}

test("the provider gets, caches and uses tokens in Chromium, with GET and with POST (preflighted)", { timeout: 60_000 }, async () => {
	page = await openPage(allowed.origin);
	for (const method of ["GET", "POST"]) {
		const result = await page.evaluate((args) => globalThis.fetchToken(args), {
			url: `${handler.url}/api/TokenFunction`,
			method,
			tenantId: "t1",
			documentId: `doc-${method}`,
		});
		assert.equal(result.error, undefined, JSON.stringify(result.error));
		assert.equal(result.fromCache, true);
		assert.equal(result.sameToken, true);
		const claims = jwt.verify(result.jwt, KEY, { algorithms: ["HS256"] });
		assert.equal(claims.documentId, `doc-${method}`);
		assert.deepEqual(claims.user, { id: "browser-user", name: "Bea", additionalDetails: { via: "chromium" } });
	}
	assert.deepEqual(errors, []);
	await page.close();
});

test("a page on an origin CORS does not allow gets no token", { timeout: 60_000 }, async () => {
	page = await openPage(refused.origin);
	const result = await page.evaluate((args) => globalThis.fetchToken(args), {
		url: `${handler.url}/api/TokenFunction`,
		method: "GET",
		tenantId: "t1",
		documentId: "doc",
	});
	assert.equal(result.jwt, undefined);
	assert.deepEqual(
		{ name: result.error.name, errorType: result.error.errorType, canRetry: result.error.canRetry },
		{ name: "TokenRequestError", errorType: "genericNetworkError", canRetry: true },
	);
	// The browser reports the block itself; nothing else went wrong on the page.
	assert.ok(errors.length > 0 && errors.every((e) => /CORS|Access-Control|Failed to load resource|ERR_FAILED/i.test(e)), errors.join("\n"));
	await page.close();
});
