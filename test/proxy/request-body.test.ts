// Request-body buffering (routes[].request_body_buffer_bytes): a body within the limit is
// read whole, its framing checked, before anything goes upstream, then sent with
// Content-Length, and a retry may send it again. Bodies past the limit stream. Real
// Meridian, real backends that record every byte they get, raw bytes from the client.
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { closeAll, config, get, startMeridian, until, type Running } from './harness.js';

interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

interface RecordingBackend {
  readonly port: number;
  /** The targets of requests whose head has arrived (their body may still be coming). */
  readonly started: string[];
  /** Every complete request, in arrival order. */
  readonly received: Received[];
  /** Every byte received on any connection, as latin1 text. */
  raw(): string;
  close(): Promise<void>;
}

type Answer = (r: Received, req: IncomingMessage, res: ServerResponse) => void;
const ok: Answer = (_r, _req, res) => void res.end('ok');

/** An HTTP backend that records each request (headers and body) and every byte it was sent. */
async function recordingBackend(answer: Answer = ok): Promise<RecordingBackend> {
  const received: Received[] = [];
  const started: string[] = [];
  let raw = '';
  const server = createServer((req, res) => {
    started.push(req.url ?? '');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('latin1') };
      received.push(r);
      answer(r, req, res);
    });
  });
  server.on('connection', (s: Socket) => s.on('data', (c: Buffer) => (raw += c.toString('latin1'))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    started,
    received,
    raw: () => raw,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Something to wait for between two writes. */
type Wait = () => Promise<void>;

/**
 * Write `parts` to a new connection, each once the one before it has gone and the waits
 * between them are over, and collect the answer until the server closes.
 */
function send(port: number, parts: readonly (string | Wait)[]): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => s.destroy(), 10_000); // fail, not hang
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    void (async () => {
      for (const p of parts) {
        if (s.destroyed) return;
        if (typeof p === 'string') await new Promise<void>((r) => s.write(p, () => r()));
        else await p();
      }
    })();
  });
}

/** Only to have what follows arrive in a read of its own. */
const pause: Wait = () => new Promise((r) => setTimeout(r, 50));
/** Until the backend has the head of the request to `path`. */
const headSeen = (b: RecordingBackend, path: string): Wait => () => until(() => b.started.includes(path), 5000, `the head of ${path} at the backend`);

const status = (reply: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? 0);
const bodyOf = (reply: string) => reply.slice(reply.indexOf('\r\n\r\n') + 4);
const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 36\r\nX-Meridian-Reason: bad_request\r\nConnection: close\r\n\r\nmeridian: bad request (bad_request)\n';
const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n`;
const postChunked = (path: string, extra = '') => `POST ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n${extra}\r\n`;

function singleCluster(port: number, route: Record<string, unknown> = {}, listener: Record<string, unknown> = {}, cluster: Record<string, unknown> = {}) {
  return config({
    admin: { port: 0 },
    access_log: { enabled: false },
    listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c', ...route }], ...listener }],
    clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${port}`, id: 'b' }], ...cluster }],
  });
}

/**
 * The backend has had every chance to see what came before: a marker request, sent after
 * the client's connection closed, has reached it. Then it must have seen only the marker.
 */
async function sawNothingBut(m: Running, b: RecordingBackend, notInRaw: readonly string[]): Promise<void> {
  const r = await get(m.port, '/marker', { agent: false });
  assert.equal(r.status, 200);
  assert.deepEqual(
    b.received.map((x) => x.url),
    ['/marker'],
  );
  for (const s of notInRaw) assert.ok(!b.raw().includes(s), `the backend received ${JSON.stringify(s)}`);
}

