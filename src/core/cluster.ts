import { createBalancer, isHashPolicy, type PolicyOptions } from './balancers.js';
import type { Clock } from './clock.js';
import { ConnectFailureEjection, type ConnectFailureOptions } from './connect-failure-ejection.js';
import { fmix32 } from './hash.js';
import { HostHealth, type ActiveCheckThresholds, type HealthStatus } from './health.js';
import { LatencyEwma } from './latency-ewma.js';
import { DEFAULT_OVERPROVISIONING_FACTOR, levelHealth, priorityLoads, zoneAwareShares } from './locality.js';
import { OutlierDetector, type Ejection, type OutlierOptions } from './outlier-detector.js';
import type { Rng } from './rng.js';
import { slowStartFactor, type SlowStartOptions } from './slow-start.js';
import { TokenBucket } from './token-bucket.js';
import type { Balancer, BalancerStats, Endpoint, Host, Locality, Outcome, PickContext, PolicyName, ProbeReply } from './types.js';

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
  /**
   * Ejection of hosts that cannot be connected to; omitted (or consecutiveFailures 0) = off.
   * When on, connect failures feed it and not outlier detection (Envoy's split of local-origin errors).
   */
  readonly connectFailureEjection?: ConnectFailureOptions;
  /** Below this percentage of routable hosts, balance over all of them. 0 disables. Default 50. */
  readonly panicThresholdPercent?: number;
  /** Ramp for hosts that are new or back from failing; omitted = off. Ignored by hash policies. */
  readonly slowStart?: SlowStartOptions;
  /** How far a priority level's healthy capacity stretches before traffic moves on (Envoy's 1.4). */
  readonly overprovisioningFactor?: number;
  /** Where the caller (this load balancer) runs: its zone is preferred inside a level (zone-aware routing). */
  readonly local?: { readonly region?: string; readonly zone?: string };
  readonly zoneAware?: {
    /** Below this many endpoints in a level, zone-aware routing is off (small clusters are noisy). Default 6. */
    readonly minClusterSize?: number;
    /** Share of the callers in each `region/zone`; default: the level's configured capacity per zone. */
    readonly callers?: Readonly<Record<string, number>>;
  };
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
  /** The locality the host belongs to (set at every rebuild). */
  group: LocalityGroup | undefined;
  /** A membership change dropped it: outcomes of its requests still in flight judge nothing. */
  removed = false;

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

/**
 * One locality of a cluster (a region/zone at a priority level): its hosts, a balancer of
 * its own over those eligible, its share of the cluster's traffic, and its capacity.
 * Kept across rebuilds by key, so balancer state and counters survive health changes.
 */
export class LocalityGroup {
  readonly key: string;
  readonly priority: number;
  readonly region: string | undefined;
  readonly zone: string | undefined;
  readonly balancer: Balancer;
  locality: Locality;
  /** Non-draining hosts. */
  hosts: HostState[] = [];
  eligible: HostState[] = [];
  weights: number[] = [];
  /** Hosts routable (healthy, not ejected) at the last rebuild. */
  healthy = 0;
  /** Fraction of the cluster's traffic this locality should take, 0..1. */
  share = 0;
  /** Its level's healthy fraction is below the panic threshold: it balances over all its hosts. */
  panic = false;
  /** Requests in flight on its hosts. */
  active = 0;
  bucket: TokenBucket | undefined;
  /** Requests that found it at capacity and went elsewhere, and requests it took for another. */
  spilledOut = 0;
  spilledIn = 0;

  constructor(key: string, locality: Locality, balancer: Balancer, nowMs: number) {
    this.key = key;
    this.locality = locality;
    this.priority = locality.priority ?? 0;
    this.region = locality.region;
    this.zone = locality.zone;
    this.balancer = balancer;
    this.configure(locality, nowMs);
  }

  /** Take a (reloaded) locality's settings; its rate bucket is kept unless the rate changed. */
  configure(locality: Locality, nowMs: number): void {
    const rps = locality.maxRequestsPerSecond;
    if (rps === undefined) this.bucket = undefined;
    else if (this.bucket?.ratePerSecond !== rps) {
      // A tenth of a second's burst: the rate holds closely, and only the excess spills.
      this.bucket = new TokenBucket({ ratePerSecond: rps, burst: Math.max(1, rps / 10) }, nowMs);
    }
    this.locality = locality;
  }

  get remote(): boolean {
    return this.locality.remote === true;
  }

