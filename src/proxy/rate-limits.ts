import { TokenBucket, type TakeResult } from '../core/token-bucket.js';

export interface RateLimitOptions {
  readonly requestsPerSecond: number;
  readonly burst?: number;
  readonly per: 'route' | 'client_ip';
}

/** Per-client buckets kept at most: past this, the least recently seen clients are forgotten. */
const MAX_CLIENTS = 100_000;

/**
 * A route's local rate limit: one token bucket for the route, or one per client IP. A
 * client forgotten under memory pressure starts again with a full bucket, which errs on
 * the side of serving.
 */
export class RouteRateLimiter {
  readonly #o: RateLimitOptions;
  readonly #shared: TokenBucket | undefined;
  readonly #perClient = new Map<string, TokenBucket>();

  constructor(options: RateLimitOptions, nowMs: number) {
    this.#o = options;
    this.#shared = options.per === 'route' ? this.#bucket(nowMs) : undefined;
  }

  take(clientIp: string, nowMs: number): TakeResult {
    if (this.#shared) return this.#shared.tryTake(nowMs);
    let bucket = this.#perClient.get(clientIp);
    if (bucket === undefined) {
      if (this.#perClient.size >= MAX_CLIENTS) {
        const oldest = this.#perClient.keys().next().value;
        if (oldest !== undefined) this.#perClient.delete(oldest);
      }
      bucket = this.#bucket(nowMs);
    } else {
      this.#perClient.delete(clientIp); // re-insert: Map order doubles as recency order
    }
    this.#perClient.set(clientIp, bucket);
    return bucket.tryTake(nowMs);
  }

  #bucket(nowMs: number): TokenBucket {
    return new TokenBucket({ ratePerSecond: this.#o.requestsPerSecond, ...(this.#o.burst === undefined ? {} : { burst: this.#o.burst }) }, nowMs);
  }
}
