import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { levelHealth, priorityLoads, zoneAwareShares, type Endpoint, type Locality, type PolicyName } from '../../src/core/index.js';
import { harness, hashStream, type Harness } from './helpers.js';

/** `n` endpoints in one locality, ids `${prefix}${i}`. */
function locality(prefix: string, n: number, l: Locality): Endpoint[] {
  return Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, address: `${prefix}.${i}:80`, weight: 1, locality: l }));
}

function markDown(h: Harness, ids: readonly string[]): void {
  for (const id of ids) h.cluster.recordCheck(h.cluster.host(id) as NonNullable<ReturnType<Harness['cluster']['host']>>, false);
}

/** Counts by id prefix (the locality) over `n` idle picks. */
function byLocality(h: Harness, n: number, ctx: { localOnly?: boolean; hashes?: (i: number) => number } = {}): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const host = h.cluster.pick({ ...(ctx.localOnly ? { localOnly: true } : {}), ...(ctx.hashes ? { hash: ctx.hashes(i) } : {}) });
    assert.ok(host, 'a host is picked');
    h.cluster.onStart(host);
    h.cluster.onEnd(host, { status: 200, latencyMs: 5 });
    const key = host.endpoint.id.replace(/\d+$/, '');
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}

/** Within 4.5 binomial standard deviations of n x p (false-failure odds below 1e-5 per check). */
function assertNear(observed: number, n: number, p: number, what: string): void {
  const sd = Math.sqrt(n * p * (1 - p));
  assert.ok(Math.abs(observed - n * p) <= 4.5 * sd + 1e-9, `${what}: ${observed} of ${n}, expected about ${(n * p).toFixed(0)} (p=${p.toFixed(4)})`);
}

describe('priority levels (Envoy semantics)', () => {
  it('levelHealth stretches the healthy fraction by the overprovisioning factor, capped at 100', () => {
    assert.equal(levelHealth(10, 10), 100);
    assert.equal(levelHealth(8, 10), 100); // 112 capped
    assert.ok(Math.abs(levelHealth(7, 10) - 98) < 1e-9);
    assert.ok(Math.abs(levelHealth(5, 10) - 70) < 1e-9);
    assert.equal(levelHealth(0, 10), 0);
    assert.equal(levelHealth(3, 4, 1), 75);
    assert.equal(levelHealth(0, 0), 0);
  });

  it('priorityLoads fills levels in order and normalises when total health is under 100', () => {
    assert.deepEqual(priorityLoads([100, 100]), [100, 0]);
    const [a, b] = priorityLoads([70, 100]);
    assert.ok(Math.abs((a as number) - 70) < 1e-9 && Math.abs((b as number) - 30) < 1e-9);
    // 28 + 28 = 56 < 100: both scale up so the capacity that exists takes everything.
    const [c, d] = priorityLoads([28, 28]);
    assert.ok(Math.abs((c as number) - 50) < 1e-9 && Math.abs((d as number) - 50) < 1e-9);
    assert.deepEqual(priorityLoads([0, 0, 0]), [100, 0, 0]);
    assert.deepEqual(priorityLoads([0, 0, 40]), [0, 0, 100]);
    for (const loads of [priorityLoads([10, 20, 30]), priorityLoads([98, 50]), priorityLoads([33.3, 33.3, 33.3])]) {
      assert.ok(Math.abs(loads.reduce((x, y) => x + y, 0) - 100) < 1e-9);
    }
  });

  it('shifts traffic to the next priority gradually as the first loses endpoints', () => {
    const eps = [...locality('east', 10, { region: 'us-east', priority: 0 }), ...locality('west', 10, { region: 'eu-west', priority: 1 })];
    const h = harness('round_robin', eps, { activeChecks: { unhealthyThreshold: 1 }, panicThresholdPercent: 0 });
    // healthy in P0 -> expected share of P1: 0 until 1.4 x healthy/10 drops below 1.
    const expected: [number, number][] = [
      [10, 0],
      [8, 0],
      [7, 0.02],
      [5, 0.3],
      [2, 0.72],
      [0, 1],
    ];
    let down = 0;
    for (const [healthy, westShare] of expected) {
      markDown(
        h,
        Array.from({ length: 10 - healthy - down }, (_, i) => `east${down + i}`),
      );
      down = 10 - healthy;
      const views = h.cluster.localities();
      const west = views.find((v) => v.region === 'eu-west');
      assert.ok(Math.abs((west?.share ?? -1) - westShare) < 1e-9, `P1 share with ${healthy}/10 healthy in P0: ${west?.share}`);
      const n = 20_000;
      const counts = byLocality(h, n);
      assertNear(counts.get('west') ?? 0, n, westShare, `P1 picks with ${healthy}/10 healthy`);
    }
  });

  it('a level below the panic threshold balances its share over all its hosts, and the cluster says so', () => {
    const eps = [...locality('east', 10, { region: 'us-east', priority: 0 }), ...locality('west', 10, { region: 'eu-west', priority: 1 })];
    const h = harness('round_robin', eps, { activeChecks: { unhealthyThreshold: 1 }, panicThresholdPercent: 50 });
    const events: boolean[] = [];
    h.cluster.onEvent((e) => e.type === 'panic' && events.push(e.active));
    markDown(h, ['east0', 'east1', 'east2', 'east3', 'east4', 'east5']); // 4/10 healthy: 56% stays on P0, in panic
    assert.equal(h.cluster.inPanic, true);
    assert.deepEqual(events, [true]);
    const n = 20_000;
    const hits = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const host = h.cluster.pick();
      assert.ok(host);
      hits.set(host.endpoint.id, (hits.get(host.endpoint.id) ?? 0) + 1);
    }
    assert.ok((hits.get('east0') ?? 0) > 0, 'an unhealthy P0 host gets traffic in panic');
    const west = eps.filter((e) => e.id.startsWith('west')).reduce((a, e) => a + (hits.get(e.id) ?? 0), 0);
    assertNear(west, n, 0.44, 'P1 share with 4/10 healthy in P0');
  });
});

