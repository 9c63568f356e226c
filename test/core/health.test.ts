import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { HostHealth, OutlierDetector, type ClusterEvent } from '../../src/core/index.js';
import { equalEndpoints, fail, harness, idleShares } from './helpers.js';

describe('active health checks', () => {
  it('needs unhealthy_threshold consecutive failures to mark a host unhealthy, healthy_threshold passes to recover', () => {
    const h = new HostHealth(true);
    const t = { healthyThreshold: 2, unhealthyThreshold: 3 };
    assert.equal(h.recordCheck(false, t), false);
    assert.equal(h.recordCheck(false, t), false);
    assert.equal(h.recordCheck(true, t), false); // a pass resets the failure run
    assert.equal(h.recordCheck(false, t), false);
    assert.equal(h.recordCheck(false, t), false);
    assert.equal(h.recordCheck(false, t), true);
    assert.equal(h.activeHealthy, false);
    assert.equal(h.recordCheck(true, t), false);
    assert.equal(h.recordCheck(true, t), true);
    assert.equal(h.activeHealthy, true);
  });

  it('can start hosts unhealthy until their first passing checks', () => {
    const h = harness('round_robin', equalEndpoints(2), { activeChecks: { initiallyHealthy: false, healthyThreshold: 1 } });
    // No routable host: panic (0% < 50%) balances over both rather than failing everything.
    assert.equal(h.cluster.inPanic, true);
    h.cluster.recordCheck(h.cluster.hosts[1]!, true);
    assert.equal(h.cluster.inPanic, false);
    for (let i = 0; i < 5; i++) assert.equal(h.cluster.pick()?.endpoint.id, 'e1');
  });
});

