// The time of the read being handled (src/http1/read-time.ts): one clock read per read the
// engine handles, held for that read's synchronous handling only, on both sides of the
// engine (the server's reads, the upstream client's), over real loopback sockets.
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, describe, it } from 'node:test';
import { holdReadTime, nowMs, releaseReadTime } from '../../src/http1/read-time.js';
import { Http1Server } from '../../src/http1/server.js';
import { EndpointPool, plainConnector, type ResponseHandler } from '../../src/http1/upstream-client.js';
import { raw } from '../proxy/harness.js';

const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

/** Spin until performance.now() has moved past `t`: the real clock provably advanced. */
function spinPast(t: number): void {
  while (performance.now() <= t + 0.05);
}

/** Two nowMs() readings with the real clock moved between them, and where the real clock was. */
function twoReadings(): { first: number; second: number; real: number } {
  const first = nowMs();
  spinPast(first);
  return { first, second: nowMs(), real: performance.now() };
}

describe('the time of the read being handled', () => {
  it('is held from holdReadTime to releaseReadTime, and read from the clock outside', () => {
    const before = performance.now();
    holdReadTime();
    let held: ReturnType<typeof twoReadings>;
    try {
      held = twoReadings();
    } finally {
      releaseReadTime();
    }
    assert.equal(held.second, held.first, 'one value while held');
    assert.ok(held.first >= before && held.first < held.real);
    const free = twoReadings();
    assert.ok(free.second > free.first, 'the clock, once released');
  });

  it('holds for a request handled in the server engine, and not past it', async () => {
    let inRead: ReturnType<typeof twoReadings> | undefined;
    let later: ReturnType<typeof twoReadings> | undefined;
    const engine = new Http1Server(
      { maxHeadBytes: 8192, maxFields: 50, headersTimeoutMs: 5000, idleTimeoutMs: 5000 },
      {
        request: (_req, res) => {
          inRead = twoReadings();
          setImmediate(() => {
            later = twoReadings();
            res.writeHead(200, { 'content-length': 2 }).end('ok');
          });
        },
        upgrade: undefined,
        clientError: (_err, socket) => socket.destroy(),
      },
    );
    const server = createServer((s) => engine.connection(s));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const sent = performance.now();
    const out = await raw((server.address() as AddressInfo).port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(inRead !== undefined && later !== undefined);
    assert.equal(inRead.second, inRead.first, 'the read’s time, however long its handling took');
    assert.ok(inRead.first >= sent, 'taken when the read was handled');
    assert.ok(later.second > later.first, 'an immediate after the read reads the clock');
    assert.ok(later.first >= inRead.real);
  });

  it('holds for a response handled in the upstream client', async () => {
    const backend = createServer((s) => s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')));
    servers.push(backend);
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    const pool = new EndpointPool({ host: '127.0.0.1', port: (backend.address() as AddressInfo).port, maxConnections: 1, idleTimeoutMs: 1000, connectTimeoutMs: 1000, connector: plainConnector });
    const seen: { headers?: ReturnType<typeof twoReadings>; data?: number; complete?: number } = {};
    await new Promise<void>((resolve, reject) => {
      const handler: ResponseHandler = {
        onConnect: () => {},
        onHeaders: () => {
          seen.headers = twoReadings();
          return true;
        },
        onData: () => {
          seen.data = nowMs();
          return true;
        },
        onComplete: () => {
          seen.complete = nowMs();
          resolve();
        },
        onError: reject,
      };
      pool.dispatch({ method: 'GET', path: '/', headers: { host: 'x' }, body: null }, handler);
    });
    const h = seen.headers as ReturnType<typeof twoReadings>;
    assert.equal(h.second, h.first);
    // Head, body and end came in one read: all three see its time.
    assert.equal(seen.data, h.first);
    assert.equal(seen.complete, h.first);
    pool.destroy();
  });
});
