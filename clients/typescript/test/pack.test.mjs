// The package as an app gets it: `npm pack` (whose prepack builds), installed from the tarball into
// a fresh app, then loaded with `import` and with `require`, and type-checked from both.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const packageDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const npm = (args, cwd) =>
	execFileSync("npm", [...args, "--no-audit", "--no-fund"], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

// Gets a token through an injected fetch, so loading and running the package is checked offline.
const program = (load) => `${load}
const jwt = "e30." + Buffer.from(JSON.stringify({ exp: 4102444800 })).toString("base64url") + ".c2ln";
const provider = new FunctionTokenProvider({
	url: "https://app.example.test/api/TokenFunction",
	fetch: async () => new Response(JSON.stringify({ token: jwt }), { headers: { "content-type": "application/json" } }),
});
provider.fetchOrdererToken("t", "d").then((token) => {
	if (token.jwt !== jwt) throw new Error("wrong token");
	console.log(typeof TokenRequestError, new TokenRequestError("x", { errorType: "fetchTokenError", canRetry: false }).errorType);
});
`;

test("npm pack builds a tarball that installs into a fresh app and loads with import and require", { timeout: 180_000 }, async () => {
	const out = mkdtempSync(join(tmpdir(), "provider-pack-"));
	const [{ filename, files }] = JSON.parse(npm(["pack", "--json", "--pack-destination", out], packageDir));
	const packed = files.map((f) => f.path);
	for (const path of ["dist/esm/index.js", "dist/esm/index.d.ts", "dist/cjs/index.js", "dist/cjs/index.d.ts", "dist/cjs/package.json", "README.md"]) {
		assert.ok(packed.includes(path), `${path} is in the tarball`);
	}
	assert.ok(!packed.some((p) => p.startsWith("src/") || p.startsWith("test/")), "only what an app needs");

	const app = mkdtempSync(join(tmpdir(), "provider-app-"));
	writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true }));
	npm(["install", "--offline", join(out, filename)], app);
	const installed = JSON.parse(readFileSync(join(app, "node_modules", "fluid-function-token-provider", "package.json"), "utf8"));
	assert.equal(installed.name, "fluid-function-token-provider");

	writeFileSync(join(app, "esm.mjs"), program('import { FunctionTokenProvider, TokenRequestError } from "fluid-function-token-provider";'));
	writeFileSync(join(app, "cjs.cjs"), program('const { FunctionTokenProvider, TokenRequestError } = require("fluid-function-token-provider");'));
	for (const file of ["esm.mjs", "cjs.cjs"]) {
		assert.equal(execFileSync(process.execPath, [file], { cwd: app, encoding: "utf8" }).trim(), "function fetchTokenError", file);
	}

	// The types resolve from both kinds of module (the `types` condition first in each branch).
	const use = 'const p = new FunctionTokenProvider({ url: "https://x.test/api/TokenFunction", timeoutMs: 5000 });\nconst e: TokenErrorType = "authorizationError";\nexport { p, e };\n';
	writeFileSync(join(app, "a.mts"), `import { FunctionTokenProvider, type TokenErrorType } from "fluid-function-token-provider";\n${use}`);
	writeFileSync(join(app, "b.cts"), `import { FunctionTokenProvider, type TokenErrorType } from "fluid-function-token-provider";\n${use}`);
	writeFileSync(join(app, "bad.mts"), 'import { FunctionTokenProvider } from "fluid-function-token-provider";\nnew FunctionTokenProvider({ url: 1 });\n');
	const check = (files) =>
		execFileSync(process.execPath, [tsc, "--noEmit", "--strict", "--skipLibCheck", "--module", "nodenext", "--moduleResolution", "nodenext", "--lib", "es2022,dom", ...files], { cwd: app, encoding: "utf8" });
	check(["a.mts", "b.cts"]);
	assert.throws(() => check(["bad.mts"]), (error) => /not assignable/.test(error.stdout), "the types are really checked");
});
