/** The request lifecycle on a manual clock: admission, retry decisions in order, backoff, deadlines. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CircuitBreaker, RequestLifecycle, RetryBudget, type LifecycleCluster, type RetryRules, type Rng } from '../../src/core/index.js';
import { equalEndpoints, harness } from './helpers.js';

const RULES: RetryRules = { attempts: 3, onConnectFailure: true, onReset: true, onTimeout: true, statuses: new Set([503]), perTryTimeoutMs: 100 };

function setup(opts: { rules?: Partial<RetryRules>; maxRequests?: number; maxRetries?: number; percent?: number; minPerSecond?: number; hosts?: number } = {}) {
  const h = harness('round_robin', equalEndpoints(opts.hosts ?? 4), { connectFailureEjection: {} });
  const life: LifecycleCluster = {
    core: h.cluster,
    breaker: new CircuitBreaker({ maxRequests: opts.maxRequests ?? 100, maxRetries: opts.maxRetries ?? 100 }),
    budget: new RetryBudget({ percent: opts.percent ?? 100, minPerSecond: opts.minPerSecond ?? 0 }, 0),
    retry: { ...RULES, ...opts.rules },
  };
  const lifecycle = (rng: Rng = h.rng, pooled = true) => new RequestLifecycle(life, h.clock, rng, { slot: 'requests', pooled });
  return { ...h, life, lifecycle };
}

/** An Rng that always returns `x`: the backoff's jitter at a known point. */
const fixed = (x: number): Rng => ({ next: () => x });

