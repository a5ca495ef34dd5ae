import type { ITokenProvider, ITokenResponse } from "@fluidframework/azure-client";

import { TokenRequestError, errorTypeOf, isTransientStatus } from "./errors.js";
import { callerOf, expiryOf, hashText, payloadOf } from "./jwt.js";
import {
	type CachedToken,
	LocalStorageTokenStore,
	MemoryTokenStore,
	type TokenStore,
} from "./store.js";

/** The user a token is for, with `AUTH_MODE=none` (authenticated modes take it from the caller). */
export interface TokenUser {
	readonly id: string;
	readonly name?: string;
	/** Becomes `user.additionalDetails` in the token (e.g. an avatar URL); keep it small. */
	readonly additionalDetails?: unknown;
}

/** Retries of transient failures: `attempts` tries in all, full-jitter exponential backoff. */
export interface RetryOptions {
	/** Tries in all, including the first. Default 4. */
	readonly attempts?: number;
	/** Backoff base. Default 250 ms. */
	readonly baseDelayMs?: number;
	/** Backoff cap (a `Retry-After` may ask for longer, up to 60 s). Default 8000 ms. */
	readonly maxDelayMs?: number;
}

/** What `getAccessToken` is asked for: `forceRefresh` after the service refused the last one (401). */
export interface AccessTokenRequest {
	readonly forceRefresh: boolean;
}

export interface FunctionTokenProviderOptions {
	/** The Function URL, e.g. `https://<app>.azurewebsites.net/api/TokenFunction?code=<function key>`. */
	readonly url: string;
	/** The user to ask a token for (`AUTH_MODE=none`); also part of the cache key. */
	readonly user?: TokenUser;
	/**
	 * A bearer token for the service (`AUTH_MODE=entra`), e.g. from MSAL's `acquireTokenSilent`.
	 * Called with `{ forceRefresh: true }` once after the service answered 401.
	 */
	readonly getAccessToken?: (request: AccessTokenRequest) => Promise<string>;
	/**
	 * Who the cached tokens belong to, overriding the default: the access token's `oid` (else
	 * `sub`) with `getAccessToken`, else `user.id`.
	 */
	readonly cacheKey?: string | (() => string | Promise<string>);
	/** `GET` (default; query parameters) or `POST` (JSON body). */
	readonly method?: "GET" | "POST";
	/** Scopes to ask for; the service's default (all it allows) when absent. */
	readonly scopes?: readonly string[];
	/** A cached token is used until this long before it expires. Default 300 s. */
	readonly refreshMarginSeconds?: number;
	readonly retry?: RetryOptions;
	/** One attempt (access token, request and answer) may take this long. Default 10 000 ms. */
	readonly timeoutMs?: number;
	/** A whole fetch, retries and `Retry-After` waits included, may take this long. Default 30 000 ms. */
	readonly maxWaitMs?: number;
	/** Where tokens are cached: `"memory"` (default), `"localStorage"`, or your own store. */
	readonly cache?: "memory" | "localStorage" | TokenStore;
	/** The `fetch` to use; the global one by default. */
	readonly fetch?: typeof fetch;
	/**
	 * The `DocumentCreated` function URL, e.g. `https://<app>.azurewebsites.net/api/DocumentCreated?code=<function key>`.
	 * When set, the provider implements Fluid's `documentPostCreateCallback`: right after Azure Fluid
	 * Relay creates a container, the creation token it returned is posted there (with the same
	 * credentials as token requests), and the service records the caller as the container's owner.
	 */
	readonly documentCreatedUrl?: string;
}

const MAX_RETRY_AFTER_MS = 60_000;
/** Bumped when the shape of cache keys changes, so old entries are never misread. */
const KEY_VERSION = "v2";

