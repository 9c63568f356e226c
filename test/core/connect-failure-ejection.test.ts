import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { HostHealth, ConnectFailureEjection, OutlierDetector, type ClusterEvent, type HostState, type Outcome } from '../../src/core/index.js';
import { equalEndpoints, fail, harness, idleShares, type Harness } from './helpers.js';

const REFUSED: Outcome = { error: 'connect', latencyMs: 0 };

function end(h: Harness, host: HostState, outcome: Outcome): void {
  h.cluster.onStart(host);
  h.cluster.onEnd(host, outcome);
}

const status = (h: Harness, id: string) => h.cluster.view().find((v) => v.id === id)?.status;

describe('connect-failure ejection', () => {
  it('takes a host out at its first connect failure: no pick reaches it from then on', () => {
    const h = harness('round_robin', equalEndpoints(3), { connectFailureEjection: {} });
    const events: ClusterEvent[] = [];
    h.cluster.onEvent((e) => events.push(e));
    end(h, h.cluster.hosts[1]!, REFUSED);
    assert.equal(status(h, 'e1'), 'ejected');
    assert.deepEqual(
      events.map((e) => (e.type === 'ejected' ? [e.type, e.host.endpoint.id, e.reason, e.untilMs] : [e.type])),
      [['ejected', 'e1', 'connect_failure', 1_000]],
    );
    assert.deepEqual([...idleShares(h, 100).keys()].sort(), ['e0', 'e2']);
    assert.equal(h.cluster.view()[1]!.ejectionsTotal, 1);
  });

  it('without active checks: back when its time is up, 1 s doubling for each ejection in a row, capped; a connection resets the doubling', () => {
    const h = harness('round_robin', equalEndpoints(3), { connectFailureEjection: { baseEjectionMs: 1_000, maxEjectionMs: 3_000 } });
    const host = h.cluster.hosts[0]!;
    const returned: string[] = [];
    h.cluster.onEvent((e) => e.type === 'returned' && returned.push(e.host.endpoint.id));
    end(h, host, REFUSED);
    assert.equal(host.health.unreachableUntilMs, 1_000);
    h.clock.set(999);
    assert.equal(status(h, 'e0'), 'ejected');
    h.clock.set(1_000);
    assert.equal(status(h, 'e0'), 'healthy');
    assert.deepEqual(returned, ['e0']);
    // Still refusing: 2 s, then 3 s (the cap), then 3 s.
    const untils: number[] = [];
    for (const at of [1_000, 3_000, 6_000]) {
      h.clock.set(at);
      h.cluster.view();
      end(h, host, REFUSED);
      untils.push(host.health.unreachableUntilMs);
    }
    assert.deepEqual(untils, [3_000, 6_000, 9_000]);
    h.clock.set(9_000);
    h.cluster.view();
    end(h, host, { status: 200, latencyMs: 1 });
    end(h, host, REFUSED);
    assert.equal(host.health.unreachableUntilMs, 10_000, 'a connection made in between: back to 1 s');
  });

  it('with active checks: out until healthy_threshold checks pass after the ejection, however long that takes', () => {
    const h = harness('round_robin', equalEndpoints(3), { connectFailureEjection: {}, activeChecks: { healthyThreshold: 2, unhealthyThreshold: 3 } });
    const host = h.cluster.hosts[2]!;
    const events: string[] = [];
    h.cluster.onEvent((e) => events.push(e.type));
    for (let i = 0; i < 5; i++) h.cluster.recordCheck(host, true);
    end(h, host, REFUSED);
    assert.equal(host.health.unreachableUntilMs, Infinity);
    h.clock.advance(3_600_000);
    assert.equal(status(h, 'e2'), 'ejected', 'no timer brings it back');
    // The five passes before the ejection do not count: two after it do.
    h.cluster.recordCheck(host, true);
    assert.equal(status(h, 'e2'), 'ejected');
    h.cluster.recordCheck(host, false);
    h.cluster.recordCheck(host, true);
    assert.equal(status(h, 'e2'), 'ejected', 'a failed check restarts the run');
    h.cluster.recordCheck(host, true);
    assert.equal(status(h, 'e2'), 'healthy');
    assert.deepEqual(events, ['ejected', 'returned']);
    assert.equal(host.health.activeHealthy, true, 'one failed check is below unhealthy_threshold');
  });

  it('needs consecutiveFailures in a row: a try that connected resets the run, whatever its answer', () => {
    const h = harness('round_robin', equalEndpoints(3), { connectFailureEjection: { consecutiveFailures: 3 } });
    const host = h.cluster.hosts[0]!;
    end(h, host, REFUSED);
    end(h, host, REFUSED);
    end(h, host, { status: 503, latencyMs: 1 });
    end(h, host, REFUSED);
    end(h, host, REFUSED);
    assert.equal(status(h, 'e0'), 'healthy');
    end(h, host, REFUSED);
    assert.equal(status(h, 'e0'), 'ejected');
  });

  it('an answer that was under way before the ejection brings nothing back', () => {
    const h = harness('round_robin', equalEndpoints(2), { connectFailureEjection: {} });
    const host = h.cluster.hosts[0]!;
    h.cluster.onStart(host); // a request sent before the host died
    end(h, host, REFUSED);
    h.cluster.onEnd(host, { status: 200, latencyMs: 1 });
    assert.equal(status(h, 'e0'), 'ejected');
    assert.equal(host.health.unreachableLevel, 1, 'nor resets the doubling');
  });

  it('splits local-origin from upstream errors: a connect failure is not a gateway error for outlier detection', () => {
    const h = harness('round_robin', equalEndpoints(10), {
      connectFailureEjection: { consecutiveFailures: 5 },
      outlierDetection: { consecutive5xx: 0, consecutiveGatewayErrors: 2 },
    });
    const host = h.cluster.hosts[0]!;
    fail(h, host, 502);
    end(h, host, REFUSED);
    assert.equal(host.health.ejected, false, 'the connect failure did not count, nor break the run');
    fail(h, host, 502);
    assert.equal(host.health.ejected, true);
  });

  it('is not capped by max_ejection_percent; the panic threshold still balances over all when too few are left', () => {
    const h = harness('round_robin', equalEndpoints(4), { connectFailureEjection: {}, outlierDetection: { maxEjectionPercent: 10 } });
    end(h, h.cluster.hosts[0]!, REFUSED);
    end(h, h.cluster.hosts[1]!, REFUSED);
    assert.equal(h.cluster.inPanic, false, '2 of 4 left is not below 50%');
    assert.deepEqual([...idleShares(h, 40).keys()].sort(), ['e2', 'e3']);
    end(h, h.cluster.hosts[2]!, REFUSED);
    assert.equal(h.cluster.inPanic, true);
    assert.equal(idleShares(h, 40).size, 4);
  });

  it('0 consecutive failures turns it off: connect failures count as gateway errors again', () => {
    const h = harness('round_robin', equalEndpoints(4), { connectFailureEjection: { consecutiveFailures: 0 }, outlierDetection: { consecutiveGatewayErrors: 2 } });
    const host = h.cluster.hosts[0]!;
    end(h, host, REFUSED);
    assert.equal(status(h, 'e0'), 'healthy');
    end(h, host, REFUSED);
    assert.equal(host.health.ejected, true);
    assert.equal(host.health.unreachable, false);
  });

  it('ignores a late outcome for a host a reload removed', () => {
    const h = harness('round_robin', equalEndpoints(3), { connectFailureEjection: {} });
    const gone = h.cluster.hosts[2]!;
    h.cluster.onStart(gone);
    h.cluster.setEndpoints(equalEndpoints(2));
    h.cluster.onEnd(gone, REFUSED);
    assert.equal(gone.health.unreachable, false);
  });
});

