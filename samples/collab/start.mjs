// Local mode in one command: tinylicious (the local Fluid service) on 127.0.0.1:7070, the token
// service (`cargo run --release`, standalone, reading the repository's local.settings.json: tenant
// `local`, AUTH_MODE=none, CORS "*") on 127.0.0.1:7071, and this app on http://127.0.0.1:8080.
// Ctrl+C stops all three.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

import { serveSample } from "./server.mjs";

const require = createRequire(import.meta.url);
const repo = fileURLToPath(new URL("../..", import.meta.url));
const loopback = fileURLToPath(new URL("../../clients/typescript/test/loopback.cjs", import.meta.url));
const children = [];

function start(name, command, args, options) {
	const child = spawn(command, args, { stdio: ["ignore", "ignore", "inherit"], ...options });
	child.on("exit", (code, signal) => {
		if (!stopping) {
			console.error(`${name} stopped (${signal ?? code}); stopping the rest`);
			stop(1);
		}
	});
	children.push(child);
	return child;
}

/** Waits until `url` answers at all (any status). */
async function ready(url, name) {
	for (let i = 0; ; i++) {
		try {
			await fetch(url);
			return;
		} catch {
			if (i % 40 === 39) console.log(`waiting for ${name}…`);
			await new Promise((resolve) => setTimeout(resolve, 250));
		}
	}
}

let stopping = false;
function stop(code = 0) {
	stopping = true;
	for (const child of children) child.kill("SIGTERM");
	process.exit(code);
}
process.on("SIGINT", () => stop());
process.on("SIGTERM", () => stop());

start("tinylicious", process.execPath, ["-r", loopback, require.resolve("tinylicious/dist/index.js")], {
	env: { ...process.env, PORT: "7070", logger__level: "error" },
});
console.log("building and starting the token service (cargo run --release; the first build takes a few minutes)…");
start("token service", "cargo", ["run", "--release", "--quiet", "--bin", "handler"], { cwd: repo });
await Promise.all([ready("http://127.0.0.1:7070/", "tinylicious"), ready("http://127.0.0.1:7071/", "the token service")]);
const { origin } = await serveSample({ port: 8080 });
console.log(`\nOpen ${origin}/ , then open the URL it moves to (…/#<container id>) in a second window.\n`);
