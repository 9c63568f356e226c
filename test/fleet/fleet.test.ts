// Three Meridian processes and one real Redis: limits, control and faults shared across
// the fleet (docs/fleet.md). Traffic goes only to 127.0.0.1.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSampleBackend, type SampleBackend } from '../../src/backend/sample-backend.js';
import { localOverAdmissionBound } from '../../src/core/fleet-tally.js';
import { until } from '../proxy/harness.js';
import { call, FleetNode, load } from './fleet-harness.js';
import { NO_REDIS, RedisServer } from './redis-server.js';

// Low enough that the load below offers well over it even on a busy two-core machine, so
// the count can be held to 5% both ways.
const RATE = 25;
// A second's worth: a pause of the machine shorter than that loses no tokens.
const STRONG_BURST = 25;
const BURST = 10;
const SYNC_MS = 100;
const WINDOW_MS = 2000;

const limit = (consistency: 'strong' | 'local', extra: Record<string, unknown> = {}) => ({
  requests_per_second: RATE,
  burst: consistency === 'strong' ? STRONG_BURST : BURST,
  scope: 'global',
  consistency,
  ...extra,
});

/** Ejects after three 5xx in a row, for long enough that no ejection ends within a test. */
const outliers = { consecutive_5xx: 3, base_ejection_time: '60s', max_ejection_percent: 50 };

function nodeConfig(name: string, redis: string, backends: readonly SampleBackend[], bad: SampleBackend, prefix: string) {
  return ({ web, admin }: { web: number; admin: number }) => ({
    admin: { address: '127.0.0.1', port: admin },
    access_log: { enabled: false },
    node: { name, region: 'r1' },
    sync: {
      redis,
      node: name,
      key_prefix: prefix,
      sync_interval: `${SYNC_MS}ms`,
      heartbeat_interval: '200ms',
      // Generous: a busy machine must not turn slow answers into outages (those are tested by killing Redis).
      command_timeout: '1s',
      reconnect: { min: '50ms', max: '200ms' },
    },
    listeners: [
      {
        name: 'web',
        address: '127.0.0.1',
        port: web,
        routes: [
          { match: { path: { prefix: '/strong' } }, cluster: 'c', rate_limit: limit('strong') },
          { match: { path: { prefix: '/local' } }, cluster: 'c', rate_limit: limit('local') },
          { match: { path: { prefix: '/deny' } }, cluster: 'c', rate_limit: limit('strong', { on_unavailable: 'deny' }) },
          { match: { path: { prefix: '/eh/' } }, cluster: 'h' },
          { match: { path: { prefix: '/eq/' } }, cluster: 'q' },
          { cluster: 'c' },
        ],
      },
    ],
    clusters: [
      { name: 'c', endpoints: backends.map((b) => ({ address: `127.0.0.1:${b.port}` })) },
      // One endpoint always failing: what one node ejects is what the fleet may share.
      ...(['h', 'q'] as const).map((c) => ({
        name: c,
        endpoints: [bad, backends[0]!].map((b) => ({ address: `127.0.0.1:${b.port}` })),
        outlier_detection: outliers,
        shared_health: { quorum: c === 'h' ? 1 : 2 },
      })),
    ],
  });
}

const count = (m: Map<number, number>, status: number): number => m.get(status) ?? 0;

