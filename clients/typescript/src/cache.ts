/**
 * Which tokens are kept, under which key, and for how long they are handed out again.
 */
import { callerOf, hashText, payloadOf } from "./jwt.js";
import { type CachedToken, LocalStorageTokenStore, MemoryTokenStore, type TokenStore } from "./store.js";

/** Bumped when the shape of cache keys changes, so old entries are never misread. */
const KEY_VERSION = "v2";

/** Who asks, as the provider's options say it. */
export interface CallerOptions {
	readonly cacheKey?: string | (() => string | Promise<string>);
	readonly getAccessToken?: (request: { readonly forceRefresh: boolean }) => Promise<string>;
	readonly user?: { readonly id: string };
}

/**
 * Tokens per (function, tenant, document, caller) in a {@link TokenStore}, with concurrent
 * requests for one key sharing one promise.
 */
export class TokenCache {
	private readonly store: TokenStore;
	/** The function's origin and path, hashed: stored keys never hold a function key or query. */
	private readonly functionId: string;
	private readonly inFlight = new Map<string, Promise<CachedToken>>();

	constructor(
		store: "memory" | "localStorage" | TokenStore | undefined,
		functionUrl: URL,
		private readonly refreshMarginSeconds: number,
	) {
		this.store =
			store === undefined || store === "memory"
				? new MemoryTokenStore()
				: store === "localStorage"
					? new LocalStorageTokenStore()
					: store;
		this.functionId = hashText(functionUrl.origin + functionUrl.pathname);
	}

	/** The key of a document's token for `caller` (see {@link callerKey}). */
	public key(tenantId: string, documentId: string, caller: string): string {
		return JSON.stringify([KEY_VERSION, this.functionId, tenantId, documentId, caller]);
	}

	public async get(key: string): Promise<CachedToken | undefined> {
		return this.store.get(key);
	}

	public async set(key: string, token: CachedToken): Promise<void> {
		await this.store.set(key, token);
	}

	/** Forgets a token the service rejected, so that it is never handed out again. */
	public async evict(key: string): Promise<void> {
		await this.store.delete(key);
	}

	/**
	 * Whether `token` may be handed out without asking the service: until the refresh margin
	 * before it expires, the margin being `refreshMarginSeconds` but never more than half the
	 * token's lifetime (`exp - iat`), so a short-lived token is still reused for half its life.
	 */
	public isFresh(token: CachedToken, now = nowSeconds()): boolean {
		const claims = payloadOf(token.jwt);
		const expiry = typeof claims?.exp === "number" ? claims.exp : token.expiresAt;
		const lifetime = typeof claims?.iat === "number" ? expiry - claims.iat : Number.POSITIVE_INFINITY;
		const margin = Math.min(this.refreshMarginSeconds, Math.max(0, lifetime) / 2);
		return now < token.expiresAt - margin;
	}

	/** Whether `token` has not expired: still usable when the service cannot be reached. */
	public isValid(token: CachedToken, now = nowSeconds()): boolean {
		return now < token.expiresAt;
	}

	/** `request()`'s promise, shared by every call for `key` until it settles. */
	public shared(key: string, request: () => Promise<CachedToken>): Promise<CachedToken> {
		let pending = this.inFlight.get(key);
		if (pending === undefined) {
			pending = request().finally(() => {
				this.inFlight.delete(key);
			});
			this.inFlight.set(key, pending);
		}
		return pending;
	}
}

/**
 * Whose tokens these are, the part of the cache key that keeps users apart: `cacheKey`, else the
 * access token's `oid` (else `sub`) with `getAccessToken`, else `user.id`.
 */
export async function callerKey({ cacheKey, getAccessToken, user }: CallerOptions): Promise<string> {
	if (cacheKey !== undefined) {
		return `key:${typeof cacheKey === "string" ? cacheKey : await cacheKey()}`;
	}
	if (getAccessToken !== undefined) {
		return callerOf(await getAccessToken({ forceRefresh: false }));
	}
	return user === undefined ? "" : `user:${user.id}`;
}

function nowSeconds(): number {
	return Date.now() / 1000;
}