  #balanced: { readonly hosts: readonly HostState[]; readonly weights: readonly number[] } | undefined;

  /** Hand the eligible set to the balancer, unless it already has exactly that set (a rebuild is not free). */
  rebalance(): void {
    const last = this.#balanced;
    const { eligible, weights } = this;
    if (last !== undefined && last.hosts.length === eligible.length && eligible.every((h, i) => last.hosts[i] === h && last.weights[i] === weights[i])) return;
    this.balancer.update(eligible, weights);
    this.#balanced = { hosts: eligible, weights };
  }

  get capped(): boolean {
    return this.locality.maxInFlight !== undefined || this.bucket !== undefined;
  }

  /** Whether it can take one more request now; takes a token of its rate if so. */
  tryAdmit(nowMs: number): boolean {
    const maxInFlight = this.locality.maxInFlight;
    if (maxInFlight !== undefined && this.active >= maxInFlight) return false;
    return this.bucket === undefined || this.bucket.tryTake(nowMs).ok;
  }
}

export interface LocalityView {
  readonly region: string | undefined;
  readonly zone: string | undefined;
  readonly priority: number;
  readonly remote: boolean;
  readonly hosts: number;
  readonly healthy: number;
  /** Fraction of the cluster's traffic it should take now, 0..1. */
  readonly share: number;
  readonly panic: boolean;
  readonly active: number;
  readonly maxRequestsPerSecond: number | undefined;
  readonly maxInFlight: number | undefined;
  readonly spilledOut: number;
  readonly spilledIn: number;
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
  readonly region?: string;
  readonly zone?: string;
  readonly priority: number;
  /** Another region's load balancer (a remote locality), not a backend of this region. */
  readonly remote?: true;
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
  | { readonly type: 'panic'; readonly active: boolean }
  /** predictive: picks switched to peak EWMA (fallback) or back to the model, in one locality. */
  | { readonly type: 'model_fallback'; readonly fallback: boolean; readonly reason: 'drift' | 'worse_than_baseline' | 'recovered'; readonly locality: string };


const RETRY_PICK_TRIES = 4;
/** Slow-start weights are recomputed this many times per window: a rebuild per step, not per pick. */
const SLOW_START_STEPS = 20;

/**
 * One cluster's load balancing: its hosts' live state, their health (active verdicts,
 * outlier ejection, drain), panic mode, slow start, localities (priority levels, zones,
 * spillover), and each locality's balancer over its hosts eligible for traffic.
 *
 * The eligible sets and the localities' shares are recomputed lazily, on the first pick
 * after anything changed or a timed step came due (an ejection expiring, an outlier
 * interval, a slow-start step), and handed to the balancers whole. Nothing here runs on
 * a timer: time comes from the injected clock, so the proxy and the simulator drive the
 * same object.
 */
export class Cluster {
  readonly name: string;
  readonly policy: PolicyName;
  readonly #o: ClusterOptions;
  readonly #outliers: OutlierDetector | undefined;
  readonly #connectFailures: ConnectFailureEjection | undefined;
  #hosts: HostState[] = [];
  #byId = new Map<string, HostState>();
  #byHealth = new Map<HostHealth, HostState>();
  #eligibleWeights = new Map<HostState, number>();
  /** Every locality seen, by key; those with hosts, in spill order (priority, then as configured). */
  readonly #groups = new Map<string, LocalityGroup>();
  #order: LocalityGroup[] = [];
  /** Cumulative shares of #order, for choosing a locality. */
  #cumulative: number[] = [];
  /** Set when one locality takes everything and nothing can divert it: picks skip the choice. */
  #only: LocalityGroup | undefined;
  #dirty = true;
  #panic = false;
  #nextIntervalMs: number;
  #nextStepMs = Infinity;
  #listeners: ((e: ClusterEvent) => void)[] = [];
  #prober: ((targets: readonly HostState[]) => void) | undefined;

  constructor(name: string, endpoints: readonly Endpoint[], options: ClusterOptions) {
    this.name = name;
    this.policy = options.policy;
    this.#o = options;
    this.#outliers = options.outlierDetection ? new OutlierDetector(options.outlierDetection) : undefined;
    const cfe = options.connectFailureEjection;
    this.#connectFailures = cfe !== undefined && cfe.consecutiveFailures !== 0 ? new ConnectFailureEjection(cfe, options.activeChecks) : undefined;
    this.#nextIntervalMs = options.clock.nowMs() + (this.#outliers?.intervalMs ?? Infinity);
    this.#setHosts(endpoints, false);
  }

