// The baseline: the Azure Fluid Relay token function of the Learn sample ("How to: Write a
// TokenProvider with an Azure Function"), with its argument-order bug fixed, served by a plain
// Node http server. Same inputs, same key source (TENANT_KEYS) and same statuses as the Rust
// handler's core path: 400 without tenantId, 404 for an unknown tenant, 200 with the raw JWT.
import http from "node:http";
import { generateToken } from "@fluidframework/azure-service-utils";

const keys = JSON.parse(process.env.TENANT_KEYS ?? "{}");
const port = Number(process.env.PORT ?? 7072);
const allScopes = ["doc:read", "doc:write", "summary:write"];

function respond(res, status, body) {
	res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" });
	res.end(body);
}

const server = http.createServer((req, res) => {
	const url = new URL(req.url, "http://localhost");
	if (url.pathname === "/") return respond(res, 200, "ready");
	if (url.pathname !== "/api/TokenFunction") return respond(res, 404, "Not found");
	const chunks = [];
	req.on("data", (chunk) => chunks.push(chunk));
	req.on("end", () => {
		let body = {};
		if (chunks.length > 0) {
			try {
				body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
			} catch {
				return respond(res, 400, "Invalid JSON body");
			}
		}
		const param = (name) => url.searchParams.get(name) || body?.[name];
		const tenantId = param("tenantId");
		const documentId = param("documentId");
		const userId = param("userId");
		const userName = param("userName");
		const scopes = param("scopes");
		if (!tenantId) return respond(res, 400, "No tenantId provided in query params");
		const key = keys[tenantId];
		if (!key) return respond(res, 404, `No key found for the provided tenantId: ${tenantId}`);
		const user = { name: userName, id: userId };
		const token = generateToken(
			tenantId,
			key,
			scopes ? (Array.isArray(scopes) ? scopes : scopes.split(",")) : allScopes,
			documentId,
			user,
		);
		respond(res, 200, token);
	});
});

server.listen(port, "127.0.0.1", () => {
	console.log(JSON.stringify({ message: "listening", address: `127.0.0.1:${server.address().port}` }));
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
