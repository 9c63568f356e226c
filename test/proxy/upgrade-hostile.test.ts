// Upgrade requests as a hostile (or merely unusual) client sends them, through a real
// Meridian, raw bytes over real sockets on 127.0.0.1: upgrades the backend refuses
// (nothing may leak), upgrades with a body (forwarded whole), and Upgrade tokens a route
// does not allow (refused; h2c stripped). docs/hostile-input.md, "Upgrade requests".
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { after, describe, it, type TestContext } from 'node:test';
import type { Clock } from '../../src/core/clock.js';
import type { Config } from '../../src/config/index.js';
import type { ExchangeRecord } from '../../src/proxy/forward.js';
import { Meridian } from '../../src/node/meridian.js';
import { config, freePort, get, quiet, startMeridian, sendRaw, until, type Running, type Sent } from './harness.js';

/** Raw bytes in, everything back (harness.ts sendRaw), waiting at most 3000 ms by default. */
function send(port: number, parts: string | Buffer | readonly (string | Buffer)[], ms = 3000, gapMs = 0): Promise<Sent> {
  return sendRaw(port, parts, ms, gapMs);
}

/**
 * A client that never closes: raw bytes in, everything back until Meridian's FIN, and
 * the socket, still open on this side, for the caller to destroy.
 */
function sendAndHold(port: number, bytes: string): Promise<{ reply: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('end', () => resolve({ reply: Buffer.concat(chunks).toString('latin1'), socket: s }));
    s.write(bytes);
  });
}

/** A request head asking to upgrade; `extra` header lines end with \r\n. */
function upgradeHead(path: string, protocol = 'websocket', extra = '', method = 'GET', version = '1.1'): string {
  return `${method} ${path} HTTP/${version}\r\nHost: meridian.test\r\nConnection: Upgrade\r\nUpgrade: ${protocol}\r\n${extra}\r\n`;
}

/** 54 bytes, as in the issue: long enough to notice a missing part. */
const BODY54 = 'fifty-four bytes of request body, sent with an upgrade';

interface Seen {
  readonly via: 'request' | 'upgrade';
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

interface HttpBackend {
  readonly port: number;
  readonly seen: Seen[];
  /** TCP connections open on the backend now. */
  open(): number;
  /** TCP connections ever accepted. */
  readonly connections: { n: number };
  close(): Promise<void>;
}

/**
 * A node:http backend that keeps its connections open (keep-alive for 10 minutes) and
 * answers every request with what it parsed — status from `/s/NNN`, default 200 — as
 * JSON. With `upgrade`, it also accepts every Upgrade (any token) with a 101 and echoes
 * the tunnel; without, node parses Upgrade requests as ordinary ones, body included.
 */
async function httpBackend(opts: { upgrade?: boolean } = {}): Promise<HttpBackend> {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  const connections = { n: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('latin1');
      seen.push({ via: 'request', method: req.method ?? '', url: req.url ?? '', httpVersion: req.httpVersion, headers: req.headers, body });
      const status = Number(/^\/s\/(\d{3})/.exec(req.url ?? '')?.[1] ?? 200);
      const out = JSON.stringify({ url: req.url, bytes: Buffer.byteLength(body, 'latin1'), body });
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) }).end(out);
    });
  });
  server.keepAliveTimeout = 600_000;
  server.on('connection', (s: Socket) => {
    connections.n++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  if (opts.upgrade) {
    server.on('upgrade', (req, socket: Socket, head: Buffer) => {
      seen.push({ via: 'upgrade', method: req.method ?? '', url: req.url ?? '', httpVersion: req.httpVersion, headers: req.headers, body: head.toString('latin1') });
      socket.on('error', () => {});
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${String(req.headers.upgrade)}\r\n\r\n`);
      socket.pipe(socket);
    });
  }
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    seen,
    open: () => sockets.size,
    connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

interface RawBackend {
  readonly port: number;
  /** Each request as received: its head, and the body its Content-Length announced. */
  readonly requests: { head: string; body: string }[];
  readonly connections: { n: number };
  close(): Promise<void>;
}

/**
 * A hand-made upgrading server: reads a request head, then the Content-Length body it
 * announces (none with `eager`), answers 101 whatever was asked, and echoes everything
 * after. `eager` also sends "from-backend" right after its 101: a backend that switches
 * protocols when it was not asked to.
 */
async function rawBackend(opts: { eager?: boolean } = {}): Promise<RawBackend> {
  const requests: { head: string; body: string }[] = [];
  const sockets = new Set<Socket>();
  const connections = { n: 0 };
  const server: TcpServer = createTcpServer((s) => {
    connections.n++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end + 4).toString('latin1');
      const length = opts.eager ? 0 : Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + length) return;
      s.off('data', onData);
      requests.push({ head, body: buf.subarray(end + 4, end + 4 + length).toString('latin1') });
      const rest = buf.subarray(end + 4 + length);
      s.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      if (opts.eager) s.write('from-backend');
      if (rest.length > 0) s.write(rest);
      s.pipe(s);
    };
    s.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    requests,
    connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

function meridianConfig(port: number, opts: { routes?: Record<string, unknown>[]; limits?: Record<string, unknown>; cluster?: Record<string, unknown> } = {}): Config {
  return config({
    admin: { port: 0 },
    access_log: { enabled: false },
    listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: opts.routes ?? [{ cluster: 'c' }], ...(opts.limits ? { limits: opts.limits } : {}) }],
    clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${port}`, id: 'b0' }], ...opts.cluster }],
  });
}

