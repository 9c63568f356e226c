/** Scale-out and scale-in replayed through the core Cluster's setEndpoints: hash disruption and slow start. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseScenario, runPolicy, ScenarioError } from '../../src/sim/index.js';

const base = {
  seed: 18,
  duration: '40s',
  bucket: '1s',
  regions: [{ name: 'r', servers: 10, concurrency: 4, service_time: { dist: 'exponential', mean: '10ms' } }],
  clients: [{ name: 'c', rate: '1000/s', keys: 2000 }],
};

describe('simulator scale-out and scale-in', () => {
  it('maglev: adding 1 server to 10 moves about 1/11 of keys', () => {
    const r = runPolicy(parseScenario({ ...base, events: [{ at: '10s', add: 'r', servers: 1 }] }), 'maglev');
    const [add] = r.membership_changes;
    assert.equal(add?.kind, 'add');
    assert.equal(add?.endpoints_before, 10);
    assert.equal(add?.endpoints_after, 11);
    // 1/11 = 9.09%; tolerance 2 points: 10,000 sampled keys (about +-0.6) and maglev's table
    // not being perfectly minimal (it also moves a few keys between servers that stayed).
    const moved = add?.keys_moved as number;
    assert.ok(Math.abs(moved - 1 / 11) < 0.02, `keys moved ${moved}`);
    assert.ok((add?.keys_moved_between_kept as number) < 0.01, `between kept ${add?.keys_moved_between_kept}`);
  });

  it('ring_hash: removing servers moves only their keys, and what they held still finishes', () => {
    const events = [
      { at: '10s', add: 'r', servers: 1 },
      { at: '20s', remove: 'r/3' },
      { at: '30s', remove: 'r', servers: 2 },
    ];
    const r = runPolicy(parseScenario({ ...base, events }), 'ring_hash');
    const [, one, two] = r.membership_changes;
    assert.deepEqual([one?.endpoints_before, one?.endpoints_after, two?.endpoints_before, two?.endpoints_after], [11, 10, 10, 8]);
    for (const c of [one, two]) {
      assert.ok((c?.keys_moved as number) > 0.05, `keys moved ${c?.keys_moved}`);
      assert.equal(c?.keys_moved_between_kept, 0);
    }
    // The removed servers drained: nothing they held was reset or refused.
    assert.equal(r.failed, 0);
    // `servers: 2` took the two highest-numbered still in the set: r/10 and r/9.
    const last = r.timeseries.at(-1)?.servers ?? [];
    assert.deepEqual([3, 9, 10].map((i) => last[i]), [0, 0, 0]);
  });

  it('slow start ramps the added server under least_request; without it the server takes its share at once', () => {
    const events = [{ at: '10s', add: 'r', servers: 1 }];
    const share = (s: ReturnType<typeof runPolicy>, fromS: number, toS: number): number => {
      let mine = 0;
      let all = 0;
      for (const b of s.timeseries) {
        if (b.t_s < fromS || b.t_s >= toS) continue;
        mine += b.servers[10] ?? 0;
        all += b.servers.reduce((a, x) => a + x, 0);
      }
      return mine / all;
    };
    const ramped = runPolicy(parseScenario({ ...base, lb: { slow_start: { window: '20s' } }, events }), 'least_request');
    const plain = runPolicy(parseScenario({ ...base, events }), 'least_request');
    const first = share(ramped, 10, 12);
    const later = share(ramped, 20, 22);
    const done = share(ramped, 32, 40);
    assert.ok(first < 0.04, `first 2 s: ${first}`);
    assert.ok(later > first && later < done, `ramp ${first} -> ${later} -> ${done}`);
    assert.ok(Math.abs(done - 1 / 11) < 0.02, `after the window: ${done}`);
    assert.ok(share(plain, 10, 12) > 0.07, `no slow start: ${share(plain, 10, 12)}`);
    assert.equal(ramped.membership_changes[0]?.keys_moved, undefined);
  });

  it('a remove names a server in the set, or a region with a count it has', () => {
    const problems = (events: unknown[]): readonly string[] => {
      try {
        parseScenario({ ...base, events });
        return [];
      } catch (e) {
        return (e as ScenarioError).problems;
      }
    };
    assert.deepEqual(problems([{ at: '1s', remove: 'r/3' }, { at: '2s', remove: 'r/3' }]), ['events[1].remove: already removed at that time']);
    assert.deepEqual(problems([{ at: '1s', remove: 'r' }]), ['events[0].remove: expected REGION/INDEX such as us-east/3, or REGION with servers: N']);
    assert.deepEqual(problems([{ at: '1s', remove: 'r', servers: 11 }]), ['events[0].servers: the region has 10 servers in its set at that time, fewer than 11']);
    assert.deepEqual(problems([{ at: '1s', add: 'r', servers: 1 }, { at: '2s', remove: 'r/10' }]), []);
  });
});
