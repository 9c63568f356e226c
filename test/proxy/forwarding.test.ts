import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SampleBackend } from '../../src/backend/sample-backend.js';
import { backends, closeAll, config, get, raw, simpleConfig, startMeridian, type Running } from './harness.js';

describe('forwarding', () => {
  let bs: SampleBackend[];
  let m: Running;
  before(async () => {
    bs = await backends(3);
    m = await startMeridian(simpleConfig(bs));
  });
  after(() => closeAll(m, bs));

  it('balances requests over the backends (round robin)', async () => {
    const seen: string[] = [];
    for (let i = 0; i < 9; i++) seen.push((await get(m.port)).body.trim());
    assert.deepEqual(seen.slice(0, 3).sort(), ['b0', 'b1', 'b2']);
    for (const name of ['b0', 'b1', 'b2']) assert.equal(seen.filter((s) => s === name).length, 3);
  });

  it('reuses upstream connections at steady state', async () => {
    const before = bs.reduce((n, b) => n + b.connections, 0);
    for (let i = 0; i < 60; i++) await get(m.port);
    const opened = bs.reduce((n, b) => n + b.connections, 0) - before;
    // 60 sequential requests over 3 backends need at most one connection each.
    assert.ok(opened <= 3, `opened ${opened} upstream connections`);
  });

  it('drops hop-by-hop headers and sets X-Forwarded-* and x-request-id', async () => {
    const r = await get(m.port, '/echo', { headers: { connection: 'keep-alive, x-secret', 'x-secret': '1', 'keep-alive': 'timeout=5', 'proxy-connection': 'x', 'x-keep': 'yes', host: 'shop.example:8080' } });
    const echoed = JSON.parse(r.body) as { headers: Record<string, string> };
    const h = echoed.headers;
    assert.equal(h['x-secret'], undefined);
    assert.equal(h['proxy-connection'], undefined);
    assert.equal(h['keep-alive'], undefined);
    assert.equal(h['x-keep'], 'yes');
    assert.equal(h['host'], 'shop.example:8080');
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-host'], 'shop.example:8080');
    assert.match(h['x-request-id'] ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(r.headers['x-request-id'], h['x-request-id']);
  });

  it('passes fields on as the client sent them: names in their case, repeats as separate lines in order', async () => {
    const reply = await raw(m.port, 'GET /echo HTTP/1.1\r\nHost: shop.example\r\nX-Dup: a\r\nAuthorization: one\r\nx-dup: b\r\nAuthorization: two\r\nConnection: close\r\n\r\n');
    const body = reply.slice(reply.indexOf('\r\n\r\n') + 4);
    const seen = (JSON.parse(body) as { rawHeaders: string[] }).rawHeaders;
    const pairs = (names: string[]) => seen.flatMap((x, i) => (i % 2 === 0 && names.includes(x.toLowerCase()) ? [x, seen[i + 1] as string] : []));
    assert.deepEqual(pairs(['x-dup', 'authorization', 'host']), ['Host', 'shop.example', 'X-Dup', 'a', 'Authorization', 'one', 'x-dup', 'b', 'Authorization', 'two']);
    // Meridian's own fields, once each.
    assert.equal(seen.filter((x, i) => i % 2 === 0 && x.toLowerCase() === 'x-forwarded-for').length, 1);
    assert.equal(seen.filter((x, i) => i % 2 === 0 && x.toLowerCase() === 'connection').length, 0);
  });

  it('passes a client x-request-id through', async () => {
    const r = await get(m.port, '/echo', { headers: { 'x-request-id': 'abc-123' } });
    assert.equal((JSON.parse(r.body) as { headers: Record<string, string> }).headers['x-request-id'], 'abc-123');
  });

  it('does not trust X-Forwarded-For from an untrusted peer', async () => {
    const r = await get(m.port, '/echo', { headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https' } });
    const h = (JSON.parse(r.body) as { headers: Record<string, string> }).headers;
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');
  });

  it('streams chunked request bodies and responses, HEAD, 204 and 304 without bodies, and trailers', async () => {
    const up = await get(m.port, '/upload', { method: 'POST', body: Buffer.alloc(300_000, 1), headers: { 'transfer-encoding': 'chunked' } });
    assert.deepEqual(JSON.parse(up.body), { bytes: 300_000 });
    const bytes = await get(m.port, '/bytes?n=200000&chunked=1');
    assert.equal(bytes.body.length, 200_000);
    const head = await get(m.port, '/', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal((await get(m.port, '/status/204')).body, '');
    assert.equal((await get(m.port, '/status/304')).status, 304);
    const t = await get(m.port, '/trailers', { headers: { te: 'trailers' } });
    assert.equal(t.body, 'hello\n');
    assert.equal(t.trailers['x-checksum'], 'abc123');
  });

  it('handles Expect: 100-continue', async () => {
    const r = await get(m.port, '/upload', { method: 'PUT', headers: { expect: '100-continue', 'content-length': '5' }, body: 'hello' });
    assert.deepEqual(JSON.parse(r.body), { bytes: 5 });
  });

  it('answers a malformed request with 400 itself; nothing reaches a backend', async () => {
    const before = bs.reduce((n, b) => n + b.requests, 0);
    const reply = await raw(m.port, 'GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n');
    assert.match(reply, /^HTTP\/1\.1 400 /);
    const smuggle = await raw(m.port, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    assert.match(smuggle, /^HTTP\/1\.1 400 /);
    assert.equal(bs.reduce((n, b) => n + b.requests, 0), before);
  });

  it('logs one access record per request with the fields operators need', async () => {
    m.records.length = 0;
    await get(m.port, '/status/201?x=1', { headers: { host: 'api.test' } });
    assert.equal(m.records.length, 1);
    const r = m.records[0]!;
    assert.equal(r.status, 201);
    assert.equal(r.method, 'GET');
    assert.equal(r.path, '/status/201?x=1');
    assert.equal(r.host, 'api.test');
    assert.equal(r.cluster, 'c');
    assert.match(r.endpoint, /^b[012]$/);
    assert.equal(r.attempts, 1);
    assert.equal(r.client, '127.0.0.1');
    assert.ok(r.totalMs >= 0 && r.upstreamMs !== undefined);
    assert.ok(r.bytesOut > 0);
  });
});

describe('routing', () => {
  let bs: SampleBackend[];
  let m: Running;
  before(async () => {
    bs = await backends(3);
    const ep = (b: SampleBackend) => ({ address: `127.0.0.1:${b.port}`, id: b.name });
    m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [
          {
            name: 'web',
            address: '127.0.0.1',
            port: 0,
            routes: [
              { match: { host: 'api.example.com', path: { prefix: '/v1' } }, cluster: 'a' },
              { match: { host: '*.example.com', methods: ['POST'] }, cluster: 'b' },
              { match: { path: { regex: '^/img/[0-9]+$' } }, cluster: 'b' },
              { match: { headers: [{ name: 'x-canary', exact: '1' }] }, cluster: 'c' },
              { match: { path: { exact: '/c' } }, cluster: 'c' },
            ],
          },
        ],
        clusters: [
          { name: 'a', endpoints: [ep(bs[0]!)] },
          { name: 'b', endpoints: [ep(bs[1]!)] },
          { name: 'c', endpoints: [ep(bs[2]!)] },
        ],
      }),
    );
  });
  after(() => closeAll(m, bs));

  it('matches host, path, method and headers; first match wins; 404 otherwise', async () => {
    const body = async (path: string, headers: Record<string, string> = {}, method = 'GET') => {
      const r = await get(m.port, path, { headers, method });
      return r.status === 200 ? r.body.trim() : String(r.status);
    };
    assert.equal(await body('/v1/users', { host: 'api.example.com' }), 'b0');
    assert.equal(await body('/v1/users', { host: 'API.example.com:8080' }), 'b0');
    assert.equal(await body('/v1/users', { host: 'api.example.com' }, 'POST'), 'b0'); // first match wins
    assert.equal(await body('/x', { host: 'shop.example.com' }, 'POST'), 'b1');
    assert.equal(await body('/x', { host: 'example.com' }, 'POST'), '404'); // *.example.com is not example.com
    assert.equal(await body('/img/42'), 'b1');
    assert.equal(await body('/img/42x'), '404');
    assert.equal(await body('/anything', { 'x-canary': '1' }), 'b2');
    assert.equal(await body('/c'), 'b2');
    const miss = await get(m.port, '/nowhere');
    assert.equal(miss.status, 404);
    assert.equal(miss.headers['x-meridian-reason'], 'no_route');
  });
});
