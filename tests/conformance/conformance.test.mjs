// Conformance of the Rust handler's tokens with Fluid's own token code.
//
// The handler binary (HANDLER_BIN, default ../../target/debug/handler) is started on a loopback
// port; every check below takes tokens from it over HTTP and hands them to the npm packages Fluid
// itself uses to issue and verify tokens:
//   - jsonwebtoken.verify: what Riddler (the routerlicious tenant service) verifies signatures with;
//   - Riddler's TenantManager.validateToken: the key1 → key2 fallback used for key rotation;
//   - server-services-client validateTokenClaims / validateTokenClaimsExpiration: Nexus socket checks;
//   - server-services-utils verifyToken: the REST pipeline (scopes, lifetime, single-use create);
//   - azure-service-utils generateToken: the reference issuer, compared byte for byte.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { createRequire } from "node:module";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const jwt = require("jsonwebtoken");
const { generateToken } = require("@fluidframework/azure-service-utils");
const client = require("@fluidframework/server-services-client");
const utils = require("@fluidframework/server-services-utils");
const { TenantManager } = require("@fluidframework/server-routerlicious-base/dist/riddler/tenantManager");

const here = dirname(fileURLToPath(import.meta.url));
const handlerBin = process.env.HANDLER_BIN ?? join(here, "..", "..", "target", "debug", "handler");

const KEY1 = "0123456789abcdef0123456789abcdef";
const KEY2 = "second-key-for-rotation-7f3a";
const UNICODE_KEY = "clé-Zoë-😀-ключ";
const TENANTS = { "fluid-tenant": KEY1, "rotated-tenant": KEY2, "unicode-tenant": UNICODE_KEY };

let handler;
let baseUrl;

