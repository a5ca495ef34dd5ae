// Unit tests of FunctionTokenProvider with an injected fetch and fake timers.
import { test, beforeEach, afterEach, mock } from "node:test";
import assert from "node:assert/strict";

import { FunctionTokenProvider, TokenRequestError, LocalStorageTokenStore } from "../dist/index.js";
import { fakeJwt, flush, jsonResponse, scriptedFetch } from "./helpers.mjs";

const T0 = 1_800_000_000_000; // ms
const now = () => Date.now() / 1000;
const URL_ = "https://app.example.test/api/TokenFunction?code=fn-key";

beforeEach(() => {
	mock.timers.enable({ apis: ["setTimeout", "Date"], now: T0 });
});
afterEach(() => {
	mock.timers.reset();
	mock.restoreAll();
});

function tokenDoc(exp, extra = {}) {
	const token = fakeJwt(exp, extra);
	return { token, expiresAt: exp };
}

/** Runs `promise` to completion, advancing fake time in `stepMs` steps. */
async function settle(promise, stepMs = 50, maxMs = 120_000) {
	let done = false;
	promise.then(() => (done = true), () => (done = true));
	for (let t = 0; t <= maxMs && !done; t += stepMs) {
		await flush();
		if (!done) mock.timers.tick(stepMs);
	}
	await flush();
	return promise;
}

test("caches per document until the refresh margin, then fetches again", async () => {
	const exp = now() + 3600;
	const { fetch, calls } = scriptedFetch([jsonResponse(200, tokenDoc(exp, { n: 1 })), jsonResponse(200, tokenDoc(exp + 3600, { n: 2 }))]);
	const provider = new FunctionTokenProvider({ url: URL_, user: { id: "u1", name: "Ann" }, fetch });
	const first = await provider.fetchOrdererToken("t1", "doc");
	assert.equal(first.fromCache, false);
	const second = await provider.fetchStorageToken("t1", "doc");
	assert.deepEqual(second, { jwt: first.jwt, fromCache: true });
	assert.equal(calls.length, 1);

	mock.timers.tick((3600 - 301) * 1000);
	assert.equal((await provider.fetchStorageToken("t1", "doc")).fromCache, true, "still outside the margin");
	mock.timers.tick(2000);
	const renewed = await provider.fetchStorageToken("t1", "doc");
	assert.equal(renewed.fromCache, false);
	assert.notEqual(renewed.jwt, first.jwt);
	assert.equal(calls.length, 2);
});

test("the refresh flag bypasses the cache, and documents do not share tokens", async () => {
	let n = 0;
	const { fetch, calls } = scriptedFetch([() => jsonResponse(200, tokenDoc(now() + 3600, { n: ++n }))]);
	const provider = new FunctionTokenProvider({ url: URL_, refreshMarginSeconds: 60, fetch });
	const a = await provider.fetchOrdererToken("t1", "doc-a");
	const refreshed = await provider.fetchOrdererToken("t1", "doc-a", true);
	assert.notEqual(refreshed.jwt, a.jwt);
	assert.equal(refreshed.fromCache, false);
	const b = await provider.fetchOrdererToken("t1", "doc-b");
	assert.notEqual(b.jwt, refreshed.jwt);
	assert.equal((await provider.fetchOrdererToken("t1", "doc-a")).jwt, refreshed.jwt);
	assert.equal(calls.length, 3);
});

test("creation tokens are never cached nor taken from another document", async () => {
	let n = 0;
	const { fetch, calls } = scriptedFetch([() => jsonResponse(200, tokenDoc(now() + 3600, { n: ++n }))]);
	const provider = new FunctionTokenProvider({ url: URL_, fetch });
	const doc = await provider.fetchOrdererToken("t1", "doc");
	const create1 = await provider.fetchOrdererToken("t1", undefined);
	const create2 = await provider.fetchOrdererToken("t1", undefined);
	assert.equal(calls.length, 3);
	assert.ok(new Set([doc.jwt, create1.jwt, create2.jwt]).size === 3);
	assert.equal(create1.fromCache, false);
	assert.ok(!new URL(calls[1].url).searchParams.has("documentId"));
});

test("concurrent calls for one token share one request", async () => {
	let release;
	const gate = new Promise((r) => (release = r));
	const { fetch, calls } = scriptedFetch([async () => { await gate; return jsonResponse(200, tokenDoc(now() + 3600)); }]);
	const provider = new FunctionTokenProvider({ url: URL_, fetch });
	const pending = [1, 2, 3, 4, 5].map(() => provider.fetchStorageToken("t1", "doc"));
	await flush();
	release();
	const results = await Promise.all(pending);
	assert.equal(calls.length, 1);
	assert.ok(results.every((r) => r.jwt === results[0].jwt));
});

