// The simulator's fleet: N LB nodes with their own views (src/sim/fleet-sim.ts), on the
// same core objects as the proxy. Virtual time; deterministic for a seed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { localOverAdmissionBound } from '../../src/core/fleet-tally.js';
import { runFleetBalance, runFleetLimit, type FleetLimitOptions } from '../../src/sim/fleet-sim.js';
import { prequalFleetTable } from '../../src/sim/fleet-scenarios.js';

const limit = (o: Partial<FleetLimitOptions>) =>
  runFleetLimit({ nodes: 3, ratePerSecond: 100, burst: 20, consistency: 'strong', offeredPerSecond: 300, firstNodeShare: 1 / 3, syncIntervalMs: 100, redisRttMs: 0.5, durationMs: 10_000, seed: 3, ...o });

describe('fleet limits in the simulator', () => {
  it('strong admits L·t plus at most the burst, and adds a Redis round trip to each decision', () => {
    const r = limit({ consistency: 'strong' });
    assert.ok(r.admitted <= 1000 + 20 && r.admitted >= 1000, String(r.admitted));
    assert.equal(r.addedMs, 0.5);
  });

  it('local stays within its stated bound, at no added latency', () => {
    for (const nodes of [3, 10]) {
      const r = limit({ consistency: 'local', nodes });
      assert.ok(r.admitted <= localOverAdmissionBound(100, 20, nodes, 100, 10_000), `${nodes} nodes: ${r.admitted}`);
      assert.equal(r.addedMs, 0);
    }
  });

  it('alone, three nodes admit three times the limit; split per node under-admits when traffic is uneven', () => {
    assert.ok(limit({ consistency: 'alone', offeredPerSecond: 600 }).ofLimit > 2.9);
    assert.ok(limit({ consistency: 'split', nodes: 10, firstNodeShare: 0.7 }).ofLimit < 0.8);
  });

  it('is deterministic for a seed', () => {
    assert.deepEqual(limit({ consistency: 'local' }), limit({ consistency: 'local' }));
  });
});

describe('fleet balancing in the simulator', () => {
  const run = (policy: 'least_request' | 'peak_ewma', nodes: number, view: 'own' | 'shared', syncIntervalMs = 10) =>
    runFleetBalance({ policy, nodes, view, syncIntervalMs, servers: 10, serverConcurrency: 8, serviceMeanMs: 20, slowdown: [3, 3], utilisation: 0.85, durationMs: 20_000, seed: 1 });

  it("P2C on ten nodes each seeing only its own requests does worse than one node; a fresh shared view wins most of it back", () => {
    const one = run('least_request', 1, 'own');
    const tenOwn = run('least_request', 10, 'own');
    const tenShared = run('least_request', 10, 'shared', 10);
    assert.ok(tenOwn.p99Ms > one.p99Ms * 1.2, `${tenOwn.p99Ms} vs ${one.p99Ms}`);
    assert.ok(tenShared.p99Ms < tenOwn.p99Ms, `${tenShared.p99Ms} vs ${tenOwn.p99Ms}`);
  });

  it('a stale shared view (100 ms) herds: worse than a fresh one (10 ms)', () => {
    for (const policy of ['least_request', 'peak_ewma'] as const) {
      const fresh = run(policy, 10, 'shared', 10);
      const stale = run(policy, 10, 'shared', 100);
      assert.ok(stale.p99Ms > fresh.p99Ms && stale.maxQueue > fresh.maxQueue, `${policy}: ${JSON.stringify({ fresh, stale })}`);
    }
  });
});

describe('prequal in a fleet (issue 15)', () => {
  it('on ten nodes, each with its own view and probe pool, prequal p99 is at most 0.5x peak EWMA and 0.35x least_request', () => {
    // `meridian simulate-fleet prequal --duration 40s`: prequal's heterogeneous servers, 40 virtual seconds as the scenario runs.
    const rows = prequalFleetTable(1, 40_000);
    const p99 = (policy: string, nodes: number) => rows.find((r) => r.policy === policy && r.nodes === nodes)?.result.p99Ms as number;
    const prequal = p99('prequal', 10);
    assert.ok(prequal <= 0.5 * p99('peak_ewma', 10), `prequal ${prequal} ms, peak EWMA ${p99('peak_ewma', 10)} ms`);
    assert.ok(prequal <= 0.35 * p99('least_request', 10), `prequal ${prequal} ms, least_request ${p99('least_request', 10)} ms`);
    // Ten nodes with their own views hurt P2C and peak EWMA far more than prequal.
    assert.ok(p99('least_request', 10) > 2 * p99('least_request', 1) && prequal < 1.25 * p99('prequal', 1), JSON.stringify(rows.map((r) => [r.policy, r.nodes, r.result.p99Ms])));
  });
});
