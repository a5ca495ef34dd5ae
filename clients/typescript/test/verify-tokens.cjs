// Preload for tinylicious (`node -r ./test/verify-tokens.cjs …/tinylicious/dist/index.js`): it
// makes the local Fluid service check token signatures the way Azure Fluid Relay (Riddler) does,
// and keeps it on loopback.
//
// Tinylicious's TenantManager.verifyToken is a no-op; here it becomes jsonwebtoken.verify with
// the tenant's key1, then key2, answering 401 for an expired token and 403 for a bad signature,
// followed by the service's lifetime check (exp - iat <= 3600).
"use strict";
// Tinylicious listens on every interface: keep it on loopback.
require("./loopback.cjs");

const jwt = require("jsonwebtoken");
const { NetworkError, validateTokenClaimsExpiration } = require("@fluidframework/server-services-client");
const { TenantManager } = require("tinylicious/dist/services/tenantManager");

const keys = [process.env.FLUID_TENANT_KEY1, process.env.FLUID_TENANT_KEY2].filter(Boolean);
if (keys.length === 0) throw new Error("set FLUID_TENANT_KEY1 (and optionally FLUID_TENANT_KEY2)");

TenantManager.prototype.verifyToken = async function verifyToken(_tenantId, token) {
	let failure;
	for (const key of keys) {
		try {
			const claims = jwt.verify(token, key);
			validateTokenClaimsExpiration(claims, 3600);
			return;
		} catch (error) {
			if (error instanceof jwt.TokenExpiredError) throw new NetworkError(401, "Token expired");
			if (error instanceof NetworkError) throw error;
			failure = error;
		}
	}
	throw new NetworkError(403, `Invalid token: ${failure.message}`);
};
