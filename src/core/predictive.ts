import type { Clock } from './clock.js';
import { PageHinkley } from './page-hinkley.js';
import { PeakEwmaBalancer, type PeakEwmaOptions } from './peak-ewma.js';
import type { Rng } from './rng.js';
import { REQUEST_CLASSES } from './request-class.js';
import { isServerFailure, type Balancer, type BalancerStats, type Host, type Outcome, type PickContext } from './types.js';
import { WeightedSampler } from './weighted-sampler.js';

export interface PredictiveOptions {
  /** Hosts drawn by weight per pick whose latency is predicted; the pick takes the lowest. Default 3. */
  readonly candidates?: number;
  /** RLS forgetting factor per response (memory about 1 / (1 - lambda) responses). Default 0.98. */
  readonly forgetting?: number;
  /** Added to the latency of a failed response when it trains the model (the sinkhole guard). Default 1000 ms. */
  readonly errorPenaltyMs?: number;
  /** An idle host's prediction decays toward zero with this time constant, so it is tried again. Default 1 s. */
  readonly idleTauMs?: number;
  /** Page-Hinkley on the model's error relative to the latency level: drift per sample tolerated. Default 0.2. */
  readonly driftDelta?: number;
  /** Page-Hinkley alarm level (in latency levels). Default 120. */
  readonly driftLambda?: number;
  /** Least time in fallback before the model may come back. Default 2 s. */
  readonly minFallbackMs?: number;
  /**
   * A pick whose best candidate is predicted faster than the runner-up by less than this
   * many times the model's recent mean absolute error is one the model cannot make: peak
   * EWMA makes it. Default 0.5.
   */
  readonly confidence?: number;
  /** Use the pick context's `requestClass` as a feature. Default true. */
  readonly requestClass?: boolean;
  /** Told when picks switch to peak EWMA (fallback true) and back: the mechanism logs and counts it. */
  readonly onSwitch?: (fallback: boolean, reason: 'drift' | 'worse_than_baseline' | 'recovered') => void;
  /** The fallback's own options. */
  readonly peakEwma?: PeakEwmaOptions;
}

/** Model state that can be exported and loaded: per endpoint id, intercept and slope (ms, ms per request in flight). */
export interface PredictiveModel {
  readonly version: 1;
  readonly endpoints: Readonly<Record<string, { readonly intercept: number; readonly slope: number; readonly samples: number }>>;
}

/** Requests in flight per host whose dispatch features are kept for pairing with their responses. */
const PENDING = 32;
/** Prediction differences under this fraction are ties: the first candidate (drawn by weight) keeps it. */
const TIE = 0.01;
/** Trace of P is held under this, against covariance wind-up when a host's in-flight count stops varying. */
const P_MAX = 1e4;
const P0_INTERCEPT = 10;
const P0_SLOPE = 1;
/** Weight of one response in the short error averages that decide fallback and recovery. */
const ERR_ALPHA = 0.02;
/** Weight of one response in the model's normal error, and how far above it recovery waits for. */
const STEADY_ALPHA = 0.002;
const RECOVERY_FACTOR = 1.5;
/** Responses before the model's error is compared with the baseline's. */
const WARMUP = 200;
/** Responses of a class, on hosts with nothing ahead, before its weight is trusted over 1. */
const CLASS_WARMUP = 20;
/** Weight of one such response in its class's service time. */
const CLASS_ALPHA = 0.02;
/** Absolute-error histogram for the p90: geometric bins from 0.01 ms, 10% wide. */
const BIN_BASE = 0.01;
const BIN_LOG = Math.log(1.1);
const BINS = 256;

/**
 * One endpoint's model: latency = intercept x w + slope x (work ahead of it at dispatch),
 * fitted by recursive least squares with exponential forgetting. w is the request's class
 * weight (its class's service time over the average request's; 1 without classes) and the
 * work ahead is the sum of the weights of the requests in flight before it (their count,
 * without classes). For a FIFO server the intercept is its service time and the slope its
 * service time over its workers, so the two numbers are the server's speed as this load
 * balancer sees it, relearned as it changes.
 */
