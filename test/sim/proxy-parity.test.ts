/**
 * The simulator decides as the proxy does: one trace of try outcomes (refused connects,
 * resets, 503s, per-try timeouts, successes, at given times, over concurrent requests) is
 * fed once through the proxy's adapter (src/proxy/admission.ts's httpLifecycle and
 * src/proxy/try-outcome.ts, with the errors undici and the proxy's timers produce) and
 * once through the simulator's (src/sim/try-outcome.ts, with the engine's outcomes).
 * Both must make the same decisions: admitted or refused, retried or not and why, on
 * which endpoint, after what delay. A rule either side keeps for itself (its own
 * idempotency or retry_on reading, its own order of checks, its own backoff or its own
 * mapping of a failure) makes the two sequences differ.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errors as undiciErrors } from 'undici';
import { coreRetryRules } from '../../src/config/index.js';
import { CircuitBreaker, Cluster, ManualClock, RetryBudget, SeededRng, type Clock, type LifecycleCluster, type RequestLifecycle, type RetryDecision, type Rng } from '../../src/core/index.js';
import { httpLifecycle } from '../../src/proxy/admission.js';
import { classifyUpstreamError, UpstreamError } from '../../src/proxy/errors.js';
import { tryAnswered, tryFailed, type RetryHooks } from '../../src/proxy/try-outcome.js';
import { simLifecycle, simTryEnded } from '../../src/sim/try-outcome.js';
import { equalEndpoints } from '../core/helpers.js';

type TraceOutcome = 'refused' | 'reset' | 'timeout' | 503 | 200;
type Step = readonly [atMs: number, request: string, what: 'arrive' | TraceOutcome];

interface Side {
  lifecycle(life: LifecycleCluster, clock: Clock, rng: Rng): RequestLifecycle;
  /** The current try of `lc` ended as `o`: report it and decide, as this side's mechanism does. */
  ended(lc: RequestLifecycle, o: TraceOutcome, latencyMs: number): RetryDecision;
}

const counted: RetryHooks = { retry: () => {}, retryRefused: () => {} };

/** What undici, node:net and the forwarder's own timers hand the proxy for each outcome. */
const proxy: Side = {
  lifecycle: (life, clock, rng) => httpLifecycle(life, clock, rng, { method: 'GET', headers: {} }),
  ended(lc, o, latencyMs) {
    switch (o) {
      case 'refused':
        return tryFailed(lc, counted, 'c', classifyUpstreamError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })), latencyMs, true);
      case 'reset':
        return tryFailed(lc, counted, 'c', classifyUpstreamError(new undiciErrors.SocketError('other side closed')), latencyMs, true);
      case 'timeout':
        return tryFailed(lc, counted, 'c', new UpstreamError('timeout', true, 'no response within the per-try timeout of 100 ms'), latencyMs, true);
      default: {
        const d = tryAnswered(lc, counted, 'c', o, latencyMs, true);
        // An answer not retried goes on to the client; its try ends when it is complete.
        if (d !== 'retry') lc.endTry({ status: o, latencyMs });
        return d;
      }
    }
  },
};

/** What the engine's model hands the simulated load balancer for each outcome. */
const sim: Side = {
  lifecycle: (life, clock, rng) => simLifecycle(life, clock, rng),
  ended: (lc, o, latencyMs) =>
    simTryEnded(lc, o === 'refused' ? { error: 'connect', latencyMs } : o === 'reset' ? { error: 'reset', latencyMs } : o === 'timeout' ? { error: 'timeout', latencyMs } : { status: o, latencyMs }),
};

/**
 * Eight requests on a cluster of four hosts with a breaker of 4 requests and 2 retries, a
 * budget of 40% (1/s floor) and retry_on connect failures, resets, timeouts and 503. Each
 * request's steps are 300 ms apart at least, longer than any backoff (250 ms at most).
 */
const TRACE: readonly Step[] = [
  [0, 'A', 'arrive'],
  [0, 'B', 'arrive'],
  [0, 'C', 'arrive'],
  [0, 'D', 'arrive'],
  [0, 'E', 'arrive'],
  [10, 'A', 'refused'],
  [20, 'A', 503],
  [30, 'B', 503],
  [40, 'C', 'timeout'],
  [50, 'D', 'reset'],
  [60, 'D', 'reset'],
  [400, 'A', 200],
  [500, 'F', 'arrive'],
  [510, 'F', 503],
  [700, 'B', 'refused'],
  [800, 'B', 200],
  [1500, 'G', 'arrive'],
  [1510, 'G', 'timeout'],
  [1800, 'G', 503],
  [2000, 'H', 'arrive'],
  [2010, 'H', 'refused'],
  [2020, 'H', 'refused'],
  [2030, 'H', 'refused'],
];

