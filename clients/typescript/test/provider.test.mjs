// Unit tests of FunctionTokenProvider with an injected fetch and fake timers.
import { test, beforeEach, afterEach, mock } from "node:test";
import assert from "node:assert/strict";

import { FunctionTokenProvider, TokenRequestError, LocalStorageTokenStore } from "../dist/esm/index.js";
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

test("offline: a still-valid cached token is returned when every retry of a renewal fails", async () => {
	mock.method(Math, "random", () => 0.5);
	const exp = now() + 200; // inside the refresh margin, but not expired
	const { fetch, calls } = scriptedFetch([jsonResponse(200, tokenDoc(exp)), new TypeError("offline")]);
	const provider = new FunctionTokenProvider({ url: URL_, retry: { attempts: 3, baseDelayMs: 10 }, fetch });
	const first = await provider.fetchStorageToken("t1", "d");
	const offline = await settle(provider.fetchStorageToken("t1", "d"));
	assert.deepEqual(offline, { jwt: first.jwt, fromCache: true });
	assert.equal(calls.length, 4, "one fetch, then three tries");

	mock.timers.tick(201_000); // now expired
	await assert.rejects(settle(provider.fetchStorageToken("t1", "d")), (error) => error instanceof TokenRequestError && error.canRetry === true && error.status === undefined);
	await assert.rejects(settle(provider.fetchOrdererToken("t1")), (error) => error.canRetry === true, "no fallback for creation");
});

test("refresh: the rejected token is evicted and never returned, even when the refetch fails", async () => {
	mock.method(Math, "random", () => 0.5);
	const { fetch, calls } = scriptedFetch([jsonResponse(200, tokenDoc(now() + 3600)), new TypeError("offline")]);
	const provider = new FunctionTokenProvider({ url: URL_, retry: { attempts: 2, baseDelayMs: 10 }, fetch });
	const rejected = await provider.fetchStorageToken("t1", "d");
	await assert.rejects(settle(provider.fetchStorageToken("t1", "d", true)), (error) => {
		assert.ok(error instanceof TokenRequestError);
		assert.equal(error.errorType, "genericNetworkError");
		return error.canRetry === true;
	});
	assert.equal(calls.length, 3);
	// Later calls do not find it in the cache either, though it has not expired.
	await assert.rejects(settle(provider.fetchStorageToken("t1", "d")), (error) => error.canRetry === true);
	assert.equal(calls.length, 5, "the rejected token was not served from the cache");

	// Evicted from a persistent store too (a reload would otherwise bring it back).
	const items = new Map();
	const storage = { getItem: (k) => items.get(k) ?? null, setItem: (k, v) => items.set(k, v), removeItem: (k) => items.delete(k) };
	const { fetch: f2 } = scriptedFetch([jsonResponse(200, tokenDoc(now() + 3600)), jsonResponse(503, {})]);
	const stored = new FunctionTokenProvider({ url: URL_, cache: new LocalStorageTokenStore(storage), retry: { attempts: 1 }, fetch: f2 });
	const old = await stored.fetchStorageToken("t1", "d");
	assert.equal(items.size, 1);
	await assert.rejects(stored.fetchStorageToken("t1", "d", true));
	assert.equal(items.size, 0);
	assert.ok(![...items.values()].some((v) => v.includes(old.jwt)));
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
	const [storedKey] = [...items.keys()];
	items.set(storedKey, "{corrupt");
	assert.equal((await new FunctionTokenProvider({ url: URL_, cache: store, fetch }).fetchStorageToken("t1", "d")).fromCache, false, "a corrupt entry is the same as none");

	assert.throws(() => new FunctionTokenProvider({ url: URL_, cache: "localStorage", fetch }), /localStorage/);

	const asyncStore = { data: new Map(), async get(k) { return this.data.get(k); }, async set(k, v) { this.data.set(k, v); }, async delete(k) { this.data.delete(k); } };
	const { fetch: f2, calls: c2 } = scriptedFetch([jsonResponse(200, tokenDoc(now() + 3600))]);
	const p = new FunctionTokenProvider({ url: URL_, cache: asyncStore, fetch: f2 });
	await p.fetchStorageToken("t1", "d");
	assert.equal((await p.fetchStorageToken("t1", "d")).fromCache, true);
	assert.equal(c2.length, 1);
});

