// Adaptive concurrency in the proxy, over real sockets: refusals (503 overloaded with
// Retry-After) and priority classes at the queue (docs/overload.md).
import assert from 'node:assert/strict';
import { createServer, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { closeAll, config, get, startMeridian, until } from './harness.js';

/** A backend that records each request's path and holds `/hold` until released. */
async function holdingBackend(): Promise<{ port: number; seen: string[]; held: ServerResponse[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const held: ServerResponse[] = [];
  const server = createServer((req, res) => {
    seen.push(req.url ?? '');
    if (req.url === '/hold') held.push(res);
    else res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    held,
    close: () =>
      new Promise<void>((resolve) => {
        for (const r of held) r.end();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('adaptive concurrency in the proxy', () => {
  const cleanup: { close(): Promise<void> }[] = [];
  after(() => closeAll(cleanup));

  it('over the limit: a sheddable waiter is pushed out for a critical one (503 overloaded, Retry-After), a default one finds the queue full of critical, and the critical one goes next', async () => {
    const b = await holdingBackend();
    // A limit of exactly one request in flight and a queue of one, so what is admitted, queued and refused is known.
    const m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [
          {
            name: 'c',
            endpoints: [{ address: `127.0.0.1:${b.port}`, id: 'b0' }],
            adaptive_concurrency: { min_limit: 1, max_limit: 1, priority_header: 'x-priority', queue: { max: 1, interval: '10s' } },
          },
        ],
      }),
    );
    cleanup.push(m, b);
    const metric = async (name: string) => {
      const line = (await m.meridian.metrics.metricsText()).split('\n').find((l) => l.startsWith(name));
      return line === undefined ? undefined : Number(line.split(' ').pop());
    };
    const held = get(m.port, '/hold', { agent: false });
    await until(() => b.seen.length === 1, 5000, 'the first request at the backend');
    const sheddable = get(m.port, '/sheddable', { agent: false, headers: { 'x-priority': 'sheddable' } });
    await until(async () => (await metric('meridian_adaptive_concurrency_queued{cluster="c"}')) === 1, 5000, 'the sheddable request queued');
    const critical = get(m.port, '/critical', { agent: false, headers: { 'x-priority': 'critical' } });
    const shed = await sheddable;
    assert.equal(shed.status, 503);
    assert.equal(shed.headers['x-meridian-reason'], 'overloaded');
    assert.equal(shed.headers['retry-after'], '1');
    const refusedDefault = await get(m.port, '/default', { agent: false });
    assert.equal(refusedDefault.status, 503);
    assert.equal(refusedDefault.headers['x-meridian-reason'], 'overloaded');
    assert.equal(await metric('meridian_adaptive_concurrency_limit{cluster="c"}'), 1);
    assert.equal(await metric('meridian_adaptive_concurrency_refused_requests{cluster="c",class="sheddable"}'), 1);
    assert.equal(await metric('meridian_adaptive_concurrency_refused_requests{cluster="c",class="default"}'), 1);
    (b.held[0] as ServerResponse).end('done');
    assert.equal((await held).status, 200);
    const crit = await critical;
    assert.equal(crit.status, 200);
    // The critical request reached the backend after the first one ended; the refused ones never did.
    assert.deepEqual(b.seen, ['/hold', '/critical']);
  });

  it('a queued request whose client leaves gives up its place and never reaches the backend', async () => {
    const b = await holdingBackend();
    const m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${b.port}`, id: 'b0' }], adaptive_concurrency: { min_limit: 1, max_limit: 1, queue: { interval: '10s' } } }],
      }),
    );
    cleanup.push(m, b);
    const queued = async () => Number((await m.meridian.metrics.metricsText()).split('\n').find((l) => l.startsWith('meridian_adaptive_concurrency_queued{cluster="c"}'))?.split(' ').pop());
    const held = get(m.port, '/hold', { agent: false });
    await until(() => b.seen.length === 1, 5000, 'the first request at the backend');
    const gone = request({ host: '127.0.0.1', port: m.port, path: '/gone', agent: false });
    gone.on('error', () => {});
    gone.end();
    await until(async () => (await queued()) === 1, 5000, 'the second request queued');
    gone.destroy();
    await until(async () => (await queued()) === 0, 5000, 'the queue to give up the request whose client left');
    (b.held[0] as ServerResponse).end('done');
    assert.equal((await held).status, 200);
    // A later request goes through: the slot was given back, and the request that left never reached the backend.
    assert.equal((await get(m.port, '/marker', { agent: false })).status, 200);
    assert.deepEqual(b.seen, ['/hold', '/marker']);
  });
});
