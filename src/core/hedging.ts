export interface HedgeOptions {
  /** Hedge once a try has run this long (ms), or, with `quantile`, past that quantile of recent tries. */
  readonly afterMs?: number;
  /** 0..100: hedge past this percentile of the latency of recent tries (e.g. 95). */
  readonly quantile?: number;
  /** Hedges at most this percentage of requests, over time. Default 5. */
  readonly maxPercent?: number;
}

/** Recent tries whose latency sets a quantile delay: enough for p99, small enough to follow a change within seconds. */
const RECENT = 1000;
/** The quantile is recomputed after this many new samples, not on every request. */
const RECOMPUTE_EVERY = 100;
/** Hedges that may be spent at once from credit saved while none were needed. */
const BURST = 10;

/**
 * When to send a hedge (a second try of the same request to another endpoint, the first
 * answer taken), and whether the budget allows one. The delay is fixed, or a quantile of
 * the latency of recent tries (Dean and Barroso's "hedge after the 95th-percentile
 * expected latency"), and undefined until enough tries were seen. The budget is a token
 * bucket filled by requests, not by time: each request adds maxPercent/100 of a hedge,
 * so hedges stay within that share of requests however the traffic varies (Finagle's
 * retry budget has the same shape).
 */
export class HedgePolicy {
  readonly #fixedMs: number | undefined;
  readonly #quantile: number;
  readonly #credit: number;
  readonly #recent = new Float64Array(RECENT);
  readonly #sorted = new Float64Array(RECENT);
  #n = 0;
  #seen = 0;
  #sinceRecompute = 0;
  #delayMs = Infinity;
  #tokens = 0;
  /** Hedges sent and hedges whose answer was the one taken, since the start. */
  sent = 0;
  won = 0;

  constructor(options: HedgeOptions) {
    this.#fixedMs = options.quantile === undefined ? (options.afterMs ?? Infinity) : undefined;
    this.#quantile = options.quantile ?? 95;
    this.#credit = (options.maxPercent ?? 5) / 100;
    if (this.#fixedMs !== undefined) this.#delayMs = this.#fixedMs;
  }

  /** How long after a try starts its hedge goes; Infinity while a quantile has too few samples. */
  get delayMs(): number {
    return this.#delayMs;
  }

  /** A request started: it earns the budget its share of a hedge. */
  requestStarted(): void {
    this.#tokens = Math.min(BURST, this.#tokens + this.#credit);
  }

  /** Spend one hedge from the budget; false: the budget is spent. */
  tryTake(): boolean {
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    this.sent++;
    return true;
  }

  /** A try's answer arrived after `latencyMs` (answers only: a cancelled try's latency is not known). */
  observe(latencyMs: number): void {
    if (this.#fixedMs !== undefined) return;
    this.#recent[this.#seen++ % RECENT] = latencyMs;
    if (this.#n < RECENT) this.#n++;
    if (++this.#sinceRecompute < RECOMPUTE_EVERY) return;
    this.#sinceRecompute = 0;
    const s = this.#sorted.subarray(0, this.#n);
    s.set(this.#recent.subarray(0, this.#n));
    s.sort();
    this.#delayMs = s[Math.min(this.#n - 1, Math.ceil((this.#quantile / 100) * this.#n) - 1)] as number;
  }
}
