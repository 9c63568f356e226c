// The contract every policy keeps, run over each one (hono's shared router suite, Envoy's per-LB set).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBalancer, HostState, ManualClock, SeededRng } from '../../src/core/index.js';
import { ALL_POLICIES, endpoints, equalEndpoints, fail, harness, hashStream, idleShares } from './helpers.js';

for (const policy of ALL_POLICIES) {
  describe(`Balancer contract: ${policy}`, () => {
    const hashes = policy === 'ring_hash' || policy === 'maglev' ? hashStream(7) : undefined;

    it('picks nothing from an empty cluster', () => {
      const h = harness(policy, []);
      assert.equal(h.cluster.pick({ hash: 1 }), undefined);
      assert.equal(h.cluster.pick(), undefined);
    });

    it('picks the only host of a one-host cluster', () => {
      const h = harness(policy, equalEndpoints(1));
      for (let i = 0; i < 20; i++) assert.equal(h.cluster.pick({ hash: i * 7777 })?.endpoint.id, 'e0');
    });

    it('never picks an ejected host while a healthy one exists', () => {
      const h = harness(policy, equalEndpoints(10), { outlierDetection: { consecutive5xx: 1, maxEjectionPercent: 50 } });
      const bad = h.cluster.hosts[3]!;
      fail(h, bad);
      assert.equal(bad.health.ejected, true);
      const counts = idleShares(h, 5000, 10, hashes);
      assert.equal(counts.get('e3'), undefined, `${policy} picked the ejected host`);
      assert.equal(counts.size, 9);
    });

    it('never picks a host failing active checks, nor a draining one', () => {
      const h = harness(policy, equalEndpoints(6), { activeChecks: { unhealthyThreshold: 1 } });
      h.cluster.recordCheck(h.cluster.hosts[0]!, false);
      h.cluster.setDraining('e5', true);
      const counts = idleShares(h, 3000, 10, hashes);
      assert.equal(counts.get('e0'), undefined);
      assert.equal(counts.get('e5'), undefined);
      assert.equal(counts.size, 4);
    });

    it('respects weights: long-run shares follow them on idle hosts', () => {
      // Weights 1:2:3:4 -> expected shares 10%, 20%, 30%, 40% of 40,000 picks.
      // Tolerance: 2.5 percentage points. The random policies' standard error at 40,000
      // picks is at most sqrt(0.4 * 0.6 / 40000) = 0.25 points; hash tables have a
      // little structural imbalance on top, well under the tolerance at these sizes.
      const h = harness(policy, endpoints([1, 2, 3, 4]), { ringHash: { minRingSize: 4096 } });
      const n = 40_000;
      const counts = idleShares(h, n, 10, hashes);
      for (const [i, w] of [1, 2, 3, 4].entries()) {
        const share = (counts.get(`e${i}`) ?? 0) / n;
        assert.ok(Math.abs(share - w / 10) < 0.025, `${policy}: e${i} share ${share.toFixed(4)} vs ${w / 10}`);
      }
    });

    it('is deterministic for a seed', () => {
      const run = () => {
        const h = harness(policy, equalEndpoints(20), {}, 99);
        const seq: string[] = [];
        const stream = hashStream(3);
        for (let i = 0; i < 200; i++) {
          const host = h.cluster.pick(hashes ? { hash: stream(i) } : {})!;
          h.cluster.onStart(host);
          if (i % 3 === 0) h.cluster.onEnd(host, { status: 200, latencyMs: i % 17 });
          seq.push(host.endpoint.id);
        }
        return seq.join(',');
      };
      assert.equal(run(), run());
    });

    it('owns the table update built: changing the arrays handed to update afterwards changes no pick', () => {
      const hosts = endpoints([1, 2, 3, 1, 2, 3]).map((e, i) => {
        const h = new HostState(e, 10_000, true);
        h.latency.observe(5 + i, 0); // peak_ewma compares real costs
        return h;
      });
      const weights = hosts.map((h) => h.endpoint.weight);
      const handed = [...hosts];
      const handedWeights = [...weights];
      const balancer = createBalancer(policy, new SeededRng(5), new ManualClock());
      const reference = createBalancer(policy, new SeededRng(5), new ManualClock());
      balancer.update(handed, handedWeights);
      reference.update([...hosts], [...weights]);
      // The caller reuses its arrays for its next snapshot.
      handed.reverse().length = 2;
      handedWeights.fill(9);
      const stream = hashStream(4);
      for (let i = 0; i < 500; i++) {
        const ctx = { hash: stream(i) };
        assert.equal(balancer.pick(ctx)?.endpoint.id, reference.pick(ctx)?.endpoint.id, `${policy}: pick ${i}`);
      }
    });

    it('retries go to a host not yet tried when one exists', () => {
      const h = harness(policy, equalEndpoints(5));
      let moved = 0;
      for (let i = 0; i < 200; i++) {
        const first = h.cluster.pick({ hash: i * 2654435761 })!;
        const second = h.cluster.pick({ hash: i * 2654435761, attempt: 1, exclude: new Set([first]) })!;
        if (second !== first) moved++;
      }
      // Each retry gets 4 tries at a 4-in-5 chance (or a deterministic walk): a repeat is rare.
      assert.ok(moved >= 190, `${policy}: only ${moved}/200 retries moved`);
    });
  });
}
