import type { BreakerResource, CircuitBreaker } from './circuit-breaker.js';
import type { Clock } from './clock.js';
import type { Cluster, ClusterPickContext, HostState } from './cluster.js';
import { decideRetry, type RetryBudget, type RetryRefusal } from './retry-budget.js';
import type { HedgePolicy } from './hedging.js';
import type { GateWaiter, OverloadGate } from './overload-gate.js';
import type { QueueEntry } from './admission-queue.js';
import type { Priority } from './priority.js';
import type { Rng } from './rng.js';
import type { Outcome } from './types.js';

/** Envoy's default retry backoff: 25 ms base interval, ten times that at most. */
export const BACKOFF_BASE_MS = 25;
export const BACKOFF_MAX_MS = 250;

/** Which failed tries and answers a cluster retries (its `retries` config, compiled). */
export interface RetryRules {
  /** Retries after the first try. */
  readonly attempts: number;
  readonly onConnectFailure: boolean;
  /** Resets and protocol errors after the request went out (Envoy's `reset`). */
  readonly onReset: boolean;
  /** A try that ran past its per-try timeout. */
  readonly onTimeout: boolean;
  /** Answers retried (replayable requests only). */
  readonly statuses: ReadonlySet<number>;
  /** gRPC statuses retried (codes), from an answer that carried no message. */
  readonly grpcStatuses?: ReadonlySet<number>;
  readonly perTryTimeoutMs: number | undefined;
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
}

/** What a request's lifecycle needs of its cluster. */
export interface LifecycleCluster {
  readonly core: Cluster;
  readonly breaker: CircuitBreaker;
  readonly budget: RetryBudget;
  readonly retry: RetryRules;
  /** Adaptive concurrency (with its queue and priority classes), when the cluster has it. */
  readonly overload?: OverloadGate | undefined;
}

/** How `enter` went: admitted now, queued (the answer comes through `onGate`), or refused with a local reply. */
export type EntryVerdict = 'admitted' | 'queued' | 'overloaded' | 'circuit_open';

/**
 * How a try failed before any of its answer was passed on, as the mechanism saw it.
 * Connect failures sent nothing; the others may have reached the upstream.
 */
export type TryFailure = 'connect_refused' | 'connect_timeout' | 'reset' | 'per_try_timeout' | 'protocol';

/** How each failure counts against the host (the balancer, outlier detection, connect-failure ejection). */
export const FAILURE_OUTCOME = {
  connect_refused: 'connect',
  connect_timeout: 'connect',
  reset: 'reset',
  per_try_timeout: 'timeout',
  protocol: 'protocol',
} as const satisfies Record<TryFailure, NonNullable<Outcome['error']>>;

/**
 * What to do after a try failed or was answered:
 * - `retry`: a new try on another host (`startTry`) after `retryDelayMs`;
 * - `resend`: the same try again at once on the same host, on a fresh connection (`resendTry`);
 * - `not_covered`: `retry_on` does not cover it (a success, or a failure not retried): it stands;
 * - a refusal: it was covered, but may not be retried (counted in meridian_retries_refused_total).
 */
export type RetryDecision = 'retry' | 'resend' | 'not_covered' | RetryRefusal;

/** How a hedge race settled: what the mechanism does next (`settleHedgeRace`). */
export type HedgeRace = 'hedge_failed' | 'hedge_won' | 'first_failed' | 'first_won';

/** How the mechanism carries tries: `pooled` reuses connections, so a reset may be the keep-alive race. */
export interface LifecycleOptions {
  /** The breaker slot the request holds for its whole life: `requests` (HTTP) or `connections` (TCP). */
  readonly slot: BreakerResource;
  readonly pooled: boolean;
}