describe('a fleet of three Meridians over one Redis', { skip: NO_REDIS, timeout: 120_000 }, () => {
  let redis: RedisServer;
  let backends: SampleBackend[];
  let nodes: FleetNode[];
  let bad: SampleBackend;

  before(async () => {
    redis = await RedisServer.start();
    backends = await Promise.all([startSampleBackend({ name: 'b1' }), startSampleBackend({ name: 'b2' })]);
    bad = await startSampleBackend({ name: 'bad', errorRate: 1 });
    const prefix = `t${process.pid}`;
    nodes = await Promise.all(['n1', 'n2', 'n3'].map((name) => FleetNode.start({ name, config: nodeConfig(name, redis.url, backends, bad, prefix) })));
    // Every node sees the other two: membership works before anything else is measured.
    for (const n of nodes) {
      await until(async () => ((await n.adminGet('/api/fleet')) as { nodes: unknown[] }).nodes.length === 3, 10_000, `${n.name} to see three nodes`);
    }
  });

  after(async () => {
    await Promise.all((nodes ?? []).map((n) => n.stop()));
    await Promise.all([...(backends ?? []), ...(bad ? [bad] : [])].map((b) => b.close()));
    await redis?.kill();
  });

  it('GET /api/fleet lists the live nodes with region, version and last-seen', async () => {
    const view = (await nodes[1]!.adminGet('/api/fleet')) as { node: string; redis: string; nodes: { node: string; region: string; version: string; self: boolean; ageMs: number }[] };
    assert.equal(view.node, 'n2');
    assert.equal(view.redis, 'up');
    assert.deepEqual(view.nodes.map((n) => n.node).sort(), ['n1', 'n2', 'n3']);
    for (const n of view.nodes) {
      assert.equal(n.region, 'r1');
      assert.equal(n.version, '0.1.0');
      assert.equal(n.self, n.node === 'n2');
      assert.ok(n.ageMs >= 0);
    }
    const metrics = await call(nodes[0]!.admin, 'GET', '/metrics');
    assert.match(metrics.body, /^meridian_fleet_redis_up 1$/m);
    assert.match(metrics.body, /^meridian_fleet_node_last_seen_seconds\{node="n3",region="r1",version="0\.1\.0"\} /m);
  });

  it('a strong global limit of L/s admits L·t within 5% (plus the burst) over the three nodes together', async () => {
    const start = performance.now();
    const r = await load(nodes, '/strong', 12, () => performance.now() - start > WINDOW_MS);
    const admitted = count(r.statuses, 200);
    const expected = (RATE * r.elapsedMs) / 1000;
    assert.equal(r.errors, 0);
    assert.equal(admitted + count(r.statuses, 429), [...r.statuses.values()].reduce((a, b) => a + b, 0), JSON.stringify([...r.statuses]));
    assert.ok(admitted <= expected * 1.05 + STRONG_BURST, `admitted ${admitted}, limit ${expected.toFixed(0)} + burst ${STRONG_BURST} over ${r.elapsedMs.toFixed(0)} ms`);
    assert.ok(admitted >= expected * 0.95, `admitted ${admitted}, limit ${expected.toFixed(0)} over ${r.elapsedMs.toFixed(0)} ms; answers ${JSON.stringify([...r.statuses])}`);
    // The requests were spread over the three nodes, and the one limit refused the excess.
    for (const n of nodes) assert.ok(count(r.byNode.get(n.name) as Map<number, number>, 200) > 0, n.name);
    assert.ok(count(r.statuses, 429) > 0);
  });

  it('a local-consistency global limit stays within its documented over-admission bound', async () => {
    const start = performance.now();
    const r = await load(nodes, '/local', 12, () => performance.now() - start > WINDOW_MS);
    const admitted = count(r.statuses, 200);
    const bound = localOverAdmissionBound(RATE, BURST, nodes.length, SYNC_MS, r.elapsedMs);
    // Three nodes each alone would admit up to this; the bound is well under it.
    const alone = nodes.length * ((RATE * r.elapsedMs) / 1000 + BURST);
    assert.equal(r.errors, 0);
    assert.ok(admitted <= bound, `admitted ${admitted}, bound ${bound.toFixed(0)} (alone: ${alone.toFixed(0)}) over ${r.elapsedMs.toFixed(0)} ms`);
    // A limit, not a wall: the fleet admits at least the rate.
    assert.ok(admitted >= ((RATE * r.elapsedMs) / 1000) * 0.95, `admitted ${admitted} over ${r.elapsedMs.toFixed(0)} ms; answers ${JSON.stringify([...r.statuses])}`);
  });

  /** The status node `n` gives the failing endpoint in cluster `c`. */
  async function badStatus(n: FleetNode, c: string): Promise<string | undefined> {
    const clusters = ((await n.adminGet('/api/clusters')) as { clusters: { name: string; endpoints: { address: string; status: string }[] }[] }).clusters;
    return clusters.find((x) => x.name === c)?.endpoints.find((e) => e.address === `127.0.0.1:${bad.port}`)?.status;
  }

  /** Requests through `n` to cluster `c` until `n` itself has ejected the failing endpoint. */
  async function ejectThrough(n: FleetNode, c: string): Promise<void> {
    await until(async () => {
      await call(n.web, 'GET', `/e${c}/x`);
      return (await badStatus(n, c)) === 'ejected';
    }, 10_000, `${n.name} to eject the failing endpoint of ${c}`);
  }

  it('shared health, quorum 1: an ejection made by one node takes the endpoint out on the others, which sent it nothing', async () => {
    const before = bad.requests;
    await ejectThrough(nodes[0]!, 'h');
    for (const n of nodes.slice(1)) await until(async () => (await badStatus(n, 'h')) === 'ejected', 5000, `${n.name} to take the endpoint out`);
    // n2 and n3 judged nothing themselves: every request the failing backend saw came through n1.
    const seen = bad.requests - before;
    const m1 = await call(nodes[0]!.admin, 'GET', '/metrics');
    const through1 = [...m1.body.matchAll(new RegExp(`^meridian_requests_total\\{listener="web",cluster="h",endpoint="127\\.0\\.0\\.1:${bad.port}",code="500"\\} (\\d+)$`, 'gm'))].reduce((a, x) => a + Number(x[1]), 0);
    assert.equal(through1, seen);
  });

  it("shared health, quorum 2: one node's ejection alone takes nothing out elsewhere; a second node's does", async () => {
    const ep = `127.0.0.1:${bad.port}`;
    const votes = async (n: FleetNode) => ((await n.adminGet('/api/fleet')) as { health: Record<string, { votes: Record<string, number> }> }).health['q']?.votes[ep] ?? 0;
    await ejectThrough(nodes[0]!, 'q');
    // n3 has read n1's vote, and still routes to the endpoint.
    await until(async () => (await votes(nodes[2]!)) === 1, 5000, 'n3 to read one vote');
    assert.equal(await badStatus(nodes[2]!, 'q'), 'healthy');
    await ejectThrough(nodes[1]!, 'q');
    await until(async () => (await badStatus(nodes[2]!, 'q')) === 'ejected', 5000, 'n3 to take the endpoint out on two votes');
    assert.equal(await votes(nodes[2]!), 2);
  });

  it('a drain made on one node reaches every node, and survives a restart', async () => {
    const ep = `127.0.0.1:${backends[0]!.port}`;
    const drained = async (n: FleetNode) => {
      const c = ((await n.adminGet('/api/clusters')) as { clusters: { name: string; endpoints: { address: string; status: string }[] }[] }).clusters[0]!;
      return c.endpoints.find((e) => e.address === ep)?.status === 'draining';
    };
    assert.equal((await nodes[0]!.adminPost(`/api/clusters/c/endpoints/${encodeURIComponent(ep)}/drain`, { draining: true })).status, 200);
    for (const n of nodes) await until(() => drained(n), 5000, `${n.name} to drain ${ep}`);
    await nodes[2]!.stop();
    await nodes[2]!.restart();
    await until(() => drained(nodes[2]!), 5000, `restarted n3 to drain ${ep}`);
    // A newer change wins everywhere: undrain from another node.
    assert.equal((await nodes[1]!.adminPost(`/api/clusters/c/endpoints/${encodeURIComponent(ep)}/drain`, { draining: false })).status, 200);
    for (const n of nodes) await until(async () => !(await drained(n)), 5000, `${n.name} to undrain ${ep}`);
  });

  it('a reload announced on one node reloads every node from its own file', async () => {
    const reloads = async (n: FleetNode) => Number(/^meridian_config_reloads_total\{result="success"\} (\d+)$/m.exec((await call(n.admin, 'GET', '/metrics')).body)?.[1] ?? 0);
    const before = await Promise.all(nodes.map(reloads));
    const r = await nodes[0]!.adminPost('/api/fleet/reload', {});
    assert.equal(r.status, 200, r.body);
    assert.equal((JSON.parse(r.body) as { announced: boolean }).announced, true);
    for (const [i, n] of nodes.entries()) await until(async () => (await reloads(n)) === before[i]! + 1, 5000, `${n.name} to reload`);
  });

  it('Redis frozen (answering nothing): calls time out, allow admits, deny answers 503, the stalled connection is dropped once, and all resumes', async () => {
    const node = nodes[1]!;
    const logged = (re: RegExp) => node.output.match(re)?.length ?? 0;
    const stalledBefore = logged(/Redis stopped answering/g);
    redis.freeze();
    try {
      // Each request waits at most command_timeout for Redis, then on_unavailable decides.
      assert.equal((await call(node.web, 'GET', '/strong')).status, 200);
      assert.equal((await call(node.web, 'GET', '/deny')).status, 503);
      await until(async () => {
        await call(node.web, 'GET', '/deny');
        return logged(/Redis stopped answering/g) > stalledBefore;
      }, 20_000, 'the node to give up on the frozen Redis');
      // Down now: decisions no longer wait for a timeout, and the drop was logged once.
      assert.equal((await call(node.web, 'GET', '/deny')).status, 503);
      assert.equal(logged(/Redis stopped answering/g), stalledBefore + 1);
    } finally {
      redis.thaw();
    }
    await until(async () => ((await node.adminGet('/api/fleet')) as { redis: string }).redis === 'up', 10_000, 'the node to reach Redis again');
    await until(async () => (await call(node.web, 'GET', '/deny')).status !== 503, 10_000, 'deny to admit again');
  });

  it('Redis killed under load: allow mode fails no request, deny mode answers 503, limits resume when Redis returns', async () => {
    const outages = (n: FleetNode) => [n.output.match(/Redis unreachable/g)?.length ?? 0, n.output.match(/Redis reachable again/g)?.length ?? 0];
    // The previous test's outage may still be ending on a node: count from after every node logged its end.
    const ends = (n: FleetNode) => (n.output.match(/Redis (unreachable|stopped answering)/g)?.length ?? 0) === (n.output.match(/Redis reachable again/g)?.length ?? 0);
    await until(() => nodes.every(ends), 10_000, 'every node past the previous outage');
    const before = nodes.map(outages);
    let stopAllow = false;
    let answered = 0;
    const allow = load(nodes, '/strong', 6, () => stopAllow, () => answered++);
    await until(() => answered > 50, 10_000, 'load before the outage');
    await redis.kill();
    // Every node has noticed: the deny route answers 503 rate_limit_unavailable on each.
    for (const n of nodes) {
      await until(async () => (await call(n.web, 'GET', '/deny')).status === 503, 5000, `${n.name} to deny without Redis`);
      const reply = await call(n.web, 'GET', '/deny');
      assert.equal(reply.status, 503);
      assert.match(reply.body, /fleet-wide rate limit could not be checked/);
    }
    // And the allow route keeps answering, Redis still down.
    const during = answered;
    await until(() => answered > during + 50, 10_000, 'load during the outage');
    await redis.restart();
    // Limits resume: a strong route refuses again once the bucket is spent.
    for (const n of nodes) await until(async () => (await call(n.web, 'GET', '/deny')).status !== 503, 10_000, `${n.name} to reach Redis again`);
    stopAllow = true;
    const r = await allow;
    assert.equal(r.errors, 0);
    assert.deepEqual([...r.statuses.keys()].filter((s) => s !== 200 && s !== 429), [], JSON.stringify([...r.statuses]));
    const after = await load(nodes, '/strong', 6, ((n = 0) => () => n++ > 300)());
    assert.ok(count(after.statuses, 429) > 0, JSON.stringify([...after.statuses]));
    // Each node logged this outage once, and its end once, however many requests it served meanwhile.
    for (const [i, n] of nodes.entries()) assert.deepEqual(outages(n), [before[i]![0]! + 1, before[i]![1]! + 1], `${n.name}: ${n.output}`);
  });
});
