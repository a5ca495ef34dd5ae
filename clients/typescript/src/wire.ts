/**
 * The service's HTTP interface: how a request is encoded (the `GET` query or `POST` body, the
 * headers, credentials included) and how an answer is read (a token, or an RFC 9457 problem
 * turned into a {@link TokenRequestError}).
 */
import { TokenRequestError, errorTypeOf, isTransientStatus } from "./errors.js";
import { expiryOf } from "./jwt.js";
import type { CachedToken } from "./store.js";

/** The `fetch` the provider calls, always as a plain function. */
export type Send = (url: string, init: RequestInit) => Promise<Response>;

/** A 2xx answer and its body. */
export interface Answer {
	readonly response: Response;
	readonly body: string;
}

/** An HTTP request before credentials are added. */
export interface WireRequest {
	readonly url: string;
	readonly method: "GET" | "POST";
	/** A JSON body (`POST`). */
	readonly body?: string;
}

/** What a token request asks for: the parameters of `TokenFunction`. */
export interface TokenParameters {
	readonly tenantId: string;
	readonly documentId: string | undefined;
	readonly user: { readonly id: string; readonly name?: string; readonly additionalDetails?: unknown } | undefined;
	readonly scopes: readonly string[] | undefined;
}

/**
 * A token request to `url`: the parameters as a query (`GET`; lists comma-separated, objects as
 * JSON) or as a JSON body (`POST`). The URL's own query (a function key) is kept.
 */
export function tokenRequest(url: string, method: "GET" | "POST", parameters: TokenParameters): WireRequest {
	const { tenantId, documentId, user, scopes } = parameters;
	const params: Record<string, unknown> = { tenantId };
	if (documentId !== undefined) params.documentId = documentId;
	if (user !== undefined) {
		params.userId = user.id;
		if (user.name !== undefined) params.userName = user.name;
		if (user.additionalDetails !== undefined) params.additionalDetails = user.additionalDetails;
	}
	if (scopes !== undefined) params.scopes = scopes;
	if (method === "POST") {
		return { url, method, body: JSON.stringify(params) };
	}
	const query = new URLSearchParams();
	for (const [name, value] of Object.entries(params)) {
		query.set(name, typeof value === "string" ? value : Array.isArray(value) ? value.join(",") : JSON.stringify(value));
	}
	return { url: url + (url.includes("?") ? "&" : "?") + query.toString(), method };
}

/** The `DocumentCreated` request: a new container's id and the creation token Fluid returned. */
export function creationRequest(url: string, documentId: string, token: string): WireRequest {
	return { url, method: "POST", body: JSON.stringify({ documentId, token }) };
}

/**
 * Sends `request` with `Accept: application/json` (and `Content-Type` with a body) and, when
 * given, `Authorization: Bearer <accessToken>`. Resolves with a 2xx answer and its body; rejects
 * with the {@link TokenRequestError} for any other answer (`tenantId` names the tenant in it), or
 * for not reaching the service at all.
 */
export async function exchange(
	send: Send,
	request: WireRequest,
	accessToken: string | undefined,
	signal: AbortSignal,
	tenantId: string,
): Promise<Answer> {
	const headers: Record<string, string> = { Accept: "application/json" };
	const init: RequestInit = { method: request.method };
	if (request.body !== undefined) {
		headers["Content-Type"] = "application/json";
		init.body = request.body;
	}
	if (accessToken !== undefined) {
		headers.Authorization = `Bearer ${accessToken}`;
	}
	let response: Response;
	let body: string;
	try {
		response = await send(request.url, { ...init, headers, signal });
		body = await response.text();
	} catch (cause) {
		throw new TokenRequestError("The token service could not be reached.", {
			errorType: "genericNetworkError",
			canRetry: true,
			cause,
		});
	}
	if (!response.ok) {
		throw errorFrom(response, body, tenantId);
	}
	return { response, body };
}

/**
 * The token in a 2xx answer: `{ token, expiresAt }` (JSON), a JSON string, or the raw JWT (the
 * original Node function, or a service ignoring `Accept`), whose `exp` says when it expires.
 */
export function tokenFrom(response: Response, body: string): CachedToken {
	const contentType = response.headers.get("content-type") ?? "";
	if (!contentType.includes("json")) {
		const jwt = body.trim();
		return { jwt, expiresAt: expiryOf(jwt) };
	}
	const document = parseJson(body);
	if (typeof document === "object" && document !== null && typeof (document as { token?: unknown }).token === "string") {
		const { token, expiresAt } = document as { token: string; expiresAt?: unknown };
		return { jwt: token, expiresAt: typeof expiresAt === "number" ? expiresAt : expiryOf(token) };
	}
	if (typeof document === "string") {
		// A JSON string body: a service that serialized the raw token.
		return { jwt: document, expiresAt: expiryOf(document) };
	}
	throw new TokenRequestError("The token service answered without a token.", {
		errorType: "fetchTokenError",
		status: response.status,
		canRetry: false,
	});
}

/** The error for a non-2xx answer, classified the way the Fluid loader expects. */
export function errorFrom(response: Response, text: string, tenantId: string): TokenRequestError {
	const problem = parseJson(text);
	const fields =
		typeof problem === "object" && problem !== null ? (problem as { type?: unknown; title?: unknown; detail?: unknown }) : {};
	const detail = typeof fields.detail === "string" ? fields.detail : undefined;
	const title = typeof fields.title === "string" ? fields.title : response.statusText;
	const problemType = typeof fields.type === "string" ? fields.type : undefined;
	const errorType = errorTypeOf(response.status);
	let retryAfterSeconds = retryAfter(response.headers.get("retry-after"));
	if (errorType === "throttlingError") {
		// Fluid's throttling errors always say when to come back.
		retryAfterSeconds ??= 1;
	}
	const unknownTenant = response.status === 404 && problemType?.endsWith("/unknown-tenant") === true;
	const message = unknownTenant
		? `Token request failed: the token service has no key for tenant '${tenantId}'`
		: `Token request failed: ${response.status} ${title}${detail === undefined ? "" : ` (${detail})`}`;
	return new TokenRequestError(message, {
		errorType,
		status: response.status,
		problemType,
		detail,
		canRetry: isTransientStatus(response.status),
		retryAfterSeconds,
		tenantId: errorType === "authorizationError" || unknownTenant ? tenantId : undefined,
	});
}

/** `Retry-After` as seconds: a number of seconds or an HTTP date. */
function retryAfter(value: string | null): number | undefined {
	if (value === null) return undefined;
	const seconds = Number(value);
	if (Number.isFinite(seconds) && seconds >= 0) return seconds;
	const date = Date.parse(value);
	return Number.isNaN(date) ? undefined : Math.max(0, (date - Date.now()) / 1000);
}

function parseJson(text: string): unknown {
	try {
		return JSON.parse(text);
	} catch {
		return undefined;
	}
}

/** `text` as a URL, absolute or relative to the page; `option` names it in the error. */
export function absoluteUrl(text: string, option: string): URL {
	try {
		return new URL(text, globalThis.location?.href);
	} catch {
		throw new Error(`FunctionTokenProvider: ${option} must be an absolute URL (or relative to the page)`);
	}
}