/**
 * An `ITokenProvider` for `@fluidframework/azure-client` 2.x that gets tokens from the Fluid
 * token service (the `TokenFunction` custom handler) and keeps a container alive through the
 * failures a network has:
 *
 * - tokens are cached per (function, tenant, document, caller) and reused until
 *   `refreshMarginSeconds` before they expire; `refresh === true` (Fluid's "the service rejected
 *   this token") drops the cached token and never returns it again;
 * - concurrent requests for the same token share one HTTP request;
 * - network errors, timeouts, 408, 429 (honouring `Retry-After`) and 5xx are retried with
 *   backoff within `maxWaitMs`; other errors fail at once with a {@link TokenRequestError}
 *   carrying Fluid's `errorType` and the service's problem `detail`;
 * - when every retry of a routine renewal fails but the cached token is still valid, that token
 *   is returned, so a reconnect during an outage does not dispose the container;
 * - tokens for creating a container (no `documentId`) are single-use on the service side and are
 *   never cached or reused.
 *
 * Nothing is logged, so neither tokens nor keys can end up in a console.
 */
export class FunctionTokenProvider implements ITokenProvider {
	private readonly options: FunctionTokenProviderOptions;
	private readonly store: TokenStore;
	private readonly send: (url: string, init: RequestInit) => Promise<Response>;
	/** The function's origin and path, hashed: stored keys never hold a function key or query. */
	private readonly functionId: string;
	private readonly inFlight = new Map<string, Promise<CachedToken>>();

	/**
	 * Fluid's `documentPostCreateCallback`, present only with `documentCreatedUrl` (the driver asks
	 * the service for a creation token only when a provider has one). Registers the caller as the
	 * new container's owner; a failure rejects with a {@link TokenRequestError}, which the driver
	 * wraps in its `DocumentPostCreateError`.
	 */
	public readonly documentPostCreateCallback?: (documentId: string, creationToken: string) => Promise<void>;

	constructor(options: FunctionTokenProviderOptions) {
		if (!options.url) {
			throw new Error("FunctionTokenProvider: url is required");
		}
		const url = absoluteUrl(options.url, "url");
		this.functionId = hashText(url.origin + url.pathname);
		if (options.documentCreatedUrl !== undefined) {
			const createdUrl = absoluteUrl(options.documentCreatedUrl, "documentCreatedUrl").toString();
			this.documentPostCreateCallback = async (documentId, creationToken) => {
				await this.withRetries((forceRefresh, signal) =>
					this.registerCreation(createdUrl, documentId, creationToken, forceRefresh, signal),
				);
			};
		}
		this.options = options;
		this.store =
			options.cache === undefined || options.cache === "memory"
				? new MemoryTokenStore()
				: options.cache === "localStorage"
					? new LocalStorageTokenStore()
					: options.cache;
		const fetchImpl = options.fetch ?? globalThis.fetch;
		if (typeof fetchImpl !== "function") {
			throw new Error("FunctionTokenProvider: no fetch available; pass options.fetch");
		}
		// Called as a plain function: a browser's fetch throws "Illegal invocation" when called
		// as a method of anything but `window`.
		this.send = (input, init) => fetchImpl(input, init);
	}

	public async fetchOrdererToken(
		tenantId: string,
		documentId?: string,
		refresh?: boolean,
	): Promise<ITokenResponse> {
		return this.token(tenantId, documentId, refresh === true);
	}

	public async fetchStorageToken(
		tenantId: string,
		documentId: string,
		refresh?: boolean,
	): Promise<ITokenResponse> {
		return this.token(tenantId, documentId, refresh === true);
	}

