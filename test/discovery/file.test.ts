// Discovery from a watched file (real files, real watches) under load: atomic and in-place
// rewrites apply with no failed request, a broken file is refused and the last list
// stays, a large removal is held; and hash policies fed by discovery move about 1/N keys.
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { startSampleBackend, type SampleBackend } from '../../src/backend/sample-backend.js';
import type { ClusterState } from '../../src/admin/types.js';
import { Meridian } from '../../src/node/meridian.js';
import { config, get, startMeridian, until, type Running } from '../proxy/harness.js';
import { LoadLoop } from './helpers.js';

const cluster = (m: Running): ClusterState => m.meridian.clusters().find((c) => c.name === 'c') as ClusterState;
const ids = (m: Running): string[] => cluster(m).endpoints.map((e) => e.id).sort();

function meridianConfig(path: string, cluster: Record<string, unknown> = {}, discovery: Record<string, unknown> = {}) {
  return config({
    admin: { port: 0 },
    access_log: { enabled: false },
    listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
    clusters: [{ name: 'c', discovery: { file: { path }, min_change_interval: '0s', ...discovery }, ...cluster }],
  });
}

const yamlList = (bs: readonly SampleBackend[]) => bs.map((b) => `- address: 127.0.0.1:${b.port}\n  id: ${b.name}\n`).join('');

describe('discovery: a watched file', () => {
  let dir: string;
  let path: string;
  let bs: SampleBackend[];
  let m: Running;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meridian-file-'));
    path = join(dir, 'endpoints.yaml');
    bs = await Promise.all([0, 1, 2, 3].map((i) => startSampleBackend({ name: `b${i}` })));
    await writeFile(path, yamlList(bs.slice(0, 2)));
    // Read every 250 ms besides the watch: a held removal is confirmed by the answers that follow it.
    m = await startMeridian(meridianConfig(path, {}, { file: { path, refresh: '250ms' }, max_removal_percent: 50, hold_for: '3s' }));
  });

  after(async () => {
    await m?.close();
    await Promise.all((bs ?? []).map((b) => b.close()));
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('applies atomic and in-place rewrites under load, refuses a broken file and holds a large removal, with no failed request', async () => {
    const [b0, b1, b2, b3] = bs as [SampleBackend, SampleBackend, SampleBackend, SampleBackend];
    assert.deepEqual(ids(m), ['b0', 'b1']);
    assert.deepEqual(cluster(m).discovery?.source, 'file');
    const load = new LoadLoop(m.port);
    try {
      await until(() => load.count('b0') > 10 && load.count('b1') > 10, 10_000, 'traffic on the listed endpoints');

      // Atomic: write a temporary file, rename it over.
      await writeFile(`${path}.tmp`, yamlList([b0, b1, b2]));
      await rename(`${path}.tmp`, path);
      await until(() => ids(m).includes('b2'), 10_000, 'b2 from the renamed file');
      await until(() => load.count('b2') > 10, 10_000, 'traffic on b2');

      // In place, in two writes: the first leaves a file that does not parse.
      const full = yamlList([b1, b2, b3]);
      await writeFile(path, full.slice(0, full.indexOf('id: b3') + 2));
      await until(() => /endpoints\.yaml/.test(cluster(m).discovery?.lastError ?? ''), 10_000, 'the half-written file to be refused');
      assert.deepEqual(ids(m), ['b0', 'b1', 'b2'], 'the last good list stays');
      await writeFile(path, full);
      await until(() => ids(m).join() === 'b1,b2,b3', 10_000, 'the finished file');
      assert.equal(cluster(m).discovery?.lastError, null);
      // A request picked for b0 just before the removal may still reach it: count from once
      // every client has moved on (each sends one at a time), then check nothing more came.
      const removedAt = load.sent;
      await until(() => load.sent > removedAt + 200, 10_000, '200 requests after the removal');
      const b0Seen = b0.requests;
      const sentAt = load.sent;
      await until(() => load.sent > sentAt + 200, 10_000, '200 more requests');
      assert.equal(b0.requests, b0Seen, 'a removed endpoint receives no new request');

      // A broken file says why, with the field's path.
      await writeFile(path, `- address: 127.0.0.1:${b1.port}\n- address: nowhere\n`);
      await until(() => cluster(m).discovery?.lastError !== null, 10_000, 'the broken file to be refused');
      assert.equal(cluster(m).discovery?.lastError, `${path}: [1].address: expected "host:port" (IPv6 as "[::1]:port"), got "nowhere"`);
      assert.deepEqual(ids(m), ['b1', 'b2', 'b3']);

      // 2 of 3 removed (67%) is over max_removal_percent 50: held, and shown.
      await writeFile(path, yamlList([b1]));
      await until(() => cluster(m).discovery?.pending !== null, 10_000, 'the removal to be held');
      assert.match(cluster(m).discovery?.pending ?? '', /^held: it would remove 2 of 3 endpoints, more than max_removal_percent \(50%\); applied by the first answer from \d{4}-\S+Z on that still gives it \(hold_for 3s\)$/);
      assert.deepEqual(ids(m), ['b1', 'b2', 'b3']);
      const metrics = await get(m.meridian.adminPort, '/metrics');
      assert.match(metrics.body, /meridian_discovery_changes_total\{cluster="c",result="held"\} [1-9]/);
      assert.match(metrics.body, /meridian_discovery_refreshes_total\{cluster="c",result="failure"\} [1-9]/);
      // The file keeps saying so (read again every 250 ms): after hold_for it is applied, and the others drain.
      await until(() => ids(m).join() === 'b1', 15_000, 'the held removal to be applied after hold_for');
      assert.equal(cluster(m).discovery?.pending, null);
      const marker = load.count('b1');
      await until(() => load.count('b1') > marker + 10, 10_000, 'requests to go on to b1 after the removal');
    } finally {
      await load.stop();
    }
    assert.deepEqual(load.failures, [], 'no request failed');
  });
});

