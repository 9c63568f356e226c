import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { slowStartFactor } from '../../src/core/index.js';
import { endpoints, equalEndpoints, harness, idleShares } from './helpers.js';

describe('slow start', () => {
  it('ramps linearly from the minimum weight to full over the window', () => {
    const o = { windowMs: 10_000, minWeightPercent: 10 };
    assert.equal(slowStartFactor(0, o), 0.1);
    assert.equal(slowStartFactor(500, o), 0.1);
    assert.equal(slowStartFactor(5_000, o), 0.5);
    assert.equal(slowStartFactor(9_000, o), 0.9);
    assert.equal(slowStartFactor(10_000, o), 1);
  });

  it('ramps faster early with aggression > 1', () => {
    const o = { windowMs: 10_000, aggression: 2, minWeightPercent: 0 };
    assert.ok(Math.abs(slowStartFactor(2_500, o) - 0.5) < 1e-12); // sqrt(0.25)
  });

  it('a host added to a running cluster takes a growing share until the window ends', () => {
    const h = harness('round_robin', equalEndpoints(3), { slowStart: { windowMs: 20_000, minWeightPercent: 10 } });
    h.cluster.setEndpoints(endpoints([1, 1, 1, 1]));
    const share = () => (idleShares(h, 4000).get('e3') ?? 0) / 4000;
    assert.equal(h.cluster.view()[3]!.status, 'slow_start');
    const atStart = share();
    h.clock.set(10_000);
    const half = share();
    h.clock.set(20_000);
    const full = share();
    // Weight 0.1 of 3.1 total at the start, 0.5 of 3.5 halfway, 1 of 4 after.
    assert.ok(Math.abs(atStart - 0.1 / 3.1) < 0.005, `start ${atStart}`);
    assert.ok(Math.abs(half - 0.5 / 3.5) < 0.005, `half ${half}`);
    assert.equal(full, 0.25);
    assert.equal(h.cluster.view()[3]!.status, 'healthy');
  });

  it('a host back from failing health checks ramps again; hosts present at start do not', () => {
    const h = harness('least_request', equalEndpoints(4), { slowStart: { windowMs: 10_000 }, activeChecks: { unhealthyThreshold: 1, healthyThreshold: 1 } });
    assert.ok(h.cluster.view().every((v) => v.status === 'healthy'));
    const host = h.cluster.hosts[2]!;
    h.cluster.recordCheck(host, false);
    assert.equal(h.cluster.view()[2]!.status, 'unhealthy');
    h.clock.advance(1_000);
    h.cluster.recordCheck(host, true);
    const v = h.cluster.view()[2]!;
    assert.equal(v.status, 'slow_start');
    assert.ok(Math.abs(v.effectiveWeight - 0.1) < 1e-12);
  });

  it('does not apply to hash policies, whose keys would move with the weights', () => {
    const h = harness('maglev', equalEndpoints(3), { slowStart: { windowMs: 10_000 } });
    h.cluster.setEndpoints(equalEndpoints(4));
    assert.equal(h.cluster.view()[3]!.status, 'healthy');
    assert.equal(h.cluster.view()[3]!.effectiveWeight, 1);
  });
});
