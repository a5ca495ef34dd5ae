import type { ITokenProvider, ITokenResponse } from "@fluidframework/azure-client";

import { TokenCache, callerKey } from "./cache.js";
import { TokenRequestError } from "./errors.js";
import { payloadOf } from "./jwt.js";
import { type Attempt, type RetryPolicy, withRetries } from "./retry.js";
import type { CachedToken, TokenStore } from "./store.js";
import {
	type Answer,
	type Send,
	type WireRequest,
	absoluteUrl,
	creationRequest,
	exchange,
	tokenFrom,
	tokenRequest,
} from "./wire.js";

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
	/**
	 * A cached token is used until this long before it expires, or until half its lifetime
	 * (`exp - iat`) is left when that is shorter: `min(refreshMarginSeconds, lifetime / 2)`. Default 300 s.
	 */
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

/**
 * An `ITokenProvider` for `@fluidframework/azure-client` 2.x that gets tokens from the Fluid
 * token service (the `TokenFunction` custom handler) and keeps a container alive through the
 * failures a network has:
 *
 * - tokens are cached per (function, tenant, document, caller) and reused until
 *   `min(refreshMarginSeconds, lifetime / 2)` before they expire (lifetime: the token's
 *   `exp - iat`); `refresh === true` (Fluid's "the service rejected this token") drops the
 *   cached token and never returns it again;
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
	private readonly cache: TokenCache;
	private readonly policy: RetryPolicy;
	private readonly send: Send;

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
		if (options.documentCreatedUrl !== undefined) {
			const createdUrl = absoluteUrl(options.documentCreatedUrl, "documentCreatedUrl").toString();
			this.documentPostCreateCallback = async (documentId, creationToken) => {
				const tenantId = payloadOf(creationToken)?.tenantId;
				const request = creationRequest(createdUrl, documentId, creationToken);
				await this.call(request, typeof tenantId === "string" ? tenantId : "");
			};
		}
		this.options = options;
		this.cache = new TokenCache(options.cache, url, options.refreshMarginSeconds ?? 300);
		const retry = options.retry ?? {};
		this.policy = {
			attempts: Math.max(1, retry.attempts ?? 4),
			baseDelayMs: retry.baseDelayMs ?? 250,
			maxDelayMs: retry.maxDelayMs ?? 8000,
			timeoutMs: options.timeoutMs ?? 10_000,
			maxWaitMs: options.maxWaitMs ?? 30_000,
			refreshAfter401: options.getAccessToken !== undefined,
		};
		const fetchImpl = options.fetch ?? globalThis.fetch;
		if (typeof fetchImpl !== "function") {
			throw new Error("FunctionTokenProvider: no fetch available; pass options.fetch");
		}
		// Called as a plain function: a browser's fetch throws "Illegal invocation" when called
		// as a method of anything but `window`.
		this.send = (input, init) => fetchImpl(input, init);
	}

	public async fetchOrdererToken(tenantId: string, documentId?: string, refresh?: boolean): Promise<ITokenResponse> {
		return this.token(tenantId, documentId, refresh === true);
	}

	public async fetchStorageToken(tenantId: string, documentId: string, refresh?: boolean): Promise<ITokenResponse> {
		return this.token(tenantId, documentId, refresh === true);
	}

	private async token(tenantId: string, documentId: string | undefined, refresh: boolean): Promise<ITokenResponse> {
		if (documentId === undefined || documentId === "") {
			// A creation token can be used once: always a fresh one, never cached.
			const token = await this.requestToken(tenantId, undefined);
			return { jwt: token.jwt, fromCache: false };
		}
		const key = this.cache.key(tenantId, documentId, await callerKey(this.options));
		let cached: CachedToken | undefined;
		if (refresh) {
			// The service rejected the token we have: it must never be handed out again.
			await this.cache.evict(key);
		} else {
			cached = await this.cache.get(key);
			if (cached !== undefined && this.cache.isFresh(cached)) {
				return { jwt: cached.jwt, fromCache: true };
			}
		}
		try {
			const token = await this.cache.shared(key, () => this.requestToken(tenantId, documentId));
			await this.cache.set(key, token);
			return { jwt: token.jwt, fromCache: false };
		} catch (error) {
			// A routine renewal that cannot reach the service keeps a token that is still valid.
			const offline = error instanceof TokenRequestError && error.canRetry;
			if (offline && cached !== undefined && this.cache.isValid(cached)) {
				return { jwt: cached.jwt, fromCache: true };
			}
			throw error;
		}
	}

	/** A new token from `TokenFunction`. */
	private async requestToken(tenantId: string, documentId: string | undefined): Promise<CachedToken> {
		const { url, method = "GET", user, scopes } = this.options;
		const request = tokenRequest(url, method, { tenantId, documentId, user, scopes });
		const { response, body } = await this.call(request, tenantId);
		return tokenFrom(response, body);
	}

	/** `request` with the caller's credentials, retried as the options say. */
	private call(request: WireRequest, tenantId: string): Promise<Answer> {
		const { getAccessToken } = this.options;
		return withRetries(this.policy, async ({ forceRefresh, signal }: Attempt) => {
			const accessToken = getAccessToken === undefined ? undefined : await getAccessToken({ forceRefresh });
			return exchange(this.send, request, accessToken, signal, tenantId);
		});
	}
}
