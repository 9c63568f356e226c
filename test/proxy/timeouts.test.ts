import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import { blackhole, python3 } from './blackhole.js';
import { backends, closeAll, config, get, simpleConfig, startMeridian, until } from './harness.js';


describe('connection timeouts', () => {
  const cleanup: { close(): Promise<void> }[] = [];
  after(() => closeAll(cleanup));

  it('closes a slowloris connection after the request-header timeout while normal requests are served', async () => {
    const bs = await backends(1);
    const m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }], timeouts: { request_headers: '300ms' } }],
        clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${bs[0]!.port}` }] }],
      }),
    );
    cleanup.push(m, ...bs);
    // 50 clients that send a header line now and then but never finish their headers.
    const slow = Array.from({ length: 50 }, () => {
      const s = connect(m.port, '127.0.0.1');
      s.on('error', () => {});
      s.write('GET / HTTP/1.1\r\nHost: x\r\n');
      const drip = setInterval(() => s.writable && s.write('X-Drip: 1\r\n'), 100);
      const closed = new Promise<string>((resolve) => {
        let reply = '';
        s.on('data', (d: Buffer) => (reply += d.toString()));
        s.on('close', () => {
          clearInterval(drip);
          resolve(reply);
        });
      });
      return { s, closed };
    });
    for (let i = 0; i < 20; i++) assert.equal((await get(m.port, '/', { agent: false })).status, 200);
    const replies = await Promise.all(slow.map((c) => c.closed));
    // Node answers a header timeout with 408 before closing.
    for (const r of replies) assert.ok(r === '' || /^HTTP\/1\.1 408 /.test(r), r);
    assert.equal(bs[0]!.requests, 20, 'no slow request reached the backend');
  });

  it('gives up on a connect after timeouts.connect and retries on another endpoint; alone, it is a 502 connect_failure', { timeout: 30_000, skip: python3 ? false : 'python3 is missing (the black-hole port needs it)' }, async () => {
    const hole = await blackhole();
    const bs = await backends(1);
    cleanup.push(...bs, hole);
    const timeouts = { connect: '200ms', request: '5s' };
    const both = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [{ name: 'c', timeouts, endpoints: [{ address: `127.0.0.1:${hole.port}`, id: 'hole' }, { address: `127.0.0.1:${bs[0]!.port}`, id: 'ok' }] }],
      }),
    );
    cleanup.push(both);
    for (let i = 0; i < 4; i++) {
      const r = await get(both.port, '/', { agent: false });
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-backend'], 'b0');
    }
    const triedHole = both.records.filter((r) => r.attempts === 2);
    assert.ok(triedHole.length >= 1, 'round robin sent some of them to the black hole first, then retried');
    const alone = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [{ name: 'c', timeouts, retries: { attempts: 0 }, endpoints: [{ address: `127.0.0.1:${hole.port}`, id: 'hole' }] }],
      }),
    );
    cleanup.push(alone);
    const r = await get(alone.port, '/', { agent: false });
    assert.equal(r.status, 502);
    assert.equal(r.headers['x-meridian-reason'], 'connect_failure');
  });

  it('retires idle upstream connections after the cluster idle timeout', async () => {
    const bs = await backends(1);
    const m = await startMeridian(simpleConfig(bs, { timeouts: { idle: '200ms' } }));
    cleanup.push(m, ...bs);
    await Promise.all(Array.from({ length: 5 }, () => get(m.port, '/slow?ms=50')));
    const pool = () => m.meridian.clusters()[0]!.endpoints[0]!;
    assert.ok(pool().poolIdle >= 1, 'connections are pooled');
    await until(() => pool().poolOpen === 0, 5000, 'idle upstream connections to be closed');
    assert.equal((await get(m.port)).status, 200, 'a new connection is opened as needed');
  });

  it('closes idle client keep-alive connections after the listener idle timeout', async () => {
    const bs = await backends(1);
    const m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }], timeouts: { idle: '200ms' } }],
        clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${bs[0]!.port}` }] }],
      }),
    );
    cleanup.push(m, ...bs);
    const s = connect(m.port, '127.0.0.1');
    let reply = '';
    s.on('data', (d: Buffer) => (reply += d.toString()));
    const closed = new Promise<void>((r) => s.on('close', () => r()));
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await closed;
    assert.match(reply, /^HTTP\/1\.1 200 /);
  });
});