test("the default fetch is called as a plain function, as a browser's fetch requires", async () => {
	// A browser's fetch throws "Illegal invocation" unless `this` is the window (or unbound).
	const original = globalThis.fetch;
	const calls = [];
	globalThis.fetch = function (url) {
		if (this !== undefined && this !== globalThis) throw new TypeError("Failed to execute 'fetch' on 'Window': Illegal invocation");
		calls.push(String(url));
		return Promise.resolve(jsonResponse(200, tokenDoc(now() + 3600)));
	};
	try {
		const provider = new FunctionTokenProvider({ url: URL_, retry: { attempts: 1 } });
		assert.equal((await provider.fetchStorageToken("t1", "d")).fromCache, false);
		const injected = new FunctionTokenProvider({ url: URL_, retry: { attempts: 1 }, fetch: globalThis.fetch });
		assert.equal((await injected.fetchStorageToken("t1", "d")).fromCache, false);
		assert.equal(calls.length, 2);
	} finally {
		globalThis.fetch = original;
	}
});

test("deadlines: an attempt is aborted after timeoutMs and retried", async () => {
	mock.method(Math, "random", () => 0);
	const signals = [];
	const { fetch, calls } = scriptedFetch([
		(url, init) => { signals.push(init.signal); return new Promise(() => {}); }, // stalls, ignores the signal
		jsonResponse(200, tokenDoc(now() + 3600)),
	]);
	const provider = new FunctionTokenProvider({ url: URL_, timeoutMs: 1000, fetch });
	const pending = provider.fetchStorageToken("t1", "d");
	await flush();
	mock.timers.tick(999);
	await flush();
	assert.equal(calls.length, 1);
	assert.equal(signals[0].aborted, false);
	mock.timers.tick(1);
	await flush();
	assert.equal(signals[0].aborted, true, "the stalled request is aborted");
	assert.equal((await settle(pending, 1)).fromCache, false);
	assert.equal(calls.length, 2);
});

test("deadlines: a whole fetch gives up after maxWaitMs with a retryable error", async () => {
	mock.method(Math, "random", () => 0.999);
	const stall = () => new Promise(() => {});
	const { fetch, calls } = scriptedFetch([stall]);
	const provider = new FunctionTokenProvider({ url: URL_, timeoutMs: 10_000, maxWaitMs: 25_000, retry: { attempts: 10 }, fetch });
	const started = Date.now();
	let failedAt;
	const pending = provider.fetchStorageToken("t1", "d").finally(() => (failedAt = Date.now()));
	await assert.rejects(settle(pending, 100), (error) => {
		assert.ok(error instanceof TokenRequestError);
		assert.equal(error.errorType, "genericNetworkError");
		assert.match(error.message, /did not answer/);
		return error.canRetry === true;
	});
	assert.ok(failedAt - started <= 25_000, `gave up after ${failedAt - started} ms`);
	assert.equal(calls.length, 3, "10 s + 10 s + the 5 s left");

	// A Retry-After longer than the time left ends the wait at once, still retryable.
	const { fetch: busy, calls: busyCalls } = scriptedFetch([jsonResponse(429, {}, { "retry-after": "60" })]);
	const throttled = new FunctionTokenProvider({ url: URL_, fetch: busy });
	await assert.rejects(throttled.fetchStorageToken("t1", "d"), (error) => {
		assert.equal(error.errorType, "throttlingError");
		assert.equal(error.retryAfterSeconds, 60);
		return error.canRetry === true;
	});
	assert.equal(busyCalls.length, 1);
});

/** An unsigned JWT-shaped access token with these claims. */
function accessToken(claims) {
	return fakeJwt(now() + 3600, claims);
}