describe('outlier detection', () => {
  it('ejects after consecutive 5xx, for base x n, growing with each repeat', () => {
    const h = harness('round_robin', equalEndpoints(10), {
      outlierDetection: { consecutive5xx: 3, consecutiveGatewayErrors: 0, baseEjectionMs: 30_000, maxEjectionMs: 100_000, intervalMs: 7_000 },
    });
    const host = h.cluster.hosts[4]!;
    const events: ClusterEvent[] = [];
    h.cluster.onEvent((e) => events.push(e));
    fail(h, host, 500);
    fail(h, host, 500);
    assert.equal(host.health.ejected, false);
    fail(h, host, 500);
    assert.equal(host.health.ejected, true);
    assert.equal(host.health.ejectedUntilMs, 30_000);
    assert.deepEqual(events.map((e) => e.type), ['ejected']);
    // Back exactly when its time is up, not at the next interval boundary (35 s).
    h.clock.set(29_900);
    assert.equal(h.cluster.view()[4]!.status, 'ejected');
    h.clock.set(30_000);
    assert.equal(h.cluster.view()[4]!.status, 'healthy');
    // Second ejection: 2 x 30 s.
    for (let i = 0; i < 3; i++) fail(h, host, 500);
    assert.equal(host.health.ejectedUntilMs, 30_000 + 60_000);
    // Third would be 90 s, fourth 120 s, capped at 100 s.
    h.clock.set(90_000);
    h.cluster.view();
    for (let i = 0; i < 3; i++) fail(h, host, 500);
    assert.equal(host.health.ejectedUntilMs, 90_000 + 90_000);
    h.clock.set(180_000);
    h.cluster.view();
    for (let i = 0; i < 3; i++) fail(h, host, 500);
    assert.equal(host.health.ejectedUntilMs, 180_000 + 100_000);
  });

  it('counts gateway errors (502/503/504, connect failures) separately from other 5xx', () => {
    const h = harness('round_robin', equalEndpoints(10), { outlierDetection: { consecutive5xx: 0, consecutiveGatewayErrors: 2 } });
    const host = h.cluster.hosts[0]!;
    fail(h, host, 500);
    fail(h, host, 500);
    assert.equal(host.health.ejected, false, '500 is not a gateway error');
    h.cluster.onStart(host);
    h.cluster.onEnd(host, { error: 'connect', latencyMs: 1 });
    fail(h, host, 502);
    assert.equal(host.health.ejected, true);
  });

  it('a success resets the consecutive counters', () => {
    const h = harness('round_robin', equalEndpoints(10), { outlierDetection: { consecutive5xx: 3 } });
    const host = h.cluster.hosts[0]!;
    fail(h, host, 500);
    fail(h, host, 500);
    h.cluster.onStart(host);
    h.cluster.onEnd(host, { status: 200, latencyMs: 1 });
    fail(h, host, 500);
    fail(h, host, 500);
    assert.equal(host.health.ejected, false);
  });

  it('caps the percentage ejected at once, but can always eject one host', () => {
    const h = harness('round_robin', equalEndpoints(10), { outlierDetection: { consecutive5xx: 1, maxEjectionPercent: 20 } });
    for (const host of h.cluster.hosts) fail(h, host, 500);
    assert.equal(h.cluster.hosts.filter((x) => x.health.ejected).length, 2);
    const one = harness('round_robin', equalEndpoints(3), { outlierDetection: { consecutive5xx: 1, maxEjectionPercent: 0 } });
    for (const host of one.cluster.hosts) fail(one, host, 500);
    assert.equal(one.cluster.hosts.filter((x) => x.health.ejected).length, 1);
  });

  it('ejects a host whose success rate falls below mean - 1.9 stdev', () => {
    const d = new OutlierDetector({ consecutive5xx: 0, consecutiveGatewayErrors: 0, successRate: { minimumHosts: 5, requestVolume: 100, stdevFactor: 1.9 } });
    const hosts = Array.from({ length: 10 }, () => new HostHealth());
    d.setHosts(hosts);
    // Nine hosts at 99% success, one at 70%: mean 96.1%, stdev 8.7% -> floor 79.6%.
    hosts.forEach((h, i) => {
      for (let r = 0; r < 100; r++) d.record(h, { status: r < (i === 6 ? 70 : 99) ? 200 : 500, latencyMs: 1 }, 0);
    });
    const ejected = d.review(10_000);
    assert.deepEqual(ejected.map((e) => hosts.indexOf(e.health)), [6]);
    assert.equal(ejected[0]!.reason, 'success_rate');
    assert.equal(hosts[0]!.windowRequests, 0, 'a new window starts');
  });

  it('does not judge success rates below the request volume or host minimum', () => {
    const d = new OutlierDetector({ successRate: { minimumHosts: 5, requestVolume: 100 } });
    const hosts = Array.from({ length: 4 }, () => new HostHealth());
    d.setHosts(hosts);
    hosts.forEach((h, i) => {
      for (let r = 0; r < 200; r++) d.record(h, { status: i === 0 && r % 2 ? 500 : 200, latencyMs: 1 }, 0);
    });
    assert.deepEqual(d.review(10_000), []);
  });
});

