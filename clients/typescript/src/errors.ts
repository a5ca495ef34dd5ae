/**
 * The error a token request ends with when no token can be returned.
 *
 * It carries the HTTP status and the RFC 9457 problem the service answered with, and the two
 * properties the Fluid driver reads to decide what to do next: `canRetry` (transient failures:
 * the container keeps reconnecting instead of closing) and `retryAfterSeconds`.
 */
export class TokenRequestError extends Error {
	override readonly name = "TokenRequestError";
	/** HTTP status of the last answer; `undefined` when the service could not be reached. */
	readonly status: number | undefined;
	/** The problem's `type` URI, if the service sent a problem document. */
	readonly problemType: string | undefined;
	/** The problem's `detail` (which parameter was wrong and why), if any. */
	readonly detail: string | undefined;
	/** Whether asking again later may succeed (network error, 408, 429, 5xx). */
	readonly canRetry: boolean;
	/** The service's `Retry-After`, when it sent one. */
	readonly retryAfterSeconds: number | undefined;

	constructor(
		message: string,
		options: {
			status?: number | undefined;
			problemType?: string | undefined;
			detail?: string | undefined;
			canRetry: boolean;
			retryAfterSeconds?: number | undefined;
			cause?: unknown;
		},
	) {
		super(message, options.cause === undefined ? undefined : { cause: options.cause });
		this.status = options.status;
		this.problemType = options.problemType;
		this.detail = options.detail;
		this.canRetry = options.canRetry;
		this.retryAfterSeconds = options.retryAfterSeconds;
	}
}

/** Statuses worth retrying: the request may succeed unchanged later. */
export function isTransientStatus(status: number): boolean {
	return status === 408 || status === 429 || status >= 500;
}
