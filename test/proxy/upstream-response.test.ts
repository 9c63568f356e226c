// Backends that answer with broken HTTP/1.1: a bad chunk size after the head, in the same
// packet as the head or later, with or without body bytes before it; and a status line
// that is not HTTP. The client must get a 502 whenever none of the answer has reached it,
// else what was sent and a cut connection, and the access record must say exactly that.
// The default retry_on has `reset`, which covers a malformed answer: a GET none of whose
// answer went on is tried twice (its one endpoint is bad both times) before the 502.
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { SampleBackend } from '../../src/backend/sample-backend.js';
import type { ExchangeRecord } from '../../src/proxy/forward.js';
import { backends, closeAll, config, startMeridian, until, type Running } from './harness.js';

/** One response, as the backend writes it: `parts[i]` goes out once `waits[i]` (if any) resolves. */
type Answer = (s: Socket) => Promise<void>;

interface RawBackend {
  readonly port: number;
  /** What the next request's connection is answered with. */
  answer: Answer;
  close(): Promise<void>;
}

/** A backend speaking raw bytes: for each request's head it reads, it runs `answer` on the socket. */
async function rawBackend(): Promise<RawBackend> {
  const sockets = new Set<Socket>();
  const b: RawBackend = {
    port: 0,
    answer: async () => {},
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    // Requests have no body here: each blank line ends one (a kept-alive connection carries more).
    let read = '';
    s.on('data', (c: Buffer) => {
      read += c.toString('latin1');
      let end: number;
      while ((end = read.indexOf('\r\n\r\n')) >= 0) {
        read = read.slice(end + 4);
        void b.answer(s);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (b as { port: number }).port = (server.address() as { port: number }).port;
  return b;
}

/** A raw client connection: everything it received, and a way to wait for some of it. */
interface RawClient {
  text(): string;
  waitFor(s: string): Promise<void>;
  /** Resolves when the server closed (or reset) the connection. */
  readonly closed: Promise<void>;
}

function rawClient(port: number, bytes: string): RawClient {
  const s = connect(port, '127.0.0.1');
  let got = '';
  const waiters: { s: string; resolve: () => void; reject: (e: Error) => void }[] = [];
  s.on('data', (c: Buffer) => {
    got += c.toString('latin1');
    for (const w of waiters.splice(0)) {
      if (got.includes(w.s)) w.resolve();
      else waiters.push(w);
    }
  });
  s.on('error', () => {}); // a reset is a close too
  const closed = new Promise<void>((r) =>
    s.on('close', () => {
      for (const w of waiters.splice(0)) w.reject(new Error(`closed before ${JSON.stringify(w.s)} arrived; got ${JSON.stringify(got)}`));
      r();
    }),
  );
  // A test must fail, not hang, if the server never closes.
  const timer = setTimeout(() => s.destroy(), 10_000);
  void closed.then(() => clearTimeout(timer));
  s.write(bytes);
  return {
    text: () => got,
    waitFor: (str) => (got.includes(str) ? Promise.resolve() : new Promise((resolve, reject) => waiters.push({ s: str, resolve, reject }))),
    closed,
  };
}

const GET = 'GET /x HTTP/1.1\r\nHost: x\r\nX-Request-Id: r1\r\nConnection: close\r\n\r\n';
const POST = 'POST /x HTTP/1.1\r\nHost: x\r\nX-Request-Id: r1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';
const HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n';
/** What the client gets of HEAD: its fields as the backend named them, hop-by-hop headers Meridian's own, plus the request id. */
const SENT_HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nx-request-id: r1\r\nDate: (date)\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n';
const PROTOCOL_ERROR_BODY = 'meridian: the upstream answered with a malformed HTTP/1.1 response (upstream_protocol_error)\n';
const PROTOCOL_ERROR_REPLY =
  'HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain; charset=utf-8\r\n' +
  `content-length: ${PROTOCOL_ERROR_BODY.length}\r\nx-meridian-reason: upstream_protocol_error\r\nx-request-id: r1\r\n` +
  `Date: (date)\r\nConnection: close\r\n\r\n${PROTOCOL_ERROR_BODY}`;

const undated = (s: string) => s.replace(/\r\nDate: [^\r]+/, '\r\nDate: (date)');

/** The fields of a record that say what the client got. */
const got = (r: ExchangeRecord | undefined) => r && { status: r.status, reason: r.reason, bytesOut: r.bytesOut, attempts: r.attempts, endpoint: r.endpoint };

describe('a malformed chunked response from the backend', () => {
  let bad: RawBackend;
  let m: Running;
  before(async () => {
    bad = await rawBackend();
    m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }], http2: { enabled: true } }],
        clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${bad.port}`, id: 'bad' }] }],
      }),
    );
  });
  after(() => closeAll(m, bad));

  /** Send `request`, wait for the exchange's record, return it with what the client got. */
  async function exchange(request: string, during?: (c: RawClient) => Promise<void>): Promise<{ reply: string; record: ExchangeRecord | undefined }> {
    const n = m.records.length;
    const c = rawClient(m.port, request);
    await during?.(c);
    await c.closed;
    await until(() => m.records.length > n, 5000, 'the access record');
    return { reply: undated(c.text()), record: m.records[n] };
  }

  it('a bad chunk size in the same packet as the head → 502 upstream_protocol_error, logged as 502', async () => {
    bad.answer = async (s) => void s.write(`${HEAD}zz\r\nhello\r\n0\r\n\r\n`);
    const { reply, record } = await exchange(GET);
    assert.equal(reply, PROTOCOL_ERROR_REPLY);
    assert.deepEqual(got(record), { status: 502, reason: 'upstream_protocol_error', bytesOut: 0, attempts: 2, endpoint: 'bad' });
  });

  it('the head alone is sent at once; a bad chunk after it cuts the connection, logged as 200 upstream_abort with 0 bytes', async () => {
    let clientSawHead!: () => void;
    const sawHead = new Promise<void>((r) => (clientSawHead = r));
    bad.answer = async (s) => {
      s.write(HEAD);
      // The bad chunk only once the client has the head: the head must not wait for body bytes.
      await sawHead;
      s.write('zz\r\n');
    };
    const { reply, record } = await exchange(GET, async (c) => {
      await c.waitFor('\r\n\r\n');
      clientSawHead();
    });
    assert.equal(reply, SENT_HEAD);
    assert.deepEqual(got(record), { status: 200, reason: 'upstream_abort', bytesOut: 0, attempts: 1, endpoint: 'bad' });
  });

  it('head and a good chunk, then a bad chunk later: the client gets those, then a cut; logged as 200 upstream_abort with 5 bytes', async () => {
    let clientSawChunk!: () => void;
    const sawChunk = new Promise<void>((r) => (clientSawChunk = r));
    bad.answer = async (s) => {
      s.write(`${HEAD}5\r\nhello\r\n`);
      await sawChunk;
      s.write('zz\r\n');
    };
    const { reply, record } = await exchange(GET, async (c) => {
      await c.waitFor('hello\r\n');
      clientSawChunk();
    });
    assert.equal(reply, `${SENT_HEAD}5\r\nhello\r\n`);
    assert.deepEqual(got(record), { status: 200, reason: 'upstream_abort', bytesOut: 5, attempts: 1, endpoint: 'bad' });
  });

  it('head, a good chunk and a bad chunk in one packet: the good chunk was sent on, so the client gets it, then a cut', async () => {
    bad.answer = async (s) => void s.write(`${HEAD}5\r\nhello\r\nzz\r\n`);
    const { reply, record } = await exchange(GET);
    assert.equal(reply, `${SENT_HEAD}5\r\nhello\r\n`);
    assert.deepEqual(got(record), { status: 200, reason: 'upstream_abort', bytesOut: 5, attempts: 1, endpoint: 'bad' });
  });

  it('a status line that is not HTTP → 502 upstream_protocol_error', async () => {
    bad.answer = async (s) => void s.write('HTTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    const { reply, record } = await exchange(GET);
    assert.equal(reply, PROTOCOL_ERROR_REPLY);
    assert.deepEqual(got(record), { status: 502, reason: 'upstream_protocol_error', bytesOut: 0, attempts: 2, endpoint: 'bad' });
  });

  it('an event stream: the head goes to the client before the backend sends its first event', async () => {
    let clientSawHead!: () => void;
    const sawHead = new Promise<void>((r) => (clientSawHead = r));
    bad.answer = async (s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
      await sawHead;
      s.write('9\r\ndata: 1\n\n\r\n0\r\n\r\n');
    };
    const { reply, record } = await exchange(GET, async (c) => {
      await c.waitFor('\r\n\r\n');
      clientSawHead();
    });
    assert.equal(reply, `${SENT_HEAD.replace('text/plain', 'text/event-stream')}9\r\ndata: 1\n\n\r\n0\r\n\r\n`);
    assert.deepEqual(got(record), { status: 200, reason: undefined, bytesOut: 9, attempts: 1, endpoint: 'bad' });
  });

  it('over HTTP/2: a bad chunk size with the head → :status 502 upstream_protocol_error', async () => {
    bad.answer = async (s) => void s.write(`${HEAD}zz\r\n`);
    const n = m.records.length;
    const session = h2connect(`http://127.0.0.1:${m.port}`);
    try {
      const reply = await new Promise<{ status: number; reason: string; body: string }>((resolve, reject) => {
        const stream = session.request({ ':path': '/x', 'x-request-id': 'r1' }, { endStream: true });
        let body = '';
        let head: { status: number; reason: string } | undefined;
        stream.on('response', (h) => (head = { status: Number(h[':status']), reason: String(h['x-meridian-reason']) }));
        stream.on('data', (c: Buffer) => (body += c.toString()));
        stream.on('end', () => (head ? resolve({ ...head, body }) : reject(new Error('no head'))));
        stream.on('error', reject);
      });
      assert.deepEqual(reply, { status: 502, reason: 'upstream_protocol_error', body: PROTOCOL_ERROR_BODY });
    } finally {
      session.close();
    }
    await until(() => m.records.length > n, 5000, 'the access record');
    assert.deepEqual(got(m.records[n]), { status: 502, reason: 'upstream_protocol_error', bytesOut: 0, attempts: 2, endpoint: 'bad' });
  });
});

