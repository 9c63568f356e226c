// A tcp listener in a running Meridian: pass-through, reload, drain.
import assert from 'node:assert/strict';
import { connect, createServer, type Server } from 'node:net';
import { after, describe, it } from 'node:test';
import { blackhole, python3 } from './blackhole.js';
import { config, startMeridian, until } from './harness.js';

async function echoServer(name: string): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((s) => {
    s.on('error', () => {});
    s.write(`${name}\n`);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

function exchange(port: number, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.endsWith(payload)) s.end();
    });
    s.on('close', () => resolve(got));
    s.on('error', reject);
    s.write(payload);
  });
}

/** A tcp listener `db` (and an http one) in front of a round_robin cluster over `ports`. */
function tcpConfig(ports: readonly number[], cluster: Record<string, unknown> = {}) {
  return config({
    admin: { port: 0 },
    access_log: { enabled: false },
    listeners: [
      { name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'db' }] },
      { name: 'db', protocol: 'tcp', address: '127.0.0.1', port: 0, cluster: 'db' },
    ],
    clusters: [{ name: 'db', policy: 'round_robin', endpoints: ports.map((p) => ({ address: `127.0.0.1:${p}` })), ...cluster }],
  });
}

describe('tcp listeners in meridian', () => {
  const cleanup: { close(): Promise<void> }[] = [];
  after(async () => {
    for (const c of cleanup) await c.close();
  });

  it('passes bytes through to the cluster, balanced, and stops on drain', async () => {
    const a = await echoServer('a');
    const b = await echoServer('b');
    cleanup.push(a, b);
    const m = await startMeridian(tcpConfig([a.port, b.port]));
    const port = m.meridian.ports()['db']!;
    const answers = [await exchange(port, 'ping\n'), await exchange(port, 'ping\n')];
    assert.deepEqual(answers.map((x) => x.split('\n')[0]).sort(), ['a', 'b']);
    assert.ok(answers.every((x) => x.endsWith('ping\n')));
    // Each connection is counted once it ends, with its bytes.
    const counted = async () => {
      const text = await m.meridian.metrics.metricsText();
      const n = (re: RegExp) => [...text.matchAll(re)].reduce((sum, x) => sum + Number(x[1]), 0);
      return { closed: n(/^meridian_tcp_connections_total\{listener="db",cluster="db",endpoint="[^"]+",result="closed"\} (\d+)$/gm), bytesIn: n(/^meridian_tcp_bytes_total\{listener="db",cluster="db",direction="in"\} (\d+)$/gm) };
    };
    await until(async () => (await counted()).closed === 2, 5000, 'two tcp connections counted');
    assert.equal((await counted()).bytesIn, 10, 'two "ping\\n" from the clients');
    await m.close();
    await assert.rejects(exchange(port, 'x'), /ECONNREFUSED/);
  });

  it('gives up on an endpoint that never answers the handshake after timeouts.connect, and connects to another', { timeout: 30_000, skip: python3 ? false : 'python3 is missing (the black-hole port needs it)' }, async () => {
    const hole = await blackhole();
    const a = await echoServer('a');
    cleanup.push(hole, a);
    const m = await startMeridian(tcpConfig([hole.port, a.port], { timeouts: { connect: '200ms' } }));
    cleanup.push(m);
    const port = m.meridian.ports()['db']!;
    // Round robin sends one of the two to the black hole first: it times out and goes to a.
    const answers = [await exchange(port, 'ping\n'), await exchange(port, 'ping\n')];
    assert.deepEqual(answers.map((x) => x.split('\n')[0]), ['a', 'a']);
  });
});
