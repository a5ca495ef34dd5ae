// Azure Fluid Relay's container-creation answer, in front of tinylicious (which does not give it).
//
// When the driver creates a container with `generateToken: true` (it does when the token provider
// has `documentPostCreateCallback`), Azure Fluid Relay answers `{ id, token }`, the token being
// `generateToken(tenantId, id, tenantKey, [], user)`: HS256 with the tenant key, no scopes, and
// the user of the token that created the container. Tinylicious answers only the id. This proxy
// passes everything through to tinylicious (HTTP and the socket.io WebSocket upgrade) and turns
// that one answer into Azure Fluid Relay's, signed with Fluid's own `generateToken`.
// Everything listens on 127.0.0.1.
import { createServer, request as httpRequest } from "node:http";
import { connect } from "node:net";

import { generateToken } from "@fluidframework/server-services-client";

/** Starts the proxy in front of tinylicious on `targetPort`; resolves with its endpoint. */
export async function startRelayProxy(targetPort, tenantKey) {
	const creations = [];
	const server = createServer((request, response) => {
		const chunks = [];
		request.on("data", (chunk) => chunks.push(chunk));
		request.on("end", () => {
			const body = Buffer.concat(chunks);
			const upstream = httpRequest(
				{ host: "127.0.0.1", port: targetPort, method: request.method, path: request.url, headers: request.headers },
				(answer) => {
					const creation = creationOf(request, body);
					if (creation === undefined || answer.statusCode !== 201) {
						response.writeHead(answer.statusCode, answer.headers);
						answer.pipe(response);
						return;
					}
					const parts = [];
					answer.on("data", (chunk) => parts.push(chunk));
					answer.on("end", () => {
						const id = JSON.parse(Buffer.concat(parts).toString());
						const token = generateToken(creation.tenantId, id, tenantKey, [], creation.user);
						creations.push({ id, user: creation.user });
						const json = JSON.stringify({ id, token });
						const headers = { ...answer.headers, "content-type": "application/json; charset=utf-8" };
						delete headers["content-length"];
						delete headers.etag;
						response.writeHead(201, headers).end(json);
					});
				},
			);
			upstream.on("error", () => response.destroy());
			upstream.end(body);
		});
	});
	// socket.io: the upgrade request and then the raw bytes both ways.
	server.on("upgrade", (request, socket, head) => {
		const upstream = connect(targetPort, "127.0.0.1", () => {
			const lines = [`${request.method} ${request.url} HTTP/${request.httpVersion}`];
			for (let i = 0; i < request.rawHeaders.length; i += 2) {
				lines.push(`${request.rawHeaders[i]}: ${request.rawHeaders[i + 1]}`);
			}
			upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
			upstream.write(head);
			socket.pipe(upstream).pipe(socket);
		});
		upstream.on("error", () => socket.destroy());
		socket.on("error", () => upstream.destroy());
	});
	await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
	return {
		endpoint: `http://127.0.0.1:${server.address().port}`,
		/** The containers created through the proxy with a creation token, and for whom. */
		creations,
		close: () => new Promise((resolve) => server.close(resolve)),
	};
}

/**
 * For a create request that asks for a creation token: the tenant and the user of the token it was
 * made with. The driver may send the request "restless" (a form whose fields carry the real
 * headers and body), so both shapes are read.
 */
function creationOf(request, body) {
	const match = /^\/documents\/([^/?]+)\/?(\?|$)/.exec(request.url);
	if (request.method !== "POST" || match === null) return undefined;
	let text = body.toString();
	let authorization = request.headers.authorization ?? "";
	if ((request.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded")) {
		const form = new URLSearchParams(text);
		text = form.get("body") ?? "";
		const header = form.getAll("header").find((h) => /^authorization:/i.test(h));
		authorization = header?.replace(/^authorization:\s*/i, "") ?? authorization;
	}
	let requested;
	try {
		requested = JSON.parse(text).generateToken === true;
	} catch {
		requested = false;
	}
	const jwt = /^Basic\s+(\S+)$/i.exec(authorization)?.[1];
	if (!requested || jwt === undefined) return undefined;
	const claims = JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());
	return { tenantId: decodeURIComponent(match[1]), user: claims.user };
}
