/**
 * The discrete-event engine: one run of a scenario under one balancing policy.
 *
 * It drives the same `src/core` objects the proxy uses, unchanged: per region a
 * `Cluster` (the policy's balancer, active health, outlier detection, connect-failure
 * ejection, panic, slow start), a `RetryBudget`, a `CircuitBreaker` (the proxy's defaults
 * when the scenario sets none) and a `TokenBucket` rate limit, and per request a
 * `RequestLifecycle` (admission, retry decisions and backoff, through try-outcome.ts as the
 * proxy's own adapter), all reading a `ManualClock` that this loop moves from event to event. The only things modelled here
 * are what the proxy gets from the outside world: arrivals, servers (workers, a FIFO
 * queue, a speed, a service-time distribution), the network (RTT, partitions), health
 * probes as events on the virtual clock, and the scenario's failures.
 *
 * Simplifications, stated once: arrivals are defined at the load balancer of the chosen
 * region, and the client's RTT to that region is added to each response time (the LB's
 * decisions are not delayed by half an RTT). A killed server refuses connections at once
 * and resets the requests it held; a region that is down, or partitioned from a client
 * group, black-holes that group's requests, which fail after `lb.connect_timeout`.
 * A request abandoned by the LB (timeout) is skipped when it reaches the head of its
 * server's queue (`abandoned: drop`, the default) or served for nobody (`abandoned: serve`,
 * servers that never notice a client has gone: the road to congestion collapse).
 */
import { coreRetryRules } from '../config/index.js';
import { CircuitBreaker } from '../core/circuit-breaker.js';
import { ManualClock } from '../core/clock.js';
import { Cluster, type HostState } from '../core/cluster.js';
import { isHashPolicy } from '../core/balancers.js';
import { fmix32 } from '../core/hash.js';
import { RifLatency } from '../core/rif-latency.js';
import type { LifecycleCluster, RequestLifecycle } from '../core/request-lifecycle.js';
import { RetryBudget } from '../core/retry-budget.js';
import { HedgePolicy } from '../core/hedging.js';
import { OverloadGate } from '../core/overload-gate.js';
import { SeededRng } from '../core/rng.js';
import { TokenBucket } from '../core/token-bucket.js';
import type { BalancerStats, Endpoint, Locality, Outcome, PolicyName } from '../core/types.js';
import { exponentialGapMs, meanOf, sampler, type Sampler } from './distributions.js';
import { EventQueue } from './event-queue.js';
import { keyMoves } from './key-moves.js';
import { RegionChoice } from './region-choice.js';
import type { ClientSpec, Scenario, ServerSpec, SimEvent } from './scenario.js';
import { newHistogram, percentileMs, recordMs, round, type Bucket } from './stats.js';
import { simLifecycle, simTryEnded } from './try-outcome.js';
import { OverloadStats, type OverloadResult } from './overload.js';

/** Time-weighted queue-length distribution: states 0..MAX_OCCUPANCY-1, the last bin is ">= MAX_OCCUPANCY - 1". */
const MAX_OCCUPANCY = 64;

export interface ServerResult {
  readonly id: string;
  /** Busy worker time over available worker time in the measured window. */
  readonly utilization: number;
  /** Requests this server finished serving in the measured window (including work the LB had abandoned). */
  readonly completed: number;
}

/** One scale-out or scale-in of a region's endpoint set. */
export interface MembershipChange {
  readonly t_s: number;
  readonly kind: 'add' | 'remove';
  readonly region: string;
  readonly endpoints_before: number;
  readonly endpoints_after: number;
  /** Hash policies only: share of a fixed sample of keys whose endpoint changed (key-moves.ts). */
  readonly keys_moved?: number;
  /** Hash policies only: share of keys that moved between endpoints in both sets (needless movement). */
  readonly keys_moved_between_kept?: number;
}

export interface PolicyResult {
  readonly policy: PolicyName;
  /** Requests that arrived after the warm-up. */
  readonly requests: number;
  readonly completed: number;
  readonly failed: number;
  /** Refused by the load balancer itself: rate limit (429) or circuit breaker overflow (503). */
  readonly shed: number;
  /** Still in flight when the run ended. */
  readonly unfinished: number;
  readonly retries: number;
  /** Tries a region's load balancer sent to another region's servers (lb.cross_region). */
  readonly cross_region_tries: number;
  readonly failures: Readonly<Record<Failure | 'rate_limited' | 'overflow' | 'overloaded', number>>;
  readonly latency_ms: { readonly mean: number; readonly p50: number; readonly p90: number; readonly p99: number; readonly p999: number; readonly max: number };
  readonly max_utilization: number;
  /** Highest server utilization over the mean utilization (1 = perfectly even). */
  readonly imbalance: number;
  readonly servers: readonly ServerResult[];
  readonly regions: readonly { readonly name: string; readonly requests: number }[];
  /** Fraction of server-time with at least i requests (queued or in service), i = 0, 1, 2, ... */
  readonly queue_length_at_least: readonly number[];
  readonly membership_changes: readonly MembershipChange[];
  readonly timeseries: readonly Bucket[];
  /** Hedges sent, and those whose answer was the one taken (lb.hedge). */
  readonly hedges: number;
  readonly hedges_won: number;
  /** With lb.adaptive_concurrency: classes, refusals, the limit over time. */
  readonly overload?: OverloadResult;
  /**
   * The decision metric, for every policy: over a sample of first tries (one in 8), the
   * expected latency of the server picked minus the best server's, from the servers' true
   * queues and speeds at that instant (what an oracle would have known), ms.
   */
  readonly regret_ms: { readonly mean: number; readonly optimal_share: number };
  /** The adaptive policies' own counters (prequal's probes, predictive's model), summed over regions. */
  readonly adaptive?: AdaptiveResult;
}

export interface AdaptiveResult {
  readonly probes_sent?: number;
  readonly probe_replies?: number;
  readonly pool_picks?: number;
  readonly random_picks?: number;
  readonly model_mae_ms?: number;
  readonly model_p90_abs_error_ms?: number;
  readonly baseline_mae_ms?: number;
  /** predictive: picks the model made, and those it left to peak EWMA (candidates it could not tell apart). */
  readonly model_picks?: number;
  readonly baseline_picks?: number;
  /** Every switch of the predictive policy between its model and the peak-EWMA fallback. */
  readonly switches?: readonly { readonly t_s: number; readonly region: string; readonly to: 'fallback' | 'model'; readonly reason: string }[];
}

export interface RunOptions {
  /** Called now and then with the fraction of virtual time done (0..1). */
  readonly onProgress?: (fraction: number) => void;
}

type Failure = 'timeout' | 'connect' | 'reset' | 'protocol' | 'unreachable' | 'no_host' | 'http_5xx';

