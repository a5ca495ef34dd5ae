// The provider against the real Rust handler on loopback: tokens fetched, cached and refreshed;
// the server killed mid-run (cached token served); the server back (fresh token).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";

import { FunctionTokenProvider, TokenRequestError } from "../dist/esm/index.js";
import { startHandler, stop } from "./helpers.mjs";

const jwt = createRequire(import.meta.url)("jsonwebtoken");
const KEY = "provider-test-key-3c9d1e7f5a2b4c6d";
const env = { AUTH_MODE: "none", TENANT_KEYS: JSON.stringify({ t1: KEY }) };
const children = [];
after(() => Promise.all(children.map(stop)));

test("fetch, cache, refresh, survive an outage, recover", async () => {
	let { child: handler, url } = await startHandler(env);
	children.push(handler);
	const provider = new FunctionTokenProvider({
		url: `${url}/api/TokenFunction`,
		user: { id: "u1", name: "Ann", additionalDetails: { avatar: "a.png" } },
		retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 },
	});

	const first = await provider.fetchOrdererToken("t1", "doc-1");
	assert.equal(first.fromCache, false);
	const claims = jwt.verify(first.jwt, KEY, { algorithms: ["HS256"] });
	assert.equal(claims.documentId, "doc-1");
	assert.deepEqual(claims.user, { id: "u1", name: "Ann", additionalDetails: { avatar: "a.png" } });

	assert.deepEqual(await provider.fetchStorageToken("t1", "doc-1"), { jwt: first.jwt, fromCache: true });
	const refreshed = await provider.fetchStorageToken("t1", "doc-1", true);
	assert.notEqual(refreshed.jwt, first.jwt);
	assert.equal(refreshed.fromCache, false);

	const post = new FunctionTokenProvider({ url: `${url}/api/TokenFunction`, method: "POST", user: { id: "u2" }, scopes: ["doc:read"] });
	const read = jwt.verify((await post.fetchStorageToken("t1", "doc-1")).jwt, KEY);
	assert.deepEqual(read.scopes, ["doc:read"]);
	assert.deepEqual(read.user, { id: "u2", name: "u2" });

	await assert.rejects(provider.fetchStorageToken("unknown-tenant", "doc-1"), (error) => {
		assert.ok(error instanceof TokenRequestError);
		assert.equal(error.status, 404);
		assert.match(error.detail, /unknown-tenant/);
		assert.equal(error.tenantId, "unknown-tenant");
		assert.match(error.message, /no key for tenant 'unknown-tenant'/);
		return error.canRetry === false;
	});

	// The service goes away: reconnects keep the cached token; a token Fluid says was rejected
	// (refresh) is never handed back, the call fails retryably instead.
	await stop(handler);
	const offline = await provider.fetchOrdererToken("t1", "doc-1");
	assert.deepEqual(offline, { jwt: refreshed.jwt, fromCache: true });
	await assert.rejects(provider.fetchOrdererToken("t1", "doc-1", true), (error) => error.canRetry === true && error.errorType === "genericNetworkError");
	await assert.rejects(provider.fetchOrdererToken("t1", undefined), (error) => error.canRetry === true && error.status === undefined);

	// It comes back: a fresh token again.
	// Back on the same port (the provider's URL), as after a restart.
	({ child: handler } = await startHandler(env, { port: Number(new URL(url).port) }));
	children.push(handler);
	const back = await provider.fetchOrdererToken("t1", "doc-1", true);
	assert.equal(back.fromCache, false);
	assert.notEqual(back.jwt, refreshed.jwt);
	jwt.verify(back.jwt, KEY);
});

test("over the caller's rate limit, the provider waits out the 429 and gets its tokens", async () => {
	// Easy Auth callers (the handler trusts the principal header its platform would set), one
	// request a second with a burst of one: every second token request in a row is a 429.
	const limited = { AUTH_MODE: "easyauth", WEBSITE_AUTH_ENABLED: "True", TENANT_KEYS: JSON.stringify({ t1: KEY }), CALLER_RATE_LIMIT: "1", CALLER_RATE_BURST: "1" };
	const { child, url, logs } = await startHandler(limited);
	children.push(child);
	const asAnn = (input, init = {}) => fetch(input, { ...init, headers: { ...init.headers, "x-ms-client-principal-id": "oid-ann" } });
	const provider = new FunctionTokenProvider({ url: `${url}/api/TokenFunction`, fetch: asAnn, maxWaitMs: 5_000, retry: { attempts: 4, baseDelayMs: 10, maxDelayMs: 50 } });

	const started = Date.now();
	for (const doc of ["doc-1", "doc-2", "doc-3"]) {
		const token = await provider.fetchOrdererToken("t1", doc);
		assert.equal(jwt.verify(token.jwt, KEY).documentId, doc);
	}
	// Each token after the first waited for the second Retry-After asked for.
	assert.ok(Date.now() - started >= 1_900, `${Date.now() - started} ms`);
	const refused = logs.map((line) => JSON.parse(line)).filter((e) => e.message === "request" && e.problem === "rate-limited");
	assert.ok(refused.length >= 2, JSON.stringify(refused));

	// When the wait does not fit in maxWaitMs, the 429 surfaces as Fluid's throttling error.
	const hurried = new FunctionTokenProvider({ url: `${url}/api/TokenFunction`, fetch: asAnn, maxWaitMs: 300, retry: { attempts: 4, baseDelayMs: 10, maxDelayMs: 50 } });
	await hurried.fetchOrdererToken("t1", "doc-4").catch(() => undefined);
	await assert.rejects(hurried.fetchOrdererToken("t1", "doc-5"), (error) => {
		assert.ok(error instanceof TokenRequestError);
		assert.equal(error.status, 429);
		assert.equal(error.errorType, "throttlingError");
		assert.equal(error.retryAfterSeconds, 1);
		return true;
	});
});