class HostModel {
  intercept: number;
  slope: number;
  p00 = P0_INTERCEPT;
  p01 = 0;
  p11 = P0_SLOPE;
  samples = 0;
  lastResponseMs: number;
  errorRate = 0;
  // Requests in flight: when each was sent, what it found, and what each model predicted.
  readonly sentMs = new Float64Array(PENDING);
  readonly ahead = new Float64Array(PENDING);
  readonly predicted = new Float64Array(PENDING);
  readonly baseline = new Float64Array(PENDING);
  /** The request's class weight and class (-1: none) at dispatch. */
  readonly weight = new Float64Array(PENDING);
  readonly cls = new Int8Array(PENDING);
  pending = 0;
  /** Sum of the weights of the recorded requests in flight. */
  work = 0;

  constructor(intercept: number, slope: number, nowMs: number) {
    this.intercept = intercept;
    this.slope = slope;
    this.lastResponseMs = nowMs;
  }

  predict(w: number, ahead: number): number {
    return this.intercept * w + this.slope * ahead;
  }

  /** Work ahead of a request sent now, `active` counting it: requests the table missed (full) count 1 each. */
  aheadOf(active: number): number {
    return this.work + Math.max(0, active - this.pending);
  }

  train(w: number, ahead: number, y: number, lambda: number): void {
    const px0 = this.p00 * w + this.p01 * ahead;
    const px1 = this.p01 * w + this.p11 * ahead;
    const denom = lambda + w * px0 + ahead * px1;
    const k0 = px0 / denom;
    const k1 = px1 / denom;
    const e = y - this.predict(w, ahead);
    this.intercept += k0 * e;
    this.slope = Math.max(0, this.slope + k1 * e);
    let p00 = (this.p00 - k0 * px0) / lambda;
    let p01 = (this.p01 - k0 * px1) / lambda;
    let p11 = (this.p11 - k1 * px1) / lambda;
    const trace = p00 + p11;
    if (trace > P_MAX) {
      const s = P_MAX / trace;
      p00 *= s;
      p01 *= s;
      p11 *= s;
    }
    this.p00 = p00;
    this.p01 = p01;
    this.p11 = p11;
    this.samples++;
  }
}

/**
 * The `predictive` policy: pick the candidate with the lowest predicted latency for this
 * request, from a per-endpoint online model, and fall back to peak EWMA while the model is
 * wrong. docs/predictive.md frames it (objective, features, model, evaluation, serving,
 * drift, cold start) with measured figures.
 *
 * - Candidates: `candidates` hosts drawn by weight (so slow start and weights still bound a
 *   host's share), predicted in O(1) each: the cost is O(candidates) per request whatever
 *   the cluster's size.
 * - Confidence: when the best candidate's lead over the runner-up is under `confidence`
 *   times the model's recent mean absolute error, the model cannot tell them apart and
 *   peak EWMA picks instead (under an overload every host looks alike to the model, and
 *   its noise would decide: spike-10x's p99 was 9% worse than peak EWMA's without this).
 * - Request class (the pick context's `requestClass`, e.g. route and method/size): each
 *   class's service time is learned from responses of hosts that had nothing ahead; its
 *   weight (over the average request's) scales the request's own term, and the requests
 *   in flight on a host count by their weights, so two heavy requests ahead weigh more
 *   than two light ones.
 * - Prediction: intercept x weight + slope x work ahead, plus the host's recent error rate x
 *   `errorPenaltyMs` (a host failing fast must not look fast), decayed toward zero while
 *   the host has no request in flight and no recent response.
 * - Training: every response, paired with the features and predictions at its dispatch.
 * - Drift: Page-Hinkley on |error| / latency level; an alarm, or the model's recent error
 *   exceeding peak EWMA's (as a latency prediction, ewma x (active + 1)) by 20%, switches
 *   picks to the embedded peak-EWMA balancer. The model keeps training; it comes back
 *   after `minFallbackMs` once its recent error is below peak EWMA's.
 * - Cold start: a new host starts from the mean of the trained hosts' models.
 */