describe('zone-aware routing', () => {
  const zones = (n: number) => [
    ...locality('a', n, { region: 'r', zone: 'a' }),
    ...locality('b', n, { region: 'r', zone: 'b' }),
    ...locality('c', n, { region: 'r', zone: 'c' }),
  ];

  it('zoneAwareShares: all local while the zone has its callers share of capacity, else only the shortfall crosses', () => {
    const even = new Map([
      ['a', 1 / 3],
      ['b', 1 / 3],
      ['c', 1 / 3],
    ]);
    assert.deepEqual([...zoneAwareShares('a', even, even)], [
      ['a', 1],
      ['b', 0],
      ['c', 0],
    ]);
    const up = new Map([
      ['a', 0.2],
      ['b', 0.4],
      ['c', 0.4],
    ]);
    const s = zoneAwareShares('a', up, even);
    assert.ok(Math.abs((s.get('a') as number) - 0.6) < 1e-9);
    assert.ok(Math.abs((s.get('b') as number) - 0.2) < 1e-9 && Math.abs((s.get('c') as number) - 0.2) < 1e-9);
    // Spare capacity decides where the shortfall goes.
    const skew = zoneAwareShares(
      'a',
      new Map([
        ['a', 0.1],
        ['b', 0.3],
        ['c', 0.6],
      ]),
      new Map([
        ['a', 0.2],
        ['b', 0.3],
        ['c', 0.5],
      ]),
    );
    assert.ok(Math.abs((skew.get('a') as number) - 0.5) < 1e-9);
    assert.ok(Math.abs((skew.get('b') as number) - 0) < 1e-9);
    assert.ok(Math.abs((skew.get('c') as number) - 0.5) < 1e-9);
  });

  it("keeps a caller's traffic in its zone while healthy, and crosses zones only for the shortfall", () => {
    const h = harness('least_request', zones(2), { activeChecks: { unhealthyThreshold: 1 }, local: { region: 'r', zone: 'a' } });
    const n = 20_000;
    assert.deepEqual([...byLocality(h, 3000)], [['a', 3000]]);
    markDown(h, ['a0']); // zone a: 1 of 5 healthy hosts = 0.2 < 1/3 of the callers
    const counts = byLocality(h, n);
    assertNear(counts.get('a') ?? 0, n, 0.6, 'local zone');
    assertNear(counts.get('b') ?? 0, n, 0.2, 'zone b');
  });

  it('is off below the minimum cluster size, and for a caller whose zone has no endpoints', () => {
    const small = harness('random', zones(1), { local: { region: 'r', zone: 'a' } });
    const counts = byLocality(small, 9000);
    assertNear(counts.get('a') ?? 0, 9000, 1 / 3, 'zone a below min_cluster_size');
    const elsewhere = harness('random', zones(2), { local: { region: 'r', zone: 'z' } });
    assertNear(byLocality(elsewhere, 9000).get('a') ?? 0, 9000, 1 / 3, 'zone a for a caller in zone z');
  });
});

describe('locality weights', () => {
  it('share = weight x health inside a level', () => {
    const eps = [...locality('big', 4, { region: 'r1', weight: 3 }), ...locality('small', 4, { region: 'r2', weight: 1 })];
    const h = harness('round_robin', eps, { activeChecks: { unhealthyThreshold: 1 } });
    const shares = () => h.cluster.localities().map((l) => l.share);
    assert.deepEqual(shares(), [0.75, 0.25]);
    markDown(h, ['big0', 'big1']); // health min(1, 1.4 x 0.5) = 0.7: 2.1 against 1
    const [big, small] = shares();
    assert.ok(Math.abs((big as number) - 2.1 / 3.1) < 1e-9 && Math.abs((small as number) - 1 / 3.1) < 1e-9);
    assertNear(byLocality(h, 20_000).get('big') ?? 0, 20_000, 2.1 / 3.1, 'weighted locality');
  });
});

