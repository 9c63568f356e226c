import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SampleBackend } from '../../src/backend/sample-backend.js';
import { POLICY_NAMES } from '../../src/core/index.js';
import { Meridian } from '../../src/node/meridian.js';
import { backends, closeAll, config, get, quiet, simpleConfig, startMeridian, until } from './harness.js';

describe('every policy over real backends', () => {
  let bs: SampleBackend[];
  before(async () => {
    bs = await backends(4);
  });
  after(() => closeAll(bs));

  // peak_ewma, prequal and predictive follow measured latency, which on loopback is noise:
  // they have their own tests (below, and prequal-probes.test.ts).
  for (const policy of POLICY_NAMES.filter((p) => p !== 'peak_ewma' && p !== 'prequal' && p !== 'predictive')) {
    it(`${policy}: spreads traffic over all backends${policy === 'ring_hash' || policy === 'maglev' ? ', and keeps a key on one' : ''}`, async () => {
      const hashed = policy === 'ring_hash' || policy === 'maglev';
      const m = await startMeridian(simpleConfig(bs, { policy, ...(hashed ? { hash: { key: { header: 'x-user' } } } : {}) }));
      try {
        const seen = new Map<string, number>();
        for (let i = 0; i < 200; i++) {
          const r = await get(m.port, '/', { headers: hashed ? { 'x-user': `user-${i}` } : {} });
          assert.equal(r.status, 200);
          seen.set(r.body.trim(), (seen.get(r.body.trim()) ?? 0) + 1);
        }
        assert.deepEqual([...seen.keys()].sort(), ['b0', 'b1', 'b2', 'b3']);
        // Not one backend starved: each of 4 gets well over a tenth of 200.
        for (const [name, n] of seen) assert.ok(n >= 20, `${name} got ${n}`);
        if (hashed) {
          const answers = new Set<string>();
          for (let i = 0; i < 10; i++) answers.add((await get(m.port, '/', { headers: { 'x-user': 'alice' } })).body.trim());
          assert.equal(answers.size, 1, 'alice stays on one backend');
        }
      } finally {
        await m.close();
      }
    });
  }
});

for (const policy of ['peak_ewma', 'predictive'] as const) describe(`${policy} over real backends`, () => {
  it('sends almost nothing to a backend 30 ms slower than the rest', async () => {
    const bs = await backends(4);
    bs[3]!.setLatency('30ms');
    const m = await startMeridian(simpleConfig(bs, { policy }));
    try {
      const counts = new Map<string, number>();
      for (let i = 0; i < 200; i++) {
        const name = (await get(m.port)).body.trim();
        counts.set(name, (counts.get(name) ?? 0) + 1);
      }
      // After its first (slow) answer b3 loses every comparison against a fast backend;
      // it is drawn only in pairs with another backend whose estimate is momentarily worse.
      assert.ok((counts.get('b3') ?? 0) <= 10, `slow backend got ${counts.get('b3')}`);
      assert.ok(['b0', 'b1', 'b2'].reduce((n, b) => n + (counts.get(b) ?? 0), 0) >= 190);
    } finally {
      await closeAll(m, bs);
    }
  });
});

describe('predictive: request class from the proxy', () => {
  it("passes each request's class (route, body) to the model: GETs on two routes and POSTs with a body are three classes it learns", async () => {
    const bs = await backends(2);
    const m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ match: { path: { prefix: '/reports' } }, cluster: 'c' }, { cluster: 'c' }] }],
        clusters: [{ name: 'c', policy: 'predictive', endpoints: bs.map((b) => ({ address: `127.0.0.1:${b.port}`, id: b.name })) }],
      }),
    );
    try {
      const classes = (): number | undefined => m.meridian.balancerStats().find((b) => b.cluster === 'c')?.stats.requestClasses;
      // One at a time, so every response comes from a backend with nothing ahead: what a class's service time is learned from.
      for (let i = 0; i < 20; i++) {
        await get(m.port, '/');
        await get(m.port, '/reports');
      }
      await until(() => classes() === 2, 5000, 'two classes learned');
      for (let i = 0; i < 20; i++) await get(m.port, '/', { method: 'POST', body: 'x' });
      await until(() => classes() === 3, 5000, 'three classes learned');
    } finally {
      await closeAll(m, bs);
    }
  });
});

describe('listeners, trusted proxies and the access log', () => {
  const cleanup: { close(): Promise<void> }[] = [];
  after(() => closeAll(cleanup));

  it('serves several listeners in one process, each with its own routes', async () => {
    const bs = await backends(2);
    const m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [
          { name: 'public', address: '127.0.0.1', port: 0, routes: [{ cluster: 'a' }] },
          { name: 'internal', address: '127.0.0.1', port: 0, routes: [{ cluster: 'b' }] },
        ],
        clusters: [
          { name: 'a', endpoints: [{ address: `127.0.0.1:${bs[0]!.port}` }] },
          { name: 'b', endpoints: [{ address: `127.0.0.1:${bs[1]!.port}` }] },
        ],
      }),
    );
    cleanup.push(m, ...bs);
    const ports = m.meridian.ports();
    assert.equal((await get(ports['public']!)).body.trim(), 'b0');
    assert.equal((await get(ports['internal']!)).body.trim(), 'b1');
  });

  it('appends to X-Forwarded-For from a trusted proxy and takes the client from it', async () => {
    const bs = await backends(1);
    const m = await startMeridian(simpleConfig(bs, {}, { trusted_proxies: ['127.0.0.0/8'] }));
    cleanup.push(m, ...bs);
    const r = await get(m.port, '/echo', { headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'shop.example' } });
    const h = (JSON.parse(r.body) as { headers: Record<string, string> }).headers;
    assert.equal(h['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'https');
    assert.equal(h['x-forwarded-host'], 'shop.example');
    assert.equal(m.records.at(-1)!.client, '203.0.113.9');
  });

  it('writes one JSON access-log line per request (pino) to the configured file', async () => {
    const bs = await backends(1);
    const file = join(mkdtempSync(join(tmpdir(), 'meridian-log-')), 'access.log');
    const cfg = simpleConfig(bs, {}, { access_log: { enabled: true, path: file } });
    const meridian = new Meridian(cfg, { logger: quiet });
    await meridian.start();
    cleanup.push(...bs);
    const port = meridian.ports()['web']!;
    await get(port, '/status/201', { headers: { 'x-request-id': 'req-1' } });
    await get(port, '/nowhere-but-routed', { method: 'POST', body: 'abc' });
    await meridian.close();
    await until(() => existsSync(file) && readFileSync(file, 'utf8').trim().split('\n').length === 2, 5000, 'two log lines');
    const [first, second] = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(first!['request_id'], 'req-1');
    assert.equal(first!['status'], 201);
    assert.equal(first!['method'], 'GET');
    assert.equal(first!['path'], '/status/201');
    assert.equal(first!['cluster'], 'c');
    assert.equal(first!['endpoint'], 'b0');
    assert.equal(first!['attempts'], 1);
    assert.equal(typeof first!['time'], 'string');
    for (const k of ['client', 'host', 'upstream_ms', 'total_ms', 'bytes_in', 'bytes_out']) assert.ok(k in first!, `${k} missing`);
    assert.equal(second!['method'], 'POST');
    assert.equal(second!['bytes_in'], 3);
  });
});
