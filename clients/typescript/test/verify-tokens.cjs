// Preload for tinylicious (`node -r ./test/verify-tokens.cjs …/tinylicious/dist/index.js`): it
// makes the local Fluid service check token signatures the way Azure Fluid Relay (Riddler) does,
// and keeps it on loopback.
//
// Tinylicious's TenantManager.verifyToken is a no-op; here it becomes jsonwebtoken.verify with
// the tenant's key1, then key2, answering 401 for an expired token and 403 for a bad signature,
// followed by the service's lifetime check (exp - iat <= 3600).
"use strict";
const dns = require("node:dns");
const net = require("node:net");

// Tinylicious calls itself at http://localhost:PORT; resolve that to the IPv4 loopback it binds.
dns.setDefaultResultOrder("ipv4first");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
	if (typeof args[0] === "number" || (typeof args[0] === "string" && /^\d+$/.test(args[0]))) {
		if (typeof args[1] !== "string") args.splice(1, 0, "127.0.0.1");
	} else if (args[0] !== null && typeof args[0] === "object" && args[0].host === undefined) {
		args[0] = { ...args[0], host: "127.0.0.1" };
	}
	return listen.apply(this, args);
};

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
