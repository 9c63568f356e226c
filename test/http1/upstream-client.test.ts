// The engine's upstream client against raw backends on 127.0.0.1: keep-alive reuse, the
// connection cap, the backend's Keep-Alive hint, interim responses, refused framings and
// backpressure, each seen from both ends (what the handler got, what the backend saw).
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { createServer as createTlsServer } from 'node:tls';
import { EndpointPool, plainConnector, tlsConnector, UpstreamClientError, type ResponseHandler, type UpstreamTry } from '../../src/http1/upstream-client.js';
import { certDir } from '../proxy/certs.js';
import { until } from '../proxy/harness.js';

interface Backend {
  readonly server: Server;
  readonly port: number;
  /** Connections accepted so far. */
  connections: number;
}

/** A backend that answers each request head it reads with `answer(requestIndex, socket)`. */
async function backend(answer: (n: number, s: Socket) => void): Promise<Backend> {
  let n = 0;
  const b = { connections: 0 } as { server: Server; port: number; connections: number };
  const server = createServer((s) => {
    b.connections++;
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n\r\n')) !== -1) {
        buf = buf.slice(i + 4);
        answer(n++, s);
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return Object.assign(b, { server, port: (server.address() as AddressInfo).port });
}

function pool(port: number, maxConnections = 4): EndpointPool {
  return new EndpointPool({ host: '127.0.0.1', port, maxConnections, idleTimeoutMs: 10_000, connectTimeoutMs: 1000, connector: plainConnector });
}

interface Outcome {
  readonly status: number;
  readonly body: string;
  readonly error: Error | undefined;
}

/** A handler that collects the response; `onData` may refuse (backpressure). */
class Collect implements ResponseHandler {
  status = 0;
  chunks: string[] = [];
  t: UpstreamTry | undefined;
  readonly done: Promise<Outcome>;
  #resolve!: (o: Outcome) => void;
  constructor(readonly accept: (chunk: string) => boolean = () => true) {
    this.done = new Promise((r) => (this.#resolve = r));
  }
  onConnect(t: UpstreamTry): void {
    this.t = t;
  }
  onHeaders(status: number): boolean {
    this.status = status;
    return true;
  }
  onData(chunk: Buffer, _view = false): boolean {
    const s = chunk.toString('latin1');
    this.chunks.push(s);
    return this.accept(s);
  }
  onComplete(): void {
    this.#resolve({ status: this.status, body: this.chunks.join(''), error: undefined });
  }
  onError(err: Error): void {
    this.#resolve({ status: this.status, body: this.chunks.join(''), error: err });
  }
}

const GET = { method: 'GET', path: '/', headers: { host: 'h' }, body: null };

describe('the upstream client', () => {
  const closing: (() => void)[] = [];
  after(() => closing.forEach((c) => c()));

  it('reuses one keep-alive connection for requests one after another', async () => {
    const b = await backend((_, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    const p = pool(b.port);
    closing.push(() => (p.destroy(), b.server.close()));
    for (let i = 0; i < 3; i++) {
      const h = new Collect();
      p.dispatch(GET, h);
      assert.deepEqual(await h.done, { status: 200, body: 'ok', error: undefined });
    }
    assert.equal(b.connections, 1);
    assert.deepEqual(p.stats, { open: 1, idle: 1, pending: 0 });
  });

  it('at max_connections, a request waits for the busy connection instead of opening another', async () => {
    const b = await backend((n, s) => setTimeout(() => s.write(`HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n${n}`), 20));
    const p = pool(b.port, 1);
    closing.push(() => (p.destroy(), b.server.close()));
    const [h1, h2] = [new Collect(), new Collect()];
    p.dispatch(GET, h1);
    p.dispatch(GET, h2);
    assert.equal(p.stats.pending, 1);
    assert.deepEqual([(await h1.done).body, (await h2.done).body], ['0', '1']);
    assert.equal(b.connections, 1);
  });

  it("closes a connection whose backend announces Keep-Alive: timeout=1 (less than the 1 s margin), and opens a new one next", async () => {
    const b = await backend((_, s) => s.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 0\r\n\r\n'));
    const p = pool(b.port);
    closing.push(() => (p.destroy(), b.server.close()));
    for (let i = 0; i < 2; i++) {
      const h = new Collect();
      p.dispatch(GET, h);
      assert.equal((await h.done).status, 200);
    }
    assert.equal(b.connections, 2);
  });

  it('retires an idle connection at the idle time its backend announces (Keep-Alive: timeout=2, less the margin), by the pool\'s sweep', async () => {
    const b = await backend((_, s) => s.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2\r\nContent-Length: 0\r\n\r\n'));
    const p = pool(b.port); // idleTimeoutMs 10 s: the backend's 2 s less 1 s is what applies
    closing.push(() => (p.destroy(), b.server.close()));
    const first = new Collect();
    p.dispatch(GET, first);
    assert.equal((await first.done).status, 200);
    assert.deepEqual(p.stats, { open: 1, idle: 1, pending: 0 });
    await until(() => p.stats.open === 0, 5000, 'the idle connection to be retired');
    const second = new Collect();
    p.dispatch(GET, second);
    assert.equal((await second.done).status, 200);
    assert.equal(b.connections, 2);
  });

  it('skips a 100 Continue and a 103, and hands on the final response', async () => {
    const b = await backend((_, s) => s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew'));
    const p = pool(b.port);
    closing.push(() => (p.destroy(), b.server.close()));
    const h = new Collect();
    p.dispatch(GET, h);
    assert.deepEqual(await h.done, { status: 201, body: 'new', error: undefined });
  });

  it('refuses Content-Length with Transfer-Encoding, a coding other than chunked, and a 101 nobody asked for, as protocol errors', async () => {
    const answers = [
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx',
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello',
    ];
    const b = await backend((n, s) => s.write(answers[n % answers.length] as string));
    const p = pool(b.port);
    closing.push(() => (p.destroy(), b.server.close()));
    for (let i = 0; i < answers.length; i++) {
      const h = new Collect();
      p.dispatch(GET, h);
      const o = await h.done;
      assert.ok(o.error instanceof UpstreamClientError, `answer ${i}: ${String(o.error)}`);
      assert.equal(o.error.code, 'upstream_protocol_error', `answer ${i}`);
      assert.equal(o.status, 0, 'no head was handed on');
    }
    assert.equal(p.stats.open, 0, 'each broken connection was closed');
  });

  it('stops reading while the handler refuses data, and resumes where it stopped', async () => {
    // The whole response in one write: one read, which the client must stop decoding at the refusal.
    const b = await backend((_, s) => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n'));
    const p = pool(b.port);
    closing.push(() => (p.destroy(), b.server.close()));
    let refusing = true;
    let afterRead: string[] | undefined;
    let handler!: Collect;
    const refused = new Promise<void>((r) => {
      const h0 = new Collect((chunk) => {
        if (!refusing) return true;
        // Once the data handler that delivered this chunk has returned: what it delivered in all.
        queueMicrotask(() => {
          afterRead = [...h0.chunks];
          r();
        });
        return chunk === 'never';
      });
      p.dispatch(GET, h0);
      handler = h0;
    });
    await refused;
    assert.deepEqual(afterRead, ['a'], 'one chunk, the rest of the read held');
    refusing = false;
    handler.t?.resume();
    assert.deepEqual(await handler.done, { status: 200, body: 'abc', error: undefined });
    assert.deepEqual(p.stats, { open: 1, idle: 1, pending: 0 }, 'and the connection went back to the pool');
  });

  it("every plain connection reads into one shared buffer: a held read, a split line and the body bytes handed on outlive another connection's read", async () => {
    // A: its head split mid-line over two writes, then two chunks in one write, the first refused (the rest held).
    const a = await backend((_, s) => {
      s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chun');
      setTimeout(() => s.write('ked\r\n\r\n3\r\naaa\r\n3\r\nAAA\r\n0\r\n\r\n'), 20);
    });
    const b = await backend((_, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nbbbbbb'));
    const pa = pool(a.port);
    const pb = pool(b.port);
    closing.push(() => (pa.destroy(), pb.destroy(), a.server.close(), b.server.close()));
    const kept: Buffer[] = [];
    let refused!: () => void;
    const paused = new Promise<void>((r) => (refused = r));
    const ha = new Collect((chunk) => {
      if (chunk !== 'aaa') return true;
      queueMicrotask(refused);
      return false;
    });
    const onData = ha.onData.bind(ha);
    const views: boolean[] = [];
    // A view is the handler's to copy if it keeps it (the proxy's answer copies it into its own write).
    ha.onData = (chunk: Buffer, view: boolean) => (kept.push(view ? Buffer.from(chunk) : chunk), views.push(view), onData(chunk));
    pa.dispatch(GET, ha);
    // B's reads land in the same buffer while A's split line, and later its held read, wait.
    const first = new Collect();
    pb.dispatch(GET, first);
    assert.equal((await first.done).body, 'bbbbbb');
    await paused;
    const second = new Collect();
    pb.dispatch(GET, second);
    assert.equal((await second.done).body, 'bbbbbb');
    ha.t?.resume();
    assert.deepEqual(await ha.done, { status: 200, body: 'aaaAAA', error: undefined });
    assert.deepEqual(
      kept.map((k) => k.toString('latin1')),
      ['aaa', 'AAA'],
      'the bytes handed on, held and split reads included, are what A sent',
    );
    assert.deepEqual(views, [true, true], 'body bytes are handed on as views of the shared buffer, and said to be');
  });

  it('reports a refused connect as connect_failure, and a reset before the answer as upstream_reset', async () => {
    const b = await backend((_, s) => s.destroy());
    const p = pool(b.port);
    closing.push(() => (p.destroy(), b.server.close()));
    const reset = new Collect();
    p.dispatch(GET, reset);
    assert.equal(((await reset.done).error as UpstreamClientError).code, 'upstream_reset');
    const port = b.port;
    await new Promise<void>((r) => b.server.close(() => r()));
    const refused = new Collect();
    pool(port).dispatch(GET, refused);
    assert.equal(((await refused.done).error as UpstreamClientError).code, 'connect_failure');
  });

  it('speaks to a TLS backend through tlsConnector, and a handshake the client refuses is a connect failure', async () => {
    const certs = certDir();
    const c = certs.make('backend.test');
    const tlsServer = createTlsServer({ cert: readFileSync(c.cert), key: readFileSync(c.key) }, (s) => {
      s.on('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntls'));
      s.on('error', () => {});
    });
    await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
    const port = (tlsServer.address() as AddressInfo).port;
    const make = (ca: Buffer | undefined) =>
      new EndpointPool({ host: '127.0.0.1', port, maxConnections: 1, idleTimeoutMs: 10_000, connectTimeoutMs: 1000, connector: tlsConnector({ servername: 'backend.test', ...(ca ? { ca } : {}) }) });
    const trusted = make(readFileSync(c.cert));
    const untrusted = make(undefined);
    closing.push(() => (trusted.destroy(), untrusted.destroy(), tlsServer.close(), certs.remove()));
    const ok = new Collect();
    trusted.dispatch(GET, ok);
    assert.deepEqual(await ok.done, { status: 200, body: 'tls', error: undefined });
    const refused = new Collect();
    untrusted.dispatch(GET, refused);
    const err = (await refused.done).error as UpstreamClientError;
    assert.equal(err.code, 'connect_failure');
    assert.match(err.message, /self.signed/i);
  });
});