interface Request {
  readonly t0: number;
  readonly group: number;
  readonly region: number;
  readonly rttMs: number;
  readonly measured: boolean;
  /** Set once the region's load balancer admitted it. */
  lc: RequestLifecycle | undefined;
  /** The try in flight, and its hedge while both are. */
  primary: Attempt | undefined;
  hedge: Attempt | undefined;
}

interface Attempt {
  /** Requests in flight at the server when it arrived (what its latency is filed under for probes). */
  rif: number;
  readonly req: Request;
  readonly server: Server;
  readonly host: HostState;
  readonly startMs: number;
  /** The server's contention clock when it arrived (see Server.contentionAt). */
  readonly contention0: number;
  /** Round trip to the server's region when it is not the request's: paid before the answer reaches the LB. */
  readonly extraMs: number;
  epoch: number;
  done: boolean;
}

class Server {
  readonly id: string;
  readonly region: number;
  readonly concurrency: number;
  readonly speed: number;
  readonly maxQueue: number;
  readonly dropAbandoned: boolean;
  readonly sample: Sampler;
  readonly rng: SeededRng;
  readonly host: HostState;
  readonly meanServiceMs: number;
  /** What it answers a Prequal probe with: latency by requests in flight. */
  readonly rifLatency = new RifLatency();
  /** Probe work not yet paid: added to the next request it starts (probes count as load). */
  probeDebtMs = 0;
  /**
   * 1, or the antagonists' slowdown while they run (speed_changes). The server knows it, as
   * a real one measures wall time per CPU time of its requests (CPU contention), and
   * its probe answers use it; a slower machine (speed) is not contention and is not in it.
   */
  antagonistFactor = 1;
  /** The integral of antagonistFactor over time up to #contentionMs: what CPU-time accounting gives a real server. */
  #contention = 0;
  #contentionMs = 0;
  alive = true;
  /** Out of its region's endpoint set (scale-in): it finishes what it holds and gets nothing new. */
  removed = false;
  /** End of its membership: its utilization is measured up to here, not over its drain. */
  memberToMs = Infinity;
  slowFactor = 1;
  errorRate = 0;
  coldFactor = 1;
  coldFromMs = 0;
  warmMs = 0;
  epoch = 0;
  busy = 0;
  queue: Attempt[] = [];
  queueHead = 0;
  readonly inService = new Set<Attempt>();
  // Measured-window statistics.
  measuredFromMs = 0;
  busyArea = 0;
  lastChangeMs = 0;
  completed = 0;
  readonly occupancy = new Float64Array(MAX_OCCUPANCY);
  bucketStarted = 0;

  constructor(id: string, region: number, spec: ServerSpec, seed: number, host: HostState) {
    this.id = id;
    this.region = region;
    this.concurrency = spec.concurrency;
    this.speed = spec.speed;
    this.maxQueue = spec.maxQueue;
    this.dropAbandoned = spec.dropAbandoned;
    this.sample = sampler(spec.serviceTime);
    this.meanServiceMs = meanOf(spec.serviceTime);
    this.rng = new SeededRng(seed);
    this.host = host;
  }

  get queued(): number {
    return this.queue.length - this.queueHead;
  }

  /** Account for time spent in the current state before it changes. */
  account(now: number): void {
    const dt = Math.min(now, this.memberToMs) - this.lastChangeMs;
    if (dt > 0) {
      this.busyArea += this.busy * dt;
      const k = Math.min(this.busy + this.queued, MAX_OCCUPANCY - 1);
      this.occupancy[k] = (this.occupancy[k] as number) + dt;
    }
    this.lastChangeMs = now;
  }

  /** Change the antagonists' slowdown at `now`, keeping the contention clock. */
  setAntagonist(factor: number, now: number): void {
    this.#contention = this.contentionAt(now);
    this.#contentionMs = now;
    this.antagonistFactor = factor;
  }

  contentionAt(now: number): number {
    return this.#contention + this.antagonistFactor * (now - this.#contentionMs);
  }

  /**
   * The slowdown a request that arrived with clock reading `contention0` lived through, on
   * average: a server measures it per request (wall time over CPU time), not as the slowdown
   * of the instant it ends. One that ran slow and ended just after the antagonists left
   * would otherwise be filed as three times its own work.
   */
  slowdownSince(contention0: number, startMs: number, now: number): number {
    return now > startMs ? (this.contentionAt(now) - contention0) / (now - startMs) : this.antagonistFactor;
  }

  /** How much longer than nominal a request started now takes. */
  slowness(now: number): number {
    let f = (this.slowFactor * this.antagonistFactor) / this.speed;
    if (this.coldFactor > 1) {
      const warmed = this.warmMs > 0 ? Math.min(1, (now - this.coldFromMs) / this.warmMs) : 1;
      f *= this.coldFactor - (this.coldFactor - 1) * warmed;
    }
    return f;
  }

  /** A request's service time, `work` times the servers' own (its client's `work`). */
  serviceMs(now: number, work: number): number {
    const debt = this.probeDebtMs;
    this.probeDebtMs = 0;
    return this.sample(this.rng) * this.slowness(now) * work + debt;
  }

  /** Expected time to answer a request arriving now: the work ahead of it over its workers, then its own. */
  expectedLatencyMs(now: number): number {
    const ahead = Math.max(0, this.busy + this.queued + 1 - this.concurrency);
    return (ahead / this.concurrency + 1) * this.meanServiceMs * this.slowness(now);
  }

  shift(): Attempt | undefined {
    if (this.queueHead >= this.queue.length) return undefined;
    const a = this.queue[this.queueHead];
    this.queue[this.queueHead++] = undefined as unknown as Attempt;
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    return a;
  }
}

interface RegionLb {
  readonly name: string;
  readonly cluster: Cluster;
  /** What a request's lifecycle needs of the region: its cluster, breaker, budget and retry rules. */
  readonly life: LifecycleCluster;
  /** The retry backoff's jitter. */
  readonly jitter: SeededRng;
  readonly rateLimit: TokenBucket | undefined;
  readonly servers: Server[];
  readonly hedging: HedgePolicy | undefined;
  down: boolean;
}

const EV_ARRIVAL = 0;
const EV_COMPLETE = 1;
const EV_TIMEOUT = 2;
const EV_REFUSED = 3;
const EV_UNREACHABLE = 4;
const EV_PROBE = 5;
const EV_STEER = 6;
const EV_SCENARIO = 7;
const EV_BUCKET = 8;
const EV_WARMUP = 9;
const EV_RESTORE = 10;
const EV_RETRY = 11;
const EV_GATE = 12;
const EV_HEDGE = 13;