describe('panic threshold', () => {
  it('balances over all hosts when fewer than the threshold are healthy', () => {
    const h = harness('round_robin', equalEndpoints(10), { activeChecks: { unhealthyThreshold: 1 }, panicThresholdPercent: 50 });
    // 5 of 10 unhealthy: exactly 50% healthy is not below the threshold.
    for (let i = 0; i < 5; i++) h.cluster.recordCheck(h.cluster.hosts[i]!, false);
    assert.equal(h.cluster.inPanic, false);
    assert.equal(idleShares(h, 1000).size, 5);
    // 6 of 10 unhealthy: 40% < 50%, panic: all ten get traffic.
    h.cluster.recordCheck(h.cluster.hosts[5]!, false);
    assert.equal(h.cluster.inPanic, true);
    assert.equal(idleShares(h, 1000).size, 10);
  });

  it('announces panic when the check that starts it is recorded, and its end likewise, without waiting for a pick', () => {
    const h = harness('round_robin', equalEndpoints(4), { activeChecks: { unhealthyThreshold: 1, healthyThreshold: 1 }, panicThresholdPercent: 50 });
    const events: ClusterEvent[] = [];
    h.cluster.onEvent((e) => events.push(e));
    for (let i = 0; i < 2; i++) h.cluster.recordCheck(h.cluster.hosts[i]!, false);
    assert.deepEqual(events.map((e) => e.type), ['health_changed', 'health_changed']);
    // 1 of 4 healthy: 25% < 50%.
    h.cluster.recordCheck(h.cluster.hosts[2]!, false);
    assert.deepEqual(events.slice(2), [{ type: 'health_changed', host: h.cluster.hosts[2], healthy: false }, { type: 'panic', active: true }]);
    h.cluster.recordCheck(h.cluster.hosts[2]!, true);
    assert.deepEqual(events.slice(4), [{ type: 'health_changed', host: h.cluster.hosts[2], healthy: true }, { type: 'panic', active: false }]);
  });

  it('panic threshold 0 disables panic', () => {
    const h = harness('round_robin', equalEndpoints(4), { activeChecks: { unhealthyThreshold: 1 }, panicThresholdPercent: 0 });
    for (let i = 0; i < 3; i++) h.cluster.recordCheck(h.cluster.hosts[i]!, false);
    assert.equal(h.cluster.inPanic, false);
    assert.deepEqual([...idleShares(h, 100).keys()], ['e3']);
  });

  it('never picks an unhealthy or ejected host unless in panic (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('round_robin', 'random', 'least_request', 'peak_ewma', 'ring_hash', 'maglev' as const),
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom('check_fail', 'check_pass', 'error', 'refused', 'ok', 'tick')), { maxLength: 60 }),
        fc.boolean(),
        (policy, n, ops, checked) => {
          const h = harness(policy, equalEndpoints(n), {
            ...(checked ? { activeChecks: { unhealthyThreshold: 1, healthyThreshold: 1 } } : {}),
            outlierDetection: { consecutive5xx: 2, maxEjectionPercent: 100, baseEjectionMs: 5_000, intervalMs: 1_000 },
            connectFailureEjection: { baseEjectionMs: 1_000 },
          });
          for (const [i, op] of ops) {
            const host = h.cluster.hosts[i % n]!;
            if (op === 'check_fail' || op === 'check_pass') h.cluster.recordCheck(host, op === 'check_pass');
            else if (op === 'tick') h.clock.advance(1_500);
            else {
              h.cluster.onStart(host);
              h.cluster.onEnd(host, op === 'refused' ? { error: 'connect', latencyMs: 1 } : { status: op === 'ok' ? 200 : 503, latencyMs: 1 });
            }
            for (let k = 0; k < 5; k++) {
              const picked = h.cluster.pick({ hash: k * 977 + i })!;
              assert.ok(picked, 'some host is always picked from a non-empty cluster');
              if (!h.cluster.inPanic) assert.ok(picked.health.routable, `${policy} picked ${picked.endpoint.id} outside panic`);
            }
          }
        },
      ),
      { numRuns: 200, seed: 3 },
    );
  });
});

describe('membership', () => {
  it('ignores a late check result for a host that was removed', () => {
    const h = harness('round_robin', equalEndpoints(3), { activeChecks: { unhealthyThreshold: 1 } });
    const gone = h.cluster.hosts[2]!;
    const events: string[] = [];
    h.cluster.onEvent((e) => events.push(e.type));
    h.cluster.setEndpoints(equalEndpoints(2));
    h.cluster.recordCheck(gone, false);
    assert.equal(gone.health.activeHealthy, true);
    assert.deepEqual(events, []);
  });
});

describe('verdicts reached elsewhere (a worker taking the primary\'s)', () => {
  it('assumeHealth takes the verdict at once, says so, and the streaks start over from it', () => {
    const h = harness('round_robin', equalEndpoints(2), { activeChecks: { unhealthyThreshold: 2, healthyThreshold: 2 } });
    const events: boolean[] = [];
    h.cluster.onEvent((e) => e.type === 'health_changed' && events.push(e.healthy));
    assert.equal(h.cluster.assumeHealth('e1', false), true);
    assert.deepEqual(events, [false]);
    assert.deepEqual([...idleShares(h, 10).keys()], ['e0'], 'e1 takes no traffic');
    assert.equal(h.cluster.assumeHealth('e1', false), true, 'known endpoint, no change');
    assert.deepEqual(events, [false], 'no event without a change');
    // Back to the thresholds from there: two passes make it healthy again.
    const e1 = h.cluster.host('e1')!;
    h.cluster.recordCheck(e1, true);
    assert.equal(e1.health.activeHealthy, false);
    h.cluster.recordCheck(e1, true);
    assert.equal(e1.health.activeHealthy, true);
    assert.equal(h.cluster.assumeHealth('nope', true), false);
  });
});

