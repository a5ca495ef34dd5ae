// The page of browser.test.mjs: the provider as an app bundles it, with the browser's own fetch.
import { FunctionTokenProvider } from "../../dist/esm/index.js";

globalThis.fetchToken = async ({ url, method, tenantId, documentId }) => {
	const provider = new FunctionTokenProvider({
		url,
		method,
		user: { id: "browser-user", name: "Bea", additionalDetails: { via: "chromium" } },
		retry: { attempts: 1 },
	});
	try {
		const first = await provider.fetchOrdererToken(tenantId, documentId);
		const second = await provider.fetchStorageToken(tenantId, documentId);
		return { jwt: first.jwt, fromCache: second.fromCache, sameToken: second.jwt === first.jwt };
	} catch (error) {
		return { error: { name: error.name, errorType: error.errorType, canRetry: error.canRetry, message: error.message } };
	}
};
