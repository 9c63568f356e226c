import type { Rng } from './rng.js';

export interface GradientOptions {
  /** How often the limit is recomputed from the latency sampled since (Envoy's concurrency_update_interval). Default 100 ms. */
  readonly sampleWindowMs?: number;
  /** The percentile of a window's samples compared with the minimum RTT. Default 50. */
  readonly percentile?: number;
  /** How often the minimum RTT is measured again. Default 60 s. */
  readonly minRttIntervalMs?: number;
  /** Up to this share of the interval is added at random to each, so that nodes do not re-measure together. Default 15. */
  readonly minRttJitterPercent?: number;
  /** Samples taken at the minimum limit to measure the minimum RTT. Default 50. */
  readonly minRttRequests?: number;
  /** Latency above the minimum RTT still taken as uncongested, in percent of it. Default 100 (Envoy: 25; see docs/overload.md). */
  readonly bufferPercent?: number;
  readonly minLimit?: number;
  readonly maxLimit?: number;
}

/** Windows in a row at the minimum limit after which the minimum RTT is measured again at once (Envoy: 5). */
const PINNED_WINDOWS = 5;
/** Samples kept per window: enough for a percentile, a fixed cost however busy the cluster is. */
const WINDOW_SAMPLES = 1024;

/**
 * A concurrency limit that follows measured latency: Envoy's adaptive concurrency
 * gradient controller. The limit starts at `minLimit` while the minimum RTT (the
 * latency of an uncongested service) is measured from `minRttRequests` samples; then
 * every window the limit is multiplied by the gradient (minRTT + buffer) / sampleRTT,
 * clamped to [0.5, 2], plus sqrt(limit) of headroom so it keeps probing upward. Latency
 * above the baseline (queueing) shrinks the limit; latency at it grows the limit.
 *
 * The limit is not raised in a window whose demand stayed under half of it (Netflix's
 * Gradient2): only latency at a limit actually used says whether a larger one is safe.
 *
 * The minimum RTT is measured again every `minRttIntervalMs` (plus jitter from the
 * injected Rng), and at once when the limit has sat at its floor for five windows (the
 * baseline itself may have grown: a deploy, a slower dependency); meanwhile the limit is
 * held at `minLimit`, and afterwards restored to what it was, as Envoy does. Only requests
 * let in after the measurement began count: those let in before ran at the old limit, in
 * the queues it built, and would set the baseline too high (then the limit too).
 */
export class GradientLimiter {
  readonly #windowMs: number;
  readonly #percentile: number;
  readonly #intervalMs: number;
  readonly #jitter: number;
  readonly #minRttRequests: number;
  readonly #buffer: number;
  readonly minLimit: number;
  readonly maxLimit: number;
  readonly #rng: Rng;
  #limit: number;
  #inFlight = 0;
  #minRttMs = 0;
  /** The limit to restore after a minimum-RTT measurement; NaN when not measuring. */
  #deferred = NaN;
  #measuring = true;
  /** When the current minimum-RTT measurement began. */
  #measureFromMs = -Infinity;
  #nextMeasureMs = Infinity;
  #windowEndMs = -Infinity;
  #pinned = 0;
  /** The most in flight at once in this window. */
  #peak = 0;
  readonly #samples = new Float64Array(WINDOW_SAMPLES);
  #n = 0;
  #seen = 0;

  constructor(options: GradientOptions, rng: Rng) {
    this.#windowMs = options.sampleWindowMs ?? 100;
    this.#percentile = options.percentile ?? 50;
    this.#intervalMs = options.minRttIntervalMs ?? 60_000;
    this.#jitter = (options.minRttJitterPercent ?? 15) / 100;
    this.#minRttRequests = Math.min(options.minRttRequests ?? 50, WINDOW_SAMPLES);
    this.#buffer = (options.bufferPercent ?? 100) / 100;
    this.minLimit = options.minLimit ?? 3;
    this.maxLimit = options.maxLimit ?? 1000;
    this.#rng = rng;
    this.#limit = this.minLimit;
    this.#deferred = this.minLimit;
  }

