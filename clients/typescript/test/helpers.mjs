// Shared test helpers: fake JWTs, a scripted fetch, and the Rust handler as a child process.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const handlerBin =
	process.env.HANDLER_BIN ?? join(here, "..", "..", "..", "target", "debug", "handler");

/** A JWT-shaped string whose payload has `exp` (not signed: the provider never verifies). */
export function fakeJwt(exp, extra = {}) {
	const encode = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
	return `${encode({ alg: "HS256", typ: "JWT" })}.${encode({ exp, ...extra })}.c2ln`;
}

export function jsonResponse(status, body, headers = {}) {
	return new Response(JSON.stringify(body), {
		status,
		headers: { "content-type": status < 400 ? "application/json" : "application/problem+json", ...headers },
	});
}

/**
 * A fetch that answers from `script` (responses, errors to throw, or functions of the request),
 * one per call, and records the calls.
 */
export function scriptedFetch(script) {
	const calls = [];
	const fetch = async (url, init = {}) => {
		calls.push({ url: String(url), init });
		const next = script.length > 1 ? script.shift() : script[0];
		const answer = typeof next === "function" ? await next(String(url), init) : next;
		if (answer instanceof Error) throw answer;
		return answer.clone();
	};
	return { fetch, calls };
}

/** Lets pending promise callbacks run. */
export async function flush() {
	for (let i = 0; i < 20; i++) await Promise.resolve();
}

export async function freePort() {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const { port } = server.address();
			server.close(() => resolve(port));
		});
	});
}

/**
 * Starts the Rust handler and resolves once it listens, with its base URL (`http://127.0.0.1:N`).
 *
 * - `port`: the port to take (default 0: the handler binds any free port, and the address is read
 *   from its `listening` log line, so no other process can take the port in between);
 * - `localSettings`: run it standalone, as `cargo run` does, with this local.settings.json
 *   (`Host.LocalHttpPort` is set to `port`); otherwise it runs as under the Functions host.
 *
 * stdout is read to the end (a pipe nobody reads would stall the handler); its lines are in `logs`.
 */
export async function startHandler(env, { port = 0, localSettings } = {}) {
	const cwd = mkdtempSync(join(tmpdir(), "provider-handler-"));
	const childEnv = { PATH: process.env.PATH, ...env };
	if (localSettings === undefined) {
		childEnv.FUNCTIONS_CUSTOMHANDLER_PORT = String(port);
	} else {
		const settings = { ...localSettings, Host: { ...localSettings.Host, LocalHttpPort: port } };
		writeFileSync(join(cwd, "local.settings.json"), JSON.stringify(settings));
	}
	const child = spawn(handlerBin, [], { cwd, env: childEnv, stdio: ["ignore", "pipe", "inherit"] });
	const logs = [];
	const address = await new Promise((resolve, reject) => {
		child.once("error", reject);
		child.once("exit", (code) => reject(new Error(`the handler exited (${code}) before listening`)));
		createInterface({ input: child.stdout }).on("line", (line) => {
			logs.push(line);
			const event = parseJson(line);
			if (event?.message === "listening") resolve(event.address);
		});
	});
	child.removeAllListeners("exit");
	return { child, url: `http://${address}`, logs };
}

function parseJson(line) {
	try {
		return JSON.parse(line);
	} catch {
		return undefined;
	}
}

/** Polls `url` until any HTTP answer (readiness), failing if `child` exits first. */
export async function waitForHttp(url, child, timeoutMs = 30_000) {
	const deadline = Date.now() + timeoutMs;
	let exited = false;
	child.once("exit", () => (exited = true));
	for (;;) {
		try {
			await fetch(url);
			return;
		} catch {
			if (exited) throw new Error(`process for ${url} exited before answering`);
			if (Date.now() > deadline) throw new Error(`${url} did not answer`);
			await new Promise((r) => setTimeout(r, 25));
		}
	}
}

export async function stop(child) {
	if (child.exitCode !== null || child.signalCode !== null) return;
	const exited = new Promise((resolve) => child.once("exit", resolve));
	child.kill("SIGKILL");
	await exited;
}
