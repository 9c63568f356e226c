// WebSocket (HTTP/1.1 Upgrade) through handleUpgrade, with real sockets on 127.0.0.1: a
// `ws` echo backend, a `ws` client, and a bare http server that hands its 'upgrade'
// events to handleUpgrade (no dependency on Meridian's own wiring).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import type { Clock } from '../../src/core/clock.js';
import { SeededRng } from '../../src/core/rng.js';
import type { Config, HttpListenerConfig } from '../../src/config/index.js';
import type { ExchangeRecord, ListenerContext } from '../../src/proxy/forward.js';
import { buildRuntime } from '../../src/proxy/runtime.js';
import { handleUpgrade, UpgradeTracker } from '../../src/proxy/upgrade.js';
import { config, freePort, raw, until } from './harness.js';

const clock: Clock = { nowMs: () => performance.now() };

interface Proxy {
  readonly port: number;
  readonly tracker: UpgradeTracker;
  readonly records: ExchangeRecord[];
  close(): Promise<void>;
}

async function startProxy(cfg: Config): Promise<Proxy> {
  const rt = buildRuntime(cfg, undefined, clock, new SeededRng(7)).runtime;
  const l = cfg.listeners[0] as HttpListenerConfig;
  const records: ExchangeRecord[] = [];
  const base = {
    listener: l.name,
    encrypted: false,
    limits: l.limits,
    clock,
    runtime: () => rt,
    draining: () => false,
    hooks: { done: (r: ExchangeRecord) => records.push(r), retry: () => {}, retryRefused: () => {} },
  };
  const ctx: ListenerContext = base;
  const tracker = new UpgradeTracker();
  const server = createServer((_req, res) => res.writeHead(426).end());
  server.on('upgrade', (req, socket, head) => handleUpgrade(ctx, tracker, req, socket, head));
  const port = await listen(server);
  return {
    port,
    tracker,
    records,
    close: async () => {
      tracker.closeAll();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

function listen(server: Server | TcpServer): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

interface Backend {
  readonly port: number;
  readonly wss: WebSocketServer;
  connections: number;
  close(): Promise<void>;
}

/** A `ws` echo server: every message comes back as it went, text as text, binary as binary. */
async function echoBackend(): Promise<Backend> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const b: Backend = {
    port: (wss.address() as { port: number }).port,
    wss,
    connections: 0,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    },
  };
  wss.on('connection', (ws) => {
    b.connections++;
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  return b;
}

function wsConfig(endpoints: readonly number[], routes: unknown[] = [{ cluster: 'c' }], cluster: Record<string, unknown> = {}): Config {
  return config({
    admin: { port: 0 },
    access_log: { enabled: false },
    listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes }],
    clusters: [{ name: 'c', policy: 'round_robin', endpoints: endpoints.map((p, i) => ({ address: `127.0.0.1:${p}`, id: `b${i}` })), ...cluster }],
  });
}

function open(port: number, path = '/ws'): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function roundTrip(ws: WebSocket, data: string | Buffer): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve, reject) => {
    ws.once('message', (d, isBinary) => resolve({ data: d as Buffer, isBinary }));
    ws.once('error', reject);
    ws.send(data);
  });
}

function closed(ws: WebSocket): Promise<number> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve(1006);
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