describe('discovery: accepting a held change through the admin API', () => {
  it('hold_for never: held until POST /api/clusters/{cluster}/discovery/accept, which needs the token and says when there is nothing to accept', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meridian-accept-'));
    const path = join(dir, 'endpoints.yaml');
    const bs = await Promise.all([0, 1, 2].map((i) => startSampleBackend({ name: `b${i}` })));
    await writeFile(path, yamlList(bs));
    const cfg = config({
      admin: { port: 0 },
      access_log: { enabled: false },
      listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
      clusters: [
        { name: 'c', discovery: { file: { path }, min_change_interval: '0s', max_removal_percent: 50, hold_for: 'never' } },
        { name: 'fixed', endpoints: [{ address: `127.0.0.1:${(bs[0] as SampleBackend).port}` }] },
      ],
    });
    const m = await startMeridian(cfg, { adminToken: 'accept-token' });
    const accept = (cluster: string, token = 'accept-token') => get(m.meridian.adminPort, `/api/clusters/${cluster}/discovery/accept`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    try {
      assert.equal((await accept('c')).status, 409, 'nothing held yet');
      await writeFile(path, yamlList(bs.slice(0, 1)));
      await until(() => cluster(m).discovery?.pending !== null, 10_000, 'the removal to be held');
      assert.equal(cluster(m).discovery?.pending, 'held: it would remove 2 of 3 endpoints, more than max_removal_percent (50%); until accepted through the admin API (hold_for: never)');
      assert.equal((await accept('c', 'wrong')).status, 401);
      assert.deepEqual(ids(m), ['b0', 'b1', 'b2'], 'a refused call changes nothing');
      const r = await accept('c');
      assert.equal(r.status, 200, r.body);
      assert.deepEqual(JSON.parse(r.body), { ok: true, cluster: 'c' });
      assert.deepEqual(ids(m), ['b0']);
      assert.equal(cluster(m).discovery?.pending, null);
      assert.equal((await accept('c')).status, 409);
      const fixed = await accept('fixed');
      assert.equal(fixed.status, 404);
      assert.deepEqual(JSON.parse(fixed.body), { error: 'cluster "fixed" has no discovery source' });
      assert.deepEqual(JSON.parse((await accept('nope')).body), { error: 'no cluster "nope"' });
    } finally {
      await m.close();
      await Promise.all(bs.map((b) => b.close()));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('discovery: an empty list', () => {
  /** A Meridian whose log lines are kept, fed by `path` (read every 100 ms as well as on changes). */
  async function logged(path: string, onEmpty: 'keep' | 'clear') {
    const lines: string[] = [];
    const meridian = new Meridian(meridianConfig(path, {}, { file: { path, refresh: '100ms' }, on_empty: onEmpty }), { logger: pino({ level: 'info' }, { write: (l: string) => void lines.push(l) }) });
    await meridian.start();
    const m: Running = { meridian, port: Object.values(meridian.ports())[0] as number, records: [], close: () => meridian.close() };
    const refreshes = (result: string) => meridian.metrics.registry.getSingleMetric('meridian_discovery_refreshes_total')?.get().then((v) => v.values.find((x) => x.labels['result'] === result)?.value ?? 0);
    const said = (msg: RegExp) => lines.filter((l) => msg.test((JSON.parse(l) as { msg: string }).msg)).length;
    return { m, refreshes, said };
  }

  it('on_empty keep: the last set stays through many empty reads, logged once when it starts and once when it ends', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meridian-empty-'));
    const path = join(dir, 'endpoints.yaml');
    const b0 = await startSampleBackend({ name: 'b0' });
    await writeFile(path, yamlList([b0]));
    const { m, refreshes, said } = await logged(path, 'keep');
    try {
      await writeFile(path, '[]\n');
      await until(async () => ((await refreshes('empty')) ?? 0) >= 5, 10_000, 'five empty reads');
      assert.deepEqual(ids(m), ['b0']);
      assert.equal(cluster(m).discovery?.lastError, 'the source returned no endpoints');
      assert.equal((await get(m.port)).headers['x-backend'], 'b0');
      assert.equal(said(/^discovery: the source returned no endpoints; keeping the last 1 endpoints/), 1, 'logged once for the whole outage');
      await writeFile(path, yamlList([b0]));
      await until(() => cluster(m).discovery?.lastError === null, 10_000, 'the list back');
      const okAt = (await refreshes('ok')) ?? 0;
      await until(async () => ((await refreshes('ok')) ?? 0) >= okAt + 3, 10_000, 'three good reads');
      assert.equal(said(/^discovery: the source answers again/), 1, 'its end logged once');
    } finally {
      await m.close();
      await b0.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('on_empty clear: an empty list empties the cluster, and requests get 503 no_healthy_endpoint', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meridian-clear-'));
    const path = join(dir, 'endpoints.yaml');
    const b0 = await startSampleBackend({ name: 'b0' });
    await writeFile(path, yamlList([b0]));
    const { m } = await logged(path, 'clear');
    try {
      assert.equal((await get(m.port)).status, 200);
      await writeFile(path, '[]\n');
      await until(() => ids(m).length === 0, 10_000, 'the cluster to be emptied');
      const r = await get(m.port);
      assert.equal(r.status, 503);
      assert.equal(r.headers['x-meridian-reason'], 'no_healthy_endpoint');
    } finally {
      await m.close();
      await b0.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('discovery: across a reload', () => {
  it('a reload that keeps the source keeps the discovered set and its history; one that changes it asks the new source first', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meridian-reload-'));
    const bs = await Promise.all([0, 1, 2].map((i) => startSampleBackend({ name: `b${i}` })));
    const [b0, b1, b2] = bs as [SampleBackend, SampleBackend, SampleBackend];
    const first = join(dir, 'first.yaml');
    const second = join(dir, 'second.yaml');
    await writeFile(first, yamlList([b0, b1]));
    await writeFile(second, yamlList([b1, b2]));
    const m = await startMeridian(meridianConfig(first));
    try {
      for (let i = 0; i < 10; i++) await get(m.port);
      const history = () => new Map(cluster(m).endpoints.map((e) => [e.id, e.requestsTotal]));
      const before = history();
      assert.equal((before.get('b0') ?? 0) + (before.get('b1') ?? 0), 10);

      const same = await m.meridian.reload(meridianConfig(first, { retries: { attempts: 2 } }));
      assert.ok(same.ok);
      assert.deepEqual(history(), before, 'same endpoints, same history');

      const moved = await m.meridian.reload(meridianConfig(second));
      assert.ok(moved.ok);
      assert.deepEqual(ids(m), ['b1', 'b2'], 'the new source answered before the runtime was built');
      assert.equal(history().get('b1'), before.get('b1'), 'b1, in both sets, keeps its history');
      assert.equal(cluster(m).discovery?.target, `file ${second}`);
      // The old source stopped: a change to its file changes nothing any more.
      await writeFile(first, yamlList([b0]));
      await writeFile(second, yamlList([b0, b1, b2]));
      await until(() => ids(m).length === 3, 10_000, 'the new file to be followed');
      assert.deepEqual(ids(m), ['b0', 'b1', 'b2']);
    } finally {
      await m.close();
      await Promise.all(bs.map((b) => b.close()));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('discovery: health checks', () => {
  it('a discovered endpoint is probed at once, not at the next check interval', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meridian-hc-'));
    const path = join(dir, 'endpoints.yaml');
    const bs = await Promise.all([0, 1].map((i) => startSampleBackend({ name: `b${i}` })));
    const [b0, b1] = bs as [SampleBackend, SampleBackend];
    b1.setHealthy(false);
    await writeFile(path, yamlList([b0]));
    const m = await startMeridian(meridianConfig(path, { health_check: { interval: '60s', timeout: '1s', jitter: '0%', unhealthy_threshold: 1 } }));
    try {
      await writeFile(path, yamlList([b0, b1]));
      await until(() => ids(m).includes('b1'), 10_000, 'b1 to be discovered');
      // The check interval is a minute: only an immediate probe finds b1 failing within the wait.
      await until(() => cluster(m).endpoints.find((e) => e.id === 'b1')?.status === 'unhealthy', 10_000, 'b1 probed and found unhealthy');
    } finally {
      await m.close();
      await Promise.all(bs.map((b) => b.close()));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('discovery: hash policies fed by a file', () => {
  for (const policy of ['maglev', 'ring_hash'] as const) {
    it(`${policy}: adding one endpoint to 5 moves about 1/6 of the keys, all of them to the new one`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'meridian-hash-'));
      const path = join(dir, 'endpoints.json');
      const bs = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => startSampleBackend({ name: `b${i}` })));
      const json = (list: SampleBackend[]) => JSON.stringify(list.map((b) => ({ address: `127.0.0.1:${b.port}`, id: b.name })));
      await writeFile(path, json(bs.slice(0, 5)));
      const m = await startMeridian(meridianConfig(path, { policy, hash: { key: { header: 'x-user' } } }));
      try {
        const keys = Array.from({ length: 600 }, (_, i) => `user-${i}`);
        const place = async () => {
          const out = new Map<string, string>();
          for (const k of keys) out.set(k, String((await get(m.port, '/', { headers: { 'x-user': k } })).headers['x-backend']));
          return out;
        };
        const beforeAdd = await place();
        await writeFile(path, json(bs));
        await until(() => ids(m).length === 6, 10_000, 'the sixth endpoint');
        assert.equal(cluster(m).endpoints.find((e) => e.id === 'b5')?.status, 'healthy', 'hash policies take no slow start');
        const afterAdd = await place();
        const moved = keys.filter((k) => beforeAdd.get(k) !== afterAdd.get(k));
        // Ideal: 1/6 of 600 = 100. Maglev's table and a 1024-point ring are close to it, not exact.
        assert.ok(moved.length >= 60 && moved.length <= 150, `${moved.length} of 600 keys moved`);
        const toNew = moved.filter((k) => afterAdd.get(k) === 'b5').length;
        if (policy === 'ring_hash') assert.equal(toNew, moved.length, 'on a ring, only keys taken by the new endpoint move');
        else assert.ok(toNew >= moved.length * 0.9, `maglev: ${toNew} of ${moved.length} moved keys went to the new endpoint`);
      } finally {
        await m.close();
        await Promise.all(bs.map((b) => b.close()));
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
