/**
 * Which region a client group's requests go to: the simulator's stand-in for the global
 * layer's steering, kept in this one file so it can be swapped for the core's locality /
 * steering router when that lands.
 *
 * The rule: the nearest region by RTT that the steering layer sees healthy from the
 * group's vantage point, failing over to the next nearest; when none is healthy, the
 * nearest reachable one (fail open: an answer that may work beats none). Health per
 * (group, region) is a core `HostHealth` fed by periodic probes, so thresholds behave as
 * for servers. DNS caching: when the answer changes, clients move to the new one spread
 * evenly over one TTL (each client's cached answer expires at a uniformly random moment),
 * so a fraction min(1, elapsed / ttl) of requests uses the new answer.
 */
import { HostHealth, type ActiveCheckThresholds } from '../core/health.js';
import type { Rng } from '../core/rng.js';

export interface RegionChoiceOptions {
  /** rttMs[group][region]; Infinity where the group has no route to the region. */
  readonly rttMs: readonly (readonly number[])[];
  readonly dnsTtlMs: number;
  readonly thresholds: ActiveCheckThresholds;
}

export class RegionChoice {
  readonly #o: RegionChoiceOptions;
  readonly #rng: Rng;
  /** health[group][region] as the steering layer's probes see it. */
  readonly #health: HostHealth[][];
  /** Regions of each group by increasing RTT (unreachable ones left out). */
  readonly #byRtt: number[][];
  readonly #current: number[];
  readonly #previous: number[];
  readonly #changedAtMs: number[];

  constructor(options: RegionChoiceOptions, rng: Rng) {
    this.#o = options;
    this.#rng = rng;
    this.#health = options.rttMs.map((row) => row.map(() => new HostHealth(true)));
    this.#byRtt = options.rttMs.map((row) =>
      row
        .map((rtt, r) => ({ rtt, r }))
        .filter((x) => Number.isFinite(x.rtt))
        .sort((a, b) => a.rtt - b.rtt || a.r - b.r)
        .map((x) => x.r),
    );
    this.#current = this.#byRtt.map((order) => order[0] ?? -1);
    this.#previous = [...this.#current];
    this.#changedAtMs = this.#current.map(() => -Infinity);
  }

  /** A steering probe's result; returns true when the verdict for (group, region) flipped. */
  recordProbe(group: number, region: number, passed: boolean): boolean {
    const h = this.#health[group]?.[region];
    return h ? h.recordCheck(passed, this.#o.thresholds) : false;
  }

  healthy(group: number, region: number): boolean {
    return this.#health[group]?.[region]?.activeHealthy ?? false;
  }

  /** Recompute a group's answer after probes; a change starts the TTL-long switch-over. */
  reanswer(group: number, nowMs: number): void {
    const order = this.#byRtt[group] ?? [];
    const answer = order.find((r) => this.healthy(group, r)) ?? order[0] ?? -1;
    if (answer === this.#current[group]) return;
    this.#previous[group] = this.choose(group, nowMs);
    this.#current[group] = answer;
    this.#changedAtMs[group] = nowMs;
  }

  /** The steering answer now (what a fresh DNS lookup returns). */
  answer(group: number): number {
    return this.#current[group] ?? -1;
  }

  /** The region one request of the group goes to, allowing for cached DNS answers; -1 if none. */
  choose(group: number, nowMs: number): number {
    const current = this.#current[group] ?? -1;
    const ttl = this.#o.dnsTtlMs;
    const elapsed = nowMs - (this.#changedAtMs[group] ?? -Infinity);
    if (ttl <= 0 || elapsed >= ttl) return current;
    return this.#rng.next() * ttl < elapsed ? current : (this.#previous[group] ?? current);
  }
}