/**
 * One request's life at one cluster, the same object for the proxy's HTTP, upgrade and TCP
 * paths and for the simulator (Envoy's router + `RetryState` split: the mechanism runs the
 * tries and arms the timers; this decides). It owns:
 *
 * - admission: the circuit breaker's request slot (once per request, however many tries,
 *   as Envoy counts `rq_active`) and the request's place among the retry budget's active
 *   requests, both held until `end()`;
 * - the tries: the pick (hash, attempt number, hosts already tried to avoid: Envoy's
 *   `previous_hosts` predicate) and the outcome report to the cluster (`onStart`/`onEnd`,
 *   which feed the balancer, outlier detection and connect-failure ejection);
 * - the retry decision (`shouldRetryFailure`, `shouldRetryStatus`, after Envoy's
 *   `shouldRetryReset`/`shouldRetryHeaders`): covered by `retry_on`, replayable, within
 *   attempts, then max_retries and the budget (`decideRetry`, in that order), and the
 *   backoff before the retry;
 * - the deadlines as data: `deadlineMs` and `tryTimeoutMs()`, which the caller arms.
 *
 * It is also the pick context (`hash`, `attempt`, `exclude`, `localOnly`), so a request
 * allocates this one object and, only once it retries, the set of hosts tried.
 */
export class RequestLifecycle implements ClusterPickContext, GateWaiter {
  readonly #cluster: LifecycleCluster;
  readonly #clock: Clock;
  readonly #rng: Rng;
  readonly #slot: BreakerResource;
  readonly #pooled: boolean;
  /** The request's hash key, for hash policies. */
  hash: number | undefined = undefined;
  /** The request already crossed from another region: stay in this one. */
  localOnly = false;
  /** Its class (request-class.ts), for the learning policies; undefined: none. */
  requestClass: number | undefined = undefined;
  /** Idempotent (RFC 9110 §9.2.2, or an Idempotency-Key): safe to send again after it reached an upstream. */
  idempotent = true;
  /** Tries started so far (a resend is not a new try): the pick's `attempt`. */
  attempt = 0;
  /** Hosts already tried, once there was more than one try. */
  exclude: Set<HostState> | undefined = undefined;
  /** When the request times out, whatever its tries; Infinity for none. */
  deadlineMs = Infinity;
  /** The delay before the retry last granted. */
  retryDelayMs = 0;
  /** Its class under overload. */
  priority: Priority = 'default';
  /** The route's own retry rules, in place of the cluster's (its `retries`). */
  retryRules: RetryRules | undefined = undefined;
  /** The route's (or cluster's) hedging, when it has one. */
  hedging: HedgePolicy | undefined = undefined;
  /** A queued request's answer from the gate: `admitted`, or the local reply it gets. */
  onGate: ((verdict: Exclude<EntryVerdict, 'queued'>) => void) | undefined = undefined;
  #host: HostState | undefined = undefined;
  #hedgeHost: HostState | undefined = undefined;
  #hedged = false;
  #adopted = false;
  #tryAtMs = 0;
  #hedgeAtMs = 0;
  #entry: QueueEntry<GateWaiter> | undefined = undefined;
  #gateHeld = false;
  #gateAtMs = 0;
  /** The last try ended with an answer or ran out of time: its request's latency says something of the service's. */
  #sampled = false;
  #inTry = false;
  #admitted = false;
  #countedRetries = 0;
  #backoffs = 0;
  #resent = false;

  constructor(cluster: LifecycleCluster, clock: Clock, rng: Rng, options: LifecycleOptions) {
    this.#cluster = cluster;
    this.#clock = clock;
    this.#rng = rng;
    this.#slot = options.slot;
    this.#pooled = options.pooled;
  }

  /** The host of the current (or last) try. */
  get host(): HostState | undefined {
    return this.#host;
  }

  /** Retries granted that hold a max_retries slot and count against the budget. */
  get countedRetries(): number {
    return this.#countedRetries;
  }

