import type { Clock } from './clock.js';
import type { Rng } from './rng.js';
import { isServerFailure, type Balancer, type BalancerStats, type Host, type Outcome, type PickContext, type ProbeReply } from './types.js';
import { WeightedSampler } from './weighted-sampler.js';

export interface PrequalOptions {
  /** Probes sent with each request (not before it), to distinct hosts drawn by weight. Default 3. */
  readonly probesPerRequest?: number;
  /** Probe replies kept; past it one is dropped, alternately the oldest and the worst. Default 16. */
  readonly maxPool?: number;
  /** A reply older than this is dropped. Default 1 s. */
  readonly maxAgeMs?: number;
  /** Replies whose RIF is above this quantile of recent replies' RIFs are hot. Default 2^-0.25 (0.84). */
  readonly rifQuantile?: number;
  /** Slack in the reuse budget (1 + delta) / ((1 - pool / hosts) x probesPerRequest). Default 1. */
  readonly reuseDelta?: number;
  /**
   * The sinkhole guard: a host's recent error rate times this is added to its replies'
   * latency, so a host that fails fast does not look fast. Default 1000 ms.
   */
  readonly errorPenaltyMs?: number;
}

/** The path a backend answers Prequal probes on, with JSON `{ rif, latency_ms }` (`meridian backend` does). */
export const PREQUAL_PROBE_PATH = '/prequal';

/** Recent replies' RIFs the hot/cold threshold is the quantile of; recomputed every few replies. */
const RIF_WINDOW = 64;
const RIF_RECOMPUTE_EVERY = 8;
/** Weight of one response in a host's error rate (about the last 20 responses). */
const ERROR_ALPHA = 0.05;

/**
 * What a host's own load balancer knows in place of a probe reply, for backends that do not
 * answer probes: its in-flight count from this load balancer and the peak-EWMA latency.
 * It misses every other client's load; metrics label the replies it stands for as `local`.
 */
export function localProbeReply(host: Host, nowMs: number): ProbeReply {
  return { rif: host.active, latencyMs: host.latency.samples === 0 ? 0 : host.latency.valueAt(nowMs) };
}

/**
 * Google's Prequal (Wydrowski et al., NSDI 2024): pick by probed requests-in-flight (RIF)
 * and latency with the hot/cold lexicographic rule, instead of balancing load.
 *
 * - Each request is sent with `probesPerRequest` probes to hosts drawn at random; the
 *   mechanism sends them (`probeTargets`) and hands the replies back (`onProbe`), so a
 *   pick never waits on a probe.
 * - The pool keeps at most `maxPool` replies, one per host (a newer reply replaces an older
 *   one). A reply leaves after `maxAgeMs`, after being used `reuseBudget` times, or when
 *   the pool is full and a new reply comes: alternately the oldest and the worst.
 * - A pick classifies replies as hot when their RIF is above the `rifQuantile` quantile of
 *   recent replies' RIFs, and takes the cold reply with the lowest latency, else the hot
 *   one with the lowest RIF. The chosen reply's RIF is raised by one (the request just
 *   sent). With fewer than two replies in the pool it picks at random by weight.
 * - Errors fold into latency (`errorPenaltyMs`); outlier ejection, upstream of the
 *   balancer in the cluster, still removes a failing host from the eligible set.
 */
export class PrequalBalancer implements Balancer {
  readonly policy = 'prequal' as const;
  readonly #rng: Rng;
  readonly #clock: Clock;
  readonly #probes: number;
  readonly #maxPool: number;
  readonly #maxAgeMs: number;
  readonly #quantile: number;
  readonly #delta: number;
  readonly #penaltyMs: number;
  #hosts: readonly Host[] = [];
  #index = new Map<Host, number>();
  #sampler = new WeightedSampler([]);
  /** Error rate of each host, by index in #hosts. */
  #errors = new Float64Array(0);
  #budget = 1;
  // The pool: `#count` entries in parallel arrays, unordered.
  readonly #pHost: Int32Array;
  readonly #pRif: Float64Array;
  readonly #pLatency: Float64Array;
  readonly #pStamp: Float64Array;
  readonly #pUses: Uint32Array;
  #count = 0;
  #evictOldest = true;
  // Recent replies' RIFs and the threshold above which a reply is hot.
  readonly #rifs = new Float64Array(RIF_WINDOW);
  readonly #sorted = new Float64Array(RIF_WINDOW);
  #rifsSeen = 0;
  #threshold = Infinity;
  readonly #targets: Host[] = [];
  #probesRequested = 0;
  #replies = 0;
  #poolPicks = 0;
  #randomPicks = 0;