describe('ejected counts kept as hosts come and go', () => {
  type Op =
    | { readonly k: 'fail'; readonly i: number; readonly outcome: Outcome }
    | { readonly k: 'tick'; readonly ms: number }
    | { readonly k: 'review' }
    | { readonly k: 'check'; readonly i: number; readonly passed: boolean }
    | { readonly k: 'members'; readonly keep: readonly boolean[]; readonly add: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        k: fc.constant('fail' as const),
        i: fc.nat(),
        outcome: fc.constantFrom<Outcome>({ status: 500, latencyMs: 1 }, { status: 503, latencyMs: 1 }, { status: 200, latencyMs: 1 }, REFUSED, { error: 'reset', latencyMs: 1 }),
      }),
    },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 40_000 }) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('review' as const) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('check' as const), i: fc.nat(), passed: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('members' as const), keep: fc.array(fc.boolean(), { minLength: 1, maxLength: 30 }), add: fc.integer({ min: 0, max: 4 }) }) },
  );

  it('the incremental count of ejected hosts always equals a recount (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 100 }), fc.boolean(), fc.array(op, { maxLength: 120 }), (n, capPercent, checks, ops) => {
        const outliers = new OutlierDetector({ consecutive5xx: 2, consecutiveGatewayErrors: 2, maxEjectionPercent: capPercent, baseEjectionMs: 10_000, maxEjectionMs: 50_000, intervalMs: 5_000, successRate: { minimumHosts: 2, requestVolume: 2 } });
        const thresholds = { healthyThreshold: 2, unhealthyThreshold: 2 };
        const local = new ConnectFailureEjection({ consecutiveFailures: 1, baseEjectionMs: 1_000, maxEjectionMs: 8_000 }, checks ? thresholds : undefined);
        // Hosts leave and come back with their state, as a cluster keeps it by endpoint id.
        const pool: HostHealth[] = Array.from({ length: n }, () => new HostHealth());
        let members = [...pool];
        const setHosts = () => {
          outliers.setHosts(members);
          local.setHosts(members);
        };
        setHosts();
        let now = 0;
        for (const o of ops) {
          switch (o.k) {
            case 'fail': {
              const h = members[o.i % members.length];
              if (h === undefined) break;
              local.record(h, o.outcome, now);
              if (o.outcome.error !== 'connect') outliers.record(h, o.outcome, now);
              break;
            }
            case 'tick':
              now += o.ms;
              outliers.returnDue(now);
              local.returnDue(now);
              break;
            case 'review':
              outliers.review(now);
              break;
            case 'check': {
              const h = members[o.i % members.length];
              if (h === undefined) break;
              h.recordCheck(o.passed, thresholds);
              if (o.passed) local.checkPassed(h);
              break;
            }
            case 'members':
              for (let a = 0; a < o.add; a++) pool.push(new HostHealth());
              members = pool.filter((_, i) => o.keep[i % o.keep.length]);
              setHosts();
              break;
          }
          assert.equal(outliers.ejectedCount, members.filter((h) => h.ejected).length, 'outlier ejections');
          assert.equal(local.ejectedCount, members.filter((h) => h.unreachable).length, 'connect-failure ejections');
        }
      }),
      { numRuns: 300, seed: 11 },
    );
  });
});
