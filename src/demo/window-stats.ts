/**
 * Counters and latency samples for one interval, read out (and reset) once a second: the
 * numbers behind every rate, percentile and error rate the dashboard shows.
 */
export class WindowStats {
  count = 0;
  errors = 0;
  retries = 0;
  shed = 0;
  rateLimited = 0;
  #latencies: number[] = [];

  /** One finished request: `ms` its latency (undefined: none to count), `error` a 5xx or a failure. */
  add(ms: number | undefined, error: boolean): void {
    this.count++;
    if (error) this.errors++;
    // Bounded: past 20,000 samples an interval, keep every other one (the percentiles barely move).
    if (ms !== undefined && (this.#latencies.length < 20_000 || this.count % 2 === 0)) this.#latencies.push(ms);
  }

  /** Rates per second over `intervalMs`, percentiles in ms (null with no sample); then reset. */
  take(intervalMs: number): WindowReading {
    const per = 1000 / intervalMs;
    const sorted = this.#latencies.sort((a, b) => a - b);
    const reading: WindowReading = {
      rps: round(this.count * per),
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      errorRate: this.count === 0 ? 0 : round(this.errors / this.count, 4),
      retries: round(this.retries * per),
      shed: round(this.shed * per),
      rateLimited: round(this.rateLimited * per),
    };
    this.count = this.errors = this.retries = this.shed = this.rateLimited = 0;
    this.#latencies = [];
    return reading;
  }
}

export interface WindowReading {
  readonly rps: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly errorRate: number;
  readonly retries: number;
  readonly shed: number;
  readonly rateLimited: number;
}

/** Nearest-rank percentile of ascending `sorted`: the smallest value with at least q of the samples at or below it. */
export function percentile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return round(sorted[rank - 1] as number, 2);
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