test("GET sends the parameters as a query, POST as JSON, with Accept: application/json and a bearer", async () => {
	for (const method of ["GET", "POST"]) {
		const { fetch, calls } = scriptedFetch([jsonResponse(200, tokenDoc(now() + 3600))]);
		const provider = new FunctionTokenProvider({
			url: URL_,
			method,
			user: { id: "u1", name: "Zoë", additionalDetails: { avatar: "a.png" } },
			scopes: ["doc:read", "doc:write"],
			getAccessToken: async () => "entra-access-token",
			fetch,
		});
		await provider.fetchStorageToken("t1", "doc/1");
		const { url, init } = calls[0];
		assert.equal(init.method, method);
		assert.equal(init.headers.Accept, "application/json");
		assert.equal(init.headers.Authorization, "Bearer entra-access-token");
		const expected = { tenantId: "t1", documentId: "doc/1", userId: "u1", userName: "Zoë" };
		const parsed = new URL(url);
		assert.equal(parsed.searchParams.get("code"), "fn-key", "the function key stays in the URL");
		if (method === "GET") {
			for (const [k, v] of Object.entries(expected)) assert.equal(parsed.searchParams.get(k), v);
			assert.equal(parsed.searchParams.get("scopes"), "doc:read,doc:write");
			assert.deepEqual(JSON.parse(parsed.searchParams.get("additionalDetails")), { avatar: "a.png" });
		} else {
			assert.equal(init.headers["Content-Type"], "application/json");
			assert.deepEqual(JSON.parse(init.body), { ...expected, additionalDetails: { avatar: "a.png" }, scopes: ["doc:read", "doc:write"] });
		}
	}
});

test("a raw JWT response (the original Node function) is understood through its exp", async () => {
	const exp = Math.floor(now()) + 3600;
	const raw = fakeJwt(exp);
	const { fetch, calls } = scriptedFetch([new Response(`${raw}\n`, { status: 200, headers: { "content-type": "text/plain" } })]);
	const provider = new FunctionTokenProvider({ url: URL_, fetch });
	assert.equal((await provider.fetchStorageToken("t1", "d")).jwt, raw);
	assert.equal((await provider.fetchStorageToken("t1", "d")).fromCache, true);
	assert.equal(calls.length, 1);
	// A token without exp is never served from the cache.
	const { fetch: fetch2, calls: calls2 } = scriptedFetch([new Response("a.e30.c", { status: 200 })]);
	const noExp = new FunctionTokenProvider({ url: URL_, fetch: fetch2 });
	await noExp.fetchStorageToken("t1", "d");
	await noExp.fetchStorageToken("t1", "d");
	assert.equal(calls2.length, 2);
});

test("transient failures are retried with full-jitter backoff within bounds", async () => {
	mock.method(Math, "random", () => 0.999);
	const { fetch, calls } = scriptedFetch([
		jsonResponse(503, { status: 503, title: "Unavailable" }),
		new TypeError("fetch failed"),
		jsonResponse(500, { status: 500 }),
		jsonResponse(200, tokenDoc(now() + 3600)),
	]);
	const provider = new FunctionTokenProvider({ url: URL_, retry: { attempts: 4, baseDelayMs: 100, maxDelayMs: 300 }, fetch });
	const pending = provider.fetchStorageToken("t1", "d");
	const callTimes = [];
	for (let t = 0; t <= 1000; t += 1) {
		await flush();
		while (callTimes.length < calls.length) callTimes.push(t);
		mock.timers.tick(1);
	}
	const result = await pending;
	assert.equal(result.fromCache, false);
	assert.equal(calls.length, 4);
	// Delays: random × min(cap, base·2^n) = ~100, ~200, ~300 (capped).
	const gaps = callTimes.slice(1).map((t, i) => t - callTimes[i]);
	assert.ok(gaps[0] >= 99 && gaps[0] <= 101, `${gaps}`);
	assert.ok(gaps[1] >= 199 && gaps[1] <= 201, `${gaps}`);
	assert.ok(gaps[2] >= 298 && gaps[2] <= 301, `${gaps}`);

	mock.method(Math, "random", () => 0);
	const { fetch: fast, calls: fastCalls } = scriptedFetch([jsonResponse(502, {}), jsonResponse(200, tokenDoc(now() + 3600))]);
	await settle(new FunctionTokenProvider({ url: URL_, fetch: fast }).fetchStorageToken("t1", "d"), 1);
	assert.equal(fastCalls.length, 2);
});

