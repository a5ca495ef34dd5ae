/**
 * The one retry loop: every request to the service (a token, or registering a new container's
 * creator) runs through {@link withRetries}.
 */
import { TokenRequestError } from "./errors.js";

/** How hard to try, from the provider's options with their defaults applied. */
export interface RetryPolicy {
	/** Ordinary tries in all, including the first (at least 1). */
	readonly attempts: number;
	/** Full-jitter exponential backoff: a random delay below `min(maxDelayMs, baseDelayMs · 2ⁿ)`. */
	readonly baseDelayMs: number;
	readonly maxDelayMs: number;
	/** One try (access token, request and answer) is given up after this long. */
	readonly timeoutMs: number;
	/** All tries and the waits between them end within this long. */
	readonly maxWaitMs: number;
	/** Whether a 401 earns one more try with a refreshed access token (there is `getAccessToken`). */
	readonly refreshAfter401: boolean;
}

/** What one try is told. */
export interface Attempt {
	/** Ask `getAccessToken` for a new access token: the service refused the last one (401). */
	readonly forceRefresh: boolean;
	/** Aborted when the try runs out of time. */
	readonly signal: AbortSignal;
}

/** A `Retry-After` may ask for a longer wait than the backoff cap, up to this. */
const MAX_RETRY_AFTER_MS = 60_000;

/**
 * The tries a request may still make: `retriesLeft` ordinary retries of transient failures, and
 * the `refreshTry`, one immediate extra try after a 401 with a freshly forced access token, which
 * neither spends an ordinary retry nor lengthens the backoff.
 */
export class AttemptBudget {
	private retriesLeft: number;
	private refreshTry: "available" | "spent" | "none";
	/** Ordinary retries spent so far: the backoff's exponent. */
	public retriesSpent = 0;

	constructor(attempts: number, refreshAfter401: boolean) {
		this.retriesLeft = Math.max(1, attempts) - 1;
		this.refreshTry = refreshAfter401 ? "available" : "none";
	}

	/** Takes the refresh try after a 401; false when there is none or it was taken. */
	public takeRefreshTry(): boolean {
		if (this.refreshTry !== "available") return false;
		this.refreshTry = "spent";
		return true;
	}

	/** Takes an ordinary retry; false when all have been spent. */
	public takeRetry(): boolean {
		if (this.retriesLeft === 0) return false;
		this.retriesLeft--;
		this.retriesSpent++;
		return true;
	}
}

/**
 * Runs `attempt` until it succeeds or fails for good. A 401 is retried at once with
 * `forceRefresh` when the budget has its refresh try; a transient {@link TokenRequestError}
 * (`canRetry`) is retried after a full-jitter backoff, or after `Retry-After` when the service
 * sent one, as long as an ordinary retry is left and the wait ends before `maxWaitMs`. Each try
 * is aborted after `timeoutMs` (or what is left of `maxWaitMs`). Anything else is thrown as is.
 */
export async function withRetries<T>(policy: RetryPolicy, attempt: (attempt: Attempt) => Promise<T>): Promise<T> {
	const deadline = Date.now() + policy.maxWaitMs;
	const budget = new AttemptBudget(policy.attempts, policy.refreshAfter401);
	let forceRefresh = false;
	for (;;) {
		const timeoutMs = Math.min(policy.timeoutMs, deadline - Date.now());
		try {
			return await within(timeoutMs, (signal) => attempt({ forceRefresh, signal }));
		} catch (error) {
			if (!(error instanceof TokenRequestError)) throw error;
			// The access token may have expired or been revoked since it was cached.
			forceRefresh = error.status === 401 && budget.takeRefreshTry();
			if (forceRefresh) continue;
			if (!error.canRetry || !budget.takeRetry()) throw error;
			const delay = delayBefore(budget.retriesSpent, error, policy);
			// No time left for another try: the error is retryable, Fluid asks again later.
			if (Date.now() + delay >= deadline) throw error;
			await sleep(delay);
		}
	}
}

/** The wait before the `retry`-th retry: the service's `Retry-After` (capped), else backoff. */
function delayBefore(retry: number, error: TokenRequestError, policy: RetryPolicy): number {
	if (error.retryAfterSeconds !== undefined) {
		return Math.min(MAX_RETRY_AFTER_MS, error.retryAfterSeconds * 1000);
	}
	return Math.random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
}

/** `run`, given up (and its signal aborted) after `timeoutMs`. */
async function within<T>(timeoutMs: number, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
	const controller = new AbortController();
	let timer: ReturnType<typeof setTimeout> | undefined;
	const timedOut = new Promise<never>((_, reject) => {
		timer = setTimeout(() => {
			controller.abort();
			reject(
				new TokenRequestError(`The token service did not answer within ${Math.round(timeoutMs)} ms.`, {
					errorType: "genericNetworkError",
					canRetry: true,
				}),
			);
		}, Math.max(0, timeoutMs));
	});
	try {
		// The race also ends a fetch (or getAccessToken) that ignores the abort signal.
		return await Promise.race([run(controller.signal), timedOut]);
	} finally {
		clearTimeout(timer);
	}
}

function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}