const fdCount = (): number => readdirSync('/proc/self/fd').length;

/** The access record of the request with this path (each test uses paths of its own). */
async function recordOf(m: Running, path: string): Promise<ExchangeRecord> {
  await until(() => m.records.some((r) => r.path === path), 5000, `the access record of ${path}`);
  return m.records.find((r) => r.path === path) as ExchangeRecord;
}

/**
 * "The backend saw nothing": asserted only once the backend had every chance to see it —
 * the refused connection is closed (the caller awaited it) and a later marker request
 * through the same Meridian has reached the backend.
 */
async function markerSeen(m: Running, b: HttpBackend, path: string): Promise<void> {
  const r = await get(m.port, path);
  assert.equal(r.status, 200);
  await until(() => b.seen.some((s) => s.url === path), 5000, 'the marker at the backend');
}

describe('upgrade requests the backend answers without a 101', () => {
  const cleanup: { close(): Promise<void> }[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c.close();
  });

  it('release both connections: 200 of them (50 from clients that never close) leave no backend connection and no fd behind, and drain ends', async (t: TestContext) => {
    if (!existsSync('/proc/self/fd')) return t.skip('needs /proc/self/fd to count file descriptors');
    const b = await httpBackend();
    cleanup.push(b);
    // A clock that never moves: drain can only end because nothing is left to wait for.
    const frozen: Clock = { nowMs: () => 0 };
    const meridian = new Meridian(meridianConfig(b.port), { logger: quiet, onAccess: () => {}, seed: 7, clock: frozen });
    await meridian.start();
    const port = Object.values(meridian.ports())[0] as number;
    let stopped = false;
    cleanup.push({ close: async () => (stopped ? undefined : meridian.close()) });
    const baseFds = fdCount();
    for (let round = 0; round < 3; round++) {
      const replies = await Promise.all(
        Array.from({ length: 50 }, (_, i) => send(port, upgradeHead(`/s/${i % 2 === 0 ? 200 : 426}?r=${round}&i=${i}`), 10_000)),
      );
      replies.forEach((r, i) => {
        const status = i % 2 === 0 ? 200 : 426;
        // The backend's answer arrives whole: its status, its headers, its body to the last byte.
        assert.match(r.reply, new RegExp(`^HTTP/1\\.1 ${status} ${status === 200 ? 'OK' : 'Upgrade Required'}\\r\\n`));
        assert.match(r.reply, /\r\ncontent-type: application\/json\r\n/);
        assert.match(r.reply, /\r\nconnection: close\r\n/);
        assert.deepEqual(JSON.parse(r.body), { url: `/s/${status}?r=${round}&i=${i}`, bytes: 0, body: '' });
        assert.ok(r.closedByServer, 'Meridian closes the client connection after the answer');
      });
    }
    // 50 more from clients that never close their side: Meridian must not wait for them.
    const held = await Promise.all(Array.from({ length: 50 }, (_, i) => sendAndHold(port, upgradeHead(`/s/426?held=${i}`))));
    cleanup.push({ close: async () => held.forEach((h) => h.socket.destroy()) });
    for (const h of held) assert.match(h.reply, /^HTTP\/1\.1 426 Upgrade Required\r\n[^]*\r\n\r\n\{"url":"\/s\/426\?held=\d+","bytes":0,"body":""\}$/);
    assert.equal(b.connections.n, 200, 'each upgrade request had a connection of its own');
    await until(() => b.open() === 0, 10_000, `the backend's connections to close (${b.open()} open)`);
    // Meridian's side of every connection is closed; the 50 held ones are this test's own fds.
    await until(() => fdCount() <= baseFds + held.length, 10_000, `fds to return to ${baseFds} + ${held.length} held by the test (${fdCount()} open)`);
    assert.equal(meridian.inFlight, 0);
    // SIGTERM's drain: with the clock frozen, its deadline never comes; it ends only if nothing is counted as open.
    const drained = meridian.drainAndStop(60_000).then(() => 'drained');
    const stuck = new Promise((r) => setTimeout(() => r('still draining'), 5000).unref());
    assert.equal(await Promise.race([drained, stuck]), 'drained');
    stopped = true;
  });
});

