/**
 * Reading JWTs the provider only needs to look at, never to trust: the `exp` of a token it was
 * given, and who an access token belongs to (for the cache key). Nothing here verifies a
 * signature; the service does that.
 */

/** The JSON payload of a compact JWT, or `undefined` when it is not one. */
export function payloadOf(jwt: string): Record<string, unknown> | undefined {
	const payload = jwt.split(".")[1];
	if (payload === undefined || payload === "") return undefined;
	try {
		const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
		const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
		const json = new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
		const value: unknown = JSON.parse(json);
		return typeof value === "object" && value !== null && !Array.isArray(value)
			? (value as Record<string, unknown>)
			: undefined;
	} catch {
		return undefined;
	}
}

/** The `exp` claim of a JWT; 0 (never fresh) when absent. */
export function expiryOf(jwt: string): number {
	const exp = payloadOf(jwt)?.exp;
	return typeof exp === "number" ? exp : 0;
}

/**
 * Who an Entra access token was issued to: `oid` (the user's object id, the same in every app of
 * the tenant), else `sub`. A token that is not a readable JWT is named by a hash of itself, so
 * its cache entries can only ever be found with that same token.
 */
export function callerOf(accessToken: string): string {
	const claims = payloadOf(accessToken);
	for (const name of ["oid", "sub"] as const) {
		const value = claims?.[name];
		if (typeof value === "string" && value !== "") return `${name}:${value}`;
	}
	return `token:${hashText(accessToken)}`;
}

/**
 * A 53-bit non-cryptographic hash (cyrb53) as hex: stable, synchronous and available in every
 * context (`crypto.subtle` is missing on insecure origins). Used to keep URLs out of stored keys,
 * not to protect a secret.
 */
export function hashText(text: string): string {
	let h1 = 0xdeadbeef;
	let h2 = 0x41c6ce57;
	for (let i = 0; i < text.length; i++) {
		const c = text.charCodeAt(i);
		h1 = Math.imul(h1 ^ c, 2654435761);
		h2 = Math.imul(h2 ^ c, 1597334677);
	}
	h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
	h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
	return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16);
}
