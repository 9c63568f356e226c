// Connection caps over real sockets: listeners[].max_connections and the process-wide
// max_connections. Over a cap a new connection is closed at accept, before a byte is read
// or written (Envoy's downstream_cx_overflow); the connections already open are served.
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { connect, createServer, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, describe, it } from 'node:test';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import type { Meridian } from '../../src/node/meridian.js';
import { certDir } from './certs.js';
import { backends, closeAll, config, startMeridian, until } from './harness.js';

interface Client {
  readonly socket: Socket;
  /** Everything received so far. */
  text(): string;
  /** Resolves when the connection closed; `bytes` is how many it received in all. */
  readonly closed: Promise<{ bytes: number }>;
}

/** Connect and wait for the TCP handshake, one at a time, so Meridian accepts them in this order. */
async function open(port: number): Promise<Client> {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  let bytes = 0;
  socket.on('error', () => {});
  socket.on('data', (d: Buffer) => {
    bytes += d.length;
    text += d.toString('latin1');
  });
  const closed = new Promise<{ bytes: number }>((resolve) => socket.on('close', () => resolve({ bytes })));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, text: () => text, closed };
}

/** One HTTP/1.1 request on an open connection: the status line of its answer. */
async function request(c: Client, path = '/'): Promise<string> {
  const before = c.text().length;
  c.socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  await until(() => /\r\n\r\n/.test(c.text().slice(before)), 5000, 'an answer');
  return c.text().slice(before).split('\r\n')[0] as string;
}

async function gauges(m: Meridian): Promise<{ active: Record<string, number>; refused: Record<string, number> }> {
  const families = parsePrometheusTextFormat(await m.metrics.metricsText());
  const of = (name: string, key: (l: Record<string, string>) => string) =>
    Object.fromEntries((families.find((f) => f.name === name)?.metrics ?? []).map((s) => [key(s.labels ?? {}), Number(s.value)]));
  return {
    active: of('meridian_connections_active', (l) => l['listener'] ?? ''),
    refused: of('meridian_connections_refused_total', (l) => `${l['listener']}/${l['reason']}`),
  };
}

