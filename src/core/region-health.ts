/** What one probe of a region said. */
export interface RegionProbe {
  readonly ok: boolean;
  /**
   * Share of the region's capacity that is healthy, 0..1, when the region reports it
   * (`healthy_fraction`, or `healthy`/`total`); absent = full capacity (1).
   */
  readonly healthyFraction?: number;
  /** The load the region reports, in requests per second; absent = unknown. */
  readonly loadRps?: number;
}

export type RegionOverride = 'up' | 'down';

export interface RegionHealthOptions {
  /** Consecutive failed probes that mark an up region down. Default 3. */
  readonly unhealthyThreshold?: number;
  /** Consecutive passing probes that mark a down region up. Default 2. */
  readonly healthyThreshold?: number;
  /** Configured capacity in requests per second (at full health); absent = unbounded. */
  readonly capacityRps?: number;
}

/** A region's state for steering and for people (status, dashboard). */
export interface RegionHealthView {
  /** Takes answers: probes say up (or an override says so), and some capacity is healthy. */
  readonly healthy: boolean;
  /** The probes' verdict alone. */
  readonly probeHealthy: boolean;
  readonly override: RegionOverride | undefined;
  readonly healthyFraction: number;
  /** capacityRps x healthyFraction; undefined when no capacity is configured. */
  readonly capacityRps: number | undefined;
  readonly loadRps: number | undefined;
  /** Share of this region's answers passed on to the next region (capacity spillover), 0..1. */
  readonly spillFraction: number;
  readonly consecutiveFailures: number;
  readonly consecutiveSuccesses: number;
}

/**
 * The health of one region, from probes of its health URL: down after N consecutive
 * failures, up after M consecutive successes (hysteresis, so one lost probe does not
 * move traffic across the globe). Regions start up, as hosts do (HostHealth): a new
 * region takes answers at once, and a dead one is found within N probes.
 *
 * A passing probe also carries the region's reported capacity and load: the healthy
 * fraction scales the configured capacity (3 of 4 backends up: 75% of capacity_rps),
 * and a fraction of 0 makes the region unhealthy even while its health URL answers.
 * A failed probe keeps the last reported figures. An operator override (`up`/`down`)
 * wins over the probes until cleared.
 */
export class RegionHealth {
  readonly #unhealthyThreshold: number;
  readonly #healthyThreshold: number;
  #capacityRps: number | undefined;
  #probeHealthy = true;
  #failures = 0;
  #successes = 0;
  #healthyFraction = 1;
  #loadRps: number | undefined;
  #spill = 0;
  #override: RegionOverride | undefined;

  constructor(opts: RegionHealthOptions = {}) {
    this.#unhealthyThreshold = opts.unhealthyThreshold ?? 3;
    this.#healthyThreshold = opts.healthyThreshold ?? 2;
    if (!(this.#unhealthyThreshold >= 1 && this.#healthyThreshold >= 1)) throw new RangeError('thresholds must be >= 1');
    this.#capacityRps = opts.capacityRps;
  }

  /** Carry the probe state of `previous` over (a reload keeps what was learned). */
  static from(previous: RegionHealth | undefined, opts: RegionHealthOptions): RegionHealth {
    const h = new RegionHealth(opts);
    if (previous !== undefined) {
      h.#probeHealthy = previous.#probeHealthy;
      h.#failures = previous.#failures;
      h.#successes = previous.#successes;
      h.#healthyFraction = previous.#healthyFraction;
      h.#loadRps = previous.#loadRps;
      h.#spill = previous.#spill;
      h.#override = previous.#override;
    }
    return h;
  }

  get healthy(): boolean {
    if (this.#override !== undefined) return this.#override === 'up';
    return this.#probeHealthy && this.#healthyFraction > 0;
  }

  /** Record a probe; returns true when `healthy` changed. */
  recordProbe(p: RegionProbe): boolean {
    const before = this.healthy;
    if (p.ok) {
      this.#successes++;
      this.#failures = 0;
      if (!this.#probeHealthy && this.#successes >= this.#healthyThreshold) this.#probeHealthy = true;
      this.#healthyFraction = clampFraction(p.healthyFraction ?? 1);
      this.#loadRps = p.loadRps === undefined || !(p.loadRps >= 0) ? undefined : p.loadRps;
      this.#spill = nextSpill(this.#spill, this.capacityRps, this.#loadRps);
    } else {
      this.#failures++;
      this.#successes = 0;
      if (this.#probeHealthy && this.#failures >= this.#unhealthyThreshold) this.#probeHealthy = false;
    }
    return before !== this.healthy;
  }

  /** Force up or down, or clear with undefined; returns true when `healthy` changed. */
  setOverride(o: RegionOverride | undefined): boolean {
    const before = this.healthy;
    this.#override = o;
    return before !== this.healthy;
  }

  /** Healthy capacity (configured x healthy fraction), or undefined when unbounded. */
  get capacityRps(): number | undefined {
    return this.#capacityRps === undefined ? undefined : this.#capacityRps * this.#healthyFraction;
  }

  get loadRps(): number | undefined {
    return this.#loadRps;
  }

  /** Share of answers to pass on to the next region, as of the last load report (see nextSpill). */
  get spillFraction(): number {
    return this.#spill;
  }

  view(): RegionHealthView {
    return {
      healthy: this.healthy,
      probeHealthy: this.#probeHealthy,
      override: this.#override,
      healthyFraction: this.#healthyFraction,
      capacityRps: this.capacityRps,
      loadRps: this.#loadRps,
      spillFraction: this.#spill,
      consecutiveFailures: this.#failures,
      consecutiveSuccesses: this.#successes,
    };
  }
}

function clampFraction(f: number): number {
  return Number.isFinite(f) ? Math.min(1, Math.max(0, f)) : 1;
}

/**
 * The share of answers a region should pass on to the next choice: the part of its load
 * above its healthy capacity, (load - capacity) / load; 0 when it is within capacity or
 * either figure is unknown. Example: capacity 1000 rps, load 1500 rps: a third of the
 * answers go elsewhere, so the region keeps 1000 of its 1500 rps.
 */
/**
 * The spill fraction after a load report. The load a region reports is what reaches it
 * after the spill already in force, so the excess is computed on the demand that load
 * implies, load / (1 - spill): with 1500 rps of demand on 1000 of capacity the spill
 * settles at a third and stays there, instead of dropping to 0 as soon as the region
 * reports 1000 (and swinging back at the next report).
 */
export function nextSpill(spill: number, capacityRps: number | undefined, loadRps: number | undefined): number {
  if (capacityRps === undefined || loadRps === undefined) return 0;
  const demand = spill < 1 ? loadRps / (1 - spill) : loadRps;
  return excessFraction(capacityRps, demand);
}

export function excessFraction(capacityRps: number | undefined, loadRps: number | undefined): number {
  if (capacityRps === undefined || loadRps === undefined || !(loadRps > capacityRps)) return 0;
  return (loadRps - Math.max(0, capacityRps)) / loadRps;
}
