export interface TokenBucketOptions {
  /** Tokens added per second. */
  readonly ratePerSecond: number;
  /** Most tokens held at once: the burst allowed after a quiet spell. Default = one second's worth (min 1). */
  readonly burst?: number;
}

export type TakeResult = { readonly ok: true } | { readonly ok: false; readonly retryAfterMs: number };

/**
 * A token bucket refilled continuously from the injected clock's readings (no timer):
 * allows `ratePerSecond` on average with bursts of up to `burst`.
 */
export class TokenBucket {
  readonly ratePerSecond: number;
  readonly burst: number;
  #tokens: number;
  #stampMs: number;

  constructor(options: TokenBucketOptions, nowMs: number) {
    if (!(options.ratePerSecond > 0)) throw new RangeError(`ratePerSecond must be > 0, got ${options.ratePerSecond}`);
    this.ratePerSecond = options.ratePerSecond;
    this.burst = options.burst ?? Math.max(1, options.ratePerSecond);
    if (!(this.burst >= 1)) throw new RangeError(`burst must be >= 1, got ${this.burst}`);
    this.#tokens = this.burst;
    this.#stampMs = nowMs;
  }

  /** Tokens available at `nowMs` (fractional). */
  available(nowMs: number): number {
    this.#refill(nowMs);
    return this.#tokens;
  }

  tryTake(nowMs: number, n = 1): TakeResult {
    this.#refill(nowMs);
    if (this.#tokens >= n) {
      this.#tokens -= n;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil(((n - this.#tokens) / this.ratePerSecond) * 1000) };
  }

  /**
   * Take `n` tokens spent elsewhere (by other nodes of a fleet, learned late): the balance
   * may go below zero, and the debt is paid back by the refill before anything is admitted
   * here, so what the fleet admitted is never forgotten.
   */
  debit(nowMs: number, n: number): void {
    this.#refill(nowMs);
    this.#tokens -= n;
  }

  #refill(nowMs: number): void {
    const elapsed = nowMs - this.#stampMs;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.ratePerSecond) / 1000);
      this.#stampMs = nowMs;
    }
  }
}
