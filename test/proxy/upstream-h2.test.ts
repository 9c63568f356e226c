// HTTP/2 to backends: Node http2 servers this test controls reset streams, send GOAWAY,
// limit concurrent streams and send trailers; `auto` picks the protocol by ALPN over TLS.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { constants, connect as h2connect, createSecureServer, createServer, type Http2Server, type Http2SecureServer, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { ActiveHealthChecker } from '../../src/health/active-checker.js';
import { closeAll, config, get, startMeridian, type Running } from './harness.js';
import { pki, type Pki } from './pki.js';

interface H2Backend {
  readonly port: number;
  sessions: number;
  streams: number;
  open: number;
  maxOpen: number;
  close(): Promise<void>;
}

type OnStream = (stream: ServerHttp2Stream, b: H2Backend, session: ServerHttp2Session, nth: { session: number; stream: number }) => void;

/** An h2c (or, with `tls`, h2 over TLS) server calling `on` for each stream, counting sessions and open streams. */
async function h2Backend(on: OnStream, settings: { maxConcurrentStreams?: number } = {}, tls?: { cert: string; key: string }): Promise<H2Backend> {
  const server: Http2Server | Http2SecureServer = tls ? createSecureServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key), settings }) : createServer({ settings });
  const sessions = new Set<ServerHttp2Session>();
  const b: H2Backend = {
    port: 0,
    sessions: 0,
    streams: 0,
    open: 0,
    maxOpen: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    const nthSession = ++b.sessions;
    let nthStream = 0;
    session.on('stream', (stream: ServerHttp2Stream) => {
      stream.on('error', () => {}); // resets this test makes or expects
      b.streams++;
      b.maxOpen = Math.max(b.maxOpen, ++b.open);
      stream.once('close', () => b.open--);
      on(stream, b, session, { session: nthSession, stream: ++nthStream });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(b, { port: (server.address() as { port: number }).port });
}

const answer = (text: string) => (stream: ServerHttp2Stream) => {
  stream.resume();
  stream.once('end', () => {
    if (stream.closed) return;
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end(text);
  });
};

describe('HTTP/2 to backends', () => {
  let p: Pki;
  const bs: H2Backend[] = [];
  let https1: { port: number; versions: string[]; close(): Promise<void> };
  let m: Running;
  const port = (i: number) => (bs[i] as H2Backend).port;

  before(async () => {
    p = pki();
    const ca = p.ca('ca');
    const cert = ca.issue('h2.test');
    // 0: refuses every stream; 1: answers 'b'.
    bs.push(await h2Backend((s) => s.close(constants.NGHTTP2_REFUSED_STREAM)));
    bs.push(await h2Backend(answer('b')));
    // 2: resets every stream once it has read the request.
    bs.push(
      await h2Backend((s) => {
        s.resume();
        s.once('end', () => s.close(constants.NGHTTP2_INTERNAL_ERROR));
      }),
    );
    // 3: its first session answers its first stream after a GOAWAY naming that stream the last
    // processed, and leaves any later one alone; later sessions answer every stream.
    bs.push(
      await h2Backend((s, _b, session, nth) => {
        if (nth.session > 1) return answer('after goaway')(s);
        if (nth.stream > 1) return;
        session.goaway(constants.NGHTTP2_NO_ERROR, s.id as number);
        answer('before goaway')(s);
      }),
    );
    // 4: answers, then closes the session gracefully (GOAWAY with that stream as the last).
    bs.push(
      await h2Backend((s, _b, session) => {
        answer('then goaway')(s);
        s.once('close', () => session.close());
      }),
    );
    // 5: one stream at a time per session; holds its first stream until a second arrives (on
    // another session: only a client that opens one when the first is full gets an answer).
    const held: ServerHttp2Stream[] = [];
    bs.push(
      await h2Backend(
        (s, b) => {
          s.resume();
          s.once('end', () => {
            held.push(s);
            if (b.streams < 2) return;
            for (const h of held.splice(0)) {
              h.respond({ ':status': 200 });
              h.end('one at a time');
            }
          });
        },
        { maxConcurrentStreams: 1 },
      ),
    );
    // 6: a body, then trailers.
    bs.push(
      await h2Backend((s) => {
        s.resume();
        s.once('end', () => {
          s.respond({ ':status': 200 }, { waitForTrailers: true });
          s.once('wantTrailers', () => s.sendTrailers({ 'x-checksum': 'abc123' }));
          s.end('body before trailers');
        });
      }),
    );
    // 7: h2 over TLS (ALPN h2 only).
    bs.push(await h2Backend(answer('h2 over tls'), {}, cert));
    // An HTTPS server that speaks HTTP/1.1 only.
    const versions: string[] = [];
    const h1 = createHttpsServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, (req, res) => {
      versions.push(req.httpVersion);
      res.end('http/1.1 over tls');
    });
    await new Promise<void>((resolve) => h1.listen(0, '127.0.0.1', resolve));
    https1 = {
      port: (h1.address() as { port: number }).port,
      versions,
      close: () =>
        new Promise<void>((resolve) => {
          h1.closeAllConnections();
          h1.close(() => resolve());
        }),
    };
    const tls = { ca: ca.cert, server_name: 'h2.test' };
    const cluster = (name: string, addresses: number[], extra: Record<string, unknown> = {}) => ({
      name,
      upstream_protocol: 'h2',
      endpoints: addresses.map((a) => ({ address: `127.0.0.1:${a}` })),
      ...extra,
    });
    const clusters = [
      cluster('refused', [port(0), port(1)]),
      cluster('reset', [port(2)], { retries: { retry_on: ['connect_failure', 'reset'] } }),
      cluster('goaway', [port(3)], { circuit_breaker: { max_connections: 1 } }),
      cluster('graceful', [port(4)]),
      cluster('limited', [port(5)], { circuit_breaker: { max_connections: 2 } }),
      cluster('trailers', [port(6)]),
      cluster('auto-h2', [port(7)], { upstream_protocol: 'auto', tls }),
      cluster('auto-h1', [https1.port], { upstream_protocol: 'auto', tls }),
    ];
    m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, http2: { enabled: true }, routes: clusters.map((c) => ({ match: { path: { prefix: `/${c.name}/` } }, cluster: c.name })) }],
        clusters,
      }),
    );
  });
  after(async () => {
    await closeAll(m, bs, https1);
    p.remove();
  });

  it('REFUSED_STREAM: the backend did not process the request, so even a POST is retried, on the other endpoint', async () => {
    const rs = [await get(m.port, '/refused/a', { method: 'POST', body: 'x' }), await get(m.port, '/refused/b', { method: 'POST', body: 'y' })];
    assert.deepEqual(
      rs.map((r) => [r.status, r.body]),
      [
        [200, 'b'],
        [200, 'b'],
      ],
    );
    // Round robin sends one of the two to the refusing endpoint first; it is ejected after that.
    assert.equal(bs[0]?.streams, 1);
    assert.deepEqual(m.records.slice(-2).map((r) => r.attempts).sort(), [1, 2]);
  });

  it('RST_STREAM after the backend read the request: a POST is not retried (it may have been processed): 502 upstream_reset', async () => {
    const r = await get(m.port, '/reset/x', { method: 'POST', body: 'once' });
    assert.equal(r.status, 502);
    assert.equal(r.headers['x-meridian-reason'], 'upstream_reset');
    assert.equal(bs[2]?.streams, 1);
  });

  it('GOAWAY: a stream above its last stream id was not processed, so its POST goes again, on a new session', async () => {
    // Two at once on one session (max_connections: 1): the second stream is above the GOAWAY.
    const rs = await Promise.all([get(m.port, '/goaway/1', { method: 'POST', body: 'a' }), get(m.port, '/goaway/2', { method: 'POST', body: 'b' })]);
    assert.deepEqual(rs.map((r) => r.status), [200, 200]);
    assert.deepEqual(rs.map((r) => r.body).sort(), ['after goaway', 'before goaway']);
    assert.equal(bs[3]?.sessions, 2);
    assert.deepEqual(m.records.slice(-2).map((r) => r.attempts).sort(), [1, 2]);
  });

  it('a graceful GOAWAY after an answer: the next request opens a new session, nothing fails', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await get(m.port, '/graceful/x')).body, 'then goaway');
    assert.equal(bs[4]?.sessions, 3);
    assert.deepEqual(m.records.slice(-3).map((r) => r.attempts), [1, 1, 1]);
  });

  it("SETTINGS_MAX_CONCURRENT_STREAMS: a full session's requests go on another (up to max_connections), never over the limit", async () => {
    const rs = await Promise.all([1, 2, 3, 4].map((i) => get(m.port, `/limited/${i}`)));
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200]);
    assert.equal(bs[5]?.sessions, 2);
    assert.equal(bs[5]?.maxOpen, 2);
    // None was refused and retried: each went out once a stream was free.
    assert.deepEqual(m.records.slice(-4).map((r) => r.attempts), [1, 1, 1, 1]);
  });

  it("trailers pass through to an HTTP/2 client", async () => {
    const session = h2connect(`http://127.0.0.1:${m.port}`);
    const stream = session.request({ ':path': '/trailers/x' });
    stream.end();
    let body = '';
    stream.on('data', (d: Buffer) => (body += d.toString()));
    const trailers = await new Promise<Record<string, unknown>>((resolve) => stream.once('trailers', resolve));
    await new Promise((resolve) => stream.once('close', resolve));
    session.close();
    assert.equal(body, 'body before trailers');
    assert.equal(trailers['x-checksum'], 'abc123');
  });

  it('HTTP health checks of an h2 cluster speak HTTP/2, as its requests do', async () => {
    const before = bs[1]?.sessions ?? 0;
    const check = config({ listeners: [{ name: 'l', port: 0, routes: [{ cluster: 'c' }] }], clusters: [{ name: 'c', endpoints: [{ address: '127.0.0.1:1' }], health_check: { path: '/healthz' } }] }).clusters[0]!.health_check!;
    const checker = new ActiveHealthChecker({ endpoints: () => [], record: () => {} }, check, { protocol: 'h2' });
    const r = await checker.probe({ id: 'b', address: `127.0.0.1:${port(1)}`, weight: 1 } as never);
    assert.deepEqual([r.ok, r.status], [true, 200]);
    assert.equal(bs[1]?.sessions, before + 1);
  });

  it('auto over TLS: h2 where the backend offers it by ALPN, HTTP/1.1 where it does not', async () => {
    const h2 = await get(m.port, '/auto-h2/x');
    assert.equal(h2.body, 'h2 over tls');
    assert.deepEqual([m.records.at(-1)?.upstreamProtocol, m.records.at(-1)?.upstreamTls], ['h2', 'TLSv1.3']);
    assert.equal(bs[7]?.streams, 1);
    const h1 = await get(m.port, '/auto-h1/x');
    const again = await get(m.port, '/auto-h1/y');
    assert.deepEqual([h1.body, again.body], ['http/1.1 over tls', 'http/1.1 over tls']);
    assert.deepEqual(https1.versions, ['1.1', '1.1']);
  });
});
