import type { ITokenProvider, ITokenResponse } from "@fluidframework/azure-client";

import { TokenRequestError, isTransientStatus } from "./errors.js";
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

export interface FunctionTokenProviderOptions {
	/** The Function URL, e.g. `https://<app>.azurewebsites.net/api/TokenFunction?code=<function key>`. */
	readonly url: string;
	/** The user to ask a token for (`AUTH_MODE=none`); also part of the cache key. */
	readonly user?: TokenUser;
	/** A bearer token for the service (`AUTH_MODE=entra`), e.g. from MSAL's `acquireTokenSilent`. */
	readonly getAccessToken?: () => Promise<string>;
	/** `GET` (default; query parameters) or `POST` (JSON body). */
	readonly method?: "GET" | "POST";
	/** Scopes to ask for; the service's default (all it allows) when absent. */
	readonly scopes?: readonly string[];
	/** A cached token is used until this long before it expires. Default 300 s. */
	readonly refreshMarginSeconds?: number;
	readonly retry?: RetryOptions;
	/** Where tokens are cached: `"memory"` (default), `"localStorage"`, or your own store. */
	readonly cache?: "memory" | "localStorage" | TokenStore;
	/** The `fetch` to use; the global one by default. */
	readonly fetch?: typeof fetch;
}

const MAX_RETRY_AFTER_MS = 60_000;

/**
 * An `ITokenProvider` for `@fluidframework/azure-client` 2.x that gets tokens from the Fluid
 * token service (the `TokenFunction` custom handler) and keeps a container alive through the
 * failures a network has:
 *
 * - tokens are cached per (URL, tenant, document, user) and reused until `refreshMarginSeconds`
 *   before they expire; `refresh === true` (Fluid's "the token was rejected") fetches a new one;
 * - concurrent requests for the same token share one HTTP request;
 * - network errors, 408, 429 (honouring `Retry-After`) and 5xx are retried with backoff; other
 *   errors fail at once with a {@link TokenRequestError} carrying the service's problem `detail`;
 * - when every retry fails but a cached token is still valid, that token is returned, so a
 *   reconnect during an outage does not dispose the container;
 * - tokens for creating a container (no `documentId`) are single-use on the service side and are
 *   never cached or reused.
 *
 * Nothing is logged, so neither tokens nor keys can end up in a console.
 */
export class FunctionTokenProvider implements ITokenProvider {
	private readonly options: FunctionTokenProviderOptions;
	private readonly store: TokenStore;
	private readonly fetchImpl: typeof fetch;
	private readonly inFlight = new Map<string, Promise<CachedToken>>();

	constructor(options: FunctionTokenProviderOptions) {
		if (!options.url) {
			throw new Error("FunctionTokenProvider: url is required");
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
		this.fetchImpl = fetchImpl;
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
		const key = JSON.stringify([this.options.url, tenantId, documentId, this.options.user?.id ?? ""]);
		const cached = await this.store.get(key);
		const margin = this.options.refreshMarginSeconds ?? 300;
		if (!refresh && cached !== undefined && nowSeconds() < cached.expiresAt - margin) {
			return { jwt: cached.jwt, fromCache: true };
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
			const offline = error instanceof TokenRequestError && error.canRetry;
			if (offline && cached !== undefined && nowSeconds() < cached.expiresAt) {
				return { jwt: cached.jwt, fromCache: true };
			}
			throw error;
		}
	}

	private async requestWithRetries(tenantId: string, documentId: string | undefined): Promise<CachedToken> {
		const retry = this.options.retry ?? {};
		const attempts = Math.max(1, retry.attempts ?? 4);
		const base = retry.baseDelayMs ?? 250;
		const cap = retry.maxDelayMs ?? 8000;
		for (let attempt = 1; ; attempt++) {
			try {
				return await this.request(tenantId, documentId);
			} catch (error) {
				if (!(error instanceof TokenRequestError) || !error.canRetry || attempt >= attempts) {
					throw error;
				}
				const backoff = Math.random() * Math.min(cap, base * 2 ** (attempt - 1));
				const delay =
					error.retryAfterSeconds === undefined
						? backoff
						: Math.min(MAX_RETRY_AFTER_MS, error.retryAfterSeconds * 1000);
				await sleep(delay);
			}
		}
	}

	/** One HTTP request for a token. */
	private async request(tenantId: string, documentId: string | undefined): Promise<CachedToken> {
		const { user, scopes, method = "GET" } = this.options;
		const params: Record<string, unknown> = { tenantId };
		if (documentId !== undefined) params.documentId = documentId;
		if (user !== undefined) {
			params.userId = user.id;
			if (user.name !== undefined) params.userName = user.name;
			if (user.additionalDetails !== undefined) params.additionalDetails = user.additionalDetails;
		}
		if (scopes !== undefined) params.scopes = scopes;

		const headers: Record<string, string> = { Accept: "application/json" };
		if (this.options.getAccessToken !== undefined) {
			headers.Authorization = `Bearer ${await this.options.getAccessToken()}`;
		}
		let url = this.options.url;
		const init: RequestInit = { method, headers };
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
			headers["Content-Type"] = "application/json";
			init.body = JSON.stringify(params);
		}

		let response: Response;
		try {
			response = await this.fetchImpl(url, init);
		} catch (cause) {
			throw new TokenRequestError("The token service could not be reached.", { canRetry: true, cause });
		}
		if (!response.ok) {
			throw await errorFrom(response);
		}
		const contentType = response.headers.get("content-type") ?? "";
		const body = await response.text();
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
			throw new TokenRequestError("The token service answered without a token.", { status: response.status, canRetry: false });
		}
		// The raw JWT (the original Node function, or a service ignoring Accept).
		const jwt = body.trim();
		return { jwt, expiresAt: expiryOf(jwt) };
	}
}

async function errorFrom(response: Response): Promise<TokenRequestError> {
	const text = await response.text().catch(() => "");
	const problem = parseJson(text);
	const fields =
		typeof problem === "object" && problem !== null
			? (problem as { type?: unknown; title?: unknown; detail?: unknown })
			: {};
	const detail = typeof fields.detail === "string" ? fields.detail : undefined;
	const title = typeof fields.title === "string" ? fields.title : response.statusText;
	return new TokenRequestError(
		`Token request failed: ${response.status} ${title}${detail === undefined ? "" : ` (${detail})`}`,
		{
			status: response.status,
			problemType: typeof fields.type === "string" ? fields.type : undefined,
			detail,
			canRetry: isTransientStatus(response.status),
			retryAfterSeconds: retryAfter(response.headers.get("retry-after")),
		},
	);
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

/** The `exp` claim of a JWT, without verifying it; 0 (never fresh) when absent. */
function expiryOf(jwt: string): number {
	const payload = jwt.split(".")[1];
	if (payload === undefined) return 0;
	try {
		const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
		const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
		const json = new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
		const exp = (JSON.parse(json) as { exp?: unknown }).exp;
		return typeof exp === "number" ? exp : 0;
	} catch {
		return 0;
	}
}

function nowSeconds(): number {
	return Date.now() / 1000;
}

function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}