	private async token(
		tenantId: string,
		documentId: string | undefined,
		refresh: boolean,
	): Promise<ITokenResponse> {
		if (documentId === undefined || documentId === "") {
			// A creation token can be used once: always a fresh one, never cached.
			const token = await this.requestWithRetries(tenantId, undefined);
			return { jwt: token.jwt, fromCache: false };
		}
		const key = JSON.stringify([KEY_VERSION, this.functionId, tenantId, documentId, await this.caller()]);
		let cached: CachedToken | undefined;
		if (refresh) {
			// The service rejected the token we have: it must never be handed out again.
			await this.store.delete(key);
		} else {
			cached = await this.store.get(key);
			const margin = this.options.refreshMarginSeconds ?? 300;
			if (cached !== undefined && nowSeconds() < cached.expiresAt - margin) {
				return { jwt: cached.jwt, fromCache: true };
			}
		}

		let pending = this.inFlight.get(key);
		if (pending === undefined) {
			pending = this.requestWithRetries(tenantId, documentId).finally(() => {
				this.inFlight.delete(key);
			});
			this.inFlight.set(key, pending);
		}
		try {
			const token = await pending;
			await this.store.set(key, token);
			return { jwt: token.jwt, fromCache: false };
		} catch (error) {
			// A routine renewal that cannot reach the service keeps a token that is still valid.
			const offline = error instanceof TokenRequestError && error.canRetry;
			if (offline && cached !== undefined && nowSeconds() < cached.expiresAt) {
				return { jwt: cached.jwt, fromCache: true };
			}
			throw error;
		}
	}

	/** Whose tokens these are: the part of the cache key that keeps users apart. */
	private async caller(): Promise<string> {
		const { cacheKey, getAccessToken, user } = this.options;
		if (cacheKey !== undefined) {
			return `key:${typeof cacheKey === "string" ? cacheKey : await cacheKey()}`;
		}
		if (getAccessToken !== undefined) {
			return callerOf(await getAccessToken({ forceRefresh: false }));
		}
		return user === undefined ? "" : `user:${user.id}`;
	}

	private requestWithRetries(tenantId: string, documentId: string | undefined): Promise<CachedToken> {
		return this.withRetries((forceRefresh, signal) => this.exchange(tenantId, documentId, forceRefresh, signal));
	}

	/**
	 * Runs `exchange` until it succeeds or fails for good: transient failures are retried with
	 * backoff (honouring `Retry-After`) within `maxWaitMs`; a 401 with `getAccessToken` is retried
	 * once at once with `forceRefresh`.
	 */
	private async withRetries<T>(exchange: (forceRefresh: boolean, signal: AbortSignal) => Promise<T>): Promise<T> {
		const retry = this.options.retry ?? {};
		const attempts = Math.max(1, retry.attempts ?? 4);
		const base = retry.baseDelayMs ?? 250;
		const cap = retry.maxDelayMs ?? 8000;
		const deadline = Date.now() + (this.options.maxWaitMs ?? 30_000);
		let forceRefresh = false;
		let refreshedAccessToken = false;
		for (let attempt = 1; ; attempt++) {
			const timeoutMs = Math.min(this.options.timeoutMs ?? 10_000, deadline - Date.now());
			try {
				return await this.attempt(exchange, forceRefresh, timeoutMs);
			} catch (error) {
				if (!(error instanceof TokenRequestError)) {
					throw error;
				}
				forceRefresh = false;
				if (error.status === 401 && this.options.getAccessToken !== undefined && !refreshedAccessToken) {
					// The access token may have expired or been revoked since it was cached: ask
					// for a new one, once, and try again right away.
					forceRefresh = refreshedAccessToken = true;
					attempt--;
					continue;
				}
				if (!error.canRetry || attempt >= attempts) {
					throw error;
				}
				const backoff = Math.random() * Math.min(cap, base * 2 ** (attempt - 1));
				const delay =
					error.retryAfterSeconds === undefined
						? backoff
						: Math.min(MAX_RETRY_AFTER_MS, error.retryAfterSeconds * 1000);
				if (Date.now() + delay >= deadline) {
					// No time left for another try: the error is retryable, Fluid asks again later.
					throw error;
				}
				await sleep(delay);
			}
		}
	}