describe('retrying a malformed response', () => {
  let bad: RawBackend;
  let bs: SampleBackend[];
  let m: Running;
  before(async () => {
    bad = await rawBackend();
    bad.answer = async (s) => void s.write(`${HEAD}zz\r\n`);
    bs = await backends(1);
    m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [
          {
            name: 'c',
            policy: 'round_robin',
            retries: { retry_on: ['reset'] },
            endpoints: [
              { address: `127.0.0.1:${bad.port}`, id: 'bad' },
              { address: `127.0.0.1:${bs[0]!.port}`, id: 'b0' },
            ],
          },
        ],
      }),
    );
  });
  after(() => closeAll(m, bad, bs));

  it('is retried on another endpoint as a reset (retry_on: reset) when the request is replayable, and refused when not', async () => {
    // Round robin takes the endpoints in order, retries included: the GET goes to bad,
    // then b0; the POST goes to bad again.
    const first = rawClient(m.port, GET);
    await first.closed;
    assert.match(first.text(), /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nb0\n$/);
    const second = rawClient(m.port, POST);
    await second.closed;
    assert.equal(undated(second.text()), PROTOCOL_ERROR_REPLY);
    await until(() => m.records.length === 2, 5000, 'two access records');
    assert.deepEqual(m.records.map(got), [
      { status: 200, reason: undefined, bytesOut: 3, attempts: 2, endpoint: 'b0' },
      { status: 502, reason: 'upstream_protocol_error', bytesOut: 0, attempts: 1, endpoint: 'bad' },
    ]);
    assert.match(await m.meridian.metrics.metricsText(), /meridian_retries_total\{cluster="c",reason="upstream_protocol_error"\} 1\n/);
  });
});
