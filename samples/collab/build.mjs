// Bundles the app for the browser into dist/ (app.js, index.html, config.json).
import { copyFileSync, mkdirSync } from "node:fs";

import { build } from "esbuild";

const root = new URL(".", import.meta.url);
const dist = new URL("dist/", root);
mkdirSync(dist, { recursive: true });
await build({
	entryPoints: [new URL("src/app.js", root).pathname],
	outfile: new URL("app.js", dist).pathname,
	bundle: true,
	format: "esm",
	platform: "browser",
	target: "es2022",
	minify: true,
	sourcemap: true,
	define: { "process.env.NODE_ENV": '"production"' },
	logLevel: "warning",
});
for (const file of ["index.html", "config.json"]) {
	copyFileSync(new URL(file, root), new URL(file, dist));
}