	/** One attempt, given up after `timeoutMs`. */
	private async attempt<T>(
		exchange: (forceRefresh: boolean, signal: AbortSignal) => Promise<T>,
		forceRefresh: boolean,
		timeoutMs: number,
	): Promise<T> {
		const controller = new AbortController();
		let timer: ReturnType<typeof setTimeout> | undefined;
		const timedOut = new Promise<never>((_, reject) => {
			timer = setTimeout(() => {
				controller.abort();
				reject(
					new TokenRequestError(`The token service did not answer within ${Math.round(timeoutMs)} ms.`, {
						errorType: "genericNetworkError",
						canRetry: true,
					}),
				);
			}, Math.max(0, timeoutMs));
		});
		try {
			// The race also ends a fetch (or getAccessToken) that ignores the abort signal.
			return await Promise.race([exchange(forceRefresh, controller.signal), timedOut]);
		} finally {
			clearTimeout(timer);
		}
	}

	/** The HTTP exchange itself: the request, and the token or error in the answer. */
	private async exchange(
		tenantId: string,
		documentId: string | undefined,
		forceRefresh: boolean,
		signal: AbortSignal,
	): Promise<CachedToken> {
		const { user, scopes, method = "GET" } = this.options;
		const params: Record<string, unknown> = { tenantId };
		if (documentId !== undefined) params.documentId = documentId;
		if (user !== undefined) {
			params.userId = user.id;
			if (user.name !== undefined) params.userName = user.name;
			if (user.additionalDetails !== undefined) params.additionalDetails = user.additionalDetails;
		}
		if (scopes !== undefined) params.scopes = scopes;

		let url = this.options.url;
		const init: RequestInit = { method };
		if (method === "GET") {
			const query = new URLSearchParams();
			for (const [name, value] of Object.entries(params)) {
				query.set(
					name,
					typeof value === "string" ? value : Array.isArray(value) ? value.join(",") : JSON.stringify(value),
				);
			}
			url += (url.includes("?") ? "&" : "?") + query.toString();
		} else {
			init.body = JSON.stringify(params);
		}
		const { response, body } = await this.call(url, init, forceRefresh, signal, tenantId);
		const contentType = response.headers.get("content-type") ?? "";
		if (contentType.includes("json")) {
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
		// The raw JWT (the original Node function, or a service ignoring Accept).
		const jwt = body.trim();
		return { jwt, expiresAt: expiryOf(jwt) };
	}

	/** Posts a new container's creation token to `DocumentCreated`. */
	private async registerCreation(
		url: string,
		documentId: string,
		token: string,
		forceRefresh: boolean,
		signal: AbortSignal,
	): Promise<void> {
		const tenantId = payloadOf(token)?.tenantId;
		await this.call(
			url,
			{ method: "POST", body: JSON.stringify({ documentId, token }) },
			forceRefresh,
			signal,
			typeof tenantId === "string" ? tenantId : "",
		);
	}

	/**
	 * One request to the service with the caller's credentials: its answer when it is a 2xx, else
	 * the {@link TokenRequestError} for it (or for not reaching the service at all).
	 */
	private async call(
		url: string,
		init: RequestInit,
		forceRefresh: boolean,
		signal: AbortSignal,
		tenantId: string,
	): Promise<{ response: Response; body: string }> {
		const headers: Record<string, string> = { Accept: "application/json" };
		if (init.body !== undefined) {
			headers["Content-Type"] = "application/json";
		}
		const { getAccessToken } = this.options;
		if (getAccessToken !== undefined) {
			headers.Authorization = `Bearer ${await getAccessToken({ forceRefresh })}`;
		}
		let response: Response;
		let body: string;
		try {
			response = await this.send(url, { ...init, headers, signal });
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
}

/** `text` as a URL, absolute or relative to the page; `option` names it in the error. */
function absoluteUrl(text: string, option: string): URL {
	try {
		return new URL(text, globalThis.location?.href);
	} catch {
		throw new Error(`FunctionTokenProvider: ${option} must be an absolute URL (or relative to the page)`);
	}
}

/** The error for a non-2xx answer, classified the way the Fluid loader expects. */
function errorFrom(response: Response, text: string, tenantId: string): TokenRequestError {
	const problem = parseJson(text);
	const fields =
		typeof problem === "object" && problem !== null
			? (problem as { type?: unknown; title?: unknown; detail?: unknown })
			: {};
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

function nowSeconds(): number {
	return Date.now() / 1000;
}

function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}
