// TokenRequestError as Fluid sees it: a Fluid error (isFluidError), which the loader keeps as it
// is, errorType included, instead of normalizing it into a "genericError" of untrusted origin.
// Checked with Fluid's own functions (telemetry-utils, installed with azure-client).
import { test } from "node:test";
import assert from "node:assert/strict";

import { isExternalError, isFluidError, normalizeError, wrapError, LoggingError } from "@fluidframework/telemetry-utils/internal";

import { FunctionTokenProvider, TokenRequestError } from "../dist/esm/index.js";
import { jsonResponse, scriptedFetch } from "./helpers.mjs";

const URL_ = "https://app.example.test/api/TokenFunction";

/** The error a provider ends with when the service answers `status` (and `headers`). */
async function failure(status, headers = {}, options = {}) {
	const { fetch } = scriptedFetch([jsonResponse(status, { status, title: "x", detail: "why" }, headers)]);
	const provider = new FunctionTokenProvider({ url: URL_, retry: { attempts: 1 }, fetch, ...options });
	return provider.fetchStorageToken("t1", "d").then(
		() => assert.fail("expected a rejection"),
		(error) => error,
	);
}

test("every TokenRequestError is a Fluid error, not an external one", async () => {
	const errors = [
		await failure(401),
		await failure(403),
		await failure(404),
		await failure(429, { "retry-after": "60" }),
		await failure(503),
		new TokenRequestError("x", { errorType: "genericNetworkError", canRetry: true }),
	];
	for (const error of errors) {
		assert.ok(error instanceof TokenRequestError);
		assert.ok(isFluidError(error), error.errorType);
		assert.ok(LoggingError.typeCheck(error));
		assert.equal(isExternalError(error), false, "not marked untrustedOrigin when wrapped");
	}
	const ids = errors.map((error) => error.errorInstanceId);
	assert.equal(new Set(ids).size, ids.length, "one errorInstanceId per error");
	for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test("normalizeError keeps a 401/403 as authorizationError and a 429 past maxWaitMs as throttlingError", async () => {
	for (const status of [401, 403]) {
		const error = await failure(status);
		const normalized = normalizeError(error, { props: { fatalConnectError: true } });
		assert.equal(normalized, error, "the same object, as the loader closes the container with it");
		assert.equal(normalized.errorType, "authorizationError");
		assert.equal(normalized.canRetry, false);
		const props = normalized.getTelemetryProperties();
		assert.equal(props.untrustedOrigin, undefined);
		assert.equal(props.fatalConnectError, true, "the loader's annotations are logged with it");
		assert.equal(props.statusCode, status);
		assert.equal(props.errorType, "authorizationError");
	}

	// Retry-After 60 s is past maxWaitMs: the provider gives up at once, retryably.
	const throttled = await failure(429, { "retry-after": "60" }, { retry: { attempts: 4 }, maxWaitMs: 30_000 });
	const normalized = normalizeError(throttled);
	assert.equal(normalized, throttled);
	assert.deepEqual(
		{ errorType: normalized.errorType, retryAfterSeconds: normalized.retryAfterSeconds, canRetry: normalized.canRetry },
		{ errorType: "throttlingError", retryAfterSeconds: 60, canRetry: true },
	);
	assert.equal(normalized.getTelemetryProperties().retryAfterSeconds, 60);

	// What the provider's errors used to be: a plain Error loses its errorType to "genericError".
	const plain = Object.assign(new Error("x"), { errorType: "authorizationError", canRetry: false });
	assert.equal(normalizeError(plain).errorType, "genericError");
	assert.equal(normalizeError(plain).getTelemetryProperties().untrustedOrigin, 1);
});

test("telemetry properties: the error's own, and what Fluid adds without overwriting", async () => {
	const error = await failure(403);
	error.addTelemetryProperties({ errorType: "genericError", added: "once", list: [1, 2], flat: { a: 1 }, tagged: { value: "v", tag: "UserData" } });
	error.addTelemetryProperties({ added: "twice" });
	const props = error.getTelemetryProperties();
	assert.equal(props.errorType, "authorizationError", "the error's own fields win");
	assert.equal(error.errorType, "authorizationError");
	assert.equal(props.added, "once", "a property already set is kept, as Fluid's LoggingError does");
	assert.equal(props.list, "[1,2]");
	assert.equal(props.flat, '{"a":1}');
	assert.deepEqual(props.tagged, { value: "v", tag: "UserData" });
	assert.equal(props.errorInstanceId, error.errorInstanceId);
	assert.equal(props.message, error.message);
	assert.equal(props.canRetry, false);
	assert.equal(props.problemType, undefined);
	for (const value of Object.values(props)) {
		assert.ok(value === undefined || ["string", "number", "boolean"].includes(typeof value) || typeof value.tag === "string");
	}
});

test("Fluid's wrappers keep the provider error's instance id and telemetry", async () => {
	// The driver wraps a token fetcher's error on a refresh (its own fetchTokenError).
	const error = await failure(403);
	const wrapped = wrapError(error, (message) => new LoggingError(`wrapped: ${message}`));
	assert.equal(wrapped.errorInstanceId, error.errorInstanceId);
	const props = wrapped.getTelemetryProperties();
	assert.equal(props.statusCode, 403);
	assert.equal(props.untrustedOrigin, undefined);
});