describe('request bodies up to the buffer limit (default 64 KiB)', () => {
  let b: RecordingBackend;
  let m: Running;
  before(async () => {
    b = await recordingBackend();
    m = await startMeridian(singleCluster(b.port));
  });
  after(() => closeAll(m, b));

  it('a chunked body is read whole, then sent with Content-Length and no Transfer-Encoding', async () => {
    const reply = await send(m.port, [postChunked('/a'), chunk('hello'), pause, chunk(' world') + '0\r\n\r\n']);
    assert.equal(status(reply), 200);
    const r = b.received.at(-1);
    assert.equal(r?.url, '/a');
    assert.equal(r?.headers['content-length'], '11');
    assert.equal(r?.headers['transfer-encoding'], undefined);
    assert.equal(r?.body, 'hello world');
  });

  it('a malformed second chunk → 400, and the backend received nothing (one packet)', async () => {
    b.received.length = 0;
    const reply = await send(m.port, [`${postChunked('/smuggle-1')}${chunk('first-1')}zz\r\nSMUGGLED\r\n0\r\n\r\n`]);
    assert.equal(reply, BAD_REQUEST);
    await sawNothingBut(m, b, ['/smuggle-1', 'first-1']);
  });

  it('a malformed second chunk → 400, and the backend received nothing (headers and first chunk, then the bad chunk in a later packet)', async () => {
    b.received.length = 0;
    const reply = await send(m.port, [postChunked('/smuggle-2') + chunk('first-2'), pause, 'zz\r\nSMUGGLED\r\n0\r\n\r\n']);
    assert.equal(reply, BAD_REQUEST);
    await sawNothingBut(m, b, ['/smuggle-2', 'first-2']);
  });

  it('Expect: 100-continue: the 100 first, then the body is read and sent with Content-Length, without Expect', async () => {
    const s = connect(m.port, '127.0.0.1');
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    const closed = new Promise<void>((r) => s.on('close', () => r()));
    s.write(`POST /continue HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`);
    await until(() => got.includes('\r\n\r\n'), 5000, 'the interim answer');
    assert.equal(got, 'HTTP/1.1 100 Continue\r\n\r\n');
    s.write('hello');
    await closed;
    assert.equal(status(got.slice(got.indexOf('\r\n\r\n') + 4)), 200);
    const r = b.received.at(-1);
    assert.equal(r?.url, '/continue');
    assert.equal(r?.headers['content-length'], '5');
    assert.equal(r?.headers['expect'], undefined);
    assert.equal(r?.body, 'hello');
  });
});

