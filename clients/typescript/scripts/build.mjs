// Builds the package twice from one source: ESM in dist/esm, CommonJS in dist/cjs. The package is
// "type": "module", so dist/cjs gets a package.json of its own that makes Node (and TypeScript)
// read its .js and .d.ts files as CommonJS.
import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
rmSync(new URL("../dist", import.meta.url), { recursive: true, force: true });
for (const project of ["tsconfig.json", "tsconfig.cjs.json"]) {
	execFileSync(process.execPath, [tsc, "-p", project], { stdio: "inherit" });
}
writeFileSync(new URL("../dist/cjs/package.json", import.meta.url), '{ "type": "commonjs" }\n');
