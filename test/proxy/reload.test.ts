import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { SampleBackend } from '../../src/backend/sample-backend.js';
import type { ClusterState } from '../../src/admin/types.js';
import { Meridian } from '../../src/node/meridian.js';
import { backends, closeAll, config, get, quiet, startMeridian, until } from './harness.js';

const cleanup: { close(): Promise<void> }[] = [];
after(() => closeAll(cleanup));

/** One listener and cluster `c` over `bs`; `extra` listeners and cluster settings on top. */
function reloadConfig(bs: readonly SampleBackend[], opts: { listeners?: unknown[]; cluster?: Record<string, unknown>; accessLog?: string } = {}) {
  return config({
    admin: { port: 0, token: 't0ken' },
    access_log: opts.accessLog === undefined ? { enabled: false } : { enabled: true, path: opts.accessLog },
    listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }, ...(opts.listeners ?? [])],
    clusters: [{ name: 'c', endpoints: bs.map((b) => ({ address: `127.0.0.1:${b.port}`, id: b.name })), ...opts.cluster }],
  });
}

/** A port some other program holds. */
async function takenPort(): Promise<Server> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return s;
}

function portOf(s: Server): number {
  return (s.address() as { port: number }).port;
}

/**
 * What the operator sees, minus loadRps: the requests-per-second over a sliding window
 * moves with the clock alone, reload or not.
 */
function withoutLoad(cs: readonly ClusterState[]): unknown {
  return cs.map(({ loadRps: _l, ...c }) => c);
}

async function apiClusters(adminPort: number): Promise<ClusterState[]> {
  const r = await get(adminPort, '/api/clusters');
  assert.equal(r.status, 200);
  return (JSON.parse(r.body) as { clusters: ClusterState[] }).clusters;
}

