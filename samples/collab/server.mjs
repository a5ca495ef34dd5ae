// A tiny static server for dist/ on its own origin (loopback only). `node server.mjs [port]`.
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";

const TYPES = {
	".html": "text/html; charset=utf-8",
	".js": "text/javascript; charset=utf-8",
	".json": "application/json",
	".map": "application/json",
};

/** Serves `root` on 127.0.0.1:`port` (0: any free port); resolves with the origin and a closer. */
export async function serveSample({ port = 0, root = new URL("dist/", import.meta.url) } = {}) {
	const server = createServer(async (request, response) => {
		const path = new URL(request.url, "http://x").pathname;
		const name = path === "/" ? "index.html" : path.slice(1);
		const type = TYPES[name.slice(name.lastIndexOf("."))];
		if (name.includes("..") || name.includes("/") || type === undefined) {
			response.writeHead(404).end();
			return;
		}
		try {
			const body = await readFile(new URL(name, root));
			response.writeHead(200, { "content-type": type, "cache-control": "no-store" }).end(body);
		} catch {
			response.writeHead(404).end();
		}
	});
	await new Promise((resolve, reject) => server.once("error", reject).listen(port, "127.0.0.1", resolve));
	return {
		origin: `http://127.0.0.1:${server.address().port}`,
		close: () => new Promise((resolve) => server.close(resolve)),
	};
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
	const { origin } = await serveSample({ port: Number(process.argv[2] ?? 8080) });
	console.log(`serving the sample at ${origin}`);
}
