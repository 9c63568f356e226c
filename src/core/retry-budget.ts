import type { CircuitBreaker } from './circuit-breaker.js';
import { TokenBucket } from './token-bucket.js';

export interface RetryBudgetOptions {
  /** Retries in flight may be at most this percentage of requests in flight. Default 20. */
  readonly percent?: number;
  /** Retries always allowed per second, however few requests are active. Default 3. */
  readonly minPerSecond?: number;
}

/**
 * Caps retries so that a failing backend is not hit by a retry storm (Envoy's retry
 * budget; Finagle's floor of retries per second). A retry is allowed when retries in
 * flight stay within `percent` of active requests, or else when the per-second floor
 * still has a token: low-traffic clusters can still retry, busy ones never amplify
 * load by more than the percentage.
 */
export class RetryBudget {
  readonly percent: number;
  #activeRequests = 0;
  #activeRetries = 0;
  readonly #floor: TokenBucket | undefined;

  constructor(options: RetryBudgetOptions, nowMs: number) {
    this.percent = options.percent ?? 20;
    const minPerSecond = options.minPerSecond ?? 3;
    this.#floor = minPerSecond > 0 ? new TokenBucket({ ratePerSecond: minPerSecond, burst: minPerSecond }, nowMs) : undefined;
  }

  get activeRequests(): number {
    return this.#activeRequests;
  }

  get activeRetries(): number {
    return this.#activeRetries;
  }

  requestStarted(): void {
    this.#activeRequests++;
  }

  requestEnded(): void {
    this.#activeRequests = Math.max(0, this.#activeRequests - 1);
  }

  /** Ask to retry; true means the retry is counted in flight until `retryEnded`. */
  tryRetry(nowMs: number): boolean {
    const allowed = (this.#activeRetries + 1) * 100 <= this.percent * this.#activeRequests;
    if (!allowed && !this.#floor?.tryTake(nowMs).ok) return false;
    this.#activeRetries++;
    return true;
  }

  retryEnded(): void {
    this.#activeRetries = Math.max(0, this.#activeRetries - 1);
  }
}

/** Why a failed try was not tried again (each counted in meridian_retries_refused_total). */
export type RetryRefusal = 'not_replayable' | 'attempts_exhausted' | 'max_retries' | 'budget';

export interface FailedTry {
  /** Tries made so far, the failed one included. */
  readonly tries: number;
  /** Retries allowed after the first try (`retries.attempts`). */
  readonly attempts: number;
  /** The try could not connect: nothing of the request reached the upstream. */
  readonly nothingSent: boolean;
  /** The request can be sent again: idempotent (or nothing sent), and no byte of its body consumed. */
  readonly replayable: boolean;
}

export type RetryVerdict =
  /** `counted`: the retry holds a budget and a max_retries slot until the request ends. */
  | { readonly retry: true; readonly counted: boolean }
  | { readonly retry: false; readonly reason: RetryRefusal };

/**
 * May a failed try, whose condition `retry_on` covers, be tried again? In order: the
 * request must be replayable, within its attempts, then within the cluster's max_retries
 * breaker and its retry budget, both of which count the retry while it runs.
 *
 * A try that could not connect is the exception: it sent nothing, so its retry is the
 * request's first delivery to any upstream and adds no load there, which is what the
 * breaker and the budget guard against. It is bounded by `attempts` alone and takes no
 * slot of either. Envoy counts it like any retry (a budget with min_retry_concurrency 3):
 * when one backend of two dies under load, half the requests in flight fail to connect
 * at once, more than 20% of them plus 3, and the rest become 503s although another
 * backend could have served them.
 */
export function decideRetry(t: FailedTry, breaker: CircuitBreaker, budget: RetryBudget, nowMs: number): RetryVerdict {
  if (!t.replayable) return { retry: false, reason: 'not_replayable' };
  if (t.tries > t.attempts) return { retry: false, reason: 'attempts_exhausted' };
  if (t.nothingSent) return { retry: true, counted: false };
  if (!breaker.tryAcquire('retries')) return { retry: false, reason: 'max_retries' };
  if (!budget.tryRetry(nowMs)) {
    breaker.release('retries');
    return { retry: false, reason: 'budget' };
  }
  return { retry: true, counted: true };
}