export class PredictiveBalancer implements Balancer {
  readonly policy = 'predictive' as const;
  readonly #rng: Rng;
  readonly #clock: Clock;
  readonly #k: number;
  readonly #lambda: number;
  readonly #penaltyMs: number;
  readonly #idleTauMs: number;
  readonly #minFallbackMs: number;
  readonly #onSwitch: PredictiveOptions['onSwitch'];
  readonly #confidence: number;
  readonly #useClass: boolean;
  /** Per request class: service time learned from responses with nothing ahead, and how many. */
  readonly #classMs = new Float64Array(REQUEST_CLASSES);
  readonly #classSamples = new Uint32Array(REQUEST_CLASSES);
  /** The same over every class: what a weight of 1 stands for. */
  #meanMs = 0;
  #meanSamples = 0;
  #modelPicks = 0;
  #baselinePicks = 0;
  readonly #fallbackBalancer: PeakEwmaBalancer;
  readonly #drift: PageHinkley;
  #hosts: readonly Host[] = [];
  #models: HostModel[] = [];
  #index = new Map<Host, number>();
  /** Models by host, kept across updates so a host that leaves and comes back keeps what it learned. */
  readonly #byHost = new WeakMap<Host, HostModel>();
  #sampler = new WeightedSampler([]);
  #fallback = false;
  #fallbackSinceMs = 0;
  #driftEvents = 0;
  #recoveries = 0;
  // Evaluation: over every response, and short averages for the switch decisions.
  #samples = 0;
  #absErrSum = 0;
  #baseErrSum = 0;
  #recentErr = 0;
  /** The model's error in normal times: a slow average, frozen while in fallback. */
  #steadyErr = 0;
  #recentBaseErr = 0;
  #level = 0;
  readonly #errBins = new Float64Array(BINS);
  readonly #imported = new Map<string, { intercept: number; slope: number; samples: number }>();

