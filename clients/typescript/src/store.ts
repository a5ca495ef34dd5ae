/** A token and when it expires (seconds since the epoch, the JWT `exp`). */
export interface CachedToken {
	readonly jwt: string;
	readonly expiresAt: number;
}

/**
 * Where tokens are kept between calls. Methods may be synchronous or return promises, so a
 * store can sit on `sessionStorage`, IndexedDB or anything else.
 */
export interface TokenStore {
	get(key: string): CachedToken | undefined | Promise<CachedToken | undefined>;
	set(key: string, token: CachedToken): void | Promise<void>;
	delete(key: string): void | Promise<void>;
}

/** Tokens in memory, for the lifetime of the page or process. */
export class MemoryTokenStore implements TokenStore {
	private readonly tokens = new Map<string, CachedToken>();

	get(key: string): CachedToken | undefined {
		return this.tokens.get(key);
	}

	set(key: string, token: CachedToken): void {
		this.tokens.set(key, token);
	}

	delete(key: string): void {
		this.tokens.delete(key);
	}
}

const STORAGE_PREFIX = "fluid-function-token:";

/**
 * Tokens in the browser's `localStorage`, so a reload while offline can still reconnect.
 * Tokens are bearer credentials: use this only where the page's origin is trusted with them.
 */
export class LocalStorageTokenStore implements TokenStore {
	private readonly storage: Storage;

	constructor(storage: Storage | undefined = globalThis.localStorage) {
		if (storage === undefined) {
			throw new Error('cache: "localStorage" needs a browser (globalThis.localStorage is undefined)');
		}
		this.storage = storage;
	}

	get(key: string): CachedToken | undefined {
		const text = this.storage.getItem(STORAGE_PREFIX + key);
		if (text === null) {
			return undefined;
		}
		try {
			const value: unknown = JSON.parse(text);
			if (
				typeof value === "object" &&
				value !== null &&
				typeof (value as CachedToken).jwt === "string" &&
				typeof (value as CachedToken).expiresAt === "number"
			) {
				return value as CachedToken;
			}
		} catch {
			// A corrupt entry is the same as none.
		}
		return undefined;
	}

	set(key: string, token: CachedToken): void {
		try {
			this.storage.setItem(STORAGE_PREFIX + key, JSON.stringify(token));
		} catch {
			// Storage full or disabled: the token still works, it is just not kept.
		}
	}

	delete(key: string): void {
		this.storage.removeItem(STORAGE_PREFIX + key);
	}
}