type Ev =
  | { readonly k: typeof EV_ARRIVAL; readonly group: number }
  | { readonly k: typeof EV_COMPLETE | typeof EV_TIMEOUT | typeof EV_REFUSED; readonly a: Attempt }
  | { readonly k: typeof EV_UNREACHABLE | typeof EV_RETRY; readonly req: Request }
  | { readonly k: typeof EV_GATE; readonly gate: OverloadGate }
  | { readonly k: typeof EV_HEDGE; readonly a: Attempt }
  | { readonly k: typeof EV_PROBE; readonly server: Server }
  | { readonly k: typeof EV_STEER | typeof EV_BUCKET | typeof EV_WARMUP }
  | { readonly k: typeof EV_SCENARIO; readonly e: SimEvent }
  | { readonly k: typeof EV_RESTORE; readonly run: () => void };

/** Seeds of the independent random streams, derived from the scenario seed and a stream number. */
function streamSeed(seed: number, stream: number): number {
  return fmix32((Math.imul(seed >>> 0, 0x9e3779b1) ^ fmix32(stream + 0x632be5ab)) >>> 0);
}

/** Client arrival process: thinning of a Poisson process at the group's highest rate. */
class Arrivals {
  readonly #c: ClientSpec;
  readonly #rng: SeededRng;
  readonly #maxFactor: number;