  get hosts(): readonly HostState[] {
    return this.#hosts;
  }

  host(id: string): HostState | undefined {
    return this.#byId.get(id);
  }

  /** True while a priority level taking traffic has too few routable hosts and balances over all of them. */
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
    let host = this.#pickOnce(ctx);
    if (host === undefined || exclude === undefined || exclude.size === 0) return host;
    const attempt = ctx.attempt ?? 0;
    for (let i = 1; i < RETRY_PICK_TRIES && exclude.has(host); i++) {
      host = this.#pickOnce({ ...ctx, attempt: attempt + i * 7919 }) ?? host;
    }
    // Every try landed on a host already tried: better the same host than no answer.
    return host;
  }

  onStart(host: HostState, ctx?: PickContext): void {
    host.active++;
    host.requestsTotal++;
    const g = host.group;
    if (g === undefined) return;
    g.active++;
    g.balancer.onStart?.(host, ctx);
    const prober = this.#prober;
    if (prober !== undefined) {
      const targets = g.balancer.probeTargets?.() as readonly HostState[] | undefined;
      if (targets !== undefined && targets.length > 0) prober(targets);
    }
  }

  onEnd(host: HostState, outcome: Outcome): void {
    const now = this.#o.clock.nowMs();
    host.active = Math.max(0, host.active - 1);
    host.latency.observe(outcome.latencyMs, now);
    if (outcome.error !== undefined || (outcome.status !== undefined && outcome.status >= 500)) host.failuresTotal++;
    const g = host.group;
    if (g !== undefined) {
      g.active = Math.max(0, g.active - 1);
      g.balancer.onEnd?.(host, outcome);
    }
    if (host.removed) return;
    const connectFailures = this.#connectFailures;
    if (connectFailures !== undefined) {
      const e = connectFailures.record(host.health, outcome, now);
      if (e) this.#ejected(e, host);
      if (outcome.error === 'connect') return;
    }
    const e = this.#outliers?.record(host.health, outcome, now);
    if (e) this.#ejected(e, host);
  }