  constructor(rng: Rng, clock: Clock, options: PrequalOptions = {}) {
    this.#rng = rng;
    this.#clock = clock;
    this.#probes = options.probesPerRequest ?? 3;
    this.#maxPool = options.maxPool ?? 16;
    this.#maxAgeMs = options.maxAgeMs ?? 1000;
    this.#quantile = options.rifQuantile ?? Math.pow(2, -0.25);
    this.#delta = options.reuseDelta ?? 1;
    this.#penaltyMs = options.errorPenaltyMs ?? 1000;
    if (!(this.#probes >= 0)) throw new RangeError(`probesPerRequest must be >= 0, got ${this.#probes}`);
    if (!(this.#maxPool >= 2)) throw new RangeError(`maxPool must be >= 2, got ${this.#maxPool}`);
    if (!(this.#quantile > 0 && this.#quantile <= 1)) throw new RangeError(`rifQuantile must be in (0, 1], got ${this.#quantile}`);
    this.#pHost = new Int32Array(this.#maxPool);
    this.#pRif = new Float64Array(this.#maxPool);
    this.#pLatency = new Float64Array(this.#maxPool);
    this.#pStamp = new Float64Array(this.#maxPool);
    this.#pUses = new Uint32Array(this.#maxPool);
  }

  /** How many times one reply may be used: enough that r probes per request keep a pool of m over n hosts. */
  get reuseBudget(): number {
    return this.#budget;
  }

  get poolSize(): number {
    return this.#count;
  }

  update(hosts: readonly Host[], weights: readonly number[]): void {
    const sampler = new WeightedSampler(weights);
    const index = new Map<Host, number>();
    hosts.forEach((h, i) => index.set(h, i));
    const errors = new Float64Array(hosts.length);
    const oldHosts = this.#hosts;
    // Replies and error rates follow their host to its new index; replies of hosts gone are dropped.
    for (const [h, i] of index) {
      const old = this.#index.get(h);
      if (old !== undefined) errors[i] = this.#errors[old] as number;
    }
    let kept = 0;
    for (let j = 0; j < this.#count; j++) {
      const i = index.get(oldHosts[this.#pHost[j] as number] as Host);
      if (i === undefined) continue;
      this.#copy(j, kept);
      this.#pHost[kept++] = i;
    }
    this.#count = kept;
    this.#hosts = [...hosts];
    this.#index = index;
    this.#sampler = sampler;
    this.#errors = errors;
    const n = hosts.length;
    const m = this.#maxPool;
    this.#budget = n <= m ? Infinity : Math.max(1, Math.ceil((1 + this.#delta) / ((1 - m / n) * Math.max(this.#probes, 1e-9))));
  }

  pick(_ctx: PickContext): Host | undefined {
    const hosts = this.#hosts;
    if (hosts.length <= 1) return hosts[0];
    this.#expire(this.#clock.nowMs());
    if (this.#count < 2) {
      this.#randomPicks++;
      return hosts[this.#sampler.sample(this.#rng)];
    }
    this.#poolPicks++;
    const j = this.#best();
    const host = hosts[this.#pHost[j] as number] as Host;
    this.#pRif[j] = (this.#pRif[j] as number) + 1;
    this.#pUses[j] = (this.#pUses[j] as number) + 1;
    if ((this.#pUses[j] as number) >= this.#budget) this.#remove(j);
    return host;
  }

  /** The hosts to probe alongside the request just picked; the array is reused by the next call. */
  probeTargets(): readonly Host[] {
    const t = this.#targets;
    const n = this.#hosts.length;
    const r = Math.min(this.#probes, n);
    t.length = 0;
    if (n < 2) return t;
    while (t.length < r) {
      const h = this.#hosts[this.#sampler.sample(this.#rng)] as Host;
      if (!t.includes(h)) t.push(h);
    }
    this.#probesRequested += r;
    return t;
  }

  onProbe(host: Host, reply: ProbeReply): void {
    const i = this.#index.get(host);
    if (i === undefined) return; // no longer eligible (ejected, drained, removed) since the probe left
    this.#replies++;
    const now = this.#clock.nowMs();
    this.#rifs[this.#rifsSeen % RIF_WINDOW] = reply.rif;
    this.#rifsSeen++;
    if (this.#rifsSeen % RIF_RECOMPUTE_EVERY === 0 || this.#rifsSeen < RIF_RECOMPUTE_EVERY) this.#recomputeThreshold();
    let slot = -1;
    for (let j = 0; j < this.#count; j++) {
      if (this.#pHost[j] === i) {
        slot = j;
        break;
      }
    }
    if (slot < 0) {
      this.#expire(now);
      if (this.#count >= this.#maxPool) {
        this.#remove(this.#evictOldest ? this.#oldest() : this.#worst());
        this.#evictOldest = !this.#evictOldest;
      }
      slot = this.#count++;
    }
    this.#pHost[slot] = i;
    this.#pRif[slot] = reply.rif;
    this.#pLatency[slot] = reply.latencyMs;
    this.#pStamp[slot] = now;
    this.#pUses[slot] = 0;
  }

  onEnd(host: Host, outcome: Outcome): void {
    const i = this.#index.get(host);
    if (i === undefined) return;
    const e = this.#errors[i] as number;
    this.#errors[i] = e + ERROR_ALPHA * ((isServerFailure(outcome) ? 1 : 0) - e);
  }

  stats(): BalancerStats {
    return {
      probesRequested: this.#probesRequested,
      probeReplies: this.#replies,
      poolSize: this.#count,
      poolPicks: this.#poolPicks,
      randomPicks: this.#randomPicks,
    };
  }

  /** The cold reply with the lowest latency (errors folded in), else the hot one with the lowest RIF. */
  #best(): number {
    const threshold = this.#threshold;
    let cold = -1;
    let coldLatency = Infinity;
    let hot = -1;
    let hotRif = Infinity;
    for (let j = 0; j < this.#count; j++) {
      const rif = this.#pRif[j] as number;
      if (rif <= threshold) {
        const l = this.#score(j);
        if (l < coldLatency) {
          cold = j;
          coldLatency = l;
        }
      } else if (rif < hotRif) {
        hot = j;
        hotRif = rif;
      }
    }
    return cold >= 0 ? cold : hot;
  }

  /** The reply a pick would take last: the hot one with the highest RIF, else the cold one with the highest latency. */
  #worst(): number {
    const threshold = this.#threshold;
    let worst = 0;
    let worstHot = false;
    let worstKey = -Infinity;
    for (let j = 0; j < this.#count; j++) {
      const rif = this.#pRif[j] as number;
      const isHot = rif > threshold;
      const key = isHot ? rif : this.#score(j);
      if ((isHot && !worstHot) || (isHot === worstHot && key > worstKey)) {
        worst = j;
        worstHot = isHot;
        worstKey = key;
      }
    }
    return worst;
  }

  #score(j: number): number {
    return (this.#pLatency[j] as number) + (this.#errors[this.#pHost[j] as number] as number) * this.#penaltyMs;
  }

  #oldest(): number {
    let oldest = 0;
    for (let j = 1; j < this.#count; j++) if ((this.#pStamp[j] as number) < (this.#pStamp[oldest] as number)) oldest = j;
    return oldest;
  }

  #expire(now: number): void {
    const limit = now - this.#maxAgeMs;
    for (let j = this.#count - 1; j >= 0; j--) if ((this.#pStamp[j] as number) < limit) this.#remove(j);
  }

  #remove(j: number): void {
    const last = --this.#count;
    if (j !== last) {
      this.#copy(last, j);
      this.#pHost[j] = this.#pHost[last] as number;
    }
  }

  #copy(from: number, to: number): void {
    this.#pRif[to] = this.#pRif[from] as number;
    this.#pLatency[to] = this.#pLatency[from] as number;
    this.#pStamp[to] = this.#pStamp[from] as number;
    this.#pUses[to] = this.#pUses[from] as number;
  }

  #recomputeThreshold(): void {
    const n = Math.min(this.#rifsSeen, RIF_WINDOW);
    const sorted = this.#sorted.subarray(0, n);
    sorted.set(this.#rifs.subarray(0, n));
    sorted.sort();
    this.#threshold = sorted[Math.max(0, Math.ceil(this.#quantile * n) - 1)] as number;
  }
}