  constructor(c: ClientSpec, rng: SeededRng) {
    this.#c = c;
    this.#rng = rng;
    const points = [0, ...c.spikes.map((s) => s.atMs)];
    const spikeMax = Math.max(...points.map((t) => this.#spikeFactor(t)));
    const curveMax = c.curve.length === 0 ? 1 : Math.max(...c.curve.map((p) => p.factor));
    this.#maxFactor = spikeMax * curveMax * (c.diurnal ? 1 + c.diurnal.amplitude : 1);
  }

  #spikeFactor(t: number): number {
    let f = 1;
    for (const s of this.#c.spikes) if (t >= s.atMs && t < s.atMs + s.forMs) f *= s.multiply;
    return f;
  }

  factor(t: number): number {
    const c = this.#c;
    let f = c.spikes.length === 0 ? 1 : this.#spikeFactor(t);
    if (c.curve.length > 0) f *= curveAt(c.curve, t);
    if (c.diurnal) f *= 1 + c.diurnal.amplitude * Math.cos((2 * Math.PI * (t - c.diurnal.peakAtMs)) / c.diurnal.periodMs);
    return f;
  }

  /** The next arrival after `t`, or Infinity when the rate is zero throughout. */
  next(t: number, endMs: number): number {
    const maxRate = this.#c.ratePerS * this.#maxFactor;
    if (!(maxRate > 0)) return Infinity;
    const exact = this.#maxFactor === 1;
    for (;;) {
      t += exponentialGapMs(this.#rng, maxRate);
      if (t > endMs) return Infinity;
      if (exact || this.#rng.next() * this.#maxFactor < this.factor(t)) return t;
    }
  }
}

function curveAt(curve: readonly { atMs: number; factor: number }[], t: number): number {
  const first = curve[0] as { atMs: number; factor: number };
  if (t <= first.atMs) return first.factor;
  for (let i = 1; i < curve.length; i++) {
    const b = curve[i] as { atMs: number; factor: number };
    if (t <= b.atMs) {
      const a = curve[i - 1] as { atMs: number; factor: number };
      return b.atMs === a.atMs ? b.factor : a.factor + ((b.factor - a.factor) * (t - a.atMs)) / (b.atMs - a.atMs);
    }
  }
  return (curve[curve.length - 1] as { factor: number }).factor;
}

/** Run the scenario once under `policy`. Deterministic: same scenario and policy, same result. */
export function runPolicy(s: Scenario, policy: PolicyName, options: RunOptions = {}): PolicyResult {
  return new Run(s, policy).run(options);
}

class Run {
  readonly #s: Scenario;
  readonly #policy: PolicyName;
  readonly #clock = new ManualClock(0);
  readonly #q = new EventQueue<Ev>();
  readonly #lbs: RegionLb[] = [];
  readonly #servers: Server[] = [];
  readonly #byHost = new Map<HostState, Server>();
  /** Hosts of a region's cluster that are another region's servers (lb.cross_region), with the RTT to them. */
  readonly #remoteRtt = new Map<HostState, number>();
  readonly #arrivals: Arrivals[];
  readonly #keyRng: SeededRng;
  readonly #choice: RegionChoice;
  readonly #rttMs: number[][];
  /** partitioned[group][region] */
  readonly #partitioned: boolean[][];
  // Totals over the measured window.
  #requests = 0;
  #completed = 0;
  #failed = 0;
  #shed = 0;
  #retries = 0;
  #crossRegionTries = 0;
  #latencySumMs = 0;
  #latencyMaxMs = 0;
  readonly #failures: Record<Failure | 'rate_limited' | 'overflow' | 'overloaded', number> = {
    timeout: 0, connect: 0, reset: 0, protocol: 0, unreachable: 0, no_host: 0, http_5xx: 0, rate_limited: 0, overflow: 0, overloaded: 0,
  };
  readonly #hist = newHistogram();
  readonly #regionRequests: number[];
  // The current time-series bucket.
  readonly #bucketHist = newHistogram();
  readonly #buckets: Bucket[] = [];
  readonly #changes: MembershipChange[] = [];
  #bucket: Bucket;
  #bucketLatencySum = 0;
  #measuring: boolean;
  readonly #overload: OverloadStats | undefined;
  #hedges = 0;
  #hedgesWon = 0;
  // The decision metric over sampled first tries, and the predictive policy's switches.
  #regretTries = 0;
  #regretSamples = 0;
  #regretSumMs = 0;
  #regretOptimal = 0;
  readonly #switches: { t_s: number; region: string; to: 'fallback' | 'model'; reason: string }[] = [];

  constructor(s: Scenario, policy: PolicyName) {
    this.#s = s;
    this.#policy = policy;
    this.#measuring = s.warmupMs === 0;
    const lb = s.lb;
    s.regions.forEach((reg, r) => {
      const cluster = new Cluster(reg.name, [], {
        policy,
        clock: this.#clock,
        rng: new SeededRng(streamSeed(s.seed, 1000 + r)),
        ...(lb.latencyTauMs === undefined ? {} : { latencyTauMs: lb.latencyTauMs }),
        ...(lb.choiceCount === undefined ? {} : { leastRequest: { choiceCount: lb.choiceCount } }),
        ...(lb.boundedLoad === undefined ? {} : { boundedLoad: lb.boundedLoad }),
        ...(lb.prequal ? { prequal: lb.prequal } : {}),
        ...(lb.predictive ? { predictive: lb.predictive } : {}),
        ...(lb.healthCheck ? { activeChecks: { healthyThreshold: lb.healthCheck.healthyThreshold, unhealthyThreshold: lb.healthCheck.unhealthyThreshold } } : {}),
        ...(lb.outlierDetection ? { outlierDetection: lb.outlierDetection } : {}),
        ...(lb.panicThresholdPercent === undefined ? {} : { panicThresholdPercent: lb.panicThresholdPercent }),
        ...(lb.slowStart ? { slowStart: lb.slowStart } : {}),
        ...(lb.overprovisioningFactor === undefined ? {} : { overprovisioningFactor: lb.overprovisioningFactor }),
        // The proxy's default: a host that refuses a connection is out of the picks at once.
        connectFailureEjection: {},
      });
      cluster.setProber((targets) => this.#sendProbes(this.#lbs[r] as RegionLb, targets));
      cluster.onEvent((e) => {
        if (e.type === 'model_fallback') this.#switches.push({ t_s: round(this.#clock.nowMs() / 1000, 3), region: reg.name, to: e.fallback ? 'fallback' : 'model', reason: e.reason });
      });
      this.#lbs.push({
        name: reg.name,
        cluster,
        life: {
          core: cluster,
          breaker: new CircuitBreaker(lb.circuitBreaker ?? {}),
          budget: new RetryBudget(lb.retryBudget ?? {}, 0),
          retry: coreRetryRules({ attempts: lb.retries, retry_on: lb.retryOn, per_try_timeout: lb.perTryTimeoutMs === Infinity ? undefined : lb.perTryTimeoutMs }),
          overload: lb.overload && new OverloadGate(lb.overload, new SeededRng(streamSeed(s.seed, 6000 + r))),
        },
        jitter: new SeededRng(streamSeed(s.seed, 5000 + r)),
        rateLimit: lb.rateLimit ? new TokenBucket(lb.rateLimit, 0) : undefined,
        servers: [],
        hedging: lb.hedge && new HedgePolicy(lb.hedge),
        down: false,
      });
      this.#addServers(r, reg.servers, false);
    });
    this.#arrivals = s.clients.map((c, g) => new Arrivals(c, new SeededRng(streamSeed(s.seed, 2000 + g))));
    this.#keyRng = new SeededRng(streamSeed(s.seed, 3000));
    this.#rttMs = s.clients.map((c) => s.regions.map((reg) => c.rttMs.get(reg.name) ?? Infinity));
    this.#partitioned = s.clients.map(() => s.regions.map(() => false));
    this.#choice = new RegionChoice(
      {
        rttMs: this.#rttMs,
        dnsTtlMs: s.global.dnsTtlMs,
        thresholds: { healthyThreshold: s.global.healthCheck.healthyThreshold, unhealthyThreshold: s.global.healthCheck.unhealthyThreshold },
      },
      new SeededRng(streamSeed(s.seed, 4000)),
    );
    this.#regionRequests = s.regions.map(() => 0);
    this.#bucket = this.#newBucket(0);
    this.#overload = lb.overload && new OverloadStats();
  }

  #addServers(region: number, specs: readonly ServerSpec[], ramp: boolean, coldFactor = 1, warmMs = 0): void {
    const lb = this.#lbs[region] as RegionLb;
    const now = this.#clock.nowMs();
    const first = lb.servers.length;
    const cross = this.#s.lb.crossRegion;
    const before = this.#members(lb);
    const eps: Endpoint[] = [...before];
    specs.forEach((_, j) => {
      const id = `${lb.name}/${first + j}`;
      eps.push({ id, address: id, weight: 1, ...(cross ? { locality: this.#ownLocality(region) } : {}) });
    });
    if (ramp) this.#recordChange('add', lb, before, eps);
    lb.cluster.setEndpoints(eps);
    specs.forEach((spec, j) => {
      const id = `${lb.name}/${first + j}`;
      const host = lb.cluster.host(id) as HostState;
      const server = new Server(id, region, spec, streamSeed(this.#s.seed, 100_000 + this.#servers.length), host);
      server.lastChangeMs = now;
      server.measuredFromMs = Math.max(now, this.#s.warmupMs);
      if (ramp && coldFactor > 1) {
        server.coldFactor = coldFactor;
        server.coldFromMs = now;
        server.warmMs = warmMs;
      }
      lb.servers.push(server);
      this.#servers.push(server);
      if (spec.speedChanges) this.#antagonists(server, spec.speedChanges, streamSeed(this.#s.seed, 200_000 + this.#servers.length));
      this.#byHost.set(host, server);
      if (this.#s.lb.healthCheck) {
        const interval = this.#s.lb.healthCheck.intervalMs;
        // Probes of a region's servers are spread evenly over one interval.
        this.#q.push(now + (interval * (first + j + 1)) / (first + specs.length), { k: EV_PROBE, server });
      }
    });
    if (cross) this.#syncRemote();
  }

  /**
   * The server's antagonists, on a random stream of their own so every policy meets the
   * same schedule: full speed and 1 / factor of it in turn, each held for an exponential time.
   */
  #antagonists(server: Server, changes: { readonly factor: number; readonly holdMs: number }, seed: number): void {
    const rng = new SeededRng(seed);
    const flip = (): void => {
      server.setAntagonist(server.antagonistFactor === 1 ? changes.factor : 1, this.#clock.nowMs());
      this.#later(this.#clock.nowMs() + exponentialGapMs(rng, 1000 / changes.holdMs), flip);
    };
    if (rng.next() < 0.5) server.setAntagonist(changes.factor, this.#clock.nowMs());
    this.#later(this.#clock.nowMs() + exponentialGapMs(rng, 1000 / changes.holdMs), flip);
  }

  /** Scale-in, as discovery applies it: the servers leave the set and drain, keeping what they hold. */
  #removeServers(region: number, indexes: readonly number[]): void {
    const lb = this.#lbs[region] as RegionLb;
    const now = this.#clock.nowMs();
    const before = this.#members(lb);
    for (const j of indexes) {
      const server = lb.servers[j] as Server;
      server.account(now);
      server.removed = true;
      server.memberToMs = now;
    }
    const after = this.#members(lb);
    this.#recordChange('remove', lb, before, after);
    lb.cluster.setEndpoints(after);
    if (this.#s.lb.crossRegion) this.#syncRemote();
  }

  /** The region's own servers still in its endpoint set. */
  #members(lb: RegionLb): Endpoint[] {
    return lb.servers.filter((sv) => !sv.removed).map((sv) => sv.host.endpoint);
  }

  #recordChange(kind: 'add' | 'remove', lb: RegionLb, before: readonly Endpoint[], after: readonly Endpoint[]): void {
    const moves = isHashPolicy(this.#policy) ? keyMoves(this.#policy, before, after) : undefined;
    this.#changes.push({
      t_s: round(this.#clock.nowMs() / 1000),
      kind,
      region: lb.name,
      endpoints_before: before.length,
      endpoints_after: after.length,
      ...(moves ? { keys_moved: round(moves.moved, 4), keys_moved_between_kept: round(moves.movedBetweenKept, 4) } : {}),
    });
  }

  /** A region's own servers as its load balancer's first locality, with the region's capacity if it declares one. */
  #ownLocality(region: number): Locality {
    const spec = this.#s.regions[region];
    const cap = spec?.capacity;
    return {
      region: spec?.name ?? String(region),
      priority: 0,
      ...(cap?.maxRequestsPerSecond === undefined ? {} : { maxRequestsPerSecond: cap.maxRequestsPerSecond }),
      ...(cap?.maxInFlight === undefined ? {} : { maxInFlight: cap.maxInFlight }),
    };
  }

  /** The inter-region round trip from region a's load balancer to region b's servers; undefined = no route. */
  #interRegionRtt(a: number, b: number): number | undefined {
    const ra = this.#s.regions[a];
    const rb = this.#s.regions[b];
    if (ra === undefined || rb === undefined) return undefined;
    return ra.rttMs.get(rb.name) ?? rb.rttMs.get(ra.name);
  }

  /**
   * lb.cross_region: every region's cluster gets the other regions' servers as remote
   * localities, one priority level per region, nearest first; the core's locality routing
   * (priority levels, overprovisioning, panic) decides when traffic crosses.
   */
  #syncRemote(): void {
    this.#lbs.forEach((lb, r) => {
      const others = this.#lbs
        .map((_, o) => ({ o, rtt: this.#interRegionRtt(r, o) }))
        .filter((x): x is { o: number; rtt: number } => x.o !== r && x.rtt !== undefined)
        .sort((x, y) => x.rtt - y.rtt || x.o - y.o);
      const eps: Endpoint[] = this.#members(lb);
      others.forEach(({ o }, rank) => {
        const other = this.#lbs[o] as RegionLb;
        for (const sv of other.servers) if (!sv.removed) eps.push({ id: sv.id, address: sv.id, weight: 1, locality: { region: other.name, priority: rank + 1, remote: true } });
      });
      lb.cluster.setEndpoints(eps);
      for (const { o, rtt } of others) {
        for (const sv of (this.#lbs[o] as RegionLb).servers) {
          if (sv.removed) continue;
          const h = lb.cluster.host(sv.id) as HostState;
          this.#byHost.set(h, sv);
          this.#remoteRtt.set(h, rtt);
        }
      }
    });
  }

  #newBucket(tMs: number): Bucket {
    return {
      t_s: round(tMs / 1000),
      requests: 0,
      completed: 0,
      failed: 0,
      shed: 0,
      retries: 0,
      latency_ms: { mean: 0, p50: 0, p90: 0, p99: 0 },
      regions: this.#s.regions.map(() => 0),
      servers: [],
    };
  }

  run(options: RunOptions): PolicyResult {
    const s = this.#s;
    const q = this.#q;
    const end = s.durationMs;
    this.#arrivals.forEach((a, g) => q.push(a.next(0, end), { k: EV_ARRIVAL, group: g }));
    for (const e of s.events) q.push(e.atMs, { k: EV_SCENARIO, e });
    if (s.warmupMs > 0) q.push(s.warmupMs, { k: EV_WARMUP });
    q.push(s.bucketMs, { k: EV_BUCKET });
    if (s.regions.length > 1) q.push(s.global.healthCheck.intervalMs, { k: EV_STEER });
    const clock = this.#clock;
    let n = 0;
    while (q.peekTime() <= end) {
      clock.set(q.peekTime());
      const ev = q.pop() as Ev;
      this.#handle(ev);
      if ((++n & 0xffff) === 0) options.onProgress?.(clock.nowMs() / end);
    }
    clock.set(end);
    if (this.#bucket.t_s * 1000 < end) this.#closeBucket(end);
    options.onProgress?.(1);
    return this.#result();
  }

  #handle(ev: Ev): void {
    switch (ev.k) {
      case EV_ARRIVAL:
        return this.#arrive(ev.group);
      case EV_COMPLETE:
        return this.#complete(ev.a);
      case EV_TIMEOUT:
        if (!ev.a.done) this.#deliver(ev.a, { error: 'timeout', latencyMs: this.#clock.nowMs() - ev.a.startMs });
        return;
      case EV_REFUSED:
        if (!ev.a.done) this.#deliver(ev.a, { error: 'connect', latencyMs: this.#clock.nowMs() - ev.a.startMs });
        return;
      case EV_UNREACHABLE:
        return this.#finish(ev.req, 'unreachable');
      case EV_RETRY:
        return this.#dispatch(ev.req);
      case EV_GATE:
        return ev.gate.expire(this.#clock.nowMs());
      case EV_HEDGE:
        return this.#hedge(ev.a);
      case EV_PROBE:
        return this.#probe(ev.server);
      case EV_STEER:
        return this.#steer();
      case EV_SCENARIO:
        return this.#scenarioEvent(ev.e);
      case EV_BUCKET:
        return this.#closeBucket(this.#clock.nowMs());
      case EV_WARMUP:
        return this.#startMeasuring();
      case EV_RESTORE:
        return ev.run();
    }
  }

  #arrive(group: number): void {
    const now = this.#clock.nowMs();
    const s = this.#s;
    this.#q.push(this.#arrivals[group]?.next(now, s.durationMs) ?? Infinity, { k: EV_ARRIVAL, group });
    const region = this.#choice.choose(group, now);
    const client = s.clients[group] as ClientSpec;
    const hash = client.keys > 0 ? fmix32((Math.floor(this.#keyRng.next() * client.keys) + 1) ^ Math.imul(group + 1, 0x85ebca6b)) : undefined;
    const req: Request = {
      t0: now,
      group,
      region,
      rttMs: region < 0 ? 0 : (this.#rttMs[group]?.[region] ?? 0),
      measured: this.#measuring,
      lc: undefined,
      primary: undefined,
      hedge: undefined,
    };
    if (req.measured) {
      this.#requests++;
      if (region >= 0) this.#regionRequests[region] = (this.#regionRequests[region] as number) + 1;
    }
    this.#bucket.requests++;
    if (region < 0) return this.#finish(req, 'unreachable');
    (this.#bucket.regions[region] as number)++;
    const lb = this.#lbs[region] as RegionLb;
    if (lb.down || this.#partitioned[group]?.[region]) {
      this.#q.push(now + Math.min(s.lb.connectTimeoutMs, s.lb.timeoutMs), { k: EV_UNREACHABLE, req });
      return;
    }
    if (lb.rateLimit && !lb.rateLimit.tryTake(now).ok) return this.#shedReq(req, 'rate_limited');
    const lc = simLifecycle(lb.life, this.#clock, lb.jitter);
    lc.hash = hash;
    lc.requestClass = client.requestClass;
    lc.priority = client.priority;
    lc.hedging = lb.hedging;
    lc.deadlineIn(s.lb.timeoutMs);
    req.lc = lc;
    this.#overload?.arrived(lc.priority, req.measured);
    const v = lc.enter();
    if (v === 'queued') {
      lc.onGate = (answer) => this.#gateAnswer(req, answer);
      this.#q.push(lc.queueDeadlineMs, { k: EV_GATE, gate: lb.life.overload as OverloadGate });
      return;
    }
    this.#gateAnswer(req, v);
  }

  /** The load balancer's admission, at once or after the request waited in its queue. */
  #gateAnswer(req: Request, v: 'admitted' | 'overloaded' | 'circuit_open'): void {
    const lc = req.lc as RequestLifecycle;
    if (v === 'admitted') {
      this.#overload?.admitted(lc.priority);
      return this.#dispatch(req);
    }
    if (v === 'circuit_open') return this.#shedReq(req, 'overflow');
    this.#overload?.refused(lc.priority, this.#clock.nowMs() - req.t0, req.measured);
    this.#shedReq(req, 'overloaded');
  }

  /** The first try has run for the hedge delay: send the hedge if it is still running and the lifecycle allows. */
  #hedge(a: Attempt): void {
    const req = a.req;
    if (a.done || req.primary !== a) return;
    const host = (req.lc as RequestLifecycle).startHedge();
    if (host === undefined) return;
    if (req.measured) this.#hedges++;
    this.#send(req, host, true);
  }

  /** The request's next try, on the host its lifecycle picks; after a backoff that outlived the deadline, its timeout. */
  #dispatch(req: Request): void {
    const lc = req.lc as RequestLifecycle;
    if (this.#clock.nowMs() >= lc.deadlineMs) {
      lc.end();
      return this.#finish(req, 'timeout');
    }
    const host = lc.startTry();
    if (host === undefined) {
      lc.end();
      return this.#finish(req, 'no_host');
    }
    this.#send(req, host);
  }

  #send(req: Request, host: HostState, hedge = false): void {
    const now = this.#clock.nowMs();
    const lc = req.lc as RequestLifecycle;
    const server = this.#byHost.get(host) as Server;
    const extraMs = this.#remoteRtt.get(host) ?? 0;
    if (extraMs > 0 && req.measured) this.#crossRegionTries++;
    if (req.measured && lc.attempt === 1 && (++this.#regretTries & 7) === 0) this.#regret(this.#lbs[req.region] as RegionLb, server, now);
    const a: Attempt = { rif: server.busy + server.queued, req, server, host, startMs: now, contention0: server.contentionAt(now), extraMs, epoch: server.epoch, done: false };
    if (hedge) req.hedge = a;
    else {
      req.primary = a;
      const delay = lc.hedgeDelayMs();
      if (delay < Infinity) this.#q.push(now + delay, { k: EV_HEDGE, a });
    }
    const serverLb = this.#lbs[server.region] as RegionLb;
    if (serverLb.down && server.region !== req.region) {
      // Another region's server in a region that is down: black-holed until the connect timeout.
      this.#q.push(now + Math.min(this.#s.lb.connectTimeoutMs, this.#s.lb.timeoutMs), { k: EV_REFUSED, a });
    } else if (!server.alive) {
      this.#q.push(now + extraMs, { k: EV_REFUSED, a });
    } else {
      server.bucketStarted++;
      if (server.busy < server.concurrency) this.#start(server, a, now);
      else if (server.queued >= server.maxQueue) {
        // A full queue answers 503 at once (after the round trip, for another region's server).
        if (extraMs > 0) {
          this.#later(now + extraMs, () => {
            if (!a.done) this.#deliver(a, { status: 503, latencyMs: extraMs });
          });
        } else {
          a.done = true;
          this.#deliverNow(a, { status: 503, latencyMs: 0 });
          return;
        }
      } else {
        server.account(now);
        server.queue.push(a);
      }
    }
    const deadline = lc.tryDeadlineMs();
    if (deadline < Infinity) this.#q.push(deadline, { k: EV_TIMEOUT, a });
  }

  /** Prequal's probes, sent with the request: each reads the server on arrival and its reply returns after the round trip. */
  #sendProbes(lb: RegionLb, targets: readonly HostState[]): void {
    const now = this.#clock.nowMs();
    const p = this.#s.lb.prequal;
    const rtt = p?.probeRttMs ?? 1;
    const cost = p?.probeCostMs ?? 0;
    for (const target of targets) {
      const server = this.#byHost.get(target) as Server;
      const extra = this.#remoteRtt.get(target) ?? 0;
      this.#later(now + (rtt + extra) / 2, () => {
        // A dead server, or one in a region that is down, answers nothing.
        if (!server.alive || (this.#lbs[server.region] as RegionLb).down) return;
        const rif = server.busy + server.queued;
        const reply = { rif, latencyMs: server.rifLatency.estimate(rif, this.#clock.nowMs(), server.antagonistFactor) };
        server.probeDebtMs += cost;
        this.#later(this.#clock.nowMs() + (rtt + extra) / 2, () => lb.cluster.recordProbe(target, reply));
      });
    }
  }

  /** The decision metric for one first try: how much longer the server picked should take than the best one in the region. */
  #regret(lb: RegionLb, picked: Server, now: number): void {
    let best = Infinity;
    for (const sv of lb.servers) {
      if (!sv.alive || sv.removed) continue;
      const e = sv.expectedLatencyMs(now);
      if (e < best) best = e;
    }
    if (best === Infinity || !picked.alive) return;
    const regret = Math.max(0, picked.expectedLatencyMs(now) - best);
    this.#regretSamples++;
    this.#regretSumMs += regret;
    if (regret === 0) this.#regretOptimal++;
  }

  #start(server: Server, a: Attempt, now: number): void {
    server.account(now);
    server.busy++;
    server.inService.add(a);
    this.#q.push(now + server.serviceMs(now, (this.#s.clients[a.req.group] as ClientSpec).work), { k: EV_COMPLETE, a });
  }

  #complete(a: Attempt): void {
    const server = a.server;
    if (a.epoch !== server.epoch) return; // the server died meanwhile: the attempt was reset then
    const now = this.#clock.nowMs();
    server.account(now);
    server.busy--;
    server.inService.delete(a);
    if (now >= server.measuredFromMs) server.completed++;
    server.rifLatency.observe(a.rif, now - a.startMs, now, server.slowdownSince(a.contention0, a.startMs, now));
    let next = server.shift();
    while (next !== undefined && next.done && server.dropAbandoned) next = server.shift();
    if (next !== undefined) this.#start(server, next, now);
    if (a.done) return; // abandoned by the LB: the work was wasted
    const status = server.errorRate > 0 && server.rng.next() < server.errorRate ? 500 : 200;
    if (a.extraMs === 0) return this.#deliver(a, { status, latencyMs: now - a.startMs });
    // Another region's server: the answer travels back first (the LB may give up meanwhile).
    this.#later(now + a.extraMs, () => {
      if (!a.done) this.#deliver(a, { status, latencyMs: this.#clock.nowMs() - a.startMs });
    });
  }

  /** An attempt's outcome reaches the LB: feed the core, then retry or finish. */
  #deliver(a: Attempt, outcome: Outcome): void {
    a.done = true;
    this.#deliverNow(a, outcome);
  }

  #deliverNow(a: Attempt, outcome: Outcome): void {
    const req = a.req;
    const lc = req.lc as RequestLifecycle;
    const now = this.#clock.nowMs();
    if (outcome.error === 'timeout' && now >= lc.deadlineMs) {
      // The request's own deadline, not the try's: it ends here, as the proxy's request timer ends it.
      this.#abandon(req.primary);
      this.#abandon(req.hedge);
      lc.endTry({ error: 'timeout', latencyMs: now - (req.primary ?? a).startMs });
      lc.end();
      return this.#finish(req, 'timeout');
    }
    if (req.hedge !== undefined && this.#hedgeRace(req, a, outcome)) return;
    const d = simTryEnded(lc, outcome);
    if (d === 'retry' || d === 'resend') {
      if (req.measured) this.#retries++;
      this.#bucket.retries++;
      if (d === 'resend') return this.#send(req, lc.resendTry());
      if (lc.retryDelayMs === 0) return this.#dispatch(req);
      // The proxy's backoff timer; its request timer ends a backoff that outlives the deadline.
      this.#q.push(Math.min(now + lc.retryDelayMs, lc.deadlineMs), { k: EV_RETRY, req });
      return;
    }
    lc.end();
    const failed = outcome.error !== undefined || (outcome.status !== undefined && outcome.status >= 500);
    this.#finish(req, failed ? (outcome.error ?? 'http_5xx') : undefined);
  }

  /**
   * One of two tries in flight ended (a hedge race): the first answer wins and the other
   * is cancelled; a failure leaves the other to carry the request. True: nothing more to
   * do for this outcome; false: the outcome is the request's, to decide as any try's.
   */
  #hedgeRace(req: Request, a: Attempt, outcome: Outcome): boolean {
    const hedge = req.hedge as Attempt;
    req.hedge = undefined;
    switch ((req.lc as RequestLifecycle).settleHedgeRace(a === hedge, outcome)) {
      case 'hedge_failed':
        return true;
      case 'hedge_won':
        this.#abandon(req.primary);
        req.primary = hedge;
        if (req.measured) this.#hedgesWon++;
        return false;
      case 'first_failed':
        req.primary = hedge;
        return true;
      case 'first_won':
        this.#abandon(hedge);
        return false;
    }
  }

