import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MAX_EXACT_WEIGHT_GROUPS } from '../../src/core/index.js';
import { endpoints, harness } from './helpers.js';

/**
 * nginx's ngx_http_upstream_get_peer, transcribed literally (O(n) per pick): the peer's
 * own algorithm is the reference our O(distinct weights) version must reproduce.
 */
function nginxSequence(weights: readonly number[], picks: number): number[] {
  const current = weights.map(() => 0);
  const total = weights.reduce((a, b) => a + b, 0);
  const out: number[] = [];
  for (let p = 0; p < picks; p++) {
    let best = -1;
    for (let i = 0; i < weights.length; i++) {
      current[i]! += weights[i]!;
      if (best === -1 || current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    out.push(best);
  }
  return out;
}

function sequence(weights: readonly number[], picks: number): number[] {
  const h = harness('round_robin', endpoints(weights));
  return Array.from({ length: picks }, () => Number(h.cluster.pick()!.endpoint.id.slice(1)));
}

describe('round_robin (nginx smooth weighted round robin)', () => {
  it('gives a a b a c a a for weights 5,1,1, as nginx documents', () => {
    const names = sequence([5, 1, 1], 14).map((i) => 'abc'[i]);
    assert.deepEqual(names.join(' '), 'a a b a c a a a a b a c a a');
  });

  it('cycles in order for equal weights', () => {
    assert.deepEqual(sequence([1, 1, 1, 1], 9), [0, 1, 2, 3, 0, 1, 2, 3, 0]);
  });

  it('matches nginx exactly for some hand-picked weight sets', () => {
    for (const w of [[4, 2, 1], [3, 3, 1, 1], [10, 1], [2, 5, 2, 5, 1], [7, 7, 7, 3, 3, 100]]) {
      assert.deepEqual(sequence(w, 500), nginxSequence(w, 500), `weights ${w}`);
    }
  });

  it('matches nginx exactly for any weights with few distinct values (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 40 }), (weights) => {
        const n = weights.reduce((a, b) => a + b, 0) * 2 + 7;
        assert.deepEqual(sequence(weights, n), nginxSequence(weights, n));
      }),
      { numRuns: 200, seed: 1 },
    );
  });

  it('falls back to EDF past the distinct-weight limit and still follows weights exactly per period', () => {
    const weights = Array.from({ length: MAX_EXACT_WEIGHT_GROUPS + 8 }, (_, i) => i + 1);
    const total = weights.reduce((a, b) => a + b, 0);
    const counts = new Map<number, number>();
    for (const i of sequence(weights, total * 10)) counts.set(i, (counts.get(i) ?? 0) + 1);
    // EDF with deadlines k / w: over 10 full periods each host is picked 10 w times, +-1.
    weights.forEach((w, i) => assert.ok(Math.abs((counts.get(i) ?? 0) - 10 * w) <= 1, `host ${i}: ${counts.get(i)} vs ${10 * w}`));
  });
});
