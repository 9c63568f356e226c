/**
 * Peak EWMA of response latency (Finagle's and Linkerd's "peak EWMA").
 *
 * A sample above the estimate replaces it at once (react to a slow host within one
 * response); a sample below pulls it down with weight w = exp(-elapsed / tau), so the
 * estimate forgets with time constant tau rather than per request. When read, the
 * estimate also decays toward zero for the time since the last sample (as tower's
 * `RttEstimate::decay` does), so an idle host that was once slow is tried again.
 */
export class LatencyEwma {
  readonly tauMs: number;
  #ewmaMs = 0;
  #stampMs = 0;
  #samples = 0;

  constructor(tauMs = 10_000) {
    if (!(tauMs > 0)) throw new RangeError(`tau must be > 0, got ${tauMs}`);
    this.tauMs = tauMs;
  }

  get samples(): number {
    return this.#samples;
  }

  /** The estimate as of the last sample, undecayed: what a dashboard shows. */
  get lastMs(): number {
    return this.#ewmaMs;
  }

  observe(latencyMs: number, nowMs: number): void {
    const rtt = Math.max(0, latencyMs);
    if (this.#samples === 0 || rtt > this.#ewmaMs) {
      this.#ewmaMs = rtt;
    } else {
      const w = Math.exp(-Math.max(0, nowMs - this.#stampMs) / this.tauMs);
      this.#ewmaMs = this.#ewmaMs * w + rtt * (1 - w);
    }
    this.#stampMs = nowMs;
    this.#samples++;
  }

  /** The estimate at `nowMs`, decayed toward zero since the last sample. */
  valueAt(nowMs: number): number {
    const elapsed = Math.max(0, nowMs - this.#stampMs);
    return elapsed === 0 ? this.#ewmaMs : this.#ewmaMs * Math.exp(-elapsed / this.tauMs);
  }
}