/** The decisions, worked out once and kept: a change here is a change of retry rules, on both sides. */
const EXPECTED = [
  '0 A try 1 on e0',
  '0 B try 1 on e1',
  '0 C try 1 on e2',
  '0 D try 1 on e3',
  '0 E refused: circuit_open',
  '10 A refused: retry after 0 ms',
  '10 A try 2 on e1',
  '20 A 503: retry after 5 ms',
  '25 A try 3 on e2',
  '30 B 503: retry after 12 ms',
  '40 C timeout: done (max_retries)',
  '42 B try 2 on e3',
  '50 D reset: resend on e3',
  '60 D reset: done (max_retries)',
  '400 A 200: done (not_covered)',
  '500 F try 1 on e1',
  '510 F 503: done (budget)',
  '700 B refused: retry after 0 ms',
  '700 B try 3 on e2',
  '800 B 200: done (not_covered)',
  '1500 G try 1 on e0',
  '1510 G timeout: retry after 11 ms',
  '1521 G try 2 on e1',
  '1800 G 503: done (budget)',
  '2000 H try 1 on e0',
  '2010 H refused: retry after 0 ms',
  '2010 H try 2 on e1',
  '2020 H refused: retry after 0 ms',
  '2020 H try 3 on e2',
  '2030 H refused: done (attempts_exhausted)',
];

function run(side: Side): string[] {
  const clock = new ManualClock(0);
  const cluster = new Cluster('c', equalEndpoints(4), { policy: 'round_robin', clock, rng: new SeededRng(1), connectFailureEjection: {} });
  const life: LifecycleCluster = {
    core: cluster,
    breaker: new CircuitBreaker({ maxRequests: 4, maxRetries: 2 }),
    budget: new RetryBudget({ percent: 40, minPerSecond: 1 }, 0),
    retry: coreRetryRules({ attempts: 2, retry_on: ['connect_failure', 'reset', 'timeout', 503], per_try_timeout: 100 }),
  };
  const jitter = new SeededRng(7);
  const live = new Map<string, { lc: RequestLifecycle; tryStartMs: number }>();
  /** Retries waiting out their backoff, the earliest first. */
  const backoffs: { atMs: number; req: string }[] = [];
  const log: string[] = [];
  const start = (req: string, lc: RequestLifecycle) => {
    const host = lc.startTry();
    log.push(`${clock.nowMs()} ${req} try ${lc.attempt} on ${host?.endpoint.id ?? 'none (no host)'}`);
    if (host === undefined) {
      lc.end();
      live.delete(req);
    } else (live.get(req) as { tryStartMs: number }).tryStartMs = clock.nowMs();
  };
  for (const [atMs, req, what] of TRACE) {
    while (backoffs.length > 0 && (backoffs[0] as { atMs: number }).atMs <= atMs) {
      const b = backoffs.shift() as { atMs: number; req: string };
      clock.set(b.atMs);
      start(b.req, (live.get(b.req) as { lc: RequestLifecycle }).lc);
    }
    clock.set(atMs);
    if (what === 'arrive') {
      const lc = side.lifecycle(life, clock, jitter);
      if (!lc.admit()) {
        log.push(`${atMs} ${req} refused: circuit_open`);
        continue;
      }
      live.set(req, { lc, tryStartMs: atMs });
      start(req, lc);
      continue;
    }
    const r = live.get(req);
    assert.ok(r !== undefined, `trace: ${req} has no try in flight at ${atMs}`);
    const d = side.ended(r.lc, what, atMs - r.tryStartMs);
    if (d === 'resend') {
      const host = r.lc.resendTry();
      r.tryStartMs = atMs;
      log.push(`${atMs} ${req} ${what}: resend on ${host.endpoint.id}`);
    } else if (d === 'retry') {
      log.push(`${atMs} ${req} ${what}: retry after ${r.lc.retryDelayMs} ms`);
      if (r.lc.retryDelayMs === 0) start(req, r.lc);
      else {
        backoffs.push({ atMs: atMs + r.lc.retryDelayMs, req });
        backoffs.sort((x, y) => x.atMs - y.atMs);
      }
    } else {
      log.push(`${atMs} ${req} ${what}: done (${d})`);
      r.lc.end();
      live.delete(req);
    }
  }
  assert.equal(backoffs.length, 0, 'trace: a retry never started');
  return log;
}

describe('simulator and proxy decide alike', () => {
  it('the same trace of outcomes gives the same admissions, retries, endpoints and delays', () => {
    const fromProxy = run(proxy);
    const fromSim = run(sim);
    assert.deepEqual(fromSim, fromProxy);
    assert.deepEqual(fromProxy, EXPECTED);
  });
});