  /**
   * A try given up by its request (a hedge race lost): the host is no longer busy with it,
   * and it took at least `latencyMs`; it neither failed nor succeeded, so outlier
   * detection and connect-failure ejection are not told.
   */
  onCancel(host: HostState, latencyMs: number): void {
    host.active = Math.max(0, host.active - 1);
    host.latency.observe(latencyMs, this.#o.clock.nowMs());
    const g = host.group;
    if (g !== undefined) {
      g.active = Math.max(0, g.active - 1);
      g.balancer.onEnd?.(host, { latencyMs });
    }
  }

  /**
   * Probing policies (prequal): `prober` is handed the hosts to probe each time a request
   * is sent to a host (`onStart`), and the mechanism sends the probes; their replies come
   * back through `recordProbe`. The array is reused by the next call. Other policies never call it.
   */
  setProber(prober: ((targets: readonly HostState[]) => void) | undefined): void {
    this.#prober = prober;
  }

  /** A probe's reply reached the load balancer. */
  recordProbe(host: HostState, reply: ProbeReply): void {
    if (host.removed) return;
    host.group?.balancer.onProbe?.(host, reply);
  }

  /** The adaptive balancers' counters, one entry per locality whose balancer keeps any. */
  balancerStats(): { readonly locality: string; readonly stats: BalancerStats }[] {
    const out: { locality: string; stats: BalancerStats }[] = [];
    for (const g of this.#groups.values()) {
      const stats = g.balancer.stats?.();
      if (stats !== undefined) out.push({ locality: g.key, stats });
    }
    return out;
  }

  /** An active health check's result for a host. */
  recordCheck(host: HostState, passed: boolean): void {
    // A late result for a host a reload removed changes nothing.
    if (this.#byId.get(host.endpoint.id) !== host) return;
    if (host.health.recordCheck(passed, this.#o.activeChecks)) {
      this.#dirty = true;
      this.#emit({ type: 'health_changed', host, healthy: host.health.activeHealthy });
    }
    if (passed && this.#connectFailures?.checkPassed(host.health)) {
      this.#dirty = true;
      this.#emit({ type: 'returned', host });
    }
    // Rebuild now, not at the next pick: a panic this check starts (or ends) is announced
    // when it happens, even when no request arrives for a while.
    if (this.#dirty) this.#refreshIfDue();
  }

  /** An active verdict reached elsewhere (the primary's checks, for a worker that just started). */
  assumeHealth(id: string, healthy: boolean): boolean {
    const host = this.#byId.get(id);
    if (!host) return false;
    if (host.health.assume(healthy)) {
      this.#dirty = true;
      this.#emit({ type: 'health_changed', host, healthy });
      this.#refreshIfDue();
    }
    return true;
  }

  setDraining(id: string, draining: boolean): boolean {
    const host = this.#byId.get(id);
    if (!host) return false;
    host.health.draining = draining;
    this.#dirty = true;
    return true;
  }

  /** The fleet's verdict on a host (shared health): out while a quorum of nodes judges it bad. */
  setFleetEjected(id: string, ejected: boolean): boolean {
    const host = this.#byId.get(id);
    if (!host) return false;
    if (host.health.fleetEjected !== ejected) {
      host.health.fleetEjected = ejected;
      this.#dirty = true;
      this.#refreshIfDue();
    }
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

  /**
   * The ids of `endpoints`, or throw if one is listed twice: a reload checks its sets with
   * this before it commits, so the `setEndpoints` of its commit cannot fail halfway.
   */
  static checkEndpoints(cluster: string, endpoints: readonly Endpoint[]): Set<string> {
    const seen = new Set<string>();
    for (const ep of endpoints) {
      if (seen.has(ep.id)) throw new Error(`duplicate endpoint id "${ep.id}" in cluster ${cluster}`);
      seen.add(ep.id);
    }
    return seen;
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
      priority: h.endpoint.locality?.priority ?? 0,
      ...(h.endpoint.locality?.region === undefined ? {} : { region: h.endpoint.locality.region }),
      ...(h.endpoint.locality?.zone === undefined ? {} : { zone: h.endpoint.locality.zone }),
      ...(h.endpoint.locality?.remote === true ? { remote: true as const } : {}),
    }));
  }

  /** The localities with hosts, in spill order, with their current share of traffic. */
  localities(): LocalityView[] {
    this.#refreshIfDue();
    return this.#order.map((g) => ({
      region: g.region,
      zone: g.zone,
      priority: g.priority,
      remote: g.remote,
      hosts: g.hosts.length,
      healthy: g.healthy,
      share: g.share,
      panic: g.panic,
      active: g.active,
      maxRequestsPerSecond: g.locality.maxRequestsPerSecond,
      maxInFlight: g.locality.maxInFlight,
      spilledOut: g.spilledOut,
      spilledIn: g.spilledIn,
    }));
  }

  #pickOnce(ctx: ClusterPickContext): HostState | undefined {
    const group = this.#only ?? this.#chooseGroup(ctx);
    return group?.balancer.pick(ctx) as HostState | undefined;
  }

  /**
   * The locality for one request: drawn by share (by the request's hash for hash policies,
   * so a key keeps its locality while shares hold), then moved down the spill order while
   * the one drawn is at capacity — so only the excess leaves a locality (the waterfall).
   * When every locality is full the one drawn takes it: shedding is admission's job.
   */
  #chooseGroup(ctx: ClusterPickContext): LocalityGroup | undefined {
    const order = this.#order;
    const n = order.length;
    if (n === 0) return undefined;
    // fmix32 decorrelates the draw from the bits the ring or table uses inside the locality.
    const u = ctx.hash !== undefined && isHashPolicy(this.policy) ? fmix32((ctx.hash ^ 0x9e3779b9) + (ctx.attempt ?? 0)) / 4294967296 : this.#o.rng.next();
    const cum = this.#cumulative;
    let i = 0;
    while (i < n - 1 && u >= (cum[i] as number)) i++;
    const drawn = order[i] as LocalityGroup;
    const localOnly = ctx.localOnly === true;
    const now = this.#o.clock.nowMs();
    for (let k = 0; k < n; k++) {
      const g = order[(i + k) % n] as LocalityGroup;
      if (g.eligible.length === 0 || (localOnly && g.remote)) continue;
      if (!g.capped || g.tryAdmit(now)) {
        if (g !== drawn) {
          drawn.spilledOut++;
          g.spilledIn++;
        }
        return g;
      }
    }
    if (!(localOnly && drawn.remote) && drawn.eligible.length > 0) return drawn;
    // Local-only and the drawn one is remote and every local one is full: the first local one.
    return order.find((g) => g.eligible.length > 0 && !g.remote);
  }

  #status(h: HostState): HealthStatus {
    if (h.health.draining) return 'draining';
    if (!h.health.activeHealthy) return 'unhealthy';
    if (h.health.ejected || h.health.unreachable || h.health.fleetEjected) return 'ejected';
    if (h.slowStartSinceMs !== undefined) return 'slow_start';
    return 'healthy';
  }

  #setHosts(endpoints: readonly Endpoint[], rampNew: boolean): void {
    const initiallyHealthy = this.#o.activeChecks?.initiallyHealthy ?? true;
    const now = this.#o.clock.nowMs();
    const seen = Cluster.checkEndpoints(this.name, endpoints);
    const hosts: HostState[] = [];
    for (const ep of endpoints) {
      let host = this.#byId.get(ep.id);
      if (host) {
        host.endpoint = ep;
      } else {
        host = new HostState(ep, this.#o.latencyTauMs ?? 10_000, initiallyHealthy);
        if (rampNew && this.#slowStartApplies()) host.slowStartSinceMs = now;
      }
      hosts.push(host);
    }
    for (const old of this.#hosts) if (!seen.has(old.endpoint.id)) old.removed = true;
    this.#hosts = hosts;
    this.#byId = new Map(hosts.map((h) => [h.endpoint.id, h]));
    this.#byHealth = new Map(hosts.map((h) => [h.health, h]));
    const healths = hosts.map((h) => h.health);
    this.#outliers?.setHosts(healths);
    this.#connectFailures?.setHosts(healths);
    this.#dirty = true;
  }

  #slowStartApplies(): boolean {
    return this.#o.slowStart !== undefined && !isHashPolicy(this.policy);
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
    const byHealth = this.#byHealth;
    for (const r of this.#connectFailures?.returnDue(now) ?? []) this.#emit({ type: 'returned', host: byHealth.get(r) as HostState });
    const outliers = this.#outliers;
    if (outliers) {
      for (const r of outliers.returnDue(now)) this.#emit({ type: 'returned', host: byHealth.get(r) as HostState });
      if (now >= this.#nextIntervalMs) {
        for (const e of outliers.review(now)) this.#ejected(e, byHealth.get(e.health) as HostState);
        // Catch up in whole intervals so a long pause in picks does not replay them one by one.
        const interval = outliers.intervalMs;
        this.#nextIntervalMs += Math.ceil((now - this.#nextIntervalMs + 1) / interval) * interval;
      }
    }
    this.#rebuild(now);
  }

  #group(locality: Locality | undefined, now: number): LocalityGroup {
    const l = locality ?? {};
    const key = `${l.priority ?? 0}|${l.region ?? ''}|${l.zone ?? ''}`;
    let g = this.#groups.get(key);
    if (g === undefined) {
      const o = this.#o;
      const options =
        o.policy === 'predictive'
          ? { ...o, predictive: { ...o.predictive, onSwitch: (fallback: boolean, reason: 'drift' | 'worse_than_baseline' | 'recovered') => this.#emit({ type: 'model_fallback', fallback, reason, locality: key }) } }
          : o;
      g = new LocalityGroup(key, l, createBalancer(o.policy, o.rng, o.clock, options), now);
      this.#groups.set(key, g);
    } else if (g.locality !== l) {
      g.configure(l, now);
    }
    return g;
  }

  #rebuild(now: number): void {
    this.#dirty = false;
    const slowStart = this.#slowStartApplies() ? this.#o.slowStart : undefined;
    let nextStep = Math.min(this.#outliers?.nextReturnMs() ?? Infinity, this.#connectFailures?.nextReturnMs() ?? Infinity);

    // Localities with their non-draining hosts, in spill order: by priority, then first appearance.
    const order: LocalityGroup[] = [];
    for (const h of this.#hosts) {
      const isRoutable = h.health.routable;
      if (isRoutable && !h.wasRoutable && slowStart) h.slowStartSinceMs = now;
      h.wasRoutable = isRoutable;
      if (h.health.draining) continue;
      const g = this.#group(h.endpoint.locality, now);
      if (!order.includes(g)) {
        order.push(g);
        g.hosts = [];
        g.healthy = 0;
        g.active = 0;
      }
      g.hosts.push(h);
      g.active += h.active;
      if (isRoutable) g.healthy++;
      h.group = g;
    }
    order.sort((a, b) => a.priority - b.priority);

    // Priority levels: health, panic, load.
    const levels: LocalityGroup[][] = [];
    for (const g of order) {
      const last = levels[levels.length - 1];
      if (last !== undefined && (last[0] as LocalityGroup).priority === g.priority) last.push(g);
      else levels.push([g]);
    }
    const opf = this.#o.overprovisioningFactor ?? DEFAULT_OVERPROVISIONING_FACTOR;
    const threshold = this.#o.panicThresholdPercent ?? 50;
    const sums = levels.map((level) => level.reduce((a, g) => ({ total: a.total + g.hosts.length, healthy: a.healthy + g.healthy }), { total: 0, healthy: 0 }));
    const loads = priorityLoads(sums.map((s) => levelHealth(s.healthy, s.total, opf)));
    let panic = false;
    levels.forEach((level, li) => {
      const { total, healthy } = sums[li] as { total: number; healthy: number };
      const levelPanic = total > 0 && (100 * healthy) / total < threshold;
      const load = (loads[li] as number) / 100;
      if (levelPanic && load > 0) panic = true;
      for (const g of level) {
        g.panic = levelPanic;
        g.eligible = levelPanic ? g.hosts : g.hosts.filter((h) => h.health.routable);
        g.weights = g.eligible.map((h) => {
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
      }
      const within = this.#sharesWithin(level, total, opf);
      level.forEach((g, gi) => (g.share = load * (within[gi] as number)));
    });
    if (panic !== this.#panic) this.#emit({ type: 'panic', active: panic });
    this.#panic = panic;
    this.#nextStepMs = nextStep;

    const weights = new Map<HostState, number>();
    for (const g of order) {
      g.rebalance();
      g.eligible.forEach((h, i) => weights.set(h, g.weights[i] as number));
    }
    this.#eligibleWeights = weights;
    this.#order = order;
    let acc = 0;
    this.#cumulative = order.map((g) => (acc += g.share));
    const taking = order.filter((g) => g.share > 0);
    this.#only = taking.length === 1 && !order.some((g) => g.capped || g.remote) ? taking[0] : undefined;
  }

  /**
   * How one priority level's traffic divides among its localities: zone-aware when the
   * caller's zone is known and present, else by locality weight x health when weights are
   * set, else by the eligible hosts' weights (as if the level were one pool).
   */
  #sharesWithin(level: readonly LocalityGroup[], levelTotal: number, opf: number): number[] {
    if (level.length === 1) return [1];
    const sumWeights = (g: LocalityGroup) => g.weights.reduce((a, w) => a + w, 0);
    const local = this.#o.local;
    const localGroup = local?.zone === undefined ? undefined : level.find((g) => g.region === local.region && g.zone === local.zone);
    if (localGroup !== undefined && levelTotal >= (this.#o.zoneAware?.minClusterSize ?? 6)) {
      const zoneKey = (g: LocalityGroup) => `${g.region ?? ''}/${g.zone ?? ''}`;
      const upstreamTotal = level.reduce((a, g) => a + (g.panic ? 0 : sumWeights(g)), 0);
      const configured = this.#o.zoneAware?.callers;
      const callerRaw = level.map((g) => configured?.[zoneKey(g)] ?? (configured === undefined ? g.hosts.reduce((a, h) => a + h.weight, 0) : 0));
      const callerTotal = callerRaw.reduce((a, c) => a + c, 0);
      if (upstreamTotal > 0 && callerTotal > 0) {
        const upstream = new Map(level.map((g) => [zoneKey(g), sumWeights(g) / upstreamTotal]));
        const callers = new Map(level.map((g, i) => [zoneKey(g), (callerRaw[i] as number) / callerTotal]));
        const shares = zoneAwareShares(zoneKey(localGroup), upstream, callers);
        return level.map((g) => shares.get(zoneKey(g)) ?? 0);
      }
    }
    const raw = level.some((g) => g.locality.weight !== undefined)
      ? level.map((g) => (g.eligible.length === 0 ? 0 : (g.locality.weight ?? 1) * Math.min(1, (opf * g.healthy) / Math.max(1, g.hosts.length))))
      : level.map(sumWeights);
    const total = raw.reduce((a, r) => a + r, 0);
    return total > 0 ? raw.map((r) => r / total) : raw.map((_, i) => (i === 0 ? 1 : 0));
  }
}

