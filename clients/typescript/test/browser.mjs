// Real-browser test support: Debian's headless Chromium driven by playwright-core (pinned to the
// release built for that Chromium major, so it downloads no browser), pages bundled with esbuild
// as an app would bundle them, and a tiny static server for their origin. Loopback only.
import { createServer } from "node:http";

import { build } from "esbuild";
import { chromium } from "playwright-core";

/** The system Chromium (`apt-get install -y chromium`); `CHROMIUM_PATH` overrides it. */
export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Headless Chromium without the background traffic it would send to Google's hosts. */
export function launchBrowser() {
	return chromium.launch({
		executablePath: chromiumPath,
		headless: true,
		args: [
			"--disable-background-networking",
			"--disable-component-update",
			"--disable-sync",
			"--disable-quic",
			"--no-first-run",
		],
	});
}

/** Bundles `entry` for the browser the way the field notes say azure-client 2.x bundles. */
export async function bundle(entry) {
	const result = await build({
		entryPoints: [entry],
		bundle: true,
		format: "esm",
		platform: "browser",
		target: "es2022",
		define: { "process.env.NODE_ENV": '"production"' },
		write: false,
		logLevel: "silent",
	});
	return result.outputFiles[0].text;
}

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".json": "application/json" };

/**
 * Serves `files` (path → text) on 127.0.0.1 at a free port: a page's own origin. `/` is
 * `/index.html`; anything else is 404.
 */
export async function serve(files) {
	const server = createServer((request, response) => {
		const path = new URL(request.url, "http://x").pathname;
		const body = files[path === "/" ? "/index.html" : path];
		if (body === undefined) {
			response.writeHead(404).end();
			return;
		}
		const type = TYPES[path.slice(path.lastIndexOf("."))] ?? TYPES[".html"];
		response.writeHead(200, { "content-type": type, "cache-control": "no-store" }).end(body);
	});
	await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
	return {
		origin: `http://127.0.0.1:${server.address().port}`,
		close: () => new Promise((resolve) => server.close(resolve)),
	};
}

/** Collects a page's console errors and uncaught exceptions into `errors`. */
export function recordErrors(page, errors = []) {
	page.on("console", (message) => {
		if (message.type() === "error") errors.push(`console: ${message.text()}`);
	});
	page.on("pageerror", (error) => errors.push(`uncaught: ${error.message}`));
	return errors;
}
