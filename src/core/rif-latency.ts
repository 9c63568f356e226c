/** Requests-in-flight levels tracked one by one; a server at or above the last shares its bucket. */
const LEVELS = 32;
/** Weight of a new sample in its level's average: about the last 10 requests seen at that RIF. */
const ALPHA = 0.1;

/**
 * The server side of a Prequal probe: what latency a request arriving now should expect,
 * given the requests in flight (RIF) it finds. Prequal's servers answer a probe with their
 * RIF and "the latency of recent requests at that RIF"; this keeps one moving average per
 * RIF level, fed by every finished request with the RIF it found on arrival. A level with
 * no sample yet is estimated from the nearest level below it that has one, scaled as a
 * queue would scale it ((rif + 1) / (level + 1)): a server that never ran 9 deep still
 * gives a useful answer at 9.
 *
 * Pure: the caller counts its own requests in flight and times them (the simulator's
 * servers, `meridian backend`).
 */
export class RifLatency {
  readonly #avg = new Float64Array(LEVELS);
  readonly #seen = new Uint8Array(LEVELS);

  /** A request that found `rif` others in flight on arrival took `latencyMs`. */
  observe(rif: number, latencyMs: number): void {
    const i = rif < LEVELS - 1 ? Math.max(0, rif | 0) : LEVELS - 1;
    if (this.#seen[i] === 0) {
      this.#seen[i] = 1;
      this.#avg[i] = latencyMs;
    } else {
      this.#avg[i] = (this.#avg[i] as number) + ALPHA * (latencyMs - (this.#avg[i] as number));
    }
  }

  /** Expected latency of a request arriving at `rif` requests in flight; 0 before any sample. */
  estimate(rif: number): number {
    const want = rif < LEVELS - 1 ? Math.max(0, rif | 0) : LEVELS - 1;
    for (let i = want; i >= 0; i--) {
      if (this.#seen[i] === 1) return i === want ? (this.#avg[i] as number) : ((this.#avg[i] as number) * (rif + 1)) / (i + 1);
    }
    for (let i = want + 1; i < LEVELS; i++) {
      if (this.#seen[i] === 1) return ((this.#avg[i] as number) * (rif + 1)) / (i + 1);
    }
    return 0;
  }
}
