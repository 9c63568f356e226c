/**
 * The hedge race's one rule (RequestLifecycle.settleHedgeRace), which the proxy's forwarder
 * and the simulator both carry out: a try that failed or answered 5xx loses, the other
 * carries the request; what the lifecycle tells the cluster and the budget in each case.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HedgePolicy } from '../../src/core/hedging.js';
import { CircuitBreaker, RequestLifecycle, RetryBudget, type HostState, type LifecycleCluster } from '../../src/core/index.js';
import { equalEndpoints, harness } from './helpers.js';

function race() {
  const h = harness('round_robin', equalEndpoints(3));
  const life: LifecycleCluster = {
    core: h.cluster,
    breaker: new CircuitBreaker({ maxRequests: 100, maxRetries: 100 }),
    budget: new RetryBudget({ percent: 100, minPerSecond: 0 }, 0),
    retry: { attempts: 3, onConnectFailure: true, onReset: true, onTimeout: true, statuses: new Set([503]), perTryTimeoutMs: undefined },
  };
  const lc = new RequestLifecycle(life, h.clock, h.rng, { slot: 'requests', pooled: true });
  const policy = new HedgePolicy({ afterMs: 10, maxPercent: 100 });
  lc.hedging = policy;
  assert.equal(lc.admit(), true);
  const first = lc.startTry() as HostState;
  assert.equal(lc.hedgeDelayMs(), 10);
  h.clock.advance(10);
  const hedge = lc.startHedge() as HostState;
  assert.ok(hedge !== undefined && hedge !== first, 'a hedge on another host');
  assert.equal(first.active, 1);
  assert.equal(hedge.active, 1);
  h.clock.advance(5);
  return { h, lc, policy, first, hedge };
}

describe('hedge race', () => {
  it('the hedge answering first wins: the first try is cancelled, the hedge is the request\'s try, counted as won', () => {
    const { lc, policy, first, hedge } = race();
    assert.equal(lc.settleHedgeRace(true, { status: 200, latencyMs: 5 }), 'hedge_won');
    assert.equal(lc.hedgeHost, undefined);
    assert.equal(first.active, 0, 'the first try given up');
    assert.equal(hedge.active, 1, 'the hedge runs on as the request\'s try');
    assert.equal(policy.won, 1);
    lc.endTry({ status: 200, latencyMs: 5 });
    assert.equal(hedge.active, 0);
  });

  it('a hedge answering 5xx or failing loses: it is over, the first try runs on, nothing won', () => {
    for (const outcome of [{ status: 503, latencyMs: 5 }, { error: 'reset' as const, latencyMs: 5 }]) {
      const { lc, policy, first, hedge } = race();
      assert.equal(lc.settleHedgeRace(true, outcome), 'hedge_failed');
      assert.equal(lc.hedgeHost, undefined);
      assert.equal(hedge.active, 0);
      assert.equal(first.active, 1);
      assert.equal(policy.won, 0);
    }
  });

  it('the first try failing adopts the hedge in its place: not counted as a hedge won', () => {
    const { lc, policy, first, hedge } = race();
    assert.equal(lc.settleHedgeRace(false, { error: 'reset', latencyMs: 15 }), 'first_failed');
    assert.equal(lc.hedgeHost, undefined);
    assert.equal(first.active, 0);
    assert.equal(hedge.active, 1);
    assert.equal(policy.won, 0);
  });

  it('the first try answering first wins: the hedge is cancelled', () => {
    const { lc, policy, first, hedge } = race();
    assert.equal(lc.settleHedgeRace(false, { status: 404, latencyMs: 15 }), 'first_won');
    assert.equal(lc.hedgeHost, undefined);
    assert.equal(hedge.active, 0);
    assert.equal(first.active, 1);
    assert.equal(policy.won, 0);
  });
});