test("the cache key names the caller of getAccessToken (oid, else sub), or cacheKey", async () => {
	let n = 0;
	const { fetch, calls } = scriptedFetch([() => jsonResponse(200, tokenDoc(now() + 3600, { n: ++n }))]);
	const items = new Map();
	const storage = { getItem: (k) => items.get(k) ?? null, setItem: (k, v) => items.set(k, v), removeItem: (k) => items.delete(k) };
	let signedIn = accessToken({ oid: "alice-oid", sub: "alice-sub" });
	const options = { url: URL_, cache: new LocalStorageTokenStore(storage), getAccessToken: async () => signedIn, fetch };
	const alice = await new FunctionTokenProvider(options).fetchStorageToken("t1", "d");
	assert.equal((await new FunctionTokenProvider(options).fetchStorageToken("t1", "d")).jwt, alice.jwt, "same person, same token");

	signedIn = accessToken({ oid: "bob-oid" }); // the next person signs in on the same browser
	const bob = await new FunctionTokenProvider(options).fetchStorageToken("t1", "d");
	assert.notEqual(bob.jwt, alice.jwt);
	assert.equal(bob.fromCache, false);

	signedIn = accessToken({ sub: "carol-sub" });
	const carol = await new FunctionTokenProvider(options).fetchStorageToken("t1", "d");
	assert.notEqual(carol.jwt, bob.jwt);
	signedIn = "opaque-access-token";
	assert.equal((await new FunctionTokenProvider(options).fetchStorageToken("t1", "d")).fromCache, false);
	assert.equal(calls.length, 4);

	// cacheKey overrides the access token's identity.
	const keyed = { ...options, cacheKey: () => "alice-oid" };
	signedIn = accessToken({ oid: "someone-else" });
	const first = await new FunctionTokenProvider(keyed).fetchStorageToken("t1", "d");
	assert.equal((await new FunctionTokenProvider({ ...keyed, cacheKey: "alice-oid" }).fetchStorageToken("t1", "d")).jwt, first.jwt);
	assert.notEqual((await new FunctionTokenProvider({ ...keyed, cacheKey: "dave" }).fetchStorageToken("t1", "d")).jwt, first.jwt);

	// With `user`, the user's id keeps users apart.
	const ann = await new FunctionTokenProvider({ url: URL_, cache: options.cache, user: { id: "ann" }, fetch }).fetchStorageToken("t1", "d");
	const ben = await new FunctionTokenProvider({ url: URL_, cache: options.cache, user: { id: "ben" }, fetch }).fetchStorageToken("t1", "d");
	assert.notEqual(ann.jwt, ben.jwt);

	// Stored keys hold no function key, no query, no URL.
	for (const key of items.keys()) {
		assert.doesNotMatch(key, /fn-key|code=|app\.example\.test|\/api\//, key);
	}
	// The same function with another function key shares the cache (it is the same service).
	const otherKey = await new FunctionTokenProvider({ url: URL_.replace("fn-key", "key-2"), cache: options.cache, user: { id: "ann" }, fetch }).fetchStorageToken("t1", "d");
	assert.deepEqual(otherKey, { jwt: ann.jwt, fromCache: true });
});

test("errors carry Fluid's errorType", async () => {
	const cases = [
		[400, "fetchTokenError", false],
		[401, "authorizationError", false],
		[403, "authorizationError", false],
		[404, "fetchTokenError", false],
		[408, "genericNetworkError", true],
		[429, "throttlingError", true],
		[500, "genericNetworkError", true],
		[503, "genericNetworkError", true],
	];
	for (const [status, errorType, canRetry] of cases) {
		const { fetch } = scriptedFetch([jsonResponse(status, { status, title: "x" })]);
		const provider = new FunctionTokenProvider({ url: URL_, retry: { attempts: 1 }, fetch });
		await assert.rejects(provider.fetchStorageToken("t1", "d"), (error) => {
			assert.equal(error.errorType, errorType, `${status}`);
			assert.equal(error.canRetry, canRetry, `${status}`);
			assert.equal(error.statusCode, status);
			if (status === 429) assert.equal(error.retryAfterSeconds, 1, "throttling errors always say when");
			if (errorType === "authorizationError") assert.equal(error.tenantId, "t1");
			return true;
		});
	}
	const unreachable = new FunctionTokenProvider({ url: URL_, retry: { attempts: 1 }, fetch: async () => { throw new TypeError("fetch failed"); } });
	await assert.rejects(unreachable.fetchStorageToken("t1", "d"), (error) => error.errorType === "genericNetworkError" && error.canRetry === true && error.cause instanceof TypeError);

	const problem = { type: "tag:fluid-token-service,2026:problem/unknown-tenant", title: "Unknown tenant", status: 404, detail: "tenantId: no key is configured for tenant 'nope'." };
	const { fetch, calls } = scriptedFetch([jsonResponse(404, problem)]);
	await assert.rejects(new FunctionTokenProvider({ url: URL_, fetch }).fetchStorageToken("nope", "d"), (error) => {
		assert.match(error.message, /tenant 'nope'/);
		assert.equal(error.tenantId, "nope");
		return error.canRetry === false;
	});
	assert.equal(calls.length, 1);
});

test("a 401 with getAccessToken is retried once with a freshly forced access token", async () => {
	const asked = [];
	let issued = 0;
	const getAccessToken = async (request) => {
		asked.push(request?.forceRefresh);
		if (request?.forceRefresh) issued++;
		return accessToken({ oid: "alice", n: issued });
	};
	const unauthorized = jsonResponse(401, { status: 401, title: "Authentication required" });
	const { fetch, calls } = scriptedFetch([unauthorized, jsonResponse(200, tokenDoc(now() + 3600))]);
	const provider = new FunctionTokenProvider({ url: URL_, getAccessToken, fetch });
	assert.equal((await provider.fetchStorageToken("t1", "d")).fromCache, false);
	assert.equal(calls.length, 2);
	assert.ok(asked.includes(true), "forceRefresh was asked for");
	assert.notEqual(calls[0].init.headers.Authorization, calls[1].init.headers.Authorization, "the retry sent the new token");

	// Only once: a second 401 is the answer.
	const { fetch: always401, calls: calls401 } = scriptedFetch([unauthorized]);
	await assert.rejects(new FunctionTokenProvider({ url: URL_, getAccessToken, fetch: always401 }).fetchStorageToken("t1", "d"), (error) => error.errorType === "authorizationError");
	assert.equal(calls401.length, 2);
	// Without getAccessToken there is nothing to refresh.
	const { fetch: f3, calls: c3 } = scriptedFetch([unauthorized]);
	await assert.rejects(new FunctionTokenProvider({ url: URL_, fetch: f3 }).fetchStorageToken("t1", "d"));
	assert.equal(c3.length, 1);
});

const CREATED_URL = "https://app.example.test/api/DocumentCreated?code=created-key";

test("documentPostCreateCallback exists only with documentCreatedUrl (the driver asks for a creation token only then)", () => {
	const { fetch } = scriptedFetch([jsonResponse(200, {})]);
	assert.equal(new FunctionTokenProvider({ url: URL_, fetch }).documentPostCreateCallback, undefined);
	assert.equal(typeof new FunctionTokenProvider({ url: URL_, documentCreatedUrl: CREATED_URL, fetch }).documentPostCreateCallback, "function");
	assert.throws(() => new FunctionTokenProvider({ url: URL_, documentCreatedUrl: "not a url", fetch }), /documentCreatedUrl/);
});

test("documentPostCreateCallback posts the creation token with the caller's credentials", async () => {
	const creationToken = fakeJwt(now() + 3600, { tenantId: "t1", documentId: "doc-1", scopes: [] });
	const { fetch, calls } = scriptedFetch([jsonResponse(201, { tenantId: "t1", documentId: "doc-1", userId: "alice", role: "owner" })]);
	const provider = new FunctionTokenProvider({
		url: URL_,
		documentCreatedUrl: CREATED_URL,
		getAccessToken: async () => "entra-access-token",
		fetch,
	});
	assert.equal(await provider.documentPostCreateCallback("doc-1", creationToken), undefined);
	assert.equal(calls.length, 1);
	const { url, init } = calls[0];
	assert.equal(url, CREATED_URL, "the function key stays in the URL, nothing is added");
	assert.equal(init.method, "POST");
	assert.equal(init.headers.Authorization, "Bearer entra-access-token");
	assert.equal(init.headers.Accept, "application/json");
	assert.equal(init.headers["Content-Type"], "application/json");
	assert.deepEqual(JSON.parse(init.body), { documentId: "doc-1", token: creationToken });
});

test("documentPostCreateCallback retries what is transient and rejects with Fluid's errorType otherwise", async () => {
	const creationToken = fakeJwt(now() + 3600, { tenantId: "t1" });
	// 503 then 200 (the owner registered again): retried, resolved.
	const unavailable = jsonResponse(503, { status: 503, title: "Document store unavailable" }, { "retry-after": "1" });
	const { fetch, calls } = scriptedFetch([unavailable, jsonResponse(200, {})]);
	const provider = new FunctionTokenProvider({ url: URL_, documentCreatedUrl: CREATED_URL, fetch });
	await settle(provider.documentPostCreateCallback("d", creationToken));
	assert.equal(calls.length, 2);

	// 409: someone else owns it. Not retried; the detail and the tenant come with the error.
	const conflict = jsonResponse(409, { status: 409, title: "Conflict", detail: "documentId: this document already has another owner." });
	const { fetch: f2, calls: c2 } = scriptedFetch([conflict]);
	const refused = new FunctionTokenProvider({ url: URL_, documentCreatedUrl: CREATED_URL, fetch: f2 });
	await assert.rejects(refused.documentPostCreateCallback("d", creationToken), (error) => {
		assert.ok(error instanceof TokenRequestError);
		assert.equal(error.errorType, "fetchTokenError");
		assert.equal(error.status, 409);
		assert.equal(error.canRetry, false);
		assert.match(error.message, /another owner/);
		return true;
	});
	assert.equal(c2.length, 1);

	// 403 (the token is not the caller's): an authorization error naming the tenant.
	const { fetch: f3 } = scriptedFetch([jsonResponse(403, { status: 403, title: "Not allowed" })]);
	const forbidden = new FunctionTokenProvider({ url: URL_, documentCreatedUrl: CREATED_URL, fetch: f3 });
	await assert.rejects(forbidden.documentPostCreateCallback("d", creationToken), (error) => error.errorType === "authorizationError" && error.tenantId === "t1");
});

test("the refresh try after a 401 is one extra, immediate try: it spends no retry and does not lengthen the backoff", async () => {
	mock.method(Math, "random", () => 0.999);
	const asked = [];
	const getAccessToken = async ({ forceRefresh }) => {
		asked.push(forceRefresh);
		return accessToken({ oid: "alice" });
	};
	const { fetch, calls } = scriptedFetch([
		jsonResponse(401, { status: 401 }),
		jsonResponse(503, { status: 503 }),
		jsonResponse(503, { status: 503 }),
		jsonResponse(200, tokenDoc(now() + 3600)),
	]);
	const provider = new FunctionTokenProvider({ url: URL_, getAccessToken, retry: { attempts: 2, baseDelayMs: 100 }, fetch });
	const pending = provider.fetchStorageToken("t1", "d");
	pending.catch(() => {});
	const callTimes = [];
	for (let t = 0; t <= 1000; t += 1) {
		await flush();
		while (callTimes.length < calls.length) callTimes.push(t);
		mock.timers.tick(1);
	}
	await assert.rejects(pending, (error) => error.status === 503 && error.canRetry === true);
	assert.equal(calls.length, 3, "the first try, the refresh try, and the one retry of attempts: 2");
	assert.equal(callTimes[1] - callTimes[0], 0, "the refresh try is made at once");
	const gap = callTimes[2] - callTimes[1];
	assert.ok(gap >= 99 && gap <= 101, `the first backoff (~100 ms), not the second: ${gap}`);
	// The cache key's lookup, then one per try: only the try after the 401 forces a refresh.
	assert.deepEqual(asked, [false, false, true, false]);
});

test("the refresh margin is at most half the token's lifetime (exp - iat)", async () => {
	const iat = Math.floor(now());
	let lifetime;
	const { fetch, calls } = scriptedFetch([() => jsonResponse(200, tokenDoc(iat + lifetime, { iat, n: calls.length }))]);
	// Asks for a token at +0 s, then again at each of `times` (s), and says which came from the cache.
	const run = async (seconds, options, times) => {
		mock.timers.setTime(T0);
		lifetime = seconds;
		calls.length = 0;
		const provider = new FunctionTokenProvider({ url: URL_, fetch, ...options });
		await provider.fetchStorageToken("t1", "d");
		const fromCache = [];
		for (const t of times) {
			mock.timers.setTime(T0 + t * 1000);
			fromCache.push((await provider.fetchStorageToken("t1", "d")).fromCache);
		}
		return fromCache;
	};
	// A 10-minute token with the default 300 s margin: reused until 300 s are left (half its life).
	assert.deepEqual(await run(600, {}, [1, 299]), [true, true]);
	assert.deepEqual(await run(600, {}, [301]), [false]);
	// A 5-minute token: the margin is 150 s, not 300 s (which would never reuse it).
	assert.deepEqual(await run(300, {}, [1, 149]), [true, true]);
	assert.deepEqual(await run(300, {}, [151]), [false]);
	// A one-hour token: the configured margin, being less than half of it, stands.
	assert.deepEqual(await run(3600, { refreshMarginSeconds: 600 }, [2999]), [true]);
	assert.deepEqual(await run(3600, { refreshMarginSeconds: 600 }, [3001]), [false]);
	assert.deepEqual(await run(3600, { refreshMarginSeconds: 2400 }, [1799, 1801]), [true, false], "capped at 1800 s");
});