  /** A try the load balancer gave up: the server skips it if still queued, or serves it for nobody. */
  #abandon(a: Attempt | undefined): void {
    if (a !== undefined) a.done = true;
  }

  #shedReq(req: Request, why: 'rate_limited' | 'overflow' | 'overloaded'): void {
    this.#bucket.shed++;
    if (!req.measured) return;
    this.#shed++;
    this.#failures[why]++;
  }

  #finish(req: Request, failure: Failure | undefined): void {
    const b = this.#bucket;
    if (failure !== undefined) {
      b.failed++;
      if (req.measured) {
        this.#failed++;
        this.#failures[failure]++;
      }
      return;
    }
    const ms = this.#clock.nowMs() - req.t0 + req.rttMs;
    b.completed++;
    if (req.lc !== undefined) this.#overload?.completed(req.lc.priority, req.measured);
    this.#bucketLatencySum += ms;
    recordMs(this.#bucketHist, ms);
    if (!req.measured) return;
    this.#completed++;
    this.#latencySumMs += ms;
    if (ms > this.#latencyMaxMs) this.#latencyMaxMs = ms;
    recordMs(this.#hist, ms);
  }

  #probe(server: Server): void {
    const hc = this.#s.lb.healthCheck;
    // A removed server is no longer the load balancer's to probe.
    if (!hc || server.removed) return;
    const lb = this.#lbs[server.region] as RegionLb;
    lb.cluster.recordCheck(server.host, server.alive);
    if (this.#s.lb.crossRegion) {
      // Other regions' load balancers probe it across the WAN: it fails while its region is down too.
      for (const other of this.#lbs) {
        const h = other === lb ? undefined : other.cluster.host(server.id);
        if (h !== undefined) other.cluster.recordCheck(h, server.alive && !lb.down);
      }
    }
    this.#q.push(this.#clock.nowMs() + hc.intervalMs, { k: EV_PROBE, server });
  }

  /** The steering layer's round of probes: each region from each client group's vantage point. */
  #steer(): void {
    const now = this.#clock.nowMs();
    this.#s.clients.forEach((_, g) => {
      this.#lbs.forEach((lb, r) => {
        // The region's own servers: its load balancer failing over elsewhere does not make it healthy.
        const up = !lb.down && !this.#partitioned[g]?.[r] && lb.servers.some((sv) => !sv.removed && sv.host.health.routable);
        this.#choice.recordProbe(g, r, up);
      });
      this.#choice.reanswer(g, now);
    });
    this.#q.push(now + this.#s.global.healthCheck.intervalMs, { k: EV_STEER });
  }

  #server(region: number, index: number): Server {
    return (this.#lbs[region] as RegionLb).servers[index] as Server;
  }

  #kill(server: Server): void {
    if (!server.alive) return;
    const now = this.#clock.nowMs();
    server.account(now);
    server.alive = false;
    server.epoch++;
    const held = [...server.inService];
    for (let a = server.shift(); a !== undefined; a = server.shift()) held.push(a);
    server.inService.clear();
    server.busy = 0;
    server.queue = [];
    server.queueHead = 0;
    for (const a of held) if (!a.done) this.#deliver(a, { error: 'reset', latencyMs: now - a.startMs });
  }

  #revive(server: Server): void {
    if (server.alive) return;
    server.account(this.#clock.nowMs());
    server.alive = true;
  }

  #later(atMs: number, run: () => void): void {
    if (atMs < Infinity) this.#q.push(atMs, { k: EV_RESTORE, run });
  }

  #scenarioEvent(e: SimEvent): void {
    const now = this.#clock.nowMs();
    switch (e.kind) {
      case 'kill':
        return this.#kill(this.#server(e.server.region, e.server.index));
      case 'revive':
        return this.#revive(this.#server(e.server.region, e.server.index));
      case 'slow': {
        const server = this.#server(e.server.region, e.server.index);
        server.slowFactor = e.factor;
        return this.#later(now + e.forMs, () => (server.slowFactor = 1));
      }
      case 'errors': {
        const server = this.#server(e.server.region, e.server.index);
        server.errorRate = e.rate;
        return this.#later(now + e.forMs, () => (server.errorRate = 0));
      }
      case 'region_down': {
        const lb = this.#lbs[e.region] as RegionLb;
        lb.down = true;
        for (const server of lb.servers) this.#kill(server);
        return;
      }
      case 'region_up': {
        const lb = this.#lbs[e.region] as RegionLb;
        lb.down = false;
        for (const server of lb.servers) this.#revive(server);
        return;
      }
      case 'add': {
        const spec = this.#s.regions[e.region]?.servers[0] as ServerSpec;
        return this.#addServers(e.region, Array.from({ length: e.count }, () => ({ ...spec, speed: 1 })), true, e.coldFactor, e.warmMs);
      }
      case 'remove':
        return this.#removeServers(e.region, e.servers.map((sv) => sv.index));
      case 'partition': {
        (this.#partitioned[e.client] as boolean[])[e.region] = true;
        return this.#later(now + e.forMs, () => ((this.#partitioned[e.client] as boolean[])[e.region] = false));
      }
      case 'heal':
        (this.#partitioned[e.client] as boolean[])[e.region] = false;
        return;
    }
  }

  #startMeasuring(): void {
    const now = this.#clock.nowMs();
    this.#measuring = true;
    for (const server of this.#servers) {
      server.account(now);
      server.busyArea = 0;
      server.occupancy.fill(0);
    }
  }

  #closeBucket(now: number): void {
    const b = this.#bucket;
    const h = this.#bucketHist;
    b.latency_ms = {
      mean: round(b.completed === 0 ? 0 : this.#bucketLatencySum / b.completed),
      p50: round(percentileMs(h, 50)),
      p90: round(percentileMs(h, 90)),
      p99: round(percentileMs(h, 99)),
    };
    b.servers = this.#servers.map((sv) => {
      const n = sv.bucketStarted;
      sv.bucketStarted = 0;
      return n;
    });
    this.#buckets.push(b);
    this.#overload?.closeBucket(b.t_s, this.#lbs.map((lb) => lb.life.overload as OverloadGate));
    h.reset();
    this.#bucketLatencySum = 0;
    this.#bucket = this.#newBucket(now);
    if (now + this.#s.bucketMs <= this.#s.durationMs) this.#q.push(now + this.#s.bucketMs, { k: EV_BUCKET });
    else if (now < this.#s.durationMs) this.#q.push(this.#s.durationMs, { k: EV_BUCKET });
  }

  #result(): PolicyResult {
    const end = this.#s.durationMs;
    const windows = this.#servers.map((sv) => Math.min(end, sv.memberToMs) - sv.measuredFromMs);
    const servers: ServerResult[] = this.#servers.map((sv, i) => {
      sv.account(end);
      const window = Math.max(1e-9, windows[i] as number);
      return { id: sv.id, utilization: round(sv.busyArea / (sv.concurrency * window), 4), completed: sv.completed };
    });
    // A server removed before the measured window began was never measured as a member.
    const utils = servers.filter((_, i) => (windows[i] as number) > 0).map((x) => x.utilization);
    const maxU = Math.max(...utils);
    const meanU = utils.reduce((a, b) => a + b, 0) / utils.length;
    const occupancy = new Float64Array(MAX_OCCUPANCY);
    for (const sv of this.#servers) for (let k = 0; k < MAX_OCCUPANCY; k++) occupancy[k] = (occupancy[k] as number) + (sv.occupancy[k] as number);
    const total = occupancy.reduce((a, b) => a + b, 0);
    const atLeast: number[] = [];
    let tail = total;
    for (let k = 0; k < MAX_OCCUPANCY && tail > total * 1e-6; k++) {
      atLeast.push(round(tail / total, 6));
      tail -= occupancy[k] as number;
    }
    const h = this.#hist;
    return {
      policy: this.#policy,
      requests: this.#requests,
      completed: this.#completed,
      failed: this.#failed,
      shed: this.#shed,
      unfinished: this.#requests - this.#completed - this.#failed - this.#shed,
      retries: this.#retries,
      cross_region_tries: this.#crossRegionTries,
      failures: { ...this.#failures },
      latency_ms: {
        mean: round(this.#completed === 0 ? 0 : this.#latencySumMs / this.#completed),
        p50: round(percentileMs(h, 50)),
        p90: round(percentileMs(h, 90)),
        p99: round(percentileMs(h, 99)),
        p999: round(percentileMs(h, 99.9)),
        max: round(this.#latencyMaxMs),
      },
      max_utilization: round(maxU, 4),
      imbalance: round(meanU > 0 ? maxU / meanU : 1, 4),
      servers,
      regions: this.#lbs.map((lb, r) => ({ name: lb.name, requests: this.#regionRequests[r] as number })),
      queue_length_at_least: atLeast,
      membership_changes: this.#changes,
      timeseries: this.#buckets,
      hedges: this.#hedges,
      hedges_won: this.#hedgesWon,
      ...(this.#overload ? { overload: this.#overload.result() } : {}),
      regret_ms: {
        mean: round(this.#regretSamples === 0 ? 0 : this.#regretSumMs / this.#regretSamples),
        optimal_share: round(this.#regretSamples === 0 ? 0 : this.#regretOptimal / this.#regretSamples, 4),
      },
      ...(this.#policy === 'prequal' || this.#policy === 'predictive' ? { adaptive: this.#adaptive() } : {}),
    };
  }

  #adaptive(): AdaptiveResult {
    const all: BalancerStats[] = this.#lbs.flatMap((lb) => lb.cluster.balancerStats().map((b) => b.stats));
    const sum = (f: (s: BalancerStats) => number | undefined): number => all.reduce((a, st) => a + (f(st) ?? 0), 0);
    if (this.#policy === 'prequal') {
      return { probes_sent: sum((st) => st.probesRequested), probe_replies: sum((st) => st.probeReplies), pool_picks: sum((st) => st.poolPicks), random_picks: sum((st) => st.randomPicks) };
    }
    // Error figures weighted by each locality's responses.
    const n = Math.max(1, sum((st) => st.samples));
    const weighted = (f: (s: BalancerStats) => number | undefined): number => round(all.reduce((a, st) => a + (f(st) ?? 0) * (st.samples ?? 0), 0) / n);
    return {
      model_mae_ms: weighted((st) => st.maeMs),
      model_p90_abs_error_ms: weighted((st) => st.p90AbsErrorMs),
      baseline_mae_ms: weighted((st) => st.baselineMaeMs),
      model_picks: sum((st) => st.modelPicks),
      baseline_picks: sum((st) => st.baselinePicks),
      switches: this.#switches,
    };
  }
}