describe('spillover (waterfall)', () => {
  it('sends only the excess over a locality’s requests-per-second capacity to the next', () => {
    const eps = [...locality('near', 3, { region: 'near', priority: 0, maxRequestsPerSecond: 100 }), ...locality('far', 3, { region: 'far', priority: 1 })];
    const h = harness('least_request', eps);
    // 300 requests/s for 10 s, evenly spaced: 100/s stay, 200/s spill.
    let counts = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      h.clock.advance(1000 / 300);
      counts = mergeInto(counts, byLocality(h, 1));
    }
    const near = counts.get('near') ?? 0;
    assert.ok(near >= 1000 && near <= 1000 + 10 + 1, `near took ${near} of 3000 at capacity 100/s for 10 s (burst 10)`);
    assert.equal((counts.get('far') ?? 0) + near, 3000);
    const view = h.cluster.localities();
    assert.equal(view[0]?.spilledOut, counts.get('far'));
    assert.equal(view[1]?.spilledIn, counts.get('far'));
    // Under capacity nothing spills.
    counts = new Map();
    for (let i = 0; i < 500; i++) {
      h.clock.advance(1000 / 50);
      counts = mergeInto(counts, byLocality(h, 1));
    }
    assert.deepEqual([...counts], [['near', 500]]);
  });

  it('spills by requests in flight, and takes traffic back as they end', () => {
    const eps = [...locality('near', 2, { region: 'near', priority: 0, maxInFlight: 5 }), ...locality('far', 2, { region: 'far', priority: 1 })];
    const h = harness('round_robin', eps);
    const started = Array.from({ length: 8 }, () => {
      const host = h.cluster.pick();
      assert.ok(host);
      h.cluster.onStart(host);
      return host;
    });
    assert.deepEqual(
      started.map((x) => x.endpoint.id.replace(/\d+$/, '')),
      ['near', 'near', 'near', 'near', 'near', 'far', 'far', 'far'],
    );
    const first = started[0];
    assert.ok(first);
    h.cluster.onEnd(first, { status: 200, latencyMs: 1 });
    assert.equal(h.cluster.pick()?.endpoint.id.startsWith('near'), true);
  });
});

describe('cross-region forwarding: remote localities', () => {
  const eps = [...locality('local', 3, { region: 'eu-west', priority: 0 }), ...locality('peer', 1, { region: 'us-east', priority: 1, remote: true })];

  it('a region with no healthy endpoints forwards to the remote one; a request that already crossed never does', () => {
    const h = harness('round_robin', eps, { activeChecks: { unhealthyThreshold: 1 }, panicThresholdPercent: 0 });
    assert.deepEqual([...byLocality(h, 100)], [['local', 100]]);
    markDown(h, ['local0', 'local1', 'local2']);
    assert.deepEqual([...byLocality(h, 100)], [['peer', 100]]);
    // localOnly: the remote locality is not eligible; the local endpoints (all down, panic 0)
    // are not eligible either, so there is no host: the mechanism answers 503.
    assert.equal(h.cluster.pick({ localOnly: true }), undefined);
  });

  it('localOnly still balances over the local endpoints when they are healthy', () => {
    const h = harness('random', eps);
    assert.deepEqual([...byLocality(h, 200, { localOnly: true })], [['local', 200]]);
  });
});

describe('hash policies across localities', () => {
  for (const policy of ['ring_hash', 'maglev'] as PolicyName[]) {
    it(`${policy}: a key keeps its endpoint, and keys divide by locality share`, () => {
      const eps = [...locality('x', 3, { region: 'x', weight: 1 }), ...locality('y', 3, { region: 'y', weight: 3 })];
      const h = harness(policy, eps);
      const hashes = hashStream(9);
      const keys = Array.from({ length: 4000 }, (_, i) => hashes(i));
      const first = keys.map((hash) => h.cluster.pick({ hash })?.endpoint.id);
      const again = keys.map((hash) => h.cluster.pick({ hash })?.endpoint.id);
      assert.deepEqual(again, first);
      const inY = first.filter((id) => id?.startsWith('y')).length;
      assertNear(inY, keys.length, 0.75, 'keys in the weight-3 locality');
      // Inside a locality the keys still spread over all its endpoints.
      for (const id of ['y0', 'y1', 'y2']) assert.ok(first.filter((x) => x === id).length > 600, `${id} gets its part of y's keys`);
    });
  }
});

function mergeInto(a: Map<string, number>, b: ReadonlyMap<string, number>): Map<string, number> {
  for (const [k, v] of b) a.set(k, (a.get(k) ?? 0) + v);
  return a;
}
