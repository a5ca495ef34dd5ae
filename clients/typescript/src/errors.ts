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

/** A telemetry property value as Fluid logs them (`TelemetryBaseEventPropertyType`, maybe tagged). */
export type TelemetryPropertyValue =
	| string
	| number
	| boolean
	| undefined
	| { readonly value: string | number | boolean | undefined; readonly tag: string };

/** Telemetry properties (Fluid's `ITelemetryBaseProperties`). */
export type TelemetryProperties = Record<string, TelemetryPropertyValue>;

/**
 * The error a token request ends with when no token can be returned.
 *
 * It carries the HTTP status and the RFC 9457 problem the service answered with, and what the
 * Fluid driver reads to decide what to do next: `errorType`, `canRetry` (transient failures: the
 * container keeps reconnecting instead of closing) and `retryAfterSeconds`.
 *
 * It is a Fluid error as `@fluidframework/telemetry-utils` recognizes one (`isFluidError`:
 * `errorType`, `message`, `errorInstanceId`, `getTelemetryProperties` and
 * `addTelemetryProperties`), so the loader keeps it as it is instead of normalizing it into a
 * `genericError`: a container closed by it is closed with this error, its `errorType` included.
 */
export class TokenRequestError extends Error {
	override readonly name = "TokenRequestError";
	/** What kind of failure this is, in Fluid's vocabulary. */
	readonly errorType: TokenErrorType;
	/** A unique id for this error, which Fluid's telemetry uses to tie its reports together. */
	readonly errorInstanceId: string = newInstanceId();
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
	/** Properties added by Fluid's telemetry (`addTelemetryProperties`), logged with the error. */
	readonly #telemetry: TelemetryProperties = {};

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

	/**
	 * What Fluid's telemetry logs for this error: the added properties, then the error's own
	 * (no token, no access token; the `detail` only as part of the message).
	 */
	getTelemetryProperties(): TelemetryProperties {
		return {
			...this.#telemetry,
			errorType: this.errorType,
			canRetry: this.canRetry,
			statusCode: this.statusCode,
			retryAfterSeconds: this.retryAfterSeconds,
			problemType: this.problemType,
			message: this.message,
			stack: this.stack,
			errorInstanceId: this.errorInstanceId,
		};
	}

	/**
	 * Adds properties to log with this error (Fluid's `ITelemetryPropertiesExt`: arrays and flat
	 * objects are kept as JSON); like Fluid's own errors, it keeps the ones already set.
	 */
	addTelemetryProperties(properties: Readonly<Record<string, unknown>>): void {
		for (const [name, value] of Object.entries(properties)) {
			if (this.#telemetry[name] === undefined) this.#telemetry[name] = telemetryValue(value);
		}
	}
}

function telemetryValue(value: unknown): TelemetryPropertyValue {
	if (typeof value === "object" && value !== null && typeof (value as { tag?: unknown }).tag === "string") {
		const tagged = value as { value: unknown; tag: string };
		return { value: untagged(tagged.value), tag: tagged.tag };
	}
	return untagged(value);
}

function untagged(value: unknown): string | number | boolean | undefined {
	switch (typeof value) {
		case "string":
		case "number":
		case "boolean":
		case "undefined":
			return value;
		case "object":
			try {
				return JSON.stringify(value);
			} catch {
				return String(value);
			}
		default:
			return String(value);
	}
}

/**
 * A random UUID v4. `crypto.randomUUID` needs a secure context, `crypto.getRandomValues` does not
 * (and neither is awaited); `Math.random` only where there is no Web Crypto at all.
 */
function newInstanceId(): string {
	const bytes = new Uint8Array(16);
	const crypto = globalThis.crypto as Crypto | undefined;
	if (typeof crypto?.getRandomValues === "function") {
		crypto.getRandomValues(bytes);
	} else {
		for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
	}
	bytes[6] = (bytes[6]! & 0x0f) | 0x40;
	bytes[8] = (bytes[8]! & 0x3f) | 0x80;
	const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
	return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
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
