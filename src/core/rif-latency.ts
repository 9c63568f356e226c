/** Requests-in-flight levels tracked one by one; a server at or above the last shares its bucket. */
const LEVELS = 32;
/** Weight of a new sample in its level's recent average: about the last 10 requests seen at that RIF. */
const ALPHA = 0.1;
/**
 * Weight of a new sample in its level's long-run average, once the level has this many
 * samples' worth (1 / LONG_ALPHA); before that the long-run value is the plain mean of all.
 */
const LONG_ALPHA = 0.01;

export interface RifLatencyOptions {
  /**
   * A level's recent average relaxes toward its long-run one with this time constant when
   * no request has been seen at it lately. Without it a server that was slow once and then
   * got no traffic would report its slow past forever, and never be tried again. Default 250 ms.
   */
  readonly staleTauMs?: number;
}

/**
 * The server side of a Prequal probe: what latency a request arriving now should expect,
 * given the requests in flight (RIF) it finds. Prequal's servers answer a probe with their
 * RIF and "the latency of recent requests at that RIF"; this keeps a recent and a long-run
 * moving average per RIF level, fed by every finished request with the RIF it found on
 * arrival. A level with no sample yet is estimated from the nearest level that has one,
 * scaled as a queue would scale it ((rif + 1) / (level + 1)): a server that never ran 9
 * deep still gives a useful answer at 9.
 *
 * Pure: time is an argument, and the caller counts its own requests in flight and times
 * them (the simulator's servers, `meridian backend`).
 */
export class RifLatency {
  readonly #recent = new Float64Array(LEVELS);
  readonly #long = new Float64Array(LEVELS);
  readonly #stamp = new Float64Array(LEVELS);
  readonly #seen = new Uint8Array(LEVELS);
  readonly #samples = new Uint32Array(LEVELS);
  readonly #tauMs: number;

  constructor(options: RifLatencyOptions = {}) {
    this.#tauMs = options.staleTauMs ?? 250;
  }

  /**
   * A request that found `rif` others in flight on arrival took `latencyMs`, finishing at
   * `nowMs`, while the server ran `slowdown` times slower than its own nominal speed.
   */
  observe(rif: number, latencyMs: number, nowMs: number, slowdown = 1): void {
    latencyMs /= slowdown;
    const i = rif < LEVELS - 1 ? Math.max(0, rif | 0) : LEVELS - 1;
    if (this.#seen[i] === 0) {
      this.#seen[i] = 1;
      this.#recent[i] = latencyMs;
      this.#long[i] = latencyMs;
    } else {
      const r = this.#level(i, nowMs);
      this.#recent[i] = r + ALPHA * (latencyMs - r);
      // A mean of the samples so far, not an average started from the first: with a fixed
      // 1% weight a level's first sample (an unlucky one, or one that straddled a slowdown)
      // stays most of its long-run value for a hundred samples, every stale reading relaxes
      // back to it, and a server whose level looks slow gets no requests to correct it.
      const n = this.#samples[i] as number;
      this.#long[i] = (this.#long[i] as number) + Math.max(LONG_ALPHA, 1 / (n + 1)) * (latencyMs - (this.#long[i] as number));
    }
    this.#samples[i] = (this.#samples[i] as number) + 1;
    this.#stamp[i] = nowMs;
  }

  /** Expected latency of a request arriving at `nowMs` to find `rif` requests in flight, at `slowdown`; 0 before any sample. */
  estimate(rif: number, nowMs: number, slowdown = 1): number {
    return this.#estimate(rif, nowMs) * slowdown;
  }

  #estimate(rif: number, nowMs: number): number {
    const want = rif < LEVELS - 1 ? Math.max(0, rif | 0) : LEVELS - 1;
    for (let i = want; i >= 0; i--) {
      if (this.#seen[i] === 1) return i === want ? this.#level(i, nowMs) : (this.#level(i, nowMs) * (rif + 1)) / (i + 1);
    }
    for (let i = want + 1; i < LEVELS; i++) {
      if (this.#seen[i] === 1) return (this.#level(i, nowMs) * (rif + 1)) / (i + 1);
    }
    return 0;
  }

  #level(i: number, nowMs: number): number {
    const recent = this.#recent[i] as number;
    const long = this.#long[i] as number;
    const age = nowMs - (this.#stamp[i] as number);
    return age <= 0 ? recent : long + (recent - long) * Math.exp(-age / this.#tauMs);
  }
}