function fds(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('reload commits whole or changes nothing', () => {
  it('a reload refused at a listener bind leaves the clusters exactly as they were, and traffic on the old endpoints', async () => {
    const [b0, b1, b2] = (await backends(3)) as [SampleBackend, SampleBackend, SampleBackend];
    const blocker = await takenPort();
    const cluster = { outlier_detection: { consecutive_5xx: 3 } };
    const m = await startMeridian(reloadConfig([b0, b1], { cluster }), { adminToken: 't0ken' });
    cleanup.push(m, b0, b1, b2, { close: async () => void blocker.close() });
    // State the reload must not touch: an operator's weight, counts, latency history.
    assert.equal(m.meridian.setWeight('c', 'b1', 4), 'ok');
    for (let i = 0; i < 10; i++) assert.equal((await get(m.port)).status, 200);
    const apiBefore = await apiClusters(m.meridian.adminPort);
    const before = m.meridian.clusters();
    const version = m.meridian.config;

    const refused = await m.meridian.reload(
      // Same balancing settings: the running cluster would take the new endpoint in place.
      reloadConfig([b0, b1, b2], { cluster, listeners: [{ name: 'extra', address: '127.0.0.1', port: portOf(blocker), routes: [{ cluster: 'c' }] }] }),
    );

    assert.deepEqual(refused, { ok: false, errors: [`listener extra: port ${portOf(blocker)} on 127.0.0.1 is already in use`] });
    assert.equal(m.meridian.config, version);
    assert.deepEqual(withoutLoad(m.meridian.clusters()), withoutLoad(before));
    assert.deepEqual(withoutLoad(await apiClusters(m.meridian.adminPort)), withoutLoad(apiBefore));
    assert.deepEqual(Object.keys(m.meridian.ports()), ['web']);
    m.records.length = 0;
    for (let i = 0; i < 30; i++) assert.equal((await get(m.port)).status, 200);
    assert.deepEqual(new Set(m.records.map((r) => r.endpoint)), new Set(['b0', 'b1']));
    assert.equal(b2.requests, 0);
  });

  it('a reload that succeeds keeps the health, ejections and latency history of the endpoints it keeps, by id', async () => {
    const [b0, b1, b2] = (await backends(3)) as [SampleBackend, SampleBackend, SampleBackend];
    const [bad] = (await backends(1, { name: 'bad', errorRate: 1 })) as [SampleBackend];
    const first = [b0, b1, bad];
    // panic_threshold 0: with two of three endpoints out, balancing stays on the one left.
    const outliers = { panic_threshold: 0, outlier_detection: { consecutive_5xx: 2, base_ejection_time: '5m', max_ejection_percent: 100 } };
    const m = await startMeridian(reloadConfig(first, { cluster: outliers }), { activeChecks: 'external' });
    cleanup.push(m, b0, b1, b2, bad);
    // b1: an active verdict of unhealthy; bad: ejected by real 5xx answers.
    m.meridian.assumeHealth([{ cluster: 'c', endpoint: 'b1', healthy: false }]);
    for (let i = 0; i < 40 && m.meridian.clusters()[0]!.endpoints.find((e) => e.id === 'bad')!.status !== 'ejected'; i++) await get(m.port);
    for (let i = 0; i < 5; i++) assert.equal((await get(m.port)).status, 200);
    const byId = () => new Map(m.meridian.clusters()[0]!.endpoints.map((e) => [e.id, e]));
    const before = byId();
    assert.equal(before.get('b1')!.status, 'unhealthy');
    assert.equal(before.get('bad')!.status, 'ejected');
    assert.ok(before.get('b0')!.latencyEwmaMs > 0);

    const r = await m.meridian.reload(reloadConfig([...first, b2], { cluster: outliers }));

    assert.equal(r.ok, true);
    const now = byId();
    assert.deepEqual([...now.keys()], ['b0', 'b1', 'bad', 'b2']);
    for (const id of ['b0', 'b1', 'bad']) {
      const { poolOpen: _o, poolIdle: _i, ...kept } = now.get(id)!;
      const { poolOpen: _bo, poolIdle: _bi, ...was } = before.get(id)!;
      assert.deepEqual(kept, was, id);
    }
    assert.equal(now.get('b2')!.requestsTotal, 0);
    // Routing follows the kept state: b1 (unhealthy) and bad (ejected) take nothing.
    m.records.length = 0;
    for (let i = 0; i < 20; i++) assert.equal((await get(m.port)).status, 200);
    assert.deepEqual(new Set(m.records.map((x) => x.endpoint)), new Set(['b0', 'b2']));
  });

  it('a request in flight across a reload ends in the live state of its endpoint', async () => {
    const [slow] = (await backends(1, { latency: '300ms' })) as [SampleBackend];
    const [b1] = (await backends(1, { name: 'b1' })) as [SampleBackend];
    const m = await startMeridian(reloadConfig([slow]));
    cleanup.push(m, slow, b1);
    const pending = get(m.port);
    await until(() => m.meridian.clusters()[0]!.endpoints[0]!.active === 1, 5000, 'the request to reach b0');
    assert.equal((await m.meridian.reload(reloadConfig([slow, b1]))).ok, true);
    assert.equal((await pending).status, 200);
    const b0 = m.meridian.clusters()[0]!.endpoints.find((e) => e.id === 'b0')!;
    assert.equal(b0.active, 0);
    assert.equal(b0.requestsTotal, 1);
    assert.ok(b0.latencyEwmaMs > 0);
  });

  it('40 reloads that switch the access log back and forth leave no file descriptor behind', async () => {
    const [b0] = (await backends(1)) as [SampleBackend];
    const dir = mkdtempSync(join(tmpdir(), 'meridian-reload-fds-'));
    const cfg = (i: number) => reloadConfig([b0], { accessLog: join(dir, i % 2 === 0 ? 'a.log' : 'b.log'), cluster: { timeouts: { idle: i % 2 === 0 ? '4s' : '3s' } } });
    const meridian = new Meridian(cfg(0), { logger: quiet, seed: 7 });
    await meridian.start();
    cleanup.push(b0, meridian);
    const port = meridian.ports()['web'] as number;
    await get(port, '/', { agent: false });
    const baseline = fds();
    for (let i = 1; i <= 40; i++) {
      assert.equal((await meridian.reload(cfg(i))).ok, true);
      assert.equal((await get(port, '/', { agent: false })).status, 200);
    }
    // Retired logs and pools close in the background: wait until they have.
    await until(() => fds() <= baseline + 2, 10_000, `fds back near ${baseline} (now ${fds()})`);
  });
});
