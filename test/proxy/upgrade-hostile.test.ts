// Upgrade requests as a hostile (or merely unusual) client sends them, through a real
// Meridian, raw bytes over real sockets on 127.0.0.1: upgrades the backend refuses
// (nothing may leak), upgrades with a body (forwarded whole), and Upgrade tokens a route
// does not allow (refused; h2c stripped). docs/hostile-input.md, "Upgrade requests".
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, describe, it, type TestContext } from 'node:test';
import type { Clock } from '../../src/core/clock.js';
import type { Config } from '../../src/config/index.js';
import { Meridian } from '../../src/proxy/meridian.js';
import { config, quiet, until } from './harness.js';

interface Sent {
  /** Everything Meridian wrote back, as latin1 text. */
  readonly reply: string;
  /** The status line's code, 0 when nothing came back. */
  readonly status: number;
  /** The reply's body: what follows the first blank line. */
  readonly body: string;
  /** True when Meridian closed the connection before `ms` ran out. */
  readonly closedByServer: boolean;
}

/** Raw bytes in (each part written `gapMs` after the last), everything back until Meridian closes or `ms` passes. */
function send(port: number, parts: string | Buffer | readonly (string | Buffer)[], ms = 3000, gapMs = 0): Promise<Sent> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      s.destroy();
    }, ms);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      const reply = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(reply);
      const at = reply.indexOf('\r\n\r\n');
      resolve({ reply, status: m ? Number(m[1]) : 0, body: at < 0 ? '' : reply.slice(at + 4), closedByServer: !timedOut });
    });
    const list = typeof parts === 'string' || Buffer.isBuffer(parts) ? [parts] : parts;
    void (async () => {
      for (const p of list) {
        if (s.destroyed) return;
        s.write(p);
        if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      }
    })();
  });
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

function meridianConfig(port: number, opts: { routes?: Record<string, unknown>[]; limits?: Record<string, unknown>; cluster?: Record<string, unknown> } = {}): Config {
  return config({
    admin: { port: 0 },
    access_log: { enabled: false },
    listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: opts.routes ?? [{ cluster: 'c' }], ...(opts.limits ? { limits: opts.limits } : {}) }],
    clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${port}`, id: 'b0' }], ...opts.cluster }],
  });
}

const fdCount = (): number => readdirSync('/proc/self/fd').length;

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
