import { TokenBucket, type TakeResult } from '../core/token-bucket.js';

export interface RateLimitOptions {
  readonly requestsPerSecond: number;
  readonly burst?: number;
  readonly per: 'route' | 'client_ip';
  /** `global`: the fleet shares the limit (docs/fleet.md); absent = `local`. */
  readonly scope?: 'local' | 'global';
  readonly consistency?: 'strong' | 'local';
  readonly onUnavailable?: 'allow' | 'deny';
}

/** A limit's answer: a take, or (a `strong` global limit with `on_unavailable: deny`) no answer from Redis. */
export type LimitDecision = TakeResult | typeof UNAVAILABLE;
export const UNAVAILABLE = { ok: false, unavailable: true } as const;

/**
 * One atomic fleet-wide take (src/fleet's Fleet.take): 'unavailable' when Redis did not
 * answer in time. Declared here so the proxy does not import the fleet.
 */
export type GlobalTake = (key: string, ratePerSecond: number, burst: number) => Promise<TakeResult | 'unavailable'>;

/** Per-client buckets kept at most: past this, the least recently seen clients are forgotten. */
const MAX_CLIENTS = 100_000;
const ADMIT: TakeResult = { ok: true };

/**
 * A route's rate limit: one token bucket for the route, or one per client IP. A client
 * forgotten under memory pressure starts again with a full bucket, which errs on the side
 * of serving. A `global` limit with `consistency: local` is the same bucket, which the
 * fleet also debits for what other nodes admitted (`debit`); one with `consistency:
 * strong` is decided in Redis before the request is forwarded (`decide`), and the local
 * buckets stand in only while no fleet is attached.
 */
export class RouteRateLimiter {
  /** The fleet-wide name of this limit: `${listener}/${route index}`. */
  readonly key: string;
  readonly strong: boolean;
  readonly burst: number;
  readonly #o: RateLimitOptions;
  readonly #shared: TokenBucket | undefined;
  readonly #perClient = new Map<string, TokenBucket>();
  /** Strong decisions made before forward(), read once by admission. */
  readonly #decided = new WeakMap<object, LimitDecision>();
  #admitted = 0;
  /** Set by the fleet when `sync:` is configured. */
  globalTake: GlobalTake | undefined;

  constructor(options: RateLimitOptions, nowMs: number, key = '') {
    this.#o = options;
    this.key = key;
    this.strong = options.scope === 'global' && options.consistency !== 'local';
    this.burst = options.burst ?? Math.max(1, options.requestsPerSecond);
    this.#shared = options.per === 'route' ? this.#bucket(nowMs) : undefined;
  }

  get requestsPerSecond(): number {
    return this.#o.requestsPerSecond;
  }

  /** A global limit reconciled by the fleet (`consistency: local`, per route). */
  get reconciled(): boolean {
    return this.#o.scope === 'global' && !this.strong && this.#shared !== undefined;
  }

  /** Requests admitted here since the limiter was made: what this node reports to the fleet. */
  get admitted(): number {
    return this.#admitted;
  }

  debit(nowMs: number, n: number): void {
    this.#shared?.debit(nowMs, n);
  }

  /**
   * A strong decision for `req`, in Redis, kept for `take` to read. Resolves when made
   * (never rejects); without a fleet attached, nothing is decided and `take` falls back
   * to this node's bucket.
   */
  async decide(req: object, clientIp: string): Promise<void> {
    const take = this.globalTake;
    if (take === undefined) return;
    const key = this.#o.per === 'route' ? this.key : `${this.key}/${clientIp}`;
    const got = await take(key, this.#o.requestsPerSecond, this.burst);
    this.#decided.set(req, got !== 'unavailable' ? got : this.#o.onUnavailable === 'deny' ? UNAVAILABLE : ADMIT);
  }

  take(clientIp: string, nowMs: number, req?: object): LimitDecision {
    if (req !== undefined && this.strong) {
      const decided = this.#decided.get(req);
      if (decided !== undefined) return decided;
    }
    const taken = this.#localTake(clientIp, nowMs);
    if (taken.ok) this.#admitted++;
    return taken;
  }

  #localTake(clientIp: string, nowMs: number): TakeResult {
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