describe('request lifecycle', () => {
  it('holds one breaker request slot per request, however many tries, until it ends', () => {
    const { life, lifecycle } = setup({ maxRequests: 1 });
    const lc = lifecycle();
    assert.equal(lc.admit(), true);
    assert.equal(lifecycle().admit(), false);
    lc.startTry();
    lc.endTry({ error: 'reset', latencyMs: 1 });
    assert.equal(lc.shouldRetryFailure('reset', true), 'resend');
    lc.resendTry();
    lc.endTry({ error: 'reset', latencyMs: 1 });
    assert.equal(lc.shouldRetryFailure('reset', true), 'retry');
    lc.startTry();
    assert.equal(life.breaker.used('requests'), 1);
    assert.equal(life.budget.activeRequests, 1);
    lc.endTry({ status: 200, latencyMs: 1 });
    lc.end();
    lc.end();
    assert.equal(life.breaker.used('requests'), 0);
    assert.equal(life.breaker.used('retries'), 0);
    assert.equal(life.budget.activeRequests, 0);
    assert.equal(life.budget.activeRetries, 0);
  });

  it('retries on another host than those tried, the same one only when no other is left', () => {
    const { lifecycle } = setup({ hosts: 2 });
    const lc = lifecycle();
    lc.admit();
    const first = lc.startTry();
    lc.endTry({ error: 'connect', latencyMs: 1 });
    assert.equal(lc.shouldRetryFailure('connect_refused', true), 'retry');
    const second = lc.startTry();
    assert.notEqual(second, first);
    lc.endTry({ error: 'connect', latencyMs: 1 });
    assert.equal(lc.shouldRetryFailure('connect_refused', true), 'retry');
    // Both hosts tried and ejected (connect-failure ejection): panic balances over both again.
    assert.ok(lc.startTry() !== undefined);
    assert.equal(lc.attempt, 3);
  });

  it("gRPC statuses: retried when listed, whatever the method, only with the body replayable; a route's rules replace the cluster's", () => {
    const { lifecycle } = setup({ rules: { grpcStatuses: new Set([14]) } });
    const lc = lifecycle();
    lc.idempotent = false; // gRPC calls are POSTs
    lc.admit();
    lc.startTry();
    assert.equal(lc.shouldRetryGrpcStatus(8, true), 'not_covered');
    assert.equal(lc.shouldRetryGrpcStatus(14, false), 'not_replayable');
    assert.equal(lc.shouldRetryGrpcStatus(14, true), 'retry');
    lc.startTry();
    lc.retryRules = { ...RULES, attempts: 1, statuses: new Set(), grpcStatuses: new Set([8]) };
    assert.equal(lc.shouldRetryStatus(503, true), 'not_covered');
    assert.equal(lc.shouldRetryGrpcStatus(14, true), 'not_covered');
    assert.equal(lc.shouldRetryGrpcStatus(8, true), 'attempts_exhausted');
  });

  it('refuses in decideRetry\'s order: not replayable, attempts, max_retries, budget', () => {
    const post = setup();
    const a = post.lifecycle();
    a.idempotent = false;
    a.admit();
    a.startTry();
    assert.equal(a.shouldRetryStatus(503, true), 'not_replayable');
    assert.equal(a.shouldRetryFailure('reset', true), 'not_replayable');
    // Nothing was sent: a POST may go again, unless its body was consumed.
    assert.equal(a.shouldRetryFailure('connect_refused', true), 'retry');
    a.startTry();
    assert.equal(a.shouldRetryFailure('connect_timeout', false), 'not_replayable');

    const one = setup({ rules: { attempts: 1 } });
    const b = one.lifecycle();
    b.admit();
    b.startTry();
    assert.equal(b.shouldRetryStatus(503, true), 'retry');
    b.startTry();
    assert.equal(b.shouldRetryStatus(503, true), 'attempts_exhausted');

    // max_retries before the budget: with both exhausted, max_retries is the reason.
    const tight = setup({ maxRetries: 1, percent: 0, minPerSecond: 1 });
    const c = tight.lifecycle();
    const d = tight.lifecycle();
    c.admit();
    d.admit();
    c.startTry();
    d.startTry();
    assert.equal(c.shouldRetryStatus(503, true), 'retry');
    assert.equal(d.shouldRetryStatus(503, true), 'max_retries');
    c.end();
    assert.equal(d.shouldRetryStatus(503, true), 'budget');
    // A connect failure takes neither: it is bounded by attempts alone.
    assert.equal(d.shouldRetryFailure('connect_refused', true), 'retry');
    assert.equal(d.countedRetries, 0);
  });

  it('retries only what retry_on covers', () => {
    const { lifecycle } = setup({ rules: { onConnectFailure: true, onReset: false, onTimeout: false, statuses: new Set() } });
    const lc = lifecycle(undefined, false);
    lc.admit();
    lc.startTry();
    assert.equal(lc.shouldRetryStatus(503, true), 'not_covered');
    assert.equal(lc.shouldRetryFailure('reset', true), 'not_covered');
    assert.equal(lc.shouldRetryFailure('protocol', true), 'not_covered');
    assert.equal(lc.shouldRetryFailure('per_try_timeout', true), 'not_covered');
    assert.equal(lc.shouldRetryFailure('connect_refused', true), 'retry');
  });

  it('resends a reset once, on a pooled connection, for a replayable request only', () => {
    const { lifecycle } = setup({ rules: { onReset: false } });
    const pooled = lifecycle();
    pooled.admit();
    const host = pooled.startTry();
    assert.equal(pooled.shouldRetryFailure('reset', true), 'resend');
    assert.equal(pooled.resendTry(), host);
    assert.equal(pooled.attempt, 1);
    assert.equal(pooled.shouldRetryFailure('reset', true), 'not_covered');
    const fresh = lifecycle(undefined, false);
    fresh.admit();
    fresh.startTry();
    assert.equal(fresh.shouldRetryFailure('reset', true), 'not_covered');
    const streamed = lifecycle();
    streamed.admit();
    streamed.startTry();
    assert.equal(streamed.shouldRetryFailure('reset', false), 'not_covered');
  });

  it('backs off as Envoy: full jitter below (2^n - 1) x 25 ms, capped at 250 ms; none after a failed connect', () => {
    const delays = (x: number) => {
      const { lifecycle } = setup({ rules: { attempts: 6 }, minPerSecond: 100 });
      const lc = lifecycle(fixed(x));
      lc.admit();
      const out: number[] = [];
      for (let i = 0; i < 5; i++) {
        lc.startTry();
        assert.equal(lc.shouldRetryStatus(503, true), 'retry');
        out.push(lc.retryDelayMs);
      }
      lc.startTry();
      assert.equal(lc.shouldRetryFailure('connect_refused', true), 'retry');
      out.push(lc.retryDelayMs);
      return out;
    };
    // Ceilings 25, 75, 175, 375, 775: the last two capped at 250.
    assert.deepEqual(delays(0.999), [24, 74, 174, 250, 250, 0]);
    assert.deepEqual(delays(0.5), [12, 37, 87, 187, 250, 0]);
    assert.deepEqual(delays(0), [0, 0, 0, 0, 0, 0]);
  });

  it('gives the deadlines as data: the per-try timeout within what is left of the request', () => {
    const { clock, lifecycle } = setup();
    const lc = lifecycle();
    lc.admit();
    assert.equal(lc.tryDeadlineMs(), 100);
    lc.deadlineIn(250);
    assert.equal(lc.deadlineMs, 250);
    clock.advance(100);
    assert.equal(lc.tryDeadlineMs(), 200);
    clock.advance(100);
    // 50 ms left: the request's deadline ends the try, no per-try timeout is armed.
    assert.equal(lc.tryDeadlineMs(), 250);
    const { lifecycle: noPerTry } = setup({ rules: { perTryTimeoutMs: undefined } });
    const other = noPerTry();
    other.deadlineIn(1000);
    assert.equal(other.tryDeadlineMs(), 1000);
  });

  it('reports each try to the cluster once: a host refusing a connect is ejected at once', () => {
    const { cluster, lifecycle } = setup();
    const lc = lifecycle();
    lc.admit();
    const host = lc.startTry();
    assert.ok(host !== undefined);
    assert.equal(host.active, 1);
    lc.endTry({ error: 'connect', latencyMs: 1 });
    lc.endTry({ error: 'connect', latencyMs: 1 });
    assert.equal(host.active, 0);
    assert.equal(host.failuresTotal, 1);
    assert.equal(host.health.unreachable, true);
    assert.equal(cluster.hosts.filter((h) => h.health.unreachable).length, 1);
  });
});
