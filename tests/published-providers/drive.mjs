// Drives the AzureFunctionTokenProvider classes that @fluidframework/azure-client published, one
// per way they serialize a request (see package.json), against a token function URL, and prints
// what each got back as one JSON object: { "<version>": { load, storage, create } }.
//
// Usage: node drive.mjs <function url> <tenantId> <documentId> <user JSON>
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
/** Installed version alias → how that version's user type names the user's fields. */
const VERSIONS = {
	"1.1": ["userId", "userName"], // axios 0.21: additionalDetails as JSON text
	"1.2": ["userId", "userName"], // axios 0.28: raw bracket keys
	"2.0.0-rc.1": ["userId", "userName"], // axios 1.x: percent-encoded bracket keys
	"2.0.0-rc.5": ["id", "name"], // axios 1.x, and id/name instead of userId/userName
};

const [url, tenantId, documentId, userJson] = process.argv.slice(2);
const user = JSON.parse(userJson);
const results = {};
for (const [version, [id, name]] of Object.entries(VERSIONS)) {
	// The package root, as an app imports it (CommonJS main of each version).
	const { AzureFunctionTokenProvider } = require(`azure-client-${version}`);
	const provider = new AzureFunctionTokenProvider(url, { [id]: user.id, [name]: user.name, additionalDetails: user.additionalDetails });
	try {
		results[version] = {
			load: (await provider.fetchOrdererToken(tenantId, documentId)).jwt,
			storage: (await provider.fetchStorageToken(tenantId, documentId)).jwt,
			create: (await provider.fetchOrdererToken(tenantId)).jwt,
		};
	} catch (error) {
		results[version] = { error: `${error.message} ${JSON.stringify(error.response?.data ?? "")}` };
	}
}
process.stdout.write(JSON.stringify(results));
