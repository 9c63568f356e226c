import { createBalancer, isHashPolicy, type PolicyOptions } from './balancers.js';
import type { Clock } from './clock.js';
import { HostHealth, type ActiveCheckThresholds, type HealthStatus } from './health.js';
import { LatencyEwma } from './latency-ewma.js';
import { OutlierDetector, type Ejection, type OutlierOptions } from './outlier-detector.js';
import type { Rng } from './rng.js';
import { slowStartFactor, type SlowStartOptions } from './slow-start.js';
import type { Balancer, Endpoint, Host, Outcome, PickContext, PolicyName } from './types.js';

export interface ClusterOptions extends PolicyOptions {
  readonly policy: PolicyName;
  readonly clock: Clock;
  readonly rng: Rng;
  /** Time constant of every host's latency EWMA (peak_ewma's decay). Default 10 s. */
  readonly latencyTauMs?: number;
  /** Active health-check thresholds, and whether hosts start healthy (default true). */
  readonly activeChecks?: ActiveCheckThresholds & { readonly initiallyHealthy?: boolean };
  /** Passive outlier detection; omitted = off. */
  readonly outlierDetection?: OutlierOptions;
  /** Below this percentage of routable hosts, balance over all of them. 0 disables. Default 50. */
  readonly panicThresholdPercent?: number;
  /** Ramp for hosts that are new or back from failing; omitted = off. Ignored by hash policies. */
  readonly slowStart?: SlowStartOptions;
}

/** The live state of one host; the cluster is its only writer. */
export class HostState implements Host {
  endpoint: Endpoint;
  active = 0;
  readonly latency: LatencyEwma;
  readonly health: HostHealth;
  /** Operator's weight, replacing the configured one until the next config change. */
  weightOverride: number | undefined;
  /** When the current slow-start ramp began; undefined when not ramping. */
  slowStartSinceMs: number | undefined;
  /** Whether the host was routable at the last refresh: a false -> true flip starts slow start. */
  wasRoutable: boolean;
  requestsTotal = 0;
  failuresTotal = 0;

  constructor(endpoint: Endpoint, tauMs: number, initiallyHealthy: boolean) {
    this.endpoint = endpoint;
    this.latency = new LatencyEwma(tauMs);
    this.health = new HostHealth(initiallyHealthy);
    this.wasRoutable = this.health.routable;
  }

  get weight(): number {
    return this.weightOverride ?? this.endpoint.weight;
  }
}

/** A host as shown to operators (admin API, dashboard, simulator reports). */
export interface HostView {
  readonly id: string;
  readonly address: string;
  readonly status: HealthStatus;
  readonly weight: number;
  readonly effectiveWeight: number;
  readonly active: number;
  readonly latencyEwmaMs: number;
  readonly ejectionsTotal: number;
  readonly requestsTotal: number;
  readonly failuresTotal: number;
}

export interface ClusterPickContext extends PickContext {
  /** Hosts already tried by this request: a retry goes elsewhere when it can. */
  readonly exclude?: ReadonlySet<Host>;
}

/** Something the mechanism may want to log or count. */
export type ClusterEvent =
  | { readonly type: 'ejected'; readonly host: HostState; readonly reason: Ejection['reason']; readonly untilMs: number }
  | { readonly type: 'returned'; readonly host: HostState }
  | { readonly type: 'health_changed'; readonly host: HostState; readonly healthy: boolean }
  | { readonly type: 'panic'; readonly active: boolean };

const RETRY_PICK_TRIES = 4;
/** Slow-start weights are recomputed this many times per window: a rebuild per step, not per pick. */
const SLOW_START_STEPS = 20;

/**
 * One cluster's load balancing: its hosts' live state, their health (active verdicts,
 * outlier ejection, drain), panic mode, slow start, and the policy's balancer over the
 * hosts eligible for traffic.
 *
 * The eligible set is recomputed lazily, on the first pick after anything changed or a
 * timed step came due (an ejection expiring, an outlier interval, a slow-start step),
 * and handed to the balancer whole. Nothing here runs on a timer: time comes from the
 * injected clock, so the proxy and the simulator drive the same object.
 */
export class Cluster {
  readonly name: string;
  readonly policy: PolicyName;
  readonly #o: ClusterOptions;
  readonly #balancer: Balancer;
  readonly #outliers: OutlierDetector | undefined;
  #hosts: HostState[] = [];
  #byId = new Map<string, HostState>();
  #eligibleWeights = new Map<HostState, number>();
  #dirty = true;
  #panic = false;
  #nextIntervalMs: number;
  #nextStepMs = Infinity;
  #listeners: ((e: ClusterEvent) => void)[] = [];