describe('the buffer limit, and bodies past it', () => {
  let b: RecordingBackend;
  let m: Running;
  before(async () => {
    b = await recordingBackend();
    // Two routes on one listener: a 16-byte buffer, and buffering off.
    m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [
          {
            name: 'web',
            address: '127.0.0.1',
            port: 0,
            routes: [
              { match: { path: { prefix: '/off' } }, cluster: 'c', request_body_buffer_bytes: 0 },
              { cluster: 'c', request_body_buffer_bytes: 16 },
            ],
          },
        ],
        clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${b.port}` }] }],
      }),
    );
  });
  after(() => closeAll(m, b));

  /** How the backend received the body of the request to `path`. */
  const framing = (path: string) => {
    const r = b.received.find((x) => x.url === path);
    return r && { cl: r.headers['content-length'], te: r.headers['transfer-encoding'], body: r.body };
  };

  it('a chunked body of exactly the limit (16 bytes) is buffered: Content-Length', async () => {
    assert.equal(status(await send(m.port, [postChunked('/16'), chunk('0123456789'), pause, chunk('abcdef') + '0\r\n\r\n'])), 200);
    assert.deepEqual(framing('/16'), { cl: '16', te: undefined, body: '0123456789abcdef' });
  });

  it('a chunked body one byte over the limit streams: what was read goes first, the rest follows, chunked', async () => {
    // The rest only once the backend has the head: the request went upstream at the 17th byte.
    const parts = [postChunked('/17'), chunk('0123456789'), chunk('abcdefg'), headSeen(b, '/17'), chunk('rest') + '0\r\n\r\n'];
    assert.equal(status(await send(m.port, parts)), 200);
    assert.deepEqual(framing('/17'), { cl: undefined, te: 'chunked', body: '0123456789abcdefgrest' });
  });

  it('a Content-Length body over the limit streams with its Content-Length', async () => {
    const body = 'x'.repeat(40);
    assert.equal(status(await send(m.port, [`POST /cl40 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 40\r\n\r\n`, body])), 200);
    assert.deepEqual(framing('/cl40'), { cl: '40', te: undefined, body });
  });

  it('buffering off (0): a chunked body streams chunked', async () => {
    assert.equal(status(await send(m.port, [postChunked('/off'), chunk('hello'), headSeen(b, '/off'), '0\r\n\r\n'])), 200);
    assert.deepEqual(framing('/off'), { cl: undefined, te: 'chunked', body: 'hello' });
  });
});

describe('listener limits while a body is buffered', () => {
  let b: RecordingBackend;
  let m: Running;
  before(async () => {
    b = await recordingBackend();
    m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [
          {
            name: 'web',
            address: '127.0.0.1',
            port: 0,
            // No minimum body rate, so only the route timeout can end a stalled body.
            limits: { max_body_bytes: 100, min_body_rate_bytes_per_second: 0 },
            routes: [
              { match: { path: { prefix: '/timeout' } }, cluster: 'c', timeout: '300ms' },
              { cluster: 'c' },
            ],
          },
        ],
        clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${b.port}` }] }],
      }),
    );
  });
  after(() => closeAll(m, b));

  it('a chunked body growing past max_body_bytes → 413, and the backend received nothing', async () => {
    b.received.length = 0;
    const n = m.records.length;
    const reply = await send(m.port, [postChunked('/big'), chunk('x'.repeat(60)), chunk('y'.repeat(60))]);
    assert.equal(status(reply), 413);
    assert.match(reply, /\r\nx-meridian-reason: payload_too_large\r\n/);
    assert.match(reply, /\r\nconnection: close\r\n/);
    await sawNothingBut(m, b, ['/big', 'xxxx']);
    assert.deepEqual(
      m.records.slice(n).map((r) => [r.path, r.status, r.reason, r.attempts]),
      [
        ['/big', 413, 'payload_too_large', 0],
        ['/marker', 200, undefined, 1],
      ],
    );
  });

  it('a body stalled past the route timeout → 408 request_timeout (not 504: nothing went upstream), and the backend received nothing', async () => {
    b.received.length = 0;
    const n = m.records.length;
    // Declares 50 bytes, sends 5, then waits: Meridian ends it.
    const reply = await send(m.port, [`POST /timeout HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nhello`]);
    assert.equal(status(reply), 408);
    assert.match(reply, /\r\nx-meridian-reason: request_timeout\r\n/);
    await sawNothingBut(m, b, ['/timeout', 'hello']);
    assert.deepEqual(
      m.records.slice(n).map((r) => [r.path, r.status, r.reason, r.attempts, r.bytesIn]),
      [
        ['/timeout', 408, 'request_timeout', 0, 5],
        ['/marker', 200, undefined, 1, 0],
      ],
    );
  });
});

describe('the minimum body rate while a body is buffered', () => {
  let b: RecordingBackend;
  let m: Running;
  before(async () => {
    b = await recordingBackend();
    m = await startMeridian(singleCluster(b.port, {}, { limits: { min_body_rate_bytes_per_second: 1000 } }));
  });
  after(() => closeAll(m, b));

  it('a body slower than min_body_rate_bytes_per_second → 408, and the backend received nothing', async () => {
    const reply = await send(m.port, [`POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\nhello`]);
    assert.equal(status(reply), 408);
    assert.match(reply, /\r\nx-meridian-reason: request_timeout\r\n/);
    await sawNothingBut(m, b, ['/slow', 'hello']);
  });
});