describe('websocket upgrade pass-through', () => {
  const cleanup: { close(): Promise<void> }[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c.close();
  });

  it('echoes a text message and a 1 MB binary message through the proxy', async () => {
    const b = await echoBackend();
    const p = await startProxy(wsConfig([b.port]));
    cleanup.push(b, p);
    const ws = await open(p.port);
    const text = await roundTrip(ws, 'hello through meridian');
    assert.equal(text.isBinary, false);
    assert.equal(text.data.toString(), 'hello through meridian');
    const big = randomBytes(1 << 20);
    const bin = await roundTrip(ws, big);
    assert.equal(bin.isBinary, true);
    assert.ok(bin.data.equals(big), 'the binary message comes back byte for byte');
    assert.equal(p.tracker.open, 1);
    ws.close(1000);
    assert.equal(await closed(ws), 1000);
    await until(() => p.records.length === 1, 5000, 'the tunnel record');
    const r = p.records[0] as ExchangeRecord;
    assert.equal(r.status, 101);
    assert.equal(r.endpoint, 'b0');
    assert.equal(r.reason, undefined);
    assert.ok(r.bytesIn > 1 << 20 && r.bytesOut > 1 << 20, `bytes counted both ways (${r.bytesIn} in, ${r.bytesOut} out)`);
    assert.equal(p.tracker.open, 0);
  });

  it('sends the forwarding headers upstream along with the upgrade headers', async () => {
    const b = await echoBackend();
    const p = await startProxy(wsConfig([b.port]));
    cleanup.push(b, p);
    const seen = new Promise<Record<string, unknown>>((resolve) => b.wss.once('connection', (_ws, req) => resolve(req.headers)));
    const ws = new WebSocket(`ws://127.0.0.1:${p.port}/ws`, { headers: { 'x-request-id': 'abc-123' } });
    await new Promise((r) => ws.once('open', r));
    const h = await seen;
    assert.equal(h['x-forwarded-for'], '127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-host'], `127.0.0.1:${p.port}`);
    assert.equal(h['x-request-id'], 'abc-123');
    assert.equal(String(h['upgrade']).toLowerCase(), 'websocket');
    assert.ok(h['sec-websocket-key'] !== undefined);
    ws.close();
    await closed(ws);
  });

  it('applies the route rate limit (429) before anything reaches a backend', async () => {
    const b = await echoBackend();
    const p = await startProxy(wsConfig([b.port], [{ cluster: 'c', rate_limit: { requests_per_second: 0.001, burst: 1 } }]));
    cleanup.push(b, p);
    const ws = await open(p.port);
    const reply = await raw(p.port, upgradeRequest('/ws'));
    assert.match(reply, /^HTTP\/1\.1 429 Too Many Requests\r\n/);
    assert.match(reply, /\r\nretry-after: \d+\r\n/);
    assert.match(reply, /\r\nx-meridian-reason: rate_limited\r\n/);
    assert.equal(b.connections, 1);
    ws.close();
    await closed(ws);
  });

  it('spreads upgrades over two backends with round robin', async () => {
    const b0 = await echoBackend();
    const b1 = await echoBackend();
    const p = await startProxy(wsConfig([b0.port, b1.port]));
    cleanup.push(b0, b1, p);
    const sockets = [];
    for (let i = 0; i < 4; i++) sockets.push(await open(p.port));
    assert.equal(b0.connections, 2);
    assert.equal(b1.connections, 2);
    assert.equal(p.tracker.open, 4);
    for (const ws of sockets) ws.close();
    await until(() => p.tracker.open === 0, 5000, 'all tunnels closed');
    assert.deepEqual(new Set(p.records.map((r) => r.endpoint)), new Set(['b0', 'b1']));
  });

  it('a backend reset mid-frame reaches the client; the proxy serves the next upgrade', async () => {
    // A hand-made WebSocket server: a correct 101, then half a frame, then a reset.
    const resetter = createTcpServer((s: Socket) => {
      s.on('error', () => {});
      let buf = '';
      s.on('data', (c) => {
        buf += c.toString('latin1');
        if (!buf.includes('\r\n\r\n')) return;
        const key = /sec-websocket-key: *(\S+)/i.exec(buf)?.[1] ?? '';
        const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
        s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
        // A text frame announcing 100 bytes, of which only 10 are sent.
        s.write(Buffer.concat([Buffer.from([0x81, 100]), Buffer.alloc(10, 0x61)]), () => setImmediate(() => s.resetAndDestroy()));
      });
    });
    const rport = await listen(resetter);
    cleanup.push({ close: () => new Promise((r) => resetter.close(() => r())) });
    const p = await startProxy(wsConfig([rport]));
    cleanup.push(p);
    const ws = await open(p.port, '/reset');
    ws.on('error', () => {});
    let gotMessage = false;
    ws.on('message', () => (gotMessage = true));
    assert.equal(await closed(ws), 1006, 'abnormal closure: no close frame');
    assert.equal(gotMessage, false, 'half a frame is never delivered as a message');
    await until(() => p.tracker.open === 0, 5000, 'the tunnel closed');
    assert.equal(p.records[0]?.status, 101);
    // Same proxy, next upgrade: served again (and cut again by the same backend).
    const again = await raw(p.port, upgradeRequest('/reset'));
    assert.match(again, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    await until(() => p.records.length === 2, 5000, 'the second tunnel record');
  });

  it('a client reset destroys the upstream side of the tunnel', async () => {
    const b = await echoBackend();
    const p = await startProxy(wsConfig([b.port]));
    cleanup.push(b, p);
    const upstreamClosed = new Promise<void>((resolve) => b.wss.once('connection', (s) => s.once('close', () => resolve())));
    const ws = await open(p.port);
    await roundTrip(ws, 'x');
    ws.on('error', () => {});
    (ws as unknown as { _socket: Socket })._socket.resetAndDestroy();
    await upstreamClosed;
    await until(() => p.tracker.open === 0, 5000, 'the tunnel closed');
    assert.equal(p.records[0]?.status, 101);
  });

  it('answers 404 with the no_route reason when no route matches', async () => {
    const b = await echoBackend();
    const p = await startProxy(wsConfig([b.port], [{ match: { path: { prefix: '/only' } }, cluster: 'c' }]));
    cleanup.push(b, p);
    const reply = await raw(p.port, upgradeRequest('/elsewhere'));
    assert.match(reply, /^HTTP\/1\.1 404 Not Found\r\n/);
    assert.match(reply, /\r\nx-meridian-reason: no_route\r\n/);
    assert.match(reply, /\r\n\r\nmeridian: no route matches this request \(no_route\)\n$/);
    assert.equal(b.connections, 0);
    await until(() => p.records.length === 1);
    assert.equal(p.records[0]?.status, 404);
    assert.equal(p.tracker.open, 0);
  });

  it('answers 502 connect_failure when every endpoint is dead, after retrying', async () => {
    const dead1 = await freePort();
    const dead2 = await freePort();
    const p = await startProxy(wsConfig([dead1, dead2], undefined, { retries: { attempts: 1, budget: { percent: 20, min_per_second: 100 } } }));
    cleanup.push(p);
    const reply = await raw(p.port, upgradeRequest('/ws'));
    assert.match(reply, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    assert.match(reply, /\r\nx-meridian-reason: connect_failure\r\n/);
    await until(() => p.records.length === 1);
    assert.equal(p.records[0]?.attempts, 2);
    assert.equal(p.tracker.open, 0);
  });

  it('retries a connect failure on the other endpoint', async () => {
    const b = await echoBackend();
    const dead = await freePort();
    const p = await startProxy(wsConfig([dead, b.port], undefined, { retries: { budget: { percent: 20, min_per_second: 100 } } }));
    cleanup.push(b, p);
    for (let i = 0; i < 2; i++) {
      const ws = await open(p.port);
      assert.equal((await roundTrip(ws, 'ok')).data.toString(), 'ok');
      ws.close();
    }
    await until(() => p.records.length === 2);
    assert.ok(p.records.some((r) => r.attempts === 2 && r.status === 101));
  });

  it('answers 504 when the upstream never answers the upgrade', async () => {
    const held = new Set<Socket>();
    const silent = createTcpServer((s) => {
      held.add(s);
      s.resume(); // read (and drop) the request, so the proxy's FIN is seen
      s.on('error', () => {});
      s.on('close', () => held.delete(s));
    });
    const sport = await listen(silent);
    cleanup.push({ close: () => new Promise((r) => silent.close(() => r())) });
    const p = await startProxy(wsConfig([sport], undefined, { timeouts: { connect: '100ms', request: '200ms' } }));
    cleanup.push(p);
    const reply = await raw(p.port, upgradeRequest('/ws'), 5000);
    assert.match(reply, /^HTTP\/1\.1 504 /);
    assert.match(reply, /\r\nx-meridian-reason: timeout\r\n/);
    // The proxy gave up on the upstream connection too.
    await until(() => held.size === 0, 5000, 'the upstream connection closed');
  });

  it('passes a non-101 answer through and closes', async () => {
    const plain = createServer((_req, res) => res.writeHead(403, { 'content-type': 'text/plain' }).end('no websockets here'));
    const pport = await listen(plain);
    cleanup.push({ close: () => new Promise((r) => { plain.closeAllConnections(); plain.close(() => r()); }) });
    const p = await startProxy(wsConfig([pport]));
    cleanup.push(p);
    const reply = await raw(p.port, upgradeRequest('/ws'));
    assert.match(reply, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.match(reply, /\r\n\r\nno websockets here$/);
    await until(() => p.records.length === 1);
    assert.equal(p.records[0]?.status, 403);
    assert.equal(p.tracker.open, 0);
  });

  it('tracker counts open tunnels, idle() waits for them and closeAll() closes them', async () => {
    const b = await echoBackend();
    const p = await startProxy(wsConfig([b.port]));
    cleanup.push(b, p);
    const a = await open(p.port);
    const c = await open(p.port);
    assert.equal(p.tracker.open, 2);
    // idle() gives up after its time when tunnels stay open.
    await p.tracker.idle(20);
    assert.equal(p.tracker.open, 2);
    const idle = p.tracker.idle(10_000);
    p.tracker.closeAll();
    assert.deepEqual(await Promise.all([closed(a), closed(c)]), [1006, 1006]);
    await idle;
    assert.equal(p.tracker.open, 0);
    await until(() => p.records.length === 2);
    await until(() => b.wss.clients.size === 0, 5000, 'backend connections closed');
  });
});

function upgradeRequest(path: string): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`
  );
}