  constructor(name: string, endpoints: readonly Endpoint[], options: ClusterOptions) {
    this.name = name;
    this.policy = options.policy;
    this.#o = options;
    this.#balancer = createBalancer(options.policy, options.rng, options.clock, options);
    this.#outliers = options.outlierDetection ? new OutlierDetector(options.outlierDetection) : undefined;
    this.#nextIntervalMs = options.clock.nowMs() + (this.#outliers?.intervalMs ?? Infinity);
    this.#setHosts(endpoints, false);
  }

  get hosts(): readonly HostState[] {
    return this.#hosts;
  }

  host(id: string): HostState | undefined {
    return this.#byId.get(id);
  }

  /** True while too few hosts are routable and the cluster balances over all of them. */
  get inPanic(): boolean {
    this.#refreshIfDue();
    return this.#panic;
  }

  onEvent(listener: (e: ClusterEvent) => void): void {
    this.#listeners.push(listener);
  }

  /** Choose a host, or undefined when none can take traffic (all draining, or none at all). */
  pick(ctx: ClusterPickContext = {}): HostState | undefined {
    this.#refreshIfDue();
    const exclude = ctx.exclude;
    let host = this.#balancer.pick(ctx) as HostState | undefined;
    if (host === undefined || exclude === undefined || exclude.size === 0) return host;
    const attempt = ctx.attempt ?? 0;
    for (let i = 1; i < RETRY_PICK_TRIES && exclude.has(host as HostState); i++) {
      host = this.#balancer.pick({ ...ctx, attempt: attempt + i * 7919 }) as HostState | undefined;
    }
    // Every try landed on a host already tried: better the same host than no answer.
    return host;
  }

  onStart(host: HostState): void {
    host.active++;
    host.requestsTotal++;
    this.#balancer.onStart?.(host);
  }

  onEnd(host: HostState, outcome: Outcome): void {
    const now = this.#o.clock.nowMs();
    host.active = Math.max(0, host.active - 1);
    host.latency.observe(outcome.latencyMs, now);
    if (outcome.error !== undefined || (outcome.status !== undefined && outcome.status >= 500)) host.failuresTotal++;
    this.#balancer.onEnd?.(host, outcome);
    if (this.#outliers && this.#byId.get(host.endpoint.id) === host) {
      const e = this.#outliers.record(host.health, outcome, this.#healths(), now);
      if (e) this.#ejected(e, host);
    }
  }

