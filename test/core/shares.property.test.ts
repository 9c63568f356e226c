// Long-run shares follow weights, for any weights, under every policy (fast-check).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ALL_POLICIES, endpoints, harness, hashStream, idleShares } from './helpers.js';

describe('long-run shares follow weights (property)', () => {
  for (const policy of ALL_POLICIES) {
    it(policy, () => {
      const hashed = policy === 'ring_hash' || policy === 'maglev';
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 2, maxLength: 6 }), fc.nat(), (weights, seed) => {
          // 20,000 idle picks. Sampling noise of a share is at most sqrt(0.25 / 20000) =
          // 0.0035; the tolerance, 0.02, is over 5 of those. The hash policies are also
          // held to it: Maglev's table is exact to a slot in 65537, and a ring of at least
          // 16,384 points is within about 2% (relative) of its weights.
          const h = harness(policy, endpoints(weights), { ringHash: { minRingSize: 16_384 } }, seed);
          const n = 20_000;
          const counts = idleShares(h, n, 10, hashed ? hashStream(seed) : undefined);
          const total = weights.reduce((a, b) => a + b, 0);
          weights.forEach((w, i) => {
            const share = (counts.get(`e${i}`) ?? 0) / n;
            assert.ok(Math.abs(share - w / total) < 0.02, `weights ${weights}: e${i} ${share.toFixed(4)} vs ${(w / total).toFixed(4)}`);
          });
        }),
        { numRuns: 25, seed: 11 },
      );
    });
  }
});