before(async () => {
  handler = spawn(handlerBin, [], {
    cwd: mkdtempSync(join(tmpdir(), "conformance-")),
    env: {
      PATH: process.env.PATH,
      FUNCTIONS_CUSTOMHANDLER_PORT: "0",
      AUTH_MODE: "none",
      TENANT_KEYS: JSON.stringify(TENANTS),
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  // The handler logs its bound address; port 0 lets the OS pick a free one with no race.
  baseUrl = await new Promise((resolve, reject) => {
    handler.once("exit", (code) => reject(new Error(`handler exited with ${code}`)));
    createInterface({ input: handler.stdout }).on("line", (line) => {
      const entry = JSON.parse(line);
      if (entry.message === "listening") resolve(`http://${entry.address}`);
    });
  });
});

after(() => handler?.kill("SIGTERM"));

async function token(params, method = "GET") {
  const url = new URL("/api/TokenFunction", baseUrl);
  const init = { method };
  if (method === "GET") {
    for (const [name, value] of Object.entries(params)) {
      url.searchParams.set(name, typeof value === "string" ? value : JSON.stringify(value));
    }
  } else {
    init.body = JSON.stringify(params);
    init.headers = { "Content-Type": "application/json" };
  }
  const response = await fetch(url, init);
  const body = await response.text();
  assert.equal(response.status, 200, body);
  return body;
}

function riddler(key1, key2) {
  const manager = Object.create(TenantManager.prototype);
  manager.getTenantKeys = async () => ({ key1, key2 });
  manager.isCacheEnabled = false;
  return manager;
}

const networkError = (code, message) => (error) =>
  error.code === code && (message === undefined || error.message.includes(message));

test("signature verifies with jsonwebtoken, as Riddler checks it, and only with the tenant key", async () => {
  const jwtText = await token({ tenantId: "fluid-tenant", documentId: "doc1", userId: "u1", userName: "Ann" });
  const claims = jwt.verify(jwtText, KEY1, { algorithms: ["HS256"] });
  assert.equal(claims.tenantId, "fluid-tenant");
  assert.throws(() => jwt.verify(jwtText, KEY2, { algorithms: ["HS256"] }), /invalid signature/);
  assert.deepEqual(jwt.decode(jwtText, { complete: true }).header, { alg: "HS256", typ: "JWT" });
});

test("a non-ASCII key signs over its UTF-8 bytes, as jsrsasign and jsonwebtoken do", async () => {
  const jwtText = await token({ tenantId: "unicode-tenant", documentId: "d", userName: "Zoë 😀" });
  const claims = jwt.verify(jwtText, UNICODE_KEY, { algorithms: ["HS256"] });
  assert.equal(claims.user.name, "Zoë 😀");
  await riddler(UNICODE_KEY).validateToken("unicode-tenant", jwtText);
});

test("Riddler accepts the token with key1 or, during rotation, key2", async () => {
  const withKey1 = await token({ tenantId: "fluid-tenant", documentId: "doc" });
  await riddler(KEY1, KEY2).validateToken("fluid-tenant", withKey1);
  // The service still signs with the old key while the app switched to key2 elsewhere: accepted.
  await riddler(KEY2, KEY1).validateToken("fluid-tenant", withKey1);
  await assert.rejects(
    riddler("wrong", "also-wrong").validateToken("fluid-tenant", withKey1),
    networkError(403, "Invalid token validated with key2"),
  );
});

test("Nexus socket claim checks pass for the document, and fail for another one", async () => {
  const jwtText = await token({ tenantId: "fluid-tenant", documentId: "doc-7", userId: "u" });
  const claims = client.validateTokenClaims(jwtText, "doc-7", "fluid-tenant");
  assert.deepEqual(claims.scopes, ["doc:read", "doc:write", "summary:write"]);
  assert.throws(() => client.validateTokenClaims(jwtText, "doc-8", "fluid-tenant"), networkError(403));
  assert.throws(() => client.validateTokenClaims(jwtText, "doc-7", "other-tenant"), networkError(403));
  const create = await token({ tenantId: "fluid-tenant" });
  assert.throws(() => client.validateTokenClaims(create, "doc-7", "fluid-tenant"), networkError(403));
});

test("lifetime passes validateTokenClaimsExpiration at the one-hour maximum", async () => {
  const full = jwt.decode(await token({ tenantId: "fluid-tenant", documentId: "d" }));
  const remaining = client.validateTokenClaimsExpiration(full, 3600);
  assert.ok(remaining > 3590_000 && remaining <= 3601_000, `${remaining}`);
  const short = jwt.decode(await token({ tenantId: "fluid-tenant", documentId: "d", lifetime: "60" }));
  assert.ok(client.validateTokenClaimsExpiration(short, 60) <= 61_000);
  assert.throws(() => client.validateTokenClaimsExpiration(full, 3599), networkError(403, "Invalid token expiry"));
});

test("REST verifyToken: a load token with doc:read, and single-use create tokens", async () => {
  const tenantManager = { verifyToken: (tenantId, t) => riddler(KEY1).validateToken(tenantId, t) };
  const load = await token({ tenantId: "fluid-tenant", documentId: "doc-1" });
  await utils.verifyToken("fluid-tenant", "doc-1", load, tenantManager,
    { requireDocumentId: true, requireTokenExpiryCheck: true, maxTokenLifetimeSec: 3600 }, ["doc:read"]);

  const used = new Map();
  const tokenCache = {
    get: async (k) => used.get(k),
    set: async (k, v) => void used.set(k, v),
  };
  const createOptions = { requireDocumentId: false, requireTokenExpiryCheck: true, maxTokenLifetimeSec: 3600, ensureSingleUseToken: true, tokenCache };
  const first = await token({ tenantId: "fluid-tenant" });
  const second = await token({ tenantId: "fluid-tenant" });
  assert.notEqual(first, second, "a fresh jti makes every token distinct");
  await utils.verifyToken("fluid-tenant", undefined, first, tenantManager, createOptions, ["doc:read", "doc:write"]);
  await utils.verifyToken("fluid-tenant", undefined, second, tenantManager, createOptions, ["doc:read", "doc:write"]);
  await assert.rejects(
    utils.verifyToken("fluid-tenant", undefined, first, tenantManager, createOptions, ["doc:read", "doc:write"]),
    networkError(403, "already been used"),
  );
  const readOnly = await token({ tenantId: "fluid-tenant", documentId: "doc-1", scopes: "doc:read" });
  await assert.rejects(
    utils.verifyToken("fluid-tenant", "doc-1", readOnly, tenantManager,
      { requireDocumentId: true, requireTokenExpiryCheck: true, maxTokenLifetimeSec: 3600 }, ["doc:read", "doc:write"]),
    networkError(403, "Insufficient scopes"),
  );
});

/** The payload text with the per-call values (iat, exp, jti) blanked, for byte comparison. */
function stablePayload(jwtText) {
  const text = Buffer.from(jwtText.split(".")[1], "base64url").toString("utf8");
  return text
    .replace(/"iat":\d+/, '"iat":0')
    .replace(/"exp":\d+/, '"exp":0')
    .replace(/"jti":"[0-9a-f-]{36}"/, '"jti":""');
}

for (const method of ["GET", "POST"]) {
  test(`byte-compatible with generateToken of @fluidframework/azure-service-utils (${method})`, async () => {
    const cases = [
      { documentId: "doc-1", user: { id: "u1", name: "Ann" }, scopes: ["doc:read", "doc:write", "summary:write"] },
      { documentId: "", user: { id: "u2", name: "Zoë 😀 \"quoted\" \\ </script>" }, scopes: ["doc:read"] },
      { documentId: "ü-doc", user: { id: "u3", name: "Bo", additionalDetails: { email: "b@o.c", tags: ["a", 1, true, null], nested: { z: 1, a: 2 } } }, scopes: ["summary:write", "doc:read"] },
      { documentId: "para\u2028graph doc", user: { id: "u4", name: "tab\there\u2029\u0001" }, scopes: ["doc:write"], lifetime: 90 },
    ];
    for (const c of cases) {
      const ours = await token({
        tenantId: "fluid-tenant",
        documentId: c.documentId,
        userId: c.user.id,
        userName: c.user.name,
        scopes: method === "GET" ? c.scopes.join(",") : c.scopes,
        ...(c.user.additionalDetails ? { additionalDetails: c.user.additionalDetails } : {}),
        ...(c.lifetime ? { lifetime: method === "GET" ? String(c.lifetime) : c.lifetime } : {}),
      }, method);
      const reference = generateToken("fluid-tenant", KEY1, c.scopes, c.documentId, c.user, c.lifetime);
      const [ourHeader] = ours.split(".");
      const [referenceHeader] = reference.split(".");
      assert.equal(ourHeader, referenceHeader, "identical header bytes");
      assert.equal(stablePayload(ours), stablePayload(reference), "identical claim bytes but for iat, exp, jti");
      const a = jwt.decode(ours);
      const b = jwt.decode(reference);
      assert.equal(a.exp - a.iat, b.exp - b.iat);
      assert.ok(Math.abs(a.iat - b.iat) <= 2);
      assert.deepEqual(Object.keys(a), Object.keys(b));
      assert.deepEqual(Object.keys(a.user), Object.keys(b.user));
      for (const key of Object.keys(a)) assert.equal(typeof a[key], typeof b[key], key);
      jwt.verify(ours, KEY1, { algorithms: ["HS256"] });
    }
  });
}

test("the same claim bytes under the same key give the same signature as generateToken", async () => {
  // Sign our payload bytes with jsrsasign, the library generateToken uses.
  const { KJUR } = require("jsrsasign");
  const ours = await token({ tenantId: "unicode-tenant", documentId: "d", userId: "u", userName: "Zoë" });
  const [header, payload, signature] = ours.split(".");
  const reSigned = KJUR.jws.JWS.sign(null, Buffer.from(header, "base64url").toString(), Buffer.from(payload, "base64url").toString(), { utf8: UNICODE_KEY });
  assert.equal(reSigned, ours);
  assert.equal(reSigned.split(".")[2], signature);
});
