/**
 * Where the app gets tokens and talks to Fluid: `config.json` beside the page, then the query
 * string on top of it, so one build serves local and remote runs.
 *
 * - `tokenUrl`: the token function (`…/api/TokenFunction`, with `?code=` when it needs a key);
 * - `fluid.type`: `local` (tinylicious; tenant `local`) or `remote` (Azure Fluid Relay, which
 *   needs `fluid.tenantId`); `fluid.endpoint`: the service URL;
 * - query: `tokenUrl`, `type`, `endpoint`, `tenantId`, `name` (your display name).
 */
export async function loadConfig(location = globalThis.location) {
	const response = await fetch(new URL("config.json", location.href), { cache: "no-store" });
	const file = response.ok ? await response.json() : {};
	const query = new URLSearchParams(location.search);
	const fluid = { type: "local", ...file.fluid };
	for (const name of ["type", "endpoint", "tenantId"]) {
		if (query.has(name)) fluid[name] = query.get(name);
	}
	const config = { tokenUrl: query.get("tokenUrl") ?? file.tokenUrl, fluid, name: query.get("name") ?? undefined };
	if (!config.tokenUrl) throw new Error("config: tokenUrl is missing (config.json or ?tokenUrl=)");
	if (!fluid.endpoint) throw new Error("config: fluid.endpoint is missing (config.json or ?endpoint=)");
	if (fluid.type === "remote" && !fluid.tenantId) throw new Error("config: fluid.tenantId is needed for Azure Fluid Relay");
	if (fluid.type !== "local" && fluid.type !== "remote") throw new Error(`config: fluid.type must be local or remote, not ${fluid.type}`);
	return config;
}