  get limit(): number {
    return this.#limit;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** The baseline latency, ms; 0 until first measured. */
  get minRttMs(): number {
    return this.#minRttMs;
  }

  /** Measuring the minimum RTT (the limit is held at its floor). */
  get measuring(): boolean {
    return this.#measuring;
  }

  /** A slot is free below the limit. */
  hasRoom(nowMs: number): boolean {
    if (!this.#measuring && nowMs >= this.#nextMeasureMs) this.#startMeasuring(nowMs);
    return this.#inFlight < this.#limit;
  }

  /** Take a slot (the caller checked `hasRoom`). */
  acquire(): void {
    if (++this.#inFlight > this.#peak) this.#peak = this.#inFlight;
  }

  /** A slot is given back; `rttMs` is the request's latency, undefined when it says nothing of the service's (a local failure). */
  release(rttMs: number | undefined, nowMs: number): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
    if (rttMs === undefined) return;
    // A request let in before the measurement began ran at the old limit, in the queues
    // that limit built: its latency is not the uncongested service's.
    if (this.#measuring && nowMs - rttMs < this.#measureFromMs) return;
    // Reservoir-free: past the buffer a window keeps its latest samples, overwriting in turn.
    this.#samples[this.#seen++ % WINDOW_SAMPLES] = rttMs;
    this.#n = Math.min(this.#n + 1, WINDOW_SAMPLES);
    if (this.#measuring) {
      if (this.#n >= this.#minRttRequests) this.#endMeasuring(nowMs);
      return;
    }
    if (nowMs >= this.#windowEndMs) this.#update(nowMs);
  }

  #startMeasuring(nowMs: number): void {
    this.#measuring = true;
    this.#measureFromMs = nowMs;
    this.#deferred = this.#limit;
    this.#limit = this.minLimit;
    this.#clear();
  }

  #endMeasuring(nowMs: number): void {
    this.#minRttMs = this.#quantile();
    this.#measuring = false;
    this.#limit = this.#deferred;
    this.#pinned = 0;
    this.#nextMeasureMs = nowMs + this.#intervalMs * (1 + this.#jitter * this.#rng.next());
    this.#windowEndMs = nowMs + this.#windowMs;
    this.#clear();
  }

  #update(nowMs: number): void {
    const sampleRtt = this.#quantile();
    this.#clear();
    this.#windowEndMs = nowMs + this.#windowMs;
    const target = this.#minRttMs * (1 + this.#buffer);
    const gradient = sampleRtt > 0 ? Math.min(2, Math.max(0.5, target / sampleRtt)) : 2;
    const scaled = this.#limit * gradient;
    let next = Math.floor(scaled + Math.sqrt(scaled));
    // Demand did not reach half the limit: latency says nothing of a larger one, so it is
    // not raised (Netflix's Gradient2 does the same). Otherwise an idle limit drifts to the
    // maximum, and a spike meets no limit until it has shrunk back.
    if (next > this.#limit && this.#peak * 2 < this.#limit) next = this.#limit;
    this.#peak = this.#inFlight;
    this.#limit = Math.min(this.maxLimit, Math.max(this.minLimit, next));
    this.#pinned = this.#limit === this.minLimit ? this.#pinned + 1 : 0;
    if (this.#pinned >= PINNED_WINDOWS) this.#startMeasuring(nowMs);
  }

  #quantile(): number {
    const s = this.#samples.subarray(0, this.#n).sort();
    const i = Math.min(this.#n - 1, Math.max(0, Math.ceil((this.#percentile / 100) * this.#n) - 1));
    return s[i] as number;
  }

  #clear(): void {
    this.#n = 0;
    this.#seen = 0;
  }
}
