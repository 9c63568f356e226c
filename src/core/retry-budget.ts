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
