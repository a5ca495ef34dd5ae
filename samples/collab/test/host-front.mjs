// The Functions host's public side, in front of a handler started as the host starts it
// (FUNCTIONS_CUSTOMHANDLER_PORT): what a browser reaches in Azure, minus the platform. Hands each
// request to the handler the way the host does — forwarded unchanged with the host's headers
// (`enableForwardingHttpRequest`), or wrapped in the JSON invocation envelope (`POST
// /{FunctionName}`) and unwrapped from `Outputs.res` — so CORS is whatever the handler answers.
// Records each request's method and headers (a test can show what the browser sent). The Rust
// host emulator (tests/api/support/host_emulator.rs) is the complete one; this is its public
// side for browser tests. Loopback only.
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";

/** Serves on 127.0.0.1; `handlerUrl` is the handler's `http://127.0.0.1:N`; `mode` forwarding | envelope. */
export async function serveHostFront(handlerUrl, mode = "forwarding") {
	const requests = [];
	const server = createServer(async (request, response) => {
		const chunks = [];
		for await (const chunk of request) chunks.push(chunk);
		const body = Buffer.concat(chunks);
		requests.push({ method: request.method, url: request.url, headers: { ...request.headers } });
		const url = new URL(request.url, "http://host");
		const name = url.pathname.match(/^\/api\/([^/]+)\/?$/)?.[1];
		if (name === undefined) {
			response.writeHead(404).end();
			return;
		}
		try {
			const answer = mode === "envelope" ? await envelope(handlerUrl, name, url, request, body) : await forward(handlerUrl, url, request, body);
			response.writeHead(answer.status, answer.headers).end(answer.body);
		} catch {
			response.writeHead(500).end();
		}
	});
	await new Promise((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
	return {
		url: `http://127.0.0.1:${server.address().port}`,
		requests,
		close: () => new Promise((resolve) => server.close(resolve)),
	};
}

function hostHeaders() {
	return { "x-azure-functions-hostversion": "4.1040.0", "x-azure-functions-invocationid": randomUUID() };
}

async function forward(handlerUrl, url, request, body) {
	const headers = { ...request.headers, ...hostHeaders() };
	delete headers.host;
	delete headers.connection;
	const response = await fetch(`${handlerUrl}${url.pathname}${url.search}`, {
		method: request.method,
		headers,
		body: body.length > 0 ? body : undefined,
	});
	return { status: response.status, headers: [...response.headers].flat(), body: Buffer.from(await response.arrayBuffer()) };
}

async function envelope(handlerUrl, name, url, request, body) {
	const headers = {};
	for (const [key, value] of Object.entries(request.headers)) headers[key] = [].concat(value);
	const invocation = {
		Data: {
			req: {
				Url: `http://${request.headers.host}${url.pathname}${url.search}`,
				Method: request.method,
				Query: Object.fromEntries(url.searchParams),
				Headers: headers,
				Params: {},
				Identities: [],
				...(body.length > 0 ? { Body: body.toString("utf8") } : {}),
			},
		},
		Metadata: {},
	};
	const response = await fetch(`${handlerUrl}/${name}`, {
		method: "POST",
		headers: { "content-type": "application/json; charset=utf-8", ...hostHeaders() },
		body: JSON.stringify(invocation),
	});
	if (!response.ok) return { status: 500, headers: [], body: "" };
	const res = (await response.json()).Outputs.res;
	return { status: Number(res.statusCode ?? 200), headers: Object.entries(res.headers ?? {}).flat(), body: res.body ?? "" };
}
