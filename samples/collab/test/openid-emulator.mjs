// Entra ID's token-signing side on 127.0.0.1, as the Rust tests' emulator
// (tests/api/support/openid_emulator.rs) serves it: the tenant's OpenID configuration, its JWKS
// with an RSA key generated here, and access tokens signed the way Entra signs them (RS256, kid).
import { createSign, generateKeyPairSync } from "node:crypto";
import { createServer } from "node:http";

export const TENANT_ID = "3f2a9c1e-8d4b-4e6f-9a7c-1b2d3e4f5a6b";
export const AUDIENCE = "api://fluid-token-service";
export const SCOPE = "Token.Issue";
const KID = "kid-1";

export async function startOpenIdEmulator() {
	const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
	const jwk = { ...publicKey.export({ format: "jwk" }), kid: KID, use: "sig" };
	let authority;
	const server = createServer((request, response) => {
		const path = new URL(request.url, "http://x").pathname;
		const body =
			path === `/${TENANT_ID}/v2.0/.well-known/openid-configuration`
				? { issuer: `${authority}/${TENANT_ID}/v2.0`, jwks_uri: `${authority}/${TENANT_ID}/discovery/v2.0/keys`, id_token_signing_alg_values_supported: ["RS256"] }
				: path === `/${TENANT_ID}/discovery/v2.0/keys`
					? { keys: [jwk] }
					: undefined;
		response.writeHead(body ? 200 : 404, { "content-type": "application/json" }).end(JSON.stringify(body ?? { error: "not_found" }));
	});
	await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
	authority = `http://127.0.0.1:${server.address().port}`;

	/** A v2.0 access token for this API, for the user `oid` called `name`. */
	function token(oid, name) {
		const now = Math.floor(Date.now() / 1000);
		const claims = { aud: AUDIENCE, iss: `${authority}/${TENANT_ID}/v2.0`, iat: now - 10, nbf: now - 10, exp: now + 3600, tid: TENANT_ID, oid, sub: `sub-of-${oid}`, name, scp: `${SCOPE} User.Read`, ver: "2.0" };
		const encode = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
		const signingInput = `${encode({ alg: "RS256", typ: "JWT", kid: KID })}.${encode(claims)}`;
		return `${signingInput}.${createSign("RSA-SHA256").update(signingInput).sign(privateKey).toString("base64url")}`;
	}

	/** The handler's settings for `AUTH_MODE=entra` against this emulator. */
	const settings = { AUTH_MODE: "entra", ENTRA_TENANT_ID: TENANT_ID, ENTRA_AUDIENCE: AUDIENCE, ENTRA_AUTHORITY: authority, ENTRA_REQUIRED_SCOPE: SCOPE };
	return { authority, token, settings, close: () => new Promise((resolve) => server.close(resolve)) };
}
