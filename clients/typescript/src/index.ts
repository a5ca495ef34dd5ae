/**
 * A token provider for Fluid apps on Azure Fluid Relay whose tokens come from the Fluid token
 * service (an Azure Function): cached, retrying and offline-safe.
 *
 * @packageDocumentation
 */
export {
	type AccessTokenRequest,
	FunctionTokenProvider,
	type FunctionTokenProviderOptions,
	type RetryOptions,
	type TokenUser,
} from "./FunctionTokenProvider.js";
export { type TokenErrorType, TokenRequestError } from "./errors.js";
export {
	type CachedToken,
	LocalStorageTokenStore,
	MemoryTokenStore,
	type TokenStore,
} from "./store.js";