describe('connection limits', () => {
  const cleanup: { close(): Promise<void> }[] = [];
  after(() => closeAll(cleanup));

  it('a listener with max_connections: 5 serves exactly 5 of 8 connections and closes 3 at accept; a freed slot is reused', async () => {
    const bs = await backends(1);
    const m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, max_connections: 5, routes: [{ cluster: 'c' }] }],
        clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${bs[0]!.port}` }] }],
      }),
    );
    cleanup.push(m, ...bs);
    const clients: Client[] = [];
    for (let i = 0; i < 8; i++) clients.push(await open(m.port));
    const [served, over] = [clients.slice(0, 5), clients.slice(5)];
    // The three over the cap are closed without a byte, before they sent anything.
    for (const c of over) assert.deepEqual(await c.closed, { bytes: 0 });
    for (const c of served) assert.equal(await request(c), 'HTTP/1.1 200 OK');
    assert.deepEqual(await gauges(m.meridian), { active: { web: 5 }, refused: { 'web/listener_limit': 3 } });

    served[0]!.socket.destroy();
    await until(async () => (await gauges(m.meridian)).active['web'] === 4, 5000, 'the closed connection to free its slot');
    const next = await open(m.port);
    assert.equal(await request(next), 'HTTP/1.1 200 OK');
    const again = await open(m.port);
    assert.deepEqual(await again.closed, { bytes: 0 });
    assert.deepEqual((await gauges(m.meridian)).refused, { 'web/listener_limit': 4 });

    // A reload raises the cap for new connections at once; the open ones stay.
    const raised = structuredClone(m.meridian.config);
    Object.assign(raised.listeners[0]!, { max_connections: 6 });
    assert.deepEqual(await m.meridian.reload(raised), { ok: true, summary: 'version 2: 1 listener, 1 cluster' });
    const sixth = await open(m.port);
    assert.equal(await request(sixth), 'HTTP/1.1 200 OK');
    assert.deepEqual(await (await open(m.port)).closed, { bytes: 0 });
    assert.deepEqual(await gauges(m.meridian), { active: { web: 6 }, refused: { 'web/listener_limit': 5 } });
    for (const c of [...served, next, sixth]) c.socket.destroy();
  });

  it('the process-wide max_connections counts every listener together, tcp included', async () => {
    const bs = await backends(1);
    const echo = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    cleanup.push({ close: () => new Promise<void>((r) => echo.close(() => r())) });
    const m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        max_connections: 4,
        listeners: [
          { name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] },
          { name: 'raw', address: '127.0.0.1', port: 0, protocol: 'tcp', cluster: 'echo' },
        ],
        clusters: [
          { name: 'c', endpoints: [{ address: `127.0.0.1:${bs[0]!.port}` }] },
          { name: 'echo', endpoints: [{ address: `127.0.0.1:${(echo.address() as { port: number }).port}` }] },
        ],
      }),
    );
    cleanup.push(m, ...bs);
    const { web, raw } = m.meridian.ports() as { web: number; raw: number };
    const held = [await open(web), await open(web), await open(raw), await open(raw)];
    const overWeb = await open(web);
    const overRaw = await open(raw);
    assert.deepEqual(await overWeb.closed, { bytes: 0 });
    assert.deepEqual(await overRaw.closed, { bytes: 0 });
    assert.equal(await request(held[0]!), 'HTTP/1.1 200 OK');
    held[2]!.socket.write('ping');
    await until(() => held[2]!.text() === 'ping', 5000, 'the tcp echo');
    assert.deepEqual(await gauges(m.meridian), { active: { web: 2, raw: 2 }, refused: { 'web/process_limit': 1, 'raw/process_limit': 1 } });
    for (const c of held) c.socket.destroy();
  });

  it('applies to h2c and https listeners: the connection over the cap is closed before any HTTP/2 or TLS byte', async () => {
    const bs = await backends(1);
    const certs = certDir();
    const cert = certs.make('limits.test');
    cleanup.push({ close: async () => certs.remove() });
    const m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [
          { name: 'h2c', address: '127.0.0.1', port: 0, max_connections: 2, http2: { enabled: true }, routes: [{ cluster: 'c' }] },
          { name: 'tls', address: '127.0.0.1', port: 0, max_connections: 2, protocol: 'https', tls: { certificates: [cert] }, routes: [{ cluster: 'c' }] },
        ],
        clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${bs[0]!.port}` }] }],
      }),
    );
    cleanup.push(m, ...bs);
    const { h2c, tls } = m.meridian.ports() as { h2c: number; tls: number };

    const sessions = [h2connect(`http://127.0.0.1:${h2c}`), h2connect(`http://127.0.0.1:${h2c}`)];
    const h2get = (session: ReturnType<typeof h2connect>) =>
      new Promise<number>((resolve, reject) => {
        const req = session.request({ ':path': '/' });
        req.on('response', (h) => resolve(Number(h[':status'])));
        req.on('error', reject);
        req.resume();
        req.end();
      });
    for (const s of sessions) assert.equal(await h2get(s), 200);
    assert.deepEqual(await (await open(h2c)).closed, { bytes: 0 });

    const tlsOpen = () =>
      new Promise<ReturnType<typeof tlsConnect>>((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port: tls, servername: 'limits.test', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => resolve(s));
        s.once('error', reject);
      });
    const secure = [await tlsOpen(), await tlsOpen()];
    assert.deepEqual(await (await open(tls)).closed, { bytes: 0 }, 'no TLS record either: closed at accept');
    await assert.rejects(tlsOpen(), /socket disconnected|ECONNRESET/);
    secure[0]!.write('GET / HTTP/1.1\r\nHost: limits.test\r\n\r\n');
    const answer = await new Promise<string>((resolve) => secure[0]!.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
    assert.match(answer, /^HTTP\/1\.1 200 /);

    assert.deepEqual(await gauges(m.meridian), { active: { h2c: 2, tls: 2 }, refused: { 'h2c/listener_limit': 1, 'tls/listener_limit': 2 } });
    for (const s of sessions) s.destroy();
    for (const s of secure) s.destroy();
  });
});