  /** Take the request's breaker slot and its place in the budget; false: the breaker is open (503). */
  admit(): boolean {
    const c = this.#cluster;
    if (!c.breaker.tryAcquire(this.#slot)) return false;
    c.budget.requestStarted();
    this.#admitted = true;
    return true;
  }

  /**
   * Admission with adaptive concurrency: the cluster's gate (limit, queue, classes), then
   * the breaker and budget (`admit`). `queued`: the answer comes later through `onGate`
   * (set it first), and `queueDeadlineMs` says when the mechanism's timer should call the
   * gate's `expire`. Without a gate this is `admit`.
   */
  enter(): EntryVerdict {
    const gate = this.#cluster.overload;
    if (gate !== undefined) {
      const now = this.#clock.nowMs();
      const v = gate.enter(this, now);
      if (v === 'refused') return 'overloaded';
      if (v === 'queued') {
        this.#entry = gate.lastEntry;
        return 'queued';
      }
      this.#gateHeld = true;
      this.#gateAtMs = now;
    }
    if (this.admit()) return 'admitted';
    this.#releaseGate();
    return 'circuit_open';
  }

  /** When a queued request's wait ends, unless admitted first; Infinity when not queued. */
  get queueDeadlineMs(): number {
    return this.#entry?.deadlineMs ?? Infinity;
  }

  /** The gate's slot came (GateWaiter): then the breaker and budget, and the mechanism is told. */
  gateOpened(nowMs: number): void {
    this.#entry = undefined;
    this.#gateHeld = true;
    this.#gateAtMs = nowMs;
    if (this.admit()) return this.onGate?.('admitted');
    this.#releaseGate();
    this.onGate?.('circuit_open');
  }

  /** The gate refused it from the queue (GateWaiter). */
  gateRefused(): void {
    this.#entry = undefined;
    this.onGate?.('overloaded');
  }

  #releaseGate(): void {
    if (!this.#gateHeld) return;
    this.#gateHeld = false;
    const now = this.#clock.nowMs();
    (this.#cluster.overload as OverloadGate).release(this.#sampled ? now - this.#gateAtMs : undefined, now);
  }

  /** The request times out `timeoutMs` from now, whatever its tries. */
  deadlineIn(timeoutMs: number): void {
    this.deadlineMs = this.#clock.nowMs() + timeoutMs;
  }

  /** Pick the next try's host, avoiding those tried, and report its start; undefined: no host can take it. */
  startTry(): HostState | undefined {
    const core = this.#cluster.core;
    const previous = this.#host;
    if (previous !== undefined) (this.exclude ??= new Set()).add(previous);
    if (this.attempt === 0) this.hedging?.requestStarted();
    const host = core.pick(this);
    if (host === undefined) return undefined;
    this.#host = host;
    this.attempt++;
    this.#inTry = true;
    this.#tryAtMs = this.#clock.nowMs();
    core.onStart(host, this);
    return host;
  }

  /** The keep-alive race resend: the same host again, the same try. */
  resendTry(): HostState {
    const host = this.#host as HostState;
    this.#inTry = true;
    this.#cluster.core.onStart(host, this);
    return host;
  }

  /** The current try is over: tell the cluster. Later calls for the same try are ignored. */
  endTry(outcome: Outcome): void {
    if (!this.#inTry) return;
    this.#inTry = false;
    this.#ended(this.#host as HostState, outcome);
  }

  #ended(host: HostState, outcome: Outcome): void {
    this.#sampled = outcome.status !== undefined || outcome.error === 'timeout';
    if (outcome.status !== undefined && this.#firstTry()) this.hedging?.observe(outcome.latencyMs);
    this.#cluster.core.onEnd(host, outcome);
  }

  /**
   * The current try is the request's first, not a hedge adopted in its place: only first
   * tries make the latency a hedge delay is a quantile of (hedges are tries already past it).
   */
  #firstTry(): boolean {
    return this.attempt === 1 && !this.#adopted;
  }

  /**
   * How long after the first try started a hedge should go; Infinity for none: no hedging,
   * not idempotent, already hedged or retried.
   */
  hedgeDelayMs(): number {
    if (this.hedging === undefined || !this.idempotent || this.#hedged || this.attempt !== 1) return Infinity;
    return this.hedging.delayMs;
  }

  /**
   * Send the hedge now? Not while the cluster is overloaded; within the hedging budget,
   * then, as a retry, within max_retries and the retry budget (retries and hedges share
   * one, so a spike cannot double itself); on a host other than the first try's.
   * Undefined: no hedge (the first try carries on alone).
   */
  startHedge(): HostState | undefined {
    const c = this.#cluster;
    const policy = this.hedging;
    if (policy === undefined || this.#hedged || !this.#inTry || c.overload?.overloaded === true) return undefined;
    this.#hedged = true;
    if (!policy.tryTake()) return undefined;
    if (!c.breaker.tryAcquire('retries')) return undefined;
    if (!c.budget.tryRetry(this.#clock.nowMs())) {
      c.breaker.release('retries');
      return undefined;
    }
    this.#countedRetries++;
    (this.exclude ??= new Set()).add(this.#host as HostState);
    const host = c.core.pick(this);
    if (host === undefined) return undefined;
    this.#hedgeHost = host;
    this.#hedgeAtMs = this.#clock.nowMs();
    c.core.onStart(host, this);
    return host;
  }

  /** The hedge in flight, if any. */
  get hedgeHost(): HostState | undefined {
    return this.#hedgeHost;
  }

  /** The hedge ended (its answer not taken: it failed while the first try runs on). */
  endHedge(outcome: Outcome): void {
    const host = this.#hedgeHost;
    if (host === undefined) return;
    this.#hedgeHost = undefined;
    this.#ended(host, outcome);
  }

  /** The first try answered first (or the request is over): the hedge is cancelled. */
  cancelHedge(): void {
    const host = this.#hedgeHost;
    if (host === undefined) return;
    this.#hedgeHost = undefined;
    this.#cluster.core.onCancel(host, this.#clock.nowMs() - this.#hedgeAtMs);
  }

  /**
   * The hedge becomes the request's try, its answer the one taken: it answered first (the
   * first try, still running, is cancelled) or the first try failed and was ended.
   */
  adoptHedge(): void {
    const host = this.#hedgeHost;
    if (host === undefined) return;
    if (this.#inTry) {
      const elapsed = this.#clock.nowMs() - this.#tryAtMs;
      // Right-censored: the first try took at least this long. Left out, the slowest first
      // tries (the ones hedged and beaten) would vanish from the samples and pull the
      // quantile, and with it the delay, down: more hedges than the quantile promises.
      this.hedging?.observe(elapsed);
      this.#cluster.core.onCancel(this.#host as HostState, elapsed);
    }
    this.#adopted = true;
    (this.exclude ??= new Set()).add(this.#host as HostState);
    this.#hedgeHost = undefined;
    this.#host = host;
    this.#inTry = true;
    this.#tryAtMs = this.#hedgeAtMs;
  }

  /**
   * While a hedge runs, the first event of either try settles the race, one rule for the
   * proxy and the simulator: a try that failed or answered 5xx loses it, the other carries
   * the request. `fromHedge`: the event is the hedge's. Does the lifecycle's part
   * (endHedge / adoptHedge / endTry / cancelHedge) and says what the mechanism does:
   * - `hedge_failed`: the hedge is over; the first try runs on.
   * - `hedge_won`: cancel the first try; the hedge is the request's try, its answer taken.
   * - `first_failed`: the first try is ended, the hedge is the request's try now.
   * - `first_won`: cancel the hedge; the first try's answer is taken.
   */
  settleHedgeRace(fromHedge: boolean, outcome: Outcome): HedgeRace {
    const lost = outcome.error !== undefined || (outcome.status !== undefined && outcome.status >= 500);
    if (fromHedge) {
      if (lost) {
        this.endHedge(outcome);
        return 'hedge_failed';
      }
      this.adoptHedge();
      if (this.hedging !== undefined) this.hedging.won++;
      return 'hedge_won';
    }
    if (lost) {
      this.endTry(outcome);
      this.adoptHedge();
      return 'first_failed';
    }
    this.cancelHedge();
    return 'first_won';
  }

  /**
   * When the current try times out: its per-try timeout, unless the request's own deadline
   * comes first (then the request times out, and no retry follows). Call at the try's start.
   */
  tryDeadlineMs(): number {
    const perTry = this.#rules().perTryTimeoutMs;
    if (perTry === undefined) return this.deadlineMs;
    const at = this.#clock.nowMs() + perTry;
    return at < this.deadlineMs ? at : this.deadlineMs;
  }

  /**
   * A try failed before any of its answer was passed on (Envoy's `shouldRetryReset`).
   * `bodyReplayable`: the request's body (if any) can still be sent whole.
   *
   * A reset on a pooled connection, the first time, is taken for the keep-alive race (a
   * connection the upstream closed just as it was reused; undici does not say whether it
   * was): one resend to the same host on a fresh connection, outside the budget, if the
   * request is replayable.
   */
  #rules(): RetryRules {
    return this.retryRules ?? this.#cluster.retry;
  }

  shouldRetryFailure(failure: TryFailure, bodyReplayable: boolean): RetryDecision {
    const rules = this.#rules();
    if (failure === 'reset' && this.#pooled && !this.#resent && this.idempotent && bodyReplayable) {
      this.#resent = true;
      this.retryDelayMs = 0;
      return 'resend';
    }
    const nothingSent = failure === 'connect_refused' || failure === 'connect_timeout';
    const covered = nothingSent ? rules.onConnectFailure : failure === 'per_try_timeout' ? rules.onTimeout : rules.onReset;
    if (!covered) return 'not_covered';
    // Nothing reached the upstream: any method may go again, if its body is still to be had.
    return this.#decide(nothingSent, bodyReplayable && (nothingSent || this.idempotent));
  }

  /** An answer arrived (Envoy's `shouldRetryHeaders`): retry it if `retry_on` lists its status. */
  shouldRetryStatus(status: number, bodyReplayable: boolean): RetryDecision {
    if (!this.#rules().statuses.has(status)) return 'not_covered';
    return this.#decide(false, bodyReplayable && this.idempotent);
  }

  /**
   * A gRPC answer with no message ended with `grpcStatus`: retried when `retry_on` lists
   * it and the request body can be sent again, whatever the method (gRPC calls are POSTs):
   * listing a status is the route owner's word that the call may run again, as in Envoy's
   * gRPC `retry_on` and gRPC's own retry policy (retryableStatusCodes).
   */
  shouldRetryGrpcStatus(grpcStatus: number, bodyReplayable: boolean): RetryDecision {
    if (this.#rules().grpcStatuses?.has(grpcStatus) !== true) return 'not_covered';
    return this.#decide(false, bodyReplayable);
  }

  /**
   * The backoff: a try that could not connect sent nothing and its host is already
   * ejected (connect-failure ejection), so the retry goes at once to another host, as
   * HAProxy redispatches without its turn-around timer. Any other retry waits Envoy's
   * fully jittered exponential backoff: uniform in [0, (2^n - 1) x base) for the n-th,
   * capped at the maximum (25 ms, 75 ms, 175 ms, then up to 250 ms by default).
   */
  #decide(nothingSent: boolean, replayable: boolean): RetryDecision {
    const c = this.#cluster;
    const rules = this.#rules();
    const verdict = decideRetry({ tries: this.attempt, attempts: rules.attempts, nothingSent, replayable }, c.breaker, c.budget, this.#clock.nowMs());
    if (!verdict.retry) return verdict.reason;
    if (verdict.counted) this.#countedRetries++;
    if (nothingSent) {
      this.retryDelayMs = 0;
    } else {
      const base = rules.backoffBaseMs ?? BACKOFF_BASE_MS;
      const max = rules.backoffMaxMs ?? BACKOFF_MAX_MS;
      const ceiling = (2 ** ++this.#backoffs - 1) * base;
      this.retryDelayMs = Math.min(Math.floor(this.#rng.next() * ceiling), max);
    }
    return 'retry';
  }

  /** The request is over: give back its breaker slot, its place in the budget and its counted retries. */
  end(): void {
    if (this.#entry !== undefined) {
      this.#cluster.overload?.leave(this.#entry);
      this.#entry = undefined;
    }
    this.cancelHedge();
    this.#releaseGate();
    if (!this.#admitted) return;
    this.#admitted = false;
    const c = this.#cluster;
    c.breaker.release(this.#slot);
    c.budget.requestEnded();
    for (; this.#countedRetries > 0; this.#countedRetries--) {
      c.budget.retryEnded();
      c.breaker.release('retries');
    }
  }
}