describe('upgrade requests with a body', () => {
  const cleanup: { close(): Promise<void> }[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c.close();
  });

  it('a Content-Length body goes upstream whole and counted; the backend parses it and answers', async () => {
    const b = await httpBackend();
    const m = await startMeridian(meridianConfig(b.port));
    cleanup.push(b, m);
    const r = await send(m.port, upgradeHead('/cl', 'websocket', 'Content-Length: 54\r\n', 'POST') + BODY54);
    assert.equal(r.status, 200, r.reply);
    assert.deepEqual(JSON.parse(r.body), { url: '/cl', bytes: 54, body: BODY54 });
    const seen = b.seen.find((s) => s.url === '/cl');
    assert.equal(seen?.headers['content-length'], '54');
    assert.equal((await recordOf(m, '/cl')).bytesIn, 54);
  });

  it('a Content-Length body sent in pieces after the head is waited for', async () => {
    const b = await httpBackend();
    const m = await startMeridian(meridianConfig(b.port));
    cleanup.push(b, m);
    const r = await send(m.port, [upgradeHead('/late', 'websocket', 'Content-Length: 54\r\n', 'POST'), BODY54.slice(0, 20), BODY54.slice(20)], 3000, 50);
    assert.equal(r.status, 200, r.reply);
    assert.deepEqual(JSON.parse(r.body), { url: '/late', bytes: 54, body: BODY54 });
  });

  it('a chunked body is decoded (extensions, trailers) and goes upstream with its length', async () => {
    const b = await httpBackend();
    const m = await startMeridian(meridianConfig(b.port));
    cleanup.push(b, m);
    const chunked = `1b;name=value\r\n${BODY54.slice(0, 27)}\r\n1B\r\n${BODY54.slice(27)}\r\n0\r\nX-Trailer: dropped\r\n\r\n`;
    const r = await send(m.port, [upgradeHead('/chunked', 'websocket', 'Transfer-Encoding: chunked\r\n', 'POST'), chunked.slice(0, 30), chunked.slice(30)], 3000, 30);
    assert.equal(r.status, 200, r.reply);
    assert.deepEqual(JSON.parse(r.body), { url: '/chunked', bytes: 54, body: BODY54 });
    const seen = b.seen.find((s) => s.url === '/chunked');
    assert.equal(seen?.headers['content-length'], '54');
    assert.equal(seen?.headers['transfer-encoding'], undefined);
    assert.equal((await recordOf(m, '/chunked')).bytesIn, 54);
  });

  it('a body larger than Meridian holds streams on: 300 KB with Content-Length, and chunked', async () => {
    const b = await httpBackend();
    const m = await startMeridian(meridianConfig(b.port));
    cleanup.push(b, m);
    const big = Buffer.alloc(300_000, 'abcdefghij').toString('latin1');
    const cl = await send(m.port, upgradeHead('/big-cl', 'websocket', `Content-Length: ${big.length}\r\n`, 'POST') + big, 10_000);
    assert.equal(cl.status, 200, cl.reply.slice(0, 200));
    assert.equal(JSON.parse(cl.body).bytes, big.length);
    assert.equal(b.seen.find((s) => s.url === '/big-cl')?.body, big);
    const pieces = [upgradeHead('/big-chunked', 'websocket', 'Transfer-Encoding: chunked\r\n', 'POST')];
    for (let at = 0; at < big.length; at += 50_000) pieces.push(`c350\r\n${big.slice(at, at + 50_000)}\r\n`);
    pieces.push('0\r\n\r\n');
    const ch = await send(m.port, pieces, 10_000, 5);
    assert.equal(ch.status, 200, ch.reply.slice(0, 200));
    const seen = b.seen.find((s) => s.url === '/big-chunked');
    assert.equal(seen?.body, big);
    assert.equal(seen?.headers['transfer-encoding'], 'chunked', 'too long to hold: chunked again');
    assert.equal((await recordOf(m, '/big-chunked')).bytesIn, big.length);
  });

  it('a connect failure is retried on another endpoint with the body sent again', async () => {
    const b = await httpBackend();
    const dead = await freePort();
    const m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${dead}` }, { address: `127.0.0.1:${b.port}` }], retries: { budget: { percent: 100, min_per_second: 100 } } }],
      }),
    );
    cleanup.push(b, m);
    // Round robin sends one of the first two requests to the dead endpoint first.
    for (const path of ['/retry-a', '/retry-b']) {
      const r = await send(m.port, upgradeHead(path, 'websocket', 'Content-Length: 54\r\n', 'POST') + BODY54);
      assert.equal(r.status, 200, r.reply);
      assert.deepEqual(JSON.parse(r.body), { url: path, bytes: 54, body: BODY54 });
    }
    await until(() => m.records.length === 2);
    assert.ok(m.records.some((r) => r.attempts === 2), `a retried request among ${JSON.stringify(m.records.map((r) => r.attempts))}`);
  });

  it('with a 101: the body is the request\'s, the bytes after it go through the tunnel', async () => {
    const b = await rawBackend();
    const m = await startMeridian(meridianConfig(b.port));
    cleanup.push(b, m);
    const chunked = `36\r\n${BODY54}\r\n0\r\n\r\n`;
    const sent = await new Promise<string>((resolve) => {
      const s = connect(m.port, '127.0.0.1');
      let got = '';
      s.on('data', (c: Buffer) => {
        got += c.toString('latin1');
        if (got.endsWith('early-frame|late-frame')) s.end();
      });
      s.on('close', () => resolve(got));
      s.write(upgradeHead('/tunnel-body', 'websocket', 'Transfer-Encoding: chunked\r\n', 'GET') + chunked + 'early-frame|');
      setTimeout(() => s.write('late-frame'), 50);
    });
    assert.match(sent, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.ok(sent.endsWith('\r\n\r\nearly-frame|late-frame'), sent);
    assert.equal(b.requests.length, 1);
    assert.match(b.requests[0]?.head ?? '', /\r\ncontent-length: 54\r\n/);
    assert.equal(b.requests[0]?.body, BODY54);
    await until(() => m.records.length === 1);
    assert.equal(m.records[0]?.status, 101);
    assert.equal(m.records[0]?.bytesIn, 54 + 'early-frame|late-frame'.length);
  });

  it('a malformed chunk is refused with 400 and nothing goes upstream', async () => {
    const b = await httpBackend();
    const m = await startMeridian(meridianConfig(b.port));
    cleanup.push(b, m);
    for (const bad of ['zz\r\nhello\r\n0\r\n\r\n', ' 5\r\nhello\r\n0\r\n\r\n', '5\nhello\r\n0\r\n\r\n', '5\r\nhelloXX0\r\n\r\n', '12345678901234567890\r\n']) {
      const r = await send(m.port, upgradeHead('/bad-chunk', 'websocket', 'Transfer-Encoding: chunked\r\n', 'POST') + bad);
      assert.equal(r.status, 400, `${JSON.stringify(bad)}: ${r.reply}`);
      assert.match(r.reply, /\r\nx-meridian-reason: bad_request\r\n/);
      assert.ok(r.closedByServer);
    }
    await markerSeen(m, b, '/marker-chunk');
    assert.deepEqual(b.seen.map((s) => s.url), ['/marker-chunk']);
    assert.equal(b.connections.n, 1, 'only the marker connected');
  });

  it('a body over limits.max_body_bytes: 413, by Content-Length at once, or once the chunks pass it', async () => {
    const b = await httpBackend();
    const m = await startMeridian(meridianConfig(b.port, { limits: { max_body_bytes: 100 } }));
    cleanup.push(b, m);
    const cl = await send(m.port, upgradeHead('/big-cl', 'websocket', 'Content-Length: 101\r\n', 'POST'));
    assert.equal(cl.status, 413, cl.reply);
    assert.match(cl.reply, /\r\nx-meridian-reason: payload_too_large\r\n/);
    assert.ok(cl.closedByServer);
    const chunk = `3c\r\n${'x'.repeat(60)}\r\n`;
    const ch = await send(m.port, [upgradeHead('/big-chunked', 'websocket', 'Transfer-Encoding: chunked\r\n', 'POST'), chunk, chunk, '0\r\n\r\n'], 3000, 30);
    assert.equal(ch.status, 413, ch.reply);
    assert.ok(ch.closedByServer);
    await markerSeen(m, b, '/marker-big');
    assert.deepEqual(b.seen.map((s) => s.url), ['/marker-big']);
  });

  it('a body that never comes: 408 at the handshake deadline, nothing upstream', async () => {
    const b = await httpBackend();
    const m = await startMeridian(meridianConfig(b.port, { cluster: { timeouts: { connect: '100ms', request: '200ms' } } }));
    cleanup.push(b, m);
    const r = await send(m.port, upgradeHead('/slow', 'websocket', 'Content-Length: 54\r\n', 'POST') + BODY54.slice(0, 10), 5000);
    assert.equal(r.status, 408, r.reply);
    assert.match(r.reply, /\r\nx-meridian-reason: request_timeout\r\n/);
    assert.ok(r.closedByServer);
    await markerSeen(m, b, '/marker-slow');
    assert.deepEqual(b.seen.map((s) => s.url), ['/marker-slow']);
  });
});

describe('upgrade protocols allowed per route', () => {
  const cleanup: { close(): Promise<void> }[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c.close();
  });

  it('a token the route does not list is refused with 403 and reaches no backend', async () => {
    const b = await httpBackend({ upgrade: true });
    const m = await startMeridian(meridianConfig(b.port, { routes: [{ match: { path: { prefix: '/none' } }, cluster: 'c', upgrades: [] }, { cluster: 'c' }] }));
    cleanup.push(b, m);
    for (const [path, protocol] of [['/foo', 'foo'], ['/mixed', 'websocket, h2c'], ['/h2', 'h2'], ['/none/ws', 'websocket']] as const) {
      const r = await send(m.port, upgradeHead(path, protocol));
      assert.equal(r.status, 403, `${protocol}: ${r.reply}`);
      assert.match(r.reply, /\r\nx-meridian-reason: upgrade_refused\r\n/);
      assert.match(r.reply, /\r\nconnection: close\r\n/);
      assert.ok(r.closedByServer);
    }
    await markerSeen(m, b, '/marker-refused');
    assert.deepEqual(b.seen.map((s) => s.url), ['/marker-refused']);
    assert.equal(b.connections.n, 1, 'only the marker connected');
    // The default list still lets WebSocket through.
    const ws = await send(m.port, upgradeHead('/ws-ok', 'WebSocket'), 500);
    assert.match(ws.reply, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  });

  it('a protocol the route lists is tunnelled; websocket then is not', async () => {
    const b = await rawBackend();
    const m = await startMeridian(meridianConfig(b.port, { routes: [{ cluster: 'c', upgrades: ['foo'] }] }));
    cleanup.push(b, m);
    const tunnelled = await new Promise<string>((resolve) => {
      const s = connect(m.port, '127.0.0.1');
      let got = '';
      s.on('data', (c: Buffer) => {
        got += c.toString('latin1');
        if (got.includes('\r\n\r\n') && !got.endsWith('ping')) s.write('ping');
        if (got.endsWith('ping')) s.end();
      });
      s.on('close', () => resolve(got));
      s.write(upgradeHead('/foo', 'Foo'));
    });
    assert.match(tunnelled, /^HTTP\/1\.1 101 Switching Protocols\r\n[^]*\r\n\r\nping$/);
    const ws = await send(m.port, upgradeHead('/ws', 'websocket'));
    assert.equal(ws.status, 403);
    assert.equal(b.requests.length, 1);
  });

  it('h2c is stripped and the request forwarded as a plain one (Connection, Upgrade, HTTP2-Settings removed)', async () => {
    const b = await httpBackend({ upgrade: true });
    const m = await startMeridian(meridianConfig(b.port));
    cleanup.push(b, m);
    const head =
      'GET /h2c HTTP/1.1\r\nHost: meridian.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n';
    const r = await send(m.port, head);
    assert.equal(r.status, 200, r.reply);
    assert.deepEqual(JSON.parse(r.body), { url: '/h2c', bytes: 0, body: '' });
    assert.ok(r.closedByServer);
    const seen = b.seen.find((s) => s.url === '/h2c');
    assert.equal(seen?.via, 'request', 'the backend saw an ordinary request, not an upgrade');
    assert.equal(seen?.headers['upgrade'], undefined);
    assert.equal(seen?.headers['http2-settings'], undefined);
    assert.doesNotMatch(String(seen?.headers['connection']), /upgrade/i);
    assert.equal(seen?.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal((await recordOf(m, '/h2c')).status, 200);
  });

  it('h2c from curl --http2, with a body: answered over HTTP/1.1', async (t: TestContext) => {
    if (spawnSync('curl', ['--version'], { stdio: 'ignore' }).error) return t.skip('curl is not installed');
    const b = await httpBackend({ upgrade: true });
    const m = await startMeridian(meridianConfig(b.port));
    cleanup.push(b, m);
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn('curl', ['-sS', '--http2', '--max-time', '5', '-d', BODY54, `http://127.0.0.1:${m.port}/curl`], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      c.on('close', (code: number) => (code === 0 ? resolve(stdout) : reject(new Error(`curl exit ${code}: ${stderr}`))));
    });
    assert.deepEqual(JSON.parse(out), { url: '/curl', bytes: 54, body: BODY54 });
    assert.equal(b.seen.find((s) => s.url === '/curl')?.via, 'request');
  });

  it('a backend that answers 101 to the stripped h2c request gets 502: no tunnel', async () => {
    const b = await rawBackend({ eager: true });
    const m = await startMeridian(meridianConfig(b.port));
    cleanup.push(b, m);
    const r = await send(m.port, 'GET /h2c-101 HTTP/1.1\r\nHost: meridian.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\nclient-bytes');
    assert.equal(r.status, 502, r.reply);
    assert.match(r.reply, /\r\nx-meridian-reason: upstream_protocol_error\r\n/);
    // One head, Meridian's: nothing of the backend's 101 or its bytes. (Not a bare /101/: the
    // random x-request-id may hold those digits.)
    assert.equal(r.reply.match(/^HTTP\/1\.1 /gm)?.length, 1, r.reply);
    assert.doesNotMatch(r.reply, /from-backend|Switching Protocols/);
    assert.ok(r.closedByServer);
    assert.equal(b.requests.length, 1);
    assert.doesNotMatch(b.requests[0]?.head ?? '', /upgrade|http2-settings/i);
  });

  it('an HTTP/1.0 Upgrade is ignored (RFC 9110 §7.8): forwarded as a plain request', async () => {
    const b = await httpBackend({ upgrade: true });
    const m = await startMeridian(meridianConfig(b.port));
    cleanup.push(b, m);
    const r = await send(m.port, upgradeHead('/old', 'websocket', '', 'GET', '1.0'));
    assert.equal(r.status, 200, r.reply);
    assert.equal(b.seen.find((s) => s.url === '/old')?.via, 'request');
    assert.equal(b.seen.find((s) => s.url === '/old')?.headers['upgrade'], undefined);
  });
});
