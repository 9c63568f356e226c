// `meridian start` and `meridian quickstart` as real processes: signals, exit codes, ports.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { connect, createServer as createTcpServer, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Duplex } from 'node:stream';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startSampleBackend, type SampleBackend } from '../../src/backend/sample-backend.js';
import { certDir } from '../proxy/certs.js';
import { freePort, get, until } from '../proxy/harness.js';

function run(args: string[]): { child: ChildProcess; out: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, ['dist/src/cli/bin.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, out: () => out, exit };
}

const portFrom = (text: string, label: RegExp) => Number(label.exec(text)?.[1]);

describe('processes', () => {
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup) await c();
  });

  it('meridian start: serves, reloads on SIGHUP, drains on SIGTERM with a request in flight, exits 0', async () => {
    const bs: SampleBackend[] = await Promise.all([startSampleBackend({ name: 'one' }), startSampleBackend({ name: 'two' })]);
    cleanup.push(() => Promise.all(bs.map((b) => b.close())));
    const dir = mkdtempSync(join(tmpdir(), 'meridian-start-'));
    const file = join(dir, 'm.json');
    const cfg = (b: SampleBackend) =>
      JSON.stringify({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${b.port}` }] }],
      });
    writeFileSync(file, cfg(bs[0]!));
    const p = run(['start', '-c', file]);
    cleanup.push(() => p.child.kill('SIGKILL'));
    await until(() => /listener web: http/.test(p.out()), 10_000, 'the banner');
    const port = portFrom(p.out(), /listener web: http:\/\/127\.0\.0\.1:(\d+)/);
    assert.equal((await get(port, '/', { agent: false })).body.trim(), 'one');
    writeFileSync(file, cfg(bs[1]!));
    p.child.kill('SIGHUP');
    await until(async () => (await get(port, '/', { agent: false })).body.trim() === 'two', 5000, 'the reload');
    const slow = get(port, '/slow?ms=400', { agent: false });
    await until(() => bs[1]!.requests >= 2, 2000, 'the slow request to reach the backend');
    p.child.kill('SIGTERM');
    assert.equal((await slow).status, 200);
    assert.equal(await p.exit, 0);
    await assert.rejects(get(port, '/', { agent: false }), /ECONNREFUSED/);
  });

  it('meridian start: a SIGTERM drain ends at its deadline and exits 0, whatever clients and backends hold open', { timeout: 60_000 }, async () => {
    const ok = await startSampleBackend({ name: 'ok' });
    // A backend that answers no request; upgrades: /ws gets 101 and a tunnel that never ends,
    // /no a 200 on a connection it keeps open, anything else no answer at all.
    const held: Duplex[] = [];
    const hang = createHttpServer(() => {});
    hang.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      held.push(socket);
      socket.on('error', () => {});
      if (req.url === '/ws') socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      else if (req.url === '/no') socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno');
    });
    const silentTcp = createTcpServer((s) => {
      held.push(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => silentTcp.listen(0, '127.0.0.1', r));
    cleanup.push(async () => {
      for (const h of held) h.destroy();
      hang.closeAllConnections();
      await Promise.all([ok.close(), new Promise((r) => hang.close(r)), new Promise((r) => silentTcp.close(r))]);
    });
    const certs = certDir();
    cleanup.push(() => certs.remove());
    const cert = certs.make('drain.test');
    const file = join(mkdtempSync(join(tmpdir(), 'meridian-drain-')), 'm.json');
    const hangPort = (hang.address() as { port: number }).port;
    writeFileSync(
      file,
      JSON.stringify({
        admin: { port: 0 },
        access_log: { enabled: false },
        drain_timeout: '1s',
        listeners: [
          { name: 'web', address: '127.0.0.1', port: 0, routes: [{ match: { path: { prefix: '/ok' } }, cluster: 'ok' }, { cluster: 'hang' }] },
          { name: 'h2c', address: '127.0.0.1', port: 0, http2: { enabled: true }, routes: [{ cluster: 'hang' }] },
          { name: 'tcp', address: '127.0.0.1', port: 0, protocol: 'tcp', cluster: 'silent' },
          // Long timeouts: nothing but the drain deadline closes what its clients hold.
          { name: 'tls', address: '127.0.0.1', port: 0, protocol: 'https', tls: { certificates: [cert] }, timeouts: { request_headers: '5m', idle: '5m' }, routes: [{ cluster: 'ok' }] },
        ],
        clusters: [
          { name: 'ok', endpoints: [{ address: `127.0.0.1:${ok.port}` }] },
          { name: 'hang', endpoints: [{ address: `127.0.0.1:${hangPort}` }] },
          { name: 'silent', endpoints: [{ address: `127.0.0.1:${(silentTcp.address() as { port: number }).port}` }] },
        ],
      }),
    );
    const p = run(['start', '-c', file]);
    cleanup.push(() => p.child.kill('SIGKILL'));
    await until(() => /listener tls: http/.test(p.out()), 10_000, 'the banner');
    // Each listener as a client would reach it: the https one as https://, the tcp one without a path.
    assert.match(p.out(), /^ {2}listener web: http:\/\/127\.0\.0\.1:\d+\/$/m);
    assert.match(p.out(), /^ {2}listener tls: https:\/\/127\.0\.0\.1:\d+\/$/m);
    assert.match(p.out(), /^ {2}listener tcp: tcp:\/\/127\.0\.0\.1:\d+$/m);
    const port = (name: string) => portFrom(p.out(), new RegExp(`listener ${name}: [a-z]+:\\/\\/127\\.0\\.0\\.1:(\\d+)`));

    const clients: Socket[] = [];
    const closed: Promise<void>[] = [];
    const open = (to: number, bytes?: string): Socket => {
      const s = connect(to, '127.0.0.1');
      s.on('error', () => {});
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString('latin1')));
      Object.defineProperty(s, 'text', { get: () => text });
      closed.push(new Promise((r) => s.on('close', () => r())));
      if (bytes !== undefined) s.write(bytes);
      clients.push(s);
      return s;
    };
    const textOf = (s: Socket) => (s as Socket & { text: string }).text;
    const upgrade = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`;
    // Idle keep-alive clients: one answered request each, then silence; and one that never spoke.
    const idle = [0, 1, 2].map(() => open(port('web'), 'GET /ok HTTP/1.1\r\nHost: x\r\n\r\n'));
    open(port('web'));
    const tunnel = open(port('web'), upgrade('/ws'));
    const refusedUpgrade = open(port('web'), upgrade('/no'));
    open(port('web'), upgrade('/half'));
    open(port('web'), 'GET /never HTTP/1.1\r\nHost: x\r\n\r\n');
    const tcpTunnel = open(port('tcp'), 'hello');
    // On the https listener (HTTP/2 by ALPN, HTTP/1.1 beside it): a connection that never
    // starts its TLS handshake, and an HTTP/1.1 keep-alive client idle after one answer.
    open(port('tls'));
    let tlsText = '';
    const tlsIdle = tlsConnect({ host: '127.0.0.1', port: port('tls'), servername: 'drain.test', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () =>
      tlsIdle.write('GET /ok HTTP/1.1\r\nHost: drain.test\r\n\r\n'),
    );
    tlsIdle.on('error', () => {});
    tlsIdle.on('data', (d: Buffer) => (tlsText += d.toString('latin1')));
    closed.push(new Promise((r) => tlsIdle.on('close', () => r())));
    const h2 = h2connect(`http://127.0.0.1:${port('h2c')}`);
    h2.on('error', () => {});
    const stream = h2.request({ ':path': '/never' });
    stream.on('error', () => {});
    closed.push(new Promise((r) => h2.on('close', () => r())));
    await until(() => idle.every((s) => /^HTTP\/1\.1 200 /.test(textOf(s))) && /^HTTP\/1\.1 200 /.test(tlsText), 5000, 'the keep-alive requests to be answered');
    await until(() => /^HTTP\/1\.1 101 /.test(textOf(tunnel)) && /^HTTP\/1\.1 200 /.test(textOf(refusedUpgrade)), 5000, 'the upgrades to be answered');
    await until(() => held.length >= 4, 5000, 'the backends to hold the tunnel, the upgrades and the tcp connection');
    assert.ok(!tcpTunnel.destroyed);

    p.child.kill('SIGTERM');
    assert.equal(await p.exit, 0, p.out());
    // No client is left connected.
    await Promise.all(closed);
    for (const s of clients) s.destroy();
    h2.destroy();
    tlsIdle.destroy();
  });

  it('meridian start: runs the sample_backends of its config, and stops them with itself', async () => {
    const [a, b] = [await freePort(), await freePort()];
    const dir = mkdtempSync(join(tmpdir(), 'meridian-samples-'));
    const file = join(dir, 'm.json');
    writeFileSync(
      file,
      JSON.stringify({
        admin: { port: 0 },
        access_log: { enabled: false },
        sample_backends: [
          { name: 'alpha', port: a },
          { name: 'beta', port: b, latency: '1ms' },
        ],
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${a}` }, { address: `127.0.0.1:${b}` }] }],
      }),
    );
    const p = run(['start', '-c', file]);
    cleanup.push(() => p.child.kill('SIGKILL'));
    await until(() => /sample backend beta/.test(p.out()), 10_000, 'the banner');
    const port = portFrom(p.out(), /listener web: http:\/\/127\.0\.0\.1:(\d+)/);
    const names = new Set<string>();
    for (let i = 0; i < 4; i++) names.add(String((await get(port, '/', { agent: false })).headers['x-backend']));
    assert.deepEqual([...names].sort(), ['alpha', 'beta']);
    p.child.kill('SIGTERM');
    assert.equal(await p.exit, 0);
    for (const q of [a, b]) await assert.rejects(get(q, '/', { agent: false }), /ECONNREFUSED/);

    // A sample backend whose port is taken: a clear message naming it, exit 2.
    const busy = await startSampleBackend({ name: 'squatter' });
    cleanup.push(() => busy.close());
    writeFileSync(
      file,
      JSON.stringify({
        admin: { port: 0 },
        sample_backends: [{ name: 'alpha', port: busy.port }],
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${busy.port}` }] }],
      }),
    );
    const taken = run(['start', '-c', file]);
    assert.equal(await taken.exit, 2);
    assert.match(taken.out(), new RegExp(`sample backend alpha: port ${busy.port} on 127\\.0\\.0\\.1 is already in use`));
  });

  it('meridian start: an unreadable config exits 2, an invalid one 1', async () => {
    assert.equal(await run(['start', '-c', '/nonexistent.yaml']).exit, 2);
    assert.equal(await run(['start', '-c', 'examples/bad.yaml']).exit, 1);
  });

  it('meridian quickstart: balanced answers from its sample backends; Ctrl-C leaves nothing listening', async () => {
    const [lp, ap, p1, p2, p3] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const dir = mkdtempSync(join(tmpdir(), 'meridian-qs-'));
    const file = join(dir, 'qs.yaml');
    writeFileSync(
      file,
      [
        `admin: { address: 127.0.0.1, port: ${ap} }`,
        'access_log: { enabled: false }',
        `listeners: [ { name: web, address: 127.0.0.1, port: ${lp}, routes: [ { cluster: web } ] } ]`,
        'clusters:',
        '  - name: web',
        `    endpoints: [ { address: "127.0.0.1:${p1}", id: a }, { address: "127.0.0.1:${p2}", id: b }, { address: "127.0.0.1:${p3}", id: c } ]`,
      ].join('\n'),
    );
    const p = run(['quickstart', '-c', file]);
    cleanup.push(() => p.child.kill('SIGKILL'));
    await until(() => /stop:\s+Ctrl-C/.test(p.out()), 10_000, 'the banner');
    assert.match(p.out(), new RegExp(`curl http://127\\.0\\.0\\.1:${lp}/`));
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push((await get(lp, '/', { agent: false })).body.trim());
    assert.deepEqual(answers.sort(), ['a', 'b', 'c']);
    p.child.kill('SIGINT');
    assert.equal(await p.exit, 0);
    for (const port of [lp, ap, p1, p2, p3]) await assert.rejects(get(port, '/', { agent: false }), /ECONNREFUSED/, `port ${port} still open`);
  });
});
