// A shared dice: whoever rolls, everyone sees the result and who is here. Containers are created
// on first visit and shared by their URL (#<container id>).
import { AzureClient } from "@fluidframework/azure-client";
import { SharedMap } from "fluid-framework/legacy";
import { FunctionTokenProvider } from "fluid-function-token-provider";

import { loadConfig } from "./config.js";

const FACES = ["⚀", "⚁", "⚂", "⚃", "⚄", "⚅"];
const schema = { initialObjects: { dice: SharedMap } };
const $ = (id) => document.getElementById(id);

function status(text, error = false) {
	$("status").textContent = text;
	$("status").className = error ? "error" : "";
}

/**
 * Who you are. With `AUTH_MODE=none` the app names the user; with `entra`/`easyauth` the service
 * takes the user from the sign-in, and your sign-in code (MSAL, say) sets
 * `window.collabGetAccessToken = async ({ forceRefresh }) => accessToken` before this runs.
 */
function tokenProvider(config) {
	// crypto.randomUUID needs a secure context; http://<LAN address> is not one.
	const id = sessionStorage.getItem("collab-user-id") ?? Math.random().toString(36).slice(2, 10);
	sessionStorage.setItem("collab-user-id", id);
	const name = config.name ?? `Guest ${id.slice(0, 4)}`;
	const getAccessToken = globalThis.collabGetAccessToken;
	return new FunctionTokenProvider(
		typeof getAccessToken === "function"
			? { url: config.tokenUrl, getAccessToken }
			: { url: config.tokenUrl, user: { id, name } },
	);
}

function connection(config) {
	const { type, endpoint, tenantId } = config.fluid;
	const provider = tokenProvider(config);
	return type === "remote"
		? { type: "remote", endpoint, tenantId, tokenProvider: provider }
		: { type: "local", endpoint, tokenProvider: provider };
}

function render(dice, audience) {
	const value = dice.get("value");
	const rolls = dice.get("rolls") ?? 0;
	$("dice").textContent = value === undefined ? "–" : FACES[value - 1];
	$("rolls").textContent = rolls === 0 ? "No rolls yet" : `Roll #${rolls}: ${value} by ${dice.get("by")}`;
	const names = [...audience.getMembers().values()].map((member) => member.name).sort();
	$("present").replaceChildren(
		...names.map((name) => Object.assign(document.createElement("li"), { textContent: name })),
	);
}

async function main() {
	const config = await loadConfig();
	const client = new AzureClient({ connection: connection(config) });
	status("Connecting…");
	let container, services;
	const id = location.hash.slice(1);
	if (id) {
		({ container, services } = await client.getContainer(id, schema, "2"));
	} else {
		({ container, services } = await client.createContainer(schema, "2"));
		location.hash = await container.attach();
	}
	const { dice } = container.initialObjects;
	const { audience } = services;
	const update = () => render(dice, audience);
	dice.on("valueChanged", update);
	audience.on("membersChanged", update);
	container.on("connected", () => status(`Connected as ${audience.getMyself()?.name ?? "…"}`));
	container.on("disconnected", () => status("Reconnecting…"));
	container.on("disposed", (error) => status(`Closed: ${error?.message ?? "disposed"}`, true));
	$("roll").onclick = () => {
		dice.set("by", audience.getMyself()?.name ?? "someone");
		dice.set("rolls", (dice.get("rolls") ?? 0) + 1);
		dice.set("value", 1 + Math.floor(Math.random() * 6));
	};
	$("roll").disabled = false;
	update();
	if (container.connectionState === 2) status(`Connected as ${audience.getMyself()?.name ?? "…"}`);
}

main().catch((error) => {
	// Shown, not logged: a token error's message never holds the token.
	status(`Could not start: ${error?.message ?? error}`, true);
});