  /** An active health check's result for a host. */
  recordCheck(host: HostState, passed: boolean): void {
    // A late result for a host a reload removed changes nothing.
    if (this.#byId.get(host.endpoint.id) !== host) return;
    if (host.health.recordCheck(passed, this.#o.activeChecks)) {
      this.#dirty = true;
      this.#emit({ type: 'health_changed', host, healthy: host.health.activeHealthy });
    }
  }

  setDraining(id: string, draining: boolean): boolean {
    const host = this.#byId.get(id);
    if (!host) return false;
    host.health.draining = draining;
    this.#dirty = true;
    return true;
  }

  setWeight(id: string, weight: number | undefined): boolean {
    const host = this.#byId.get(id);
    if (!host) return false;
    if (weight !== undefined && !(weight > 0)) throw new RangeError(`weight must be > 0, got ${weight}`);
    host.weightOverride = weight;
    this.#dirty = true;
    return true;
  }

  /**
   * Membership change: hosts keep their state by endpoint id; new ones enter slow start.
   * Hosts removed stop receiving picks at once; requests in flight on them end normally.
   */
  setEndpoints(endpoints: readonly Endpoint[]): void {
    this.#setHosts(endpoints, true);
  }

  /** Effective weight of each host now eligible for traffic (empty when none is). */
  eligible(): ReadonlyMap<HostState, number> {
    this.#refreshIfDue();
    return this.#eligibleWeights;
  }

  view(): HostView[] {
    this.#refreshIfDue();
    return this.#hosts.map((h) => ({
      id: h.endpoint.id,
      address: h.endpoint.address,
      status: this.#status(h),
      weight: h.weight,
      effectiveWeight: this.#eligibleWeights.get(h) ?? 0,
      active: h.active,
      latencyEwmaMs: h.latency.lastMs,
      ejectionsTotal: h.health.ejectionsTotal,
      requestsTotal: h.requestsTotal,
      failuresTotal: h.failuresTotal,
    }));
  }

  #status(h: HostState): HealthStatus {
    if (h.health.draining) return 'draining';
    if (!h.health.activeHealthy) return 'unhealthy';
    if (h.health.ejected) return 'ejected';
    if (h.slowStartSinceMs !== undefined) return 'slow_start';
    return 'healthy';
  }

  #setHosts(endpoints: readonly Endpoint[], rampNew: boolean): void {
    const initiallyHealthy = this.#o.activeChecks?.initiallyHealthy ?? true;
    const now = this.#o.clock.nowMs();
    const seen = new Set<string>();
    const hosts: HostState[] = [];
    for (const ep of endpoints) {
      if (seen.has(ep.id)) throw new Error(`duplicate endpoint id "${ep.id}" in cluster ${this.name}`);
      seen.add(ep.id);
      let host = this.#byId.get(ep.id);
      if (host) {
        host.endpoint = ep;
      } else {
        host = new HostState(ep, this.#o.latencyTauMs ?? 10_000, initiallyHealthy);
        if (rampNew && this.#slowStartApplies()) host.slowStartSinceMs = now;
      }
      hosts.push(host);
    }
    this.#hosts = hosts;
    this.#byId = new Map(hosts.map((h) => [h.endpoint.id, h]));
    this.#dirty = true;
  }

  #slowStartApplies(): boolean {
    return this.#o.slowStart !== undefined && !isHashPolicy(this.policy);
  }

  #healths(): HostHealth[] {
    return this.#hosts.map((h) => h.health);
  }

  #ejected(e: Ejection, host: HostState): void {
    this.#dirty = true;
    this.#emit({ type: 'ejected', host, reason: e.reason, untilMs: e.untilMs });
  }

  #emit(e: ClusterEvent): void {
    for (const l of this.#listeners) l(e);
  }

  #refreshIfDue(): void {
    const now = this.#o.clock.nowMs();
    if (!this.#dirty && now < this.#nextStepMs && now < this.#nextIntervalMs) return;
    const outliers = this.#outliers;
    if (outliers) {
      const byHealth = new Map(this.#hosts.map((h) => [h.health, h]));
      for (const r of outliers.returnDue(this.#healths(), now)) this.#emit({ type: 'returned', host: byHealth.get(r) as HostState });
      if (now >= this.#nextIntervalMs) {
        for (const e of outliers.review(this.#healths(), now)) this.#ejected(e, byHealth.get(e.health) as HostState);
        // Catch up in whole intervals so a long pause in picks does not replay them one by one.
        const interval = outliers.intervalMs;
        this.#nextIntervalMs += Math.ceil((now - this.#nextIntervalMs + 1) / interval) * interval;
      }
    }
    this.#rebuild(now);
  }

  #rebuild(now: number): void {
    this.#dirty = false;
    const slowStart = this.#slowStartApplies() ? this.#o.slowStart : undefined;
    let nextStep = this.#outliers?.nextReturnMs(this.#healths()) ?? Infinity;
    const candidates: HostState[] = [];
    let routable = 0;
    for (const h of this.#hosts) {
      if (h.health.draining) continue;
      candidates.push(h);
      const isRoutable = h.health.routable;
      if (isRoutable) routable++;
      if (isRoutable && !h.wasRoutable && slowStart) h.slowStartSinceMs = now;
      h.wasRoutable = isRoutable;
    }
    const threshold = this.#o.panicThresholdPercent ?? 50;
    const panic = candidates.length > 0 && (100 * routable) / candidates.length < threshold;
    if (panic !== this.#panic) this.#emit({ type: 'panic', active: panic });
    this.#panic = panic;
    const eligible = panic ? candidates : candidates.filter((h) => h.health.routable);
    const weights = eligible.map((h) => {
      if (!slowStart || h.slowStartSinceMs === undefined) return h.weight;
      const elapsed = now - h.slowStartSinceMs;
      if (elapsed >= slowStart.windowMs) {
        h.slowStartSinceMs = undefined;
        return h.weight;
      }
      const step = slowStart.windowMs / SLOW_START_STEPS;
      nextStep = Math.min(nextStep, h.slowStartSinceMs + (Math.floor(elapsed / step) + 1) * step);
      return h.weight * slowStartFactor(elapsed, slowStart);
    });
    this.#nextStepMs = nextStep;
    if (!this.#sameEligible(eligible, weights)) {
      this.#balancer.update(eligible, weights);
      this.#eligibleWeights = new Map(eligible.map((h, i) => [h, weights[i] as number]));
    }
  }

  #sameEligible(hosts: readonly HostState[], weights: readonly number[]): boolean {
    const current = this.#eligibleWeights;
    if (current.size !== hosts.length) return false;
    let i = 0;
    for (const [h, w] of current) {
      if (h !== hosts[i] || w !== weights[i]) return false;
      i++;
    }
    return true;
  }
}