describe('a buffered body can be sent again', () => {
  let failing: RecordingBackend;
  let good: RecordingBackend;
  let m: Running;
  /** What `failing` does with each request. */
  let fail: Answer;
  before(async () => {
    failing = await recordingBackend((r, req, res) => fail(r, req, res));
    good = await recordingBackend((r, _req, res) => void res.end(`got ${r.body}`));
    m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [
          {
            name: 'c',
            policy: 'round_robin',
            retries: { attempts: 1, retry_on: ['503', 'reset'], budget: { percent: 20, min_per_second: 100 } },
            endpoints: [
              { address: `127.0.0.1:${failing.port}`, id: 'failing' },
              { address: `127.0.0.1:${good.port}`, id: 'good' },
            ],
          },
        ],
      }),
    );
  });
  after(() => closeAll(m, failing, good));

  const request = (method: string, path: string, extra = '') =>
    send(m.port, [`${method} ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n${extra}\r\n`, chunk('hello') + chunk(' world') + '0\r\n\r\n']);

  it('on a retry_on status, idempotent requests (or with Idempotency-Key) only', async () => {
    fail = (_r, _req, res) => {
      res.statusCode = 503;
      res.end('busy');
    };
    // Round robin takes failing, good, failing, ... retries included.
    const put = await request('PUT', '/put'); // failing (503), then good
    const post = await request('POST', '/post'); // failing (503): not retried
    const filler = await get(m.port, '/filler', { agent: false }); // good
    const keyed = await request('POST', '/keyed', 'Idempotency-Key: k1\r\n'); // failing (503), then good
    assert.deepEqual([status(put), bodyOf(put)], [200, 'got hello world']);
    assert.deepEqual([status(post), bodyOf(post)], [503, 'busy']);
    assert.equal(filler.status, 200);
    assert.deepEqual([status(keyed), bodyOf(keyed)], [200, 'got hello world']);
    const seen = (bk: RecordingBackend) => bk.received.map((r) => [r.url, r.headers['content-length'], r.body]);
    assert.deepEqual(seen(failing), [
      ['/put', '11', 'hello world'],
      ['/post', '11', 'hello world'],
      ['/keyed', '11', 'hello world'],
    ]);
    assert.deepEqual(seen(good), [
      ['/put', '11', 'hello world'],
      ['/filler', undefined, ''],
      ['/keyed', '11', 'hello world'],
    ]);
  });

  it('after a reset: once more on a fresh connection to the same endpoint, then on another', async () => {
    failing.received.length = 0;
    good.received.length = 0;
    const n = m.records.length;
    fail = (_r, req) => req.socket.destroy();
    const reply = await request('PUT', '/reset');
    assert.deepEqual([status(reply), bodyOf(reply)], [200, 'got hello world']);
    assert.deepEqual(
      failing.received.map((r) => [r.url, r.body]),
      [
        ['/reset', 'hello world'],
        ['/reset', 'hello world'],
      ],
    );
    assert.deepEqual(
      good.received.map((r) => [r.url, r.body]),
      [['/reset', 'hello world']],
    );
    await until(() => m.records.length > n, 5000, 'the access record');
    assert.deepEqual([m.records[n]?.status, m.records[n]?.attempts, m.records[n]?.endpoint], [200, 2, 'good']);
  });
});

describe('HTTP/2 request bodies', () => {
  let b: RecordingBackend;
  let m: Running;
  before(async () => {
    b = await recordingBackend();
    m = await startMeridian(singleCluster(b.port, {}, { http2: { enabled: true } }));
  });
  after(() => closeAll(m, b));

  it('a body in several DATA frames, without content-length, is sent upstream whole with Content-Length', async () => {
    const session = h2connect(`http://127.0.0.1:${m.port}`);
    try {
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ':method': 'POST', ':path': '/h2' });
        let body = '';
        let st = 0;
        stream.on('response', (h) => (st = Number(h[':status'])));
        stream.on('data', (c: Buffer) => (body += c.toString()));
        stream.on('end', () => resolve({ status: st, body }));
        stream.on('error', reject);
        stream.write('hello');
        void pause().then(() => stream.end(' world'));
      });
      assert.deepEqual(answer, { status: 200, body: 'ok' });
    } finally {
      session.close();
    }
    const r = b.received.at(-1);
    assert.deepEqual(r && [r.url, r.headers['content-length'], r.headers['transfer-encoding'], r.body], ['/h2', '11', undefined, 'hello world']);
  });
});
