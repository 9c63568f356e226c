// Prequal in the proxy: probes sent with requests reach `meridian backend`'s probe endpoint
// and steer traffic away from a slow backend; a backend without the endpoint is answered
// locally (Meridian's own counts), and said to be in the metrics.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { PREQUAL_PROBE_PATH } from '../../src/core/index.js';
import { backends, closeAll, config, get, startMeridian, until, type Running } from './harness.js';

async function probeCount(m: Running, source: 'backend' | 'local', result = 'ok'): Promise<number> {
  const text = await m.meridian.metrics.metricsText();
  const line = text.split('\n').find((l) => l.startsWith(`meridian_prequal_probes_total{cluster="c",source="${source}",result="${result}"}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('prequal over real backends', () => {
  it('probes reach meridian backend, and traffic steers away from a backend 30 ms slower than the rest', async () => {
    const bs = await backends(4);
    bs[3]!.setLatency('30ms');
    const m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [{ name: 'c', policy: 'prequal', endpoints: bs.map((b) => ({ address: `127.0.0.1:${b.port}`, id: b.name })) }],
      }),
    );
    try {
      const counts = new Map<string, number>();
      for (let i = 0; i < 200; i++) {
        const name = (await get(m.port)).body.trim();
        counts.set(name, (counts.get(name) ?? 0) + 1);
      }
      // Every request sent 3 probes to 3 of the 4 backends: each was asked, by HTTP, many times.
      for (const b of bs) assert.ok(b.probes >= 50, `${b.name} answered ${b.probes} probes`);
      assert.ok((await probeCount(m, 'backend')) >= 400);
      // Picked at random (50 of 200 expected) only until two replies are in the pool; after
      // its first slow answer b3 reports 30 ms against about 1 ms and loses every cold choice.
      assert.ok((counts.get('b3') ?? 0) <= 10, `slow backend got ${counts.get('b3')}`);
    } finally {
      await closeAll(m, bs);
    }
  });

  it('an endpoint without the probe endpoint is answered from Meridian\'s own counts, after one probe', async () => {
    const [b] = await backends(1);
    let probesSeen = 0;
    const plain = http.createServer((req, res) => {
      if (req.url === PREQUAL_PROBE_PATH) probesSeen++;
      res.writeHead(req.url === PREQUAL_PROBE_PATH ? 404 : 200, { 'content-length': 2 });
      res.end('ok');
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    const port = (plain.address() as AddressInfo).port;
    const m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [{ name: 'c', policy: 'prequal', endpoints: [{ address: `127.0.0.1:${b!.port}`, id: 'b' }, { address: `127.0.0.1:${port}`, id: 'plain' }] }],
      }),
    );
    try {
      // One request: 2 probes, one to each endpoint; the plain one answers 404.
      assert.equal((await get(m.port)).status, 200);
      await until(async () => (await probeCount(m, 'local')) === 1, 5000, 'the 404 turned into a local reply');
      assert.equal(probesSeen, 1);
      for (let i = 0; i < 20; i++) assert.equal((await get(m.port)).status, 200);
      await until(async () => (await probeCount(m, 'local')) === 21, 5000, 'every later probe of plain answered locally');
      assert.equal(probesSeen, 1);
    } finally {
      await closeAll(m, [b!]);
      await new Promise<void>((resolve) => plain.close(() => resolve()));
    }
  });

  it('prequal.probes sets the probes sent with each request', async () => {
    const bs = await backends(4);
    const m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [{ name: 'c', policy: 'prequal', prequal: { probes: 1 }, endpoints: bs.map((b) => ({ address: `127.0.0.1:${b.port}`, id: b.name })) }],
      }),
    );
    try {
      for (let i = 0; i < 40; i++) assert.equal((await get(m.port)).status, 200);
      // One probe per request (the default sends 3): 40 in all, each answered by a backend.
      await until(async () => (await probeCount(m, 'backend')) === 40, 5000, '40 probe replies');
      assert.equal(bs.reduce((n, b) => n + b.probes, 0), 40);
    } finally {
      await closeAll(m, bs);
    }
  });
});