test("429 waits for Retry-After", async () => {
	const { fetch, calls } = scriptedFetch([
		jsonResponse(429, { status: 429, title: "Too Many Requests" }, { "retry-after": "2" }),
		jsonResponse(200, tokenDoc(now() + 3600)),
	]);
	const provider = new FunctionTokenProvider({ url: URL_, fetch });
	const pending = provider.fetchStorageToken("t1", "d");
	await flush();
	mock.timers.tick(1999);
	await flush();
	assert.equal(calls.length, 1);
	mock.timers.tick(1);
	await flush();
	assert.equal(calls.length, 2);
	assert.equal((await pending).fromCache, false);
});

test("client errors are not retried and carry the problem detail", async () => {
	for (const status of [400, 401, 403, 404]) {
		const problem = { type: "tag:x,2026:problem/y", title: "Nope", status, detail: `tenantId: detail ${status}` };
		const { fetch, calls } = scriptedFetch([jsonResponse(status, problem)]);
		const provider = new FunctionTokenProvider({ url: URL_, fetch });
		await assert.rejects(provider.fetchStorageToken("t1", "d"), (error) => {
			assert.ok(error instanceof TokenRequestError);
			assert.equal(error.status, status);
			assert.equal(error.detail, problem.detail);
			assert.equal(error.problemType, problem.type);
			assert.equal(error.canRetry, false);
			return true;
		});
		assert.equal(calls.length, 1, `${status} is not retried`);
	}
});

test("offline: a still-valid cached token is returned when every retry fails", async () => {
	mock.method(Math, "random", () => 0.5);
	const exp = now() + 200; // inside the refresh margin, but not expired
	const { fetch, calls } = scriptedFetch([jsonResponse(200, tokenDoc(exp)), new TypeError("offline")]);
	const provider = new FunctionTokenProvider({ url: URL_, retry: { attempts: 3, baseDelayMs: 10 }, fetch });
	const first = await provider.fetchStorageToken("t1", "d");
	const offline = await settle(provider.fetchStorageToken("t1", "d"));
	assert.deepEqual(offline, { jwt: first.jwt, fromCache: true });
	assert.equal(calls.length, 4, "one fetch, then three tries");
	const refreshed = await settle(provider.fetchStorageToken("t1", "d", true));
	assert.equal(refreshed.jwt, first.jwt, "even on refresh, better than closing the container");

	mock.timers.tick(201_000); // now expired
	await assert.rejects(settle(provider.fetchStorageToken("t1", "d")), (error) => error instanceof TokenRequestError && error.canRetry === true && error.status === undefined);
	await assert.rejects(settle(provider.fetchOrdererToken("t1")), (error) => error.canRetry === true, "no fallback for creation");
});

test("a 4xx is not hidden by the offline fallback", async () => {
	const { fetch } = scriptedFetch([jsonResponse(200, tokenDoc(now() + 200)), jsonResponse(403, { status: 403, detail: "userId: no" })]);
	const provider = new FunctionTokenProvider({ url: URL_, fetch });
	await provider.fetchStorageToken("t1", "d");
	await assert.rejects(provider.fetchStorageToken("t1", "d"), (error) => error.status === 403);
});

test("localStorage and custom stores", async () => {
	const items = new Map();
	const storage = { getItem: (k) => items.get(k) ?? null, setItem: (k, v) => items.set(k, v), removeItem: (k) => items.delete(k) };
	const { fetch, calls } = scriptedFetch([jsonResponse(200, tokenDoc(now() + 3600))]);
	const store = new LocalStorageTokenStore(storage);
	await new FunctionTokenProvider({ url: URL_, cache: store, fetch }).fetchStorageToken("t1", "d");
	// A new provider (a page reload) finds the token.
	const again = await new FunctionTokenProvider({ url: URL_, cache: store, fetch }).fetchStorageToken("t1", "d");
	assert.equal(again.fromCache, true);
	assert.equal(calls.length, 1);
	assert.equal(items.size, 1);
	items.set([...items.keys()][0], "{corrupt");
	assert.equal(store.get(JSON.stringify([URL_, "t1", "d", ""])), undefined);

	assert.throws(() => new FunctionTokenProvider({ url: URL_, cache: "localStorage", fetch }), /localStorage/);

	const asyncStore = { data: new Map(), async get(k) { return this.data.get(k); }, async set(k, v) { this.data.set(k, v); }, async delete(k) { this.data.delete(k); } };
	const { fetch: f2, calls: c2 } = scriptedFetch([jsonResponse(200, tokenDoc(now() + 3600))]);
	const p = new FunctionTokenProvider({ url: URL_, cache: asyncStore, fetch: f2 });
	await p.fetchStorageToken("t1", "d");
	assert.equal((await p.fetchStorageToken("t1", "d")).fromCache, true);
	assert.equal(c2.length, 1);
});