  constructor(rng: Rng, clock: Clock, options: PredictiveOptions = {}) {
    this.#rng = rng;
    this.#clock = clock;
    this.#k = options.candidates ?? 3;
    this.#lambda = options.forgetting ?? 0.98;
    this.#penaltyMs = options.errorPenaltyMs ?? 1000;
    this.#idleTauMs = options.idleTauMs ?? 1000;
    this.#minFallbackMs = options.minFallbackMs ?? 2000;
    this.#onSwitch = options.onSwitch;
    this.#confidence = options.confidence ?? 0.5;
    this.#useClass = options.requestClass ?? true;
    if (!(this.#k >= 2)) throw new RangeError(`candidates must be >= 2, got ${this.#k}`);
    if (!(this.#lambda > 0 && this.#lambda <= 1)) throw new RangeError(`forgetting must be in (0, 1], got ${this.#lambda}`);
    this.#fallbackBalancer = new PeakEwmaBalancer(rng, clock, options.peakEwma);
    this.#drift = new PageHinkley({ delta: options.driftDelta ?? 0.2, lambda: options.driftLambda ?? 120, minSamples: 200 });
  }

  get fallback(): boolean {
    return this.#fallback;
  }

  update(hosts: readonly Host[], weights: readonly number[]): void {
    const sampler = new WeightedSampler(weights);
    const now = this.#clock.nowMs();
    const prior = this.#prior();
    const models = hosts.map((h) => {
      let m = this.#byHost.get(h);
      if (m === undefined) {
        const imported = this.#imported.get(h.endpoint.id);
        m = imported ? new HostModel(imported.intercept, imported.slope, now) : new HostModel(prior.intercept, prior.slope, now);
        if (imported) m.samples = imported.samples;
        this.#byHost.set(h, m);
      }
      return m;
    });
    const index = new Map<Host, number>();
    hosts.forEach((h, i) => index.set(h, i));
    this.#fallbackBalancer.update(hosts, weights);
    this.#hosts = [...hosts];
    this.#models = models;
    this.#index = index;
    this.#sampler = sampler;
  }

  pick(ctx: PickContext): Host | undefined {
    const hosts = this.#hosts;
    const n = hosts.length;
    if (n <= 1) return hosts[0];
    if (this.#fallback) return this.#fallbackBalancer.pick(ctx);
    const now = this.#clock.nowMs();
    const sampler = this.#sampler;
    const rng = this.#rng;
    const k = Math.min(this.#k, n);
    const w = this.#weight(this.#classOf(ctx));
    let best = sampler.sample(rng);
    let bestCost = this.#cost(best, w, now);
    let second = Infinity;
    for (let c = 1; c < k; c++) {
      const i = sampler.sampleOther(rng, best);
      const cost = this.#cost(i, w, now);
      if (cost < bestCost * (1 - TIE)) {
        second = bestCost;
        best = i;
        bestCost = cost;
      } else if (cost < second) second = cost;
    }
    if (second - bestCost < this.#confidence * this.#recentErr) {
      this.#baselinePicks++;
      return this.#fallbackBalancer.pick(ctx);
    }
    this.#modelPicks++;
    return hosts[best];
  }

  onStart(host: Host, ctx?: PickContext): void {
    const i = this.#index.get(host);
    if (i === undefined) return;
    const m = this.#models[i] as HostModel;
    if (m.pending >= PENDING) return; // its response trains nothing: rare, and cheaper than growing
    const now = this.#clock.nowMs();
    const c = this.#classOf(ctx);
    const w = this.#weight(c);
    const ahead = m.aheadOf(host.active - 1);
    const j = m.pending++;
    m.sentMs[j] = now;
    m.ahead[j] = ahead;
    m.weight[j] = w;
    m.cls[j] = c;
    m.work += w;
    m.predicted[j] = m.predict(w, ahead);
    m.baseline[j] = host.latency.samples === 0 ? (m.predicted[j] as number) : host.latency.valueAt(now) * host.active;
  }

  onEnd(host: Host, outcome: Outcome): void {
    const i = this.#index.get(host);
    const m = i === undefined ? this.#byHost.get(host) : this.#models[i];
    if (m === undefined || m.pending === 0) return;
    const now = this.#clock.nowMs();
    // The request this response answers: the one sent closest to now - latency.
    const sent = now - outcome.latencyMs;
    let j = 0;
    let gap = Math.abs((m.sentMs[0] as number) - sent);
    for (let q = 1; q < m.pending; q++) {
      const g = Math.abs((m.sentMs[q] as number) - sent);
      if (g < gap) {
        gap = g;
        j = q;
      }
    }
    const ahead = m.ahead[j] as number;
    const predicted = m.predicted[j] as number;
    const baseline = m.baseline[j] as number;
    const w = m.weight[j] as number;
    const c = m.cls[j] as number;
    const last = --m.pending;
    m.sentMs[j] = m.sentMs[last] as number;
    m.ahead[j] = m.ahead[last] as number;
    m.predicted[j] = m.predicted[last] as number;
    m.baseline[j] = m.baseline[last] as number;
    m.weight[j] = m.weight[last] as number;
    m.cls[j] = m.cls[last] as number;
    // Float sums drift: an empty table is exactly no work.
    m.work = last === 0 ? 0 : Math.max(0, m.work - w);

    // A timeout is a latency (at least this long) and trains as one; a failure that came
    // back, fast or not, is what a sinkhole does and carries the penalty.
    const failed = isServerFailure(outcome) && outcome.error !== 'timeout';
    m.errorRate += 0.05 * ((failed ? 1 : 0) - m.errorRate);
    m.lastResponseMs = now;
    const y = outcome.latencyMs + (failed ? this.#penaltyMs : 0);
    if (!failed && ahead < 1e-9 && c >= 0) this.#learnClass(c, outcome.latencyMs);
    m.train(w, ahead, y, this.#lambda);
    this.#evaluate(Math.abs(y - predicted), Math.abs(y - baseline), y, now);
  }

  /** The per-endpoint models, by endpoint id: to save and load with `load`. */
  export(): PredictiveModel {
    const endpoints: Record<string, { intercept: number; slope: number; samples: number }> = {};
    this.#hosts.forEach((h, i) => {
      const m = this.#models[i] as HostModel;
      endpoints[h.endpoint.id] = { intercept: m.intercept, slope: m.slope, samples: m.samples };
    });
    return { version: 1, endpoints };
  }

  /** Start hosts from a saved model: those present now at once, those that appear later when they do. */
  load(model: PredictiveModel): void {
    for (const [id, e] of Object.entries(model.endpoints)) this.#imported.set(id, { ...e });
    this.#hosts.forEach((h, i) => {
      const e = model.endpoints[h.endpoint.id];
      const m = this.#models[i] as HostModel;
      if (e === undefined) return;
      m.intercept = e.intercept;
      m.slope = e.slope;
      m.samples = e.samples;
    });
  }

  stats(): BalancerStats {
    return {
      fallback: this.#fallback,
      modelPicks: this.#modelPicks,
      baselinePicks: this.#baselinePicks,
      requestClasses: this.#classSamples.reduce((n, s) => n + (s >= CLASS_WARMUP ? 1 : 0), 0),
      driftEvents: this.#driftEvents,
      recoveries: this.#recoveries,
      samples: this.#samples,
      maeMs: this.#samples === 0 ? 0 : this.#absErrSum / this.#samples,
      baselineMaeMs: this.#samples === 0 ? 0 : this.#baseErrSum / this.#samples,
      p90AbsErrorMs: this.#quantileErr(0.9),
    };
  }

  #classOf(ctx: PickContext | undefined): number {
    const c = ctx?.requestClass;
    return this.#useClass && c !== undefined && c >= 0 && c < REQUEST_CLASSES ? c : -1;
  }

  /** A class's service time over the average request's; 1 for none, or while it has few samples. */
  #weight(c: number): number {
    if (c < 0 || (this.#classSamples[c] as number) < CLASS_WARMUP || this.#meanMs <= 0) return 1;
    return (this.#classMs[c] as number) / this.#meanMs;
  }

  #learnClass(c: number, latencyMs: number): void {
    const n = this.#classSamples[c] as number;
    const v = this.#classMs[c] as number;
    this.#classMs[c] = v + Math.max(CLASS_ALPHA, 1 / (n + 1)) * (latencyMs - v);
    this.#classSamples[c] = n + 1;
    this.#meanMs += Math.max(CLASS_ALPHA, 1 / ++this.#meanSamples) * (latencyMs - this.#meanMs);
  }

  #cost(i: number, w: number, now: number): number {
    const m = this.#models[i] as HostModel;
    const active = (this.#hosts[i] as Host).active;
    let y = m.predict(w, m.aheadOf(active));
    if (active === 0) {
      const idle = now - m.lastResponseMs;
      // A host nobody has heard from lately decays toward zero, as peak EWMA's estimate
      // does: one that looked slow once (say, through an overload every host shared) is
      // tried again and relearned, rather than shunned forever.
      if (idle > this.#idleTauMs * 0.1) y *= Math.exp(-idle / this.#idleTauMs);
    }
    return y + m.errorRate * this.#penaltyMs;
  }

  #prior(): { intercept: number; slope: number } {
    let n = 0;
    let a = 0;
    let b = 0;
    for (const m of this.#models) {
      if (m.samples === 0) continue;
      n++;
      a += m.intercept;
      b += m.slope;
    }
    return n === 0 ? { intercept: 0, slope: 0 } : { intercept: a / n, slope: b / n };
  }

  #evaluate(absErr: number, baseErr: number, y: number, now: number): void {
    this.#samples++;
    this.#absErrSum += absErr;
    this.#baseErrSum += baseErr;
    const bin = absErr <= BIN_BASE ? 0 : Math.min(BINS - 1, Math.floor(Math.log(absErr / BIN_BASE) / BIN_LOG) + 1);
    this.#errBins[bin] = (this.#errBins[bin] as number) + 1;
    if (this.#samples === 1) {
      this.#recentErr = absErr;
      this.#recentBaseErr = baseErr;
      this.#level = y;
    } else {
      this.#recentErr += ERR_ALPHA * (absErr - this.#recentErr);
      this.#recentBaseErr += ERR_ALPHA * (baseErr - this.#recentBaseErr);
      this.#level += 0.001 * (y - this.#level);
    }
    const drifted = this.#drift.add(absErr / Math.max(this.#level, 1e-3));
    if (this.#fallback) {
      // Back once the model beats peak EWMA again and its error is back near its normal:
      // an overload inflates every error (peak EWMA's most), and the model waits it out.
      if (now - this.#fallbackSinceMs >= this.#minFallbackMs && this.#recentErr < this.#recentBaseErr && this.#recentErr <= RECOVERY_FACTOR * this.#steadyErr) {
        this.#switch(false, 'recovered', now);
      }
      return;
    }
    // An untrained model is not a drifted one: no switch in its first responses.
    if (this.#samples <= WARMUP) {
      this.#steadyErr = this.#recentErr;
      return;
    }
    this.#steadyErr += STEADY_ALPHA * (absErr - this.#steadyErr);
    if (drifted) this.#switch(true, 'drift', now);
    else if (this.#recentErr > 1.2 * this.#recentBaseErr) this.#switch(true, 'worse_than_baseline', now);
  }

  #switch(fallback: boolean, reason: 'drift' | 'worse_than_baseline' | 'recovered', now: number): void {
    this.#fallback = fallback;
    if (fallback) {
      this.#fallbackSinceMs = now;
      this.#driftEvents++;
    } else {
      this.#recoveries++;
      this.#drift.reset();
    }
    this.#onSwitch?.(fallback, reason);
  }

  #quantileErr(q: number): number {
    const want = q * this.#samples;
    let acc = 0;
    for (let b = 0; b < BINS; b++) {
      acc += this.#errBins[b] as number;
      if (acc >= want && acc > 0) return b === 0 ? BIN_BASE : BIN_BASE * Math.exp(b * BIN_LOG);
    }
    return 0;
  }
}
