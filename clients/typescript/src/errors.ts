/**
 * The `errorType` values the Fluid loader and apps branch on, from
 * `@fluidframework/driver-definitions` (`DriverErrorTypes`) and `@fluidframework/core-interfaces`
 * (`throttlingError`). Spelled out here so the package keeps no runtime dependency on Fluid.
 */
export type TokenErrorType =
	/** 401/403: the service refused this caller (sign in again, or ask for access). */
	| "authorizationError"
	/** 429: too many requests; `retryAfterSeconds` says when to try again. */
	| "throttlingError"
	/** No answer, a timeout, or a server error (408, 5xx): try again later. */
	| "genericNetworkError"
	/** Any other refusal (400, 404 unknown tenant, an answer without a token): asking again will not help. */
	| "fetchTokenError";

/**
 * The error a token request ends with when no token can be returned.
 *
 * It carries the HTTP status and the RFC 9457 problem the service answered with, and what the
 * Fluid driver reads to decide what to do next: `errorType`, `canRetry` (transient failures: the
 * container keeps reconnecting instead of closing) and `retryAfterSeconds`.
 */
export class TokenRequestError extends Error {
	override readonly name = "TokenRequestError";
	/** What kind of failure this is, in Fluid's vocabulary. */
	readonly errorType: TokenErrorType;
	/** HTTP status of the last answer; `undefined` when the service could not be reached. */
	readonly status: number | undefined;
	/** The same as `status`, under the name Fluid's network errors use. */
	readonly statusCode: number | undefined;
	/** The problem's `type` URI, if the service sent a problem document. */
	readonly problemType: string | undefined;
	/** The problem's `detail` (which parameter was wrong and why), if any. */
	readonly detail: string | undefined;
	/** Whether asking again later may succeed (network error, timeout, 408, 429, 5xx). */
	readonly canRetry: boolean;
	/** The service's `Retry-After` (always set for `throttlingError`). */
	readonly retryAfterSeconds: number | undefined;
	/** The tenant asked for, on `authorizationError` and unknown-tenant errors. */
	readonly tenantId: string | undefined;

	constructor(
		message: string,
		options: {
			errorType: TokenErrorType;
			status?: number | undefined;
			problemType?: string | undefined;
			detail?: string | undefined;
			canRetry: boolean;
			retryAfterSeconds?: number | undefined;
			tenantId?: string | undefined;
			cause?: unknown;
		},
	) {
		super(message, options.cause === undefined ? undefined : { cause: options.cause });
		this.errorType = options.errorType;
		this.status = options.status;
		this.statusCode = options.status;
		this.problemType = options.problemType;
		this.detail = options.detail;
		this.canRetry = options.canRetry;
		this.retryAfterSeconds = options.retryAfterSeconds;
		this.tenantId = options.tenantId;
	}
}

/** Statuses worth retrying: the request may succeed unchanged later. */
export function isTransientStatus(status: number): boolean {
	return status === 408 || status === 429 || status >= 500;
}

/** The `errorType` for an HTTP status the service answered with. */
export function errorTypeOf(status: number): TokenErrorType {
	if (status === 401 || status === 403) return "authorizationError";
	if (status === 429) return "throttlingError";
	return isTransientStatus(status) ? "genericNetworkError" : "fetchTokenError";
}
