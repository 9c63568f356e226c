// The L4 TCP pass-through listener over real sockets on 127.0.0.1.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import { SeededRng } from '../../src/core/rng.js';
import { buildRuntime, type ClusterRuntime, type Runtime } from '../../src/proxy/runtime.js';
import { TcpProxy, type TcpConnectionRecord } from '../../src/proxy/tcp-proxy.js';
import { config, freePort, until } from './harness.js';

/**
 * A backend that greets with `name\n`, echoes everything, and on the client's FIN answers
 * `name:eof\n` before closing its own side (so half-close is visible). Sending `RESET`
 * makes it reset the connection.
 */
interface EchoBackend {
  readonly name: string;
  readonly port: number;
  readonly sockets: Set<Socket>;
  close(): Promise<void>;
}

async function echoBackend(name: string): Promise<EchoBackend> {
  const sockets = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.write(`${name}\n`);
    s.on('data', (d: Buffer) => {
      if (d.toString() === 'RESET') s.resetAndDestroy();
      else s.write(d);
    });
    s.on('end', () => s.end(`${name}:eof\n`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    name,
    port,
    sockets,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

interface Proxy {
  readonly proxy: TcpProxy;
  readonly port: number;
  readonly records: TcpConnectionRecord[];
  readonly warnings: object[];
  runtime: Runtime;
  cluster(): ClusterRuntime;
  /** Swap in a new config version, as a reload does. */
  reload(endpoints: readonly string[]): void;
  close(): Promise<void>;
}

const clock = new ManualClock();
const rng = new SeededRng(42);

function tcpConfig(endpoints: readonly string[], cluster: Record<string, unknown>, idle: string) {
  return config({
    admin: { port: 0 },
    access_log: { enabled: false },
    listeners: [{ name: 'db', protocol: 'tcp', address: '127.0.0.1', port: 0, cluster: 'c', timeouts: { idle } }],
    clusters: [{ name: 'c', endpoints: endpoints.map((address) => ({ address })), ...cluster }],
  });
}

async function startProxy(endpoints: readonly string[], cluster: Record<string, unknown> = {}, idle = '10s'): Promise<Proxy> {
  const records: TcpConnectionRecord[] = [];
  const warnings: object[] = [];
  const cfg = tcpConfig(endpoints, cluster, idle);
  const listener = cfg.listeners[0];
  assert.ok(listener?.protocol === 'tcp');
  const p: Proxy = {
    runtime: buildRuntime(cfg, undefined, clock, rng).runtime,
    proxy: undefined as unknown as TcpProxy,
    port: 0,
    records,
    warnings,
    cluster: () => p.runtime.clusters.get('c') as ClusterRuntime,
    reload: (eps) => {
      const next = buildRuntime(tcpConfig(eps, cluster, idle), p.runtime, clock, rng);
      p.runtime = next.runtime;
      next.commit();
    },
    close: async () => {
      await p.proxy.stopAccepting();
      p.proxy.closeAll();
      await p.proxy.drained();
    },
  };
  const proxy = new TcpProxy({
    listener: listener.name,
    cluster: () => p.runtime.clusters.get(listener.cluster),
    clock,
    idleTimeoutMs: listener.timeouts.idle,
    log: { warn: (o) => warnings.push(o) },
    onConnection: (r) => records.push(r),
  });
  const port = await proxy.listen({ port: 0, host: '127.0.0.1' });
  Object.assign(p, { proxy, port });
  return p;
}

/** A client connection that collects what it receives and notes how it ended. */
interface Client {
  readonly socket: Socket;
  received(): string;
  /** Resolves with the greeting line: the name of the backend reached. */
  readonly greeting: Promise<string>;
  /** Resolves when the socket has closed, with whether the server ended cleanly. */
  readonly closed: Promise<{ ended: boolean; error?: string }>;
  /** Resolves when the server side is gone: FIN received (the client may still be half-open) or closed. */
  readonly gone: Promise<void>;
}

function dial(port: number, localAddress?: string): Client {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true, ...(localAddress ? { localAddress } : {}) });
  const chunks: Buffer[] = [];
  let ended = false;
  let error: string | undefined;
  let onGreeting: (name: string) => void = () => {};
  const greeting = new Promise<string>((r) => (onGreeting = r));
  socket.on('data', (c: Buffer) => {
    chunks.push(c);
    const text = Buffer.concat(chunks).toString('latin1');
    const nl = text.indexOf('\n');
    if (nl >= 0) onGreeting(text.slice(0, nl));
  });
  socket.on('end', () => (ended = true));
  socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
  const closed = new Promise<{ ended: boolean; error?: string }>((r) =>
    socket.on('close', () => {
      onGreeting('');
      r({ ended, ...(error === undefined ? {} : { error }) });
    }),
  );
  const gone = new Promise<void>((r) => {
    socket.once('end', r);
    socket.once('close', r);
  });
  return { socket, received: () => Buffer.concat(chunks).toString('latin1'), greeting, closed, gone };
}

const toClose: (() => Promise<void>)[] = [];
after(async () => {
  await Promise.all(toClose.map((c) => c()));
});

async function setup(n: number, cluster: Record<string, unknown> = {}, idle?: string): Promise<{ bs: EchoBackend[]; p: Proxy }> {
  const bs = await Promise.all(Array.from({ length: n }, (_, i) => echoBackend(`b${i}`)));
  const p = await startProxy(
    bs.map((b) => `127.0.0.1:${b.port}`),
    cluster,
    idle,
  );
  toClose.push(() => p.close(), ...bs.map((b) => () => b.close()));
  return { bs, p };
}

describe('tcp proxy', () => {
  it('passes a few MB through both ways, byte for byte, and counts them', async () => {
    const { p } = await setup(1);
    const payload = randomBytes(4 * 1024 * 1024);
    const socket = connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise<void>((r) => socket.on('end', r));
    socket.end(payload);
    await ended;
    socket.destroy();
    const got = Buffer.concat(chunks);
    assert.equal(got.subarray(0, 3).toString(), 'b0\n');
    assert.ok(got.subarray(3, 3 + payload.length).equals(payload), 'echoed bytes differ');
    assert.equal(got.subarray(3 + payload.length).toString(), 'b0:eof\n');
    await until(() => p.records.length === 1, 5000, 'the connection record');
    const r = p.records[0] as TcpConnectionRecord;
    assert.equal(r.bytesIn, payload.length);
    assert.equal(r.bytesOut, got.length);
    assert.equal(r.attempts, 1);
    assert.equal(r.error, undefined);
    assert.equal(p.proxy.open, 0);
    assert.equal(p.cluster().breaker.used('connections'), 0);
    assert.equal(p.cluster().core.hosts[0]?.active, 0);
  });

  it('maglev: a source IP always reaches the same backend, and source IPs spread', async () => {
    const { p } = await setup(3, { policy: 'maglev', maglev: { table_size: 251 } });
    const seen = new Map<string, string>();
    for (let round = 0; round < 2; round++) {
      const clients = Array.from({ length: 39 }, (_, i) => dial(p.port, `127.0.0.${i + 2}`));
      const names = await Promise.all(clients.map((c) => c.greeting));
      for (const c of clients) c.socket.destroy();
      names.forEach((name, i) => {
        const ip = `127.0.0.${i + 2}`;
        assert.ok(name.startsWith('b'), `no backend reached from ${ip}`);
        if (round === 0) seen.set(ip, name);
        else assert.equal(name, seen.get(ip), `${ip} moved from ${seen.get(ip)} to ${name}`);
      });
    }
    assert.ok(new Set(seen.values()).size >= 2, `all source IPs went to ${[...new Set(seen.values())].join(', ')}`);
    await until(() => p.proxy.open === 0, 5000, 'connections to close');
  });

  it('least_request balances open connections: 30 over 3 backends, 10 each +-1', async () => {
    const { bs, p } = await setup(3, { policy: 'least_request' });
    const clients: Client[] = [];
    for (let i = 0; i < 30; i++) {
      const c = dial(p.port);
      clients.push(c);
      // One at a time, so each pick sees the connections before it as open.
      await c.greeting;
    }
    const counts = bs.map((b) => b.sockets.size);
    for (const n of counts) assert.ok(n >= 9 && n <= 11, `open connections per backend: ${counts.join(', ')}`);
    assert.deepEqual(
      p.cluster().core.hosts.map((h) => h.active),
      counts,
    );
    for (const c of clients) c.socket.destroy();
    await until(() => p.proxy.open === 0, 5000, 'connections to close');
    assert.deepEqual(
      p.cluster().core.hosts.map((h) => h.active),
      [0, 0, 0],
    );
  });

  it('a connect failure is retried on another endpoint, and the dead one is out of the picks from then on', async () => {
    const live = await echoBackend('live');
    const dead = `127.0.0.1:${await freePort()}`;
    const p = await startProxy([dead, `127.0.0.1:${live.port}`], { retries: { attempts: 1 } });
    toClose.push(() => p.close(), () => live.close());
    for (let i = 0; i < 6; i++) {
      const c = dial(p.port);
      assert.equal(await c.greeting, 'live');
      c.socket.destroy();
      await c.closed;
    }
    await until(() => p.records.length === 6, 5000, 'records');
    // Round robin tries dead first, once: its refused connect ejects it (the test's clock
    // stands still, so it stays out), and every later connection goes straight to live.
    assert.deepEqual(p.records.map((r) => r.attempts), [2, 1, 1, 1, 1, 1]);
    assert.ok(p.records.every((r) => r.endpoint === `127.0.0.1:${live.port}` && r.error === undefined));
    const deadHost = p.cluster().core.host(dead);
    assert.ok(deadHost && deadHost.failuresTotal === 1 && deadHost.active === 0 && deadHost.health.unreachable);
  });

  it('all endpoints dead: the client connection is closed, nothing leaks', async () => {
    const dead = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
    const p = await startProxy(dead, { retries: { attempts: 3 } });
    toClose.push(() => p.close());
    const c = dial(p.port);
    c.socket.write('hello?');
    await c.gone;
    c.socket.destroy();
    assert.equal(c.received(), '');
    await until(() => p.records.length === 1, 5000, 'the record');
    assert.equal(p.records[0]?.error, 'connect_failed');
    assert.equal(p.records[0]?.attempts, 4);
    assert.equal(p.warnings.length, 1);
    assert.equal(p.proxy.open, 0);
    assert.equal(p.cluster().breaker.used('connections'), 0);
    assert.deepEqual(
      p.cluster().core.hosts.map((h) => h.active),
      [0, 0],
    );
  });

  it('half-close: the client ends its side and still receives the reply', async () => {
    const { p } = await setup(1);
    const c = dial(p.port);
    c.socket.end('hello ');
    const how = await c.closed;
    assert.equal(c.received(), 'b0\nhello b0:eof\n');
    assert.deepEqual(how, { ended: true });
  });

  it('half-close the other way: the backend ends first, the client can still send', async () => {
    const server = createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      const got: Buffer[] = [];
      s.on('data', (d: Buffer) => got.push(d));
      s.on('end', () => {
        // Answer on a fresh connection is impossible after our FIN: report via the server instead.
        received.push(Buffer.concat(got).toString());
        s.destroy();
      });
      s.end('bye\n');
    });
    const received: string[] = [];
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const p = await startProxy([`127.0.0.1:${(server.address() as { port: number }).port}`]);
    toClose.push(
      () => p.close(),
      () => new Promise<void>((r) => server.close(() => r())),
    );
    const c = dial(p.port);
    await new Promise<void>((r) => c.socket.once('end', r));
    assert.equal(c.received(), 'bye\n');
    c.socket.end('still here');
    await c.closed;
    await until(() => received.length === 1, 5000, 'the backend to see the client FIN');
    assert.equal(received[0], 'still here');
  });

  it('a backend reset mid-stream closes the client connection and is the endpoint failure', async () => {
    const { p } = await setup(1);
    const c = dial(p.port);
    assert.equal(await c.greeting, 'b0');
    c.socket.write('RESET');
    const how = await c.closed;
    assert.ok(!how.ended || how.error !== undefined, `client saw ${JSON.stringify(how)}`);
    await until(() => p.records.length === 1, 5000, 'the record');
    assert.equal(p.records[0]?.error, 'upstream_reset');
    assert.equal(p.cluster().core.hosts[0]?.failuresTotal, 1);
    assert.equal(p.cluster().core.hosts[0]?.active, 0);
  });

  it("a client's reset is not counted against the endpoint", async () => {
    const { bs, p } = await setup(1);
    const c = dial(p.port);
    assert.equal(await c.greeting, 'b0');
    c.socket.resetAndDestroy();
    await until(() => p.records.length === 1, 5000, 'the record');
    assert.equal(p.records[0]?.error, 'client_reset');
    assert.equal(p.cluster().core.hosts[0]?.failuresTotal, 0);
    await until(() => bs[0]?.sockets.size === 0, 5000, 'the backend connection to close');
  });

  it('the circuit breaker caps open connections (max_connections)', async () => {
    const { p } = await setup(1, { circuit_breaker: { max_connections: 1 } });
    const first = dial(p.port);
    assert.equal(await first.greeting, 'b0');
    const second = dial(p.port);
    await second.gone;
    second.socket.destroy();
    assert.equal(second.received(), '');
    await until(() => p.records.length === 1, 5000, 'the refusal record');
    assert.equal(p.records[0]?.error, 'circuit_open');
    first.socket.destroy();
    await until(() => p.proxy.open === 0, 5000, 'the first to close');
    const third = dial(p.port);
    assert.equal(await third.greeting, 'b0');
    third.socket.destroy();
  });

  it('an idle connection is closed after the listener idle timeout', async () => {
    const { bs, p } = await setup(1, {}, '150ms');
    const c = dial(p.port);
    assert.equal(await c.greeting, 'b0');
    await c.gone;
    c.socket.destroy();
    await until(() => p.records.length === 1, 5000, 'the record');
    assert.equal(p.records[0]?.error, 'idle_timeout');
    await until(() => bs[0]?.sockets.size === 0, 5000, 'the backend connection to close');
  });

  it('a reload applies to new connections; open ones keep a removed endpoint', async () => {
    const { bs, p } = await setup(2, { policy: 'round_robin' });
    const [b0, b1] = bs as [EchoBackend, EchoBackend];
    p.reload([`127.0.0.1:${b0.port}`]);
    const old = dial(p.port);
    assert.equal(await old.greeting, 'b0');
    p.reload([`127.0.0.1:${b1.port}`]);
    for (let i = 0; i < 3; i++) {
      const c = dial(p.port);
      assert.equal(await c.greeting, 'b1');
      c.socket.destroy();
    }
    old.socket.end('still ');
    await old.closed;
    assert.equal(old.received(), 'b0\nstill b0:eof\n');
  });

  it('stopAccepting leaves open connections working; closeAll closes them', async () => {
    const { p } = await setup(1);
    const c = dial(p.port);
    assert.equal(await c.greeting, 'b0');
    await p.proxy.stopAccepting();
    const refused = await dial(p.port).closed;
    assert.equal(refused.error, 'ECONNREFUSED');
    c.socket.write('ping');
    await until(() => c.received() === 'b0\nping', 5000, 'the echo after stopAccepting');
    assert.equal(p.proxy.open, 1);
    p.proxy.closeAll();
    await c.gone;
    c.socket.destroy();
    await p.proxy.drained();
    assert.equal(p.proxy.open, 0);
    assert.equal(p.records[0]?.error, 'closed_by_proxy');
  });

  it('listen rejects when the port is taken', async () => {
    const { p } = await setup(1);
    const other = new TcpProxy({ listener: 'dup', cluster: () => p.cluster(), clock, idleTimeoutMs: 0 });
    await assert.rejects(other.listen({ port: p.port, host: '127.0.0.1' }), { code: 'EADDRINUSE' });
  });
});
