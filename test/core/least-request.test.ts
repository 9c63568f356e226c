import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SeededRng, type HostState, type PolicyName } from '../../src/core/index.js';
import { endpoints, equalEndpoints, harness } from './helpers.js';

/**
 * Balls into bins with departures: `inFlight` requests stay open; each step one random
 * request finishes and a new one is placed by the policy. Returns the highest load seen
 * on any host after the warm-up.
 */
function maxLoad(policy: PolicyName, hosts: number, inFlight: number, steps: number): number {
  const h = harness(policy, equalEndpoints(hosts), {}, 5);
  const open: HostState[] = [];
  const rng = new SeededRng(11);
  let max = 0;
  for (let i = 0; i < inFlight + steps; i++) {
    if (open.length >= inFlight) {
      const j = Math.floor(rng.next() * open.length);
      const done = open[j]!;
      open[j] = open[open.length - 1]!;
      open.pop();
      h.cluster.onEnd(done, { status: 200, latencyMs: 5 });
    }
    const host = h.cluster.pick()!;
    h.cluster.onStart(host);
    open.push(host);
    if (i >= inFlight) for (const x of h.cluster.hosts) max = Math.max(max, x.active);
  }
  return max;
}

describe('least_request', () => {
  it("P2C's maximum load is far below random's over 100 hosts", () => {
    // 1,000 requests in flight over 100 hosts: mean load 10. Random placement's maximum
    // is Poisson(10)'s tail over 100 hosts and 3,000 steps, well above 20 (25 with these
    // seeds); two choices keep it within a few of the mean (14 here).
    const random = maxLoad('random', 100, 1000, 3000);
    const p2c = maxLoad('least_request', 100, 1000, 3000);
    assert.ok(p2c <= 16, `P2C max load ${p2c}`);
    assert.ok(random >= 20, `random max load ${random}`);
    assert.ok(random - p2c >= 6, `random ${random} vs P2C ${p2c}`);
  });

  it('prefers the less loaded of two hosts', () => {
    const h = harness('least_request', equalEndpoints(2));
    const [a, b] = h.cluster.hosts;
    for (let i = 0; i < 5; i++) h.cluster.onStart(a!);
    for (let i = 0; i < 50; i++) assert.equal(h.cluster.pick(), b);
  });

  it('with unequal weights biases by weight / (active + 1)^bias', () => {
    // Weights 2:1. Host a has 3 requests in flight, b none: effective weights 2/4 and 1/1,
    // so b should now get about 2/3 of new picks while a's load stays put.
    const h = harness('least_request', endpoints([2, 1]), { leastRequest: { activeRequestBias: 1 } });
    const [a] = h.cluster.hosts;
    for (let i = 0; i < 3; i++) h.cluster.onStart(a!);
    const counts = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const host = h.cluster.pick()!;
      counts.set(host.endpoint.id, (counts.get(host.endpoint.id) ?? 0) + 1);
    }
    const bShare = (counts.get('e1') ?? 0) / 3000;
    assert.ok(Math.abs(bShare - 2 / 3) < 0.02, `b share ${bShare}`);
  });

  it('with bias 0 is plain weighted round robin whatever the load', () => {
    const h = harness('least_request', endpoints([2, 1]), { leastRequest: { activeRequestBias: 0 } });
    for (let i = 0; i < 10; i++) h.cluster.onStart(h.cluster.hosts[0]!);
    const picks = Array.from({ length: 300 }, () => h.cluster.pick()!.endpoint.id);
    assert.equal(picks.filter((id) => id === 'e0').length, 200);
  });
});
