// Hostile input at the listener: request smuggling, malformed framing, bad characters,
// limits, slowloris and slow bodies. A real Meridian in front of real sample backends,
// raw bytes over real sockets. Every refusal must be answered by Meridian itself, close
// the connection, and reach no backend. docs/hostile-input.md tabulates the answers.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { after, before, describe, it, type TestContext } from 'node:test';
import { connect as h2connect, constants as h2constants, createServer as createH2Server } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import type { SampleBackend } from '../../src/backend/sample-backend.js';
import { certDir, type CertDir } from './certs.js';
import { BackendSight, backends, closeAll, config, get, simpleConfig, startMeridian, sendRaw, until, type Running, type Sent } from './harness.js';

/** Raw bytes in, everything back (harness.ts sendRaw), waiting at most 2000 ms by default. */
function send(port: number, parts: string | Buffer | readonly (string | Buffer)[], ms = 2000, gapMs = 0): Promise<Sent> {
  return sendRaw(port, parts, ms, gapMs);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const firstLine = (r: Sent) => (r.reply.split('\r\n')[0] ?? '').slice(0, 80) || '(nothing)';

interface Seen {
  readonly requests: number;
  readonly connections: number;
}
const seen = (bs: readonly SampleBackend[]): Seen => ({
  requests: bs.reduce((n, b) => n + b.requests, 0),
  connections: bs.reduce((n, b) => n + b.connections, 0),
});

interface Refusal {
  /** The x-meridian-reason the answer must carry (Meridian's own checks; Node's parser sends none). */
  readonly reason?: string;
  /** Hosts for the marker requests, between them routed to every backend in `bs`. */
  readonly hosts?: readonly string[];
}

/**
 * Send `bytes`; expect Meridian to answer `status` itself, close the connection, and no
 * backend to see a request (nor a new connection) — checked once marker requests sent after
 * the close have reached every backend (BackendSight), so a late forward would be seen.
 */
async function refused(t: TestContext, m: Running, bs: readonly SampleBackend[], bytes: string | readonly string[], status: number, ms = 2000, gapMs = 0, want: Refusal = {}): Promise<void> {
  const sight = new BackendSight(bs);
  try {
    sight.start();
    const r = await send(m.port, bytes, ms, gapMs);
    const besides = await sight.settle(m.port, want.hosts);
    t.diagnostic(`got ${firstLine(r)}; closed=${r.closedByServer}; backends saw besides the markers: ${JSON.stringify(besides)}`);
    assert.equal(r.status, status, `expected ${status}, got: ${firstLine(r)}`);
    if (want.reason !== undefined) assert.match(r.reply, new RegExp(`\r\nx-meridian-reason: ${want.reason}\r\n`, 'i'), `expected reason ${want.reason}`);
    assert.ok(r.closedByServer, 'Meridian must close the connection after refusing');
    assert.deepEqual(besides.requests, [], 'a backend saw the request');
    assert.equal(besides.connections, 0, 'a backend connection was opened');
  } finally {
    sight.close();
  }
}

interface Echoed {
  readonly name: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly bodyBytes: number;
}

/** Send `bytes` (a request for /echo that ends the connection); expect a 200 and return what the backend saw. */
async function echoed(t: TestContext, m: Running, bytes: string): Promise<Echoed> {
  const r = await send(m.port, bytes);
  t.diagnostic(`got ${firstLine(r)}`);
  assert.equal(r.status, 200, firstLine(r));
  const seen = JSON.parse(r.reply.slice(r.reply.indexOf('\r\n\r\n') + 4)) as Echoed;
  t.diagnostic(`${seen.name} saw url=${seen.url} headers=${JSON.stringify(seen.headers)}`);
  return seen;
}

const H = 'Host: x\r\n';

describe('hostile input: framing and smuggling', () => {
  let bs: SampleBackend[];
  let m: Running;
  before(async () => {
    bs = await backends(2);
    m = await startMeridian(simpleConfig(bs));
  });
  after(() => closeAll(m, bs));

  // PortSwigger, "HTTP request smuggling": the classic CL.TE and TE.CL payloads.
  it('CL.TE: Content-Length and Transfer-Encoding together → 400', async (t) => {
    await refused(t, m, bs, `POST / HTTP/1.1\r\n${H}Content-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED`, 400);
  });

  it('TE.CL: Transfer-Encoding and Content-Length together → 400', async (t) => {
    await refused(t, m, bs, `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n`, 400);
  });

  it('duplicate Content-Length with differing values → 400', async (t) => {
    await refused(t, m, bs, `POST /upload HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`, 400);
  });

  it('Content-Length list "5, 6" → 400', async (t) => {
    await refused(t, m, bs, `POST /upload HTTP/1.1\r\n${H}Content-Length: 5, 6\r\n\r\nhello!`, 400);
  });

  // RFC 9112 §6.3 would let a recipient merge identical values; Node refuses any duplicate.
  it('duplicate identical Content-Length → 400', async (t) => {
    await refused(t, m, bs, `POST /echo HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`, 400);
  });

  const chunked = (size: string) => `POST /upload HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${size}\r\nhello\r\n0\r\n\r\n`;
  for (const [what, size] of [
    ['zz', 'zz'],
    ['-1', '-1'],
    ['0x10', '0x10'],
    ['leading space " 5"', ' 5'],
    ['over-long (20 hex digits, overflows 64 bits)', 'f'.repeat(20)],
  ] as const) {
    it(`chunk size ${what} → 400`, async (t) => {
      await refused(t, m, bs, chunked(size), 400);
    });
  }

  it('chunk size zz arriving 100 ms after the headers → 400 (the first chunk is checked before going upstream)', async (t) => {
    await refused(t, m, bs, [`POST /upload HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n`, 'zz\r\nhello\r\n0\r\n\r\n'], 400, 2000, 100);
  });

  it('a valid chunked body arriving 100 ms after the headers is forwarded intact', async (t) => {
    const r = await send(m.port, [`POST /upload HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n`, '5\r\nhello\r\n0\r\n\r\n'], 2000, 100);
    t.diagnostic(`got ${firstLine(r)}`);
    assert.equal(r.status, 200, firstLine(r));
    assert.match(r.reply, /\{"bytes":5\}/);
  });

  for (const [what, te] of [
    ['chunked, identity', 'Transfer-Encoding: chunked, identity'],
    ['"Transfer-Encoding : chunked" (space before colon)', 'Transfer-Encoding : chunked'],
  ] as const) {
    it(`Transfer-Encoding ${what} → 400`, async (t) => {
      await refused(t, m, bs, `POST /upload HTTP/1.1\r\n${H}${te}\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, 400);
    });
  }

  // Node's parser refuses it too, but only once the 'request' event has run: Meridian's answer goes first.
  it('Transfer-Encoding xchunked → 501 (a coding other than chunked, as Envoy answers)', async (t) => {
    await refused(t, m, bs, `POST /upload HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, 501, 2000, 0, { reason: 'transfer_coding_not_implemented' });
  });

  it('"Transfer-Encoding:<TAB>chunked" is legal (OWS) and forwarded with the body intact', async (t) => {
    const r = await send(m.port, `POST /upload HTTP/1.1\r\n${H}Transfer-Encoding:\tchunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
    t.diagnostic(`got ${firstLine(r)}`);
    assert.equal(r.status, 200, firstLine(r));
    assert.match(r.reply, /\{"bytes":5\}/);
  });

  it('Transfer-Encoding in an HTTP/1.0 request → 400 (RFC 9112 §6.1: faulty framing)', async (t) => {
    await refused(t, m, bs, `POST /upload HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, 400);
  });
});

describe('hostile input: bad characters and targets', () => {
  let bs: SampleBackend[];
  let m: Running;
  before(async () => {
    bs = await backends(2);
    m = await startMeridian(simpleConfig(bs));
  });
  after(() => closeAll(m, bs));

  for (const [what, header] of [
    ['space before colon', 'X-Foo : bar'],
    ['NUL in the name', 'X-F\x00oo: bar'],
    ['@ in the name', 'X-F@oo: bar'],
    ['bare CR in the value', 'X-Foo: a\rb'],
    ['NUL in the value', 'X-Foo: a\x00b'],
  ] as const) {
    it(`header with ${what} → 400`, async (t) => {
      await refused(t, m, bs, `GET / HTTP/1.1\r\n${H}${header}\r\n\r\n`, 400);
    });
  }

  // RFC 9112 §2.2 lets a recipient take a lone LF as a line terminator; Node's strict parser does not.
  for (const [what, bytes] of [
    ['request line ending in bare LF', `GET /echo HTTP/1.1\n${H}Connection: close\r\n\r\n`],
    ['all lines ending in bare LF', `GET /echo HTTP/1.1\nHost: x\nConnection: close\n\n`],
    ['bare LF inside a header value', `GET /echo HTTP/1.1\r\n${H}X-Foo: a\nX-Injected: b\r\nConnection: close\r\n\r\n`],
  ] as const) {
    it(`${what} → 400`, async (t) => {
      await refused(t, m, bs, bytes, 400);
    });
  }

  it('absolute-form target to another host is forwarded in origin form, with that authority as Host (RFC 9112 §3.2.2)', async (t) => {
    const seen = await echoed(t, m, `GET http://evil.example/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.equal(seen.url, '/echo');
    assert.equal(seen.headers['host'], 'evil.example');
    assert.equal(seen.headers['x-forwarded-host'], 'evil.example');
  });
});

describe('hostile input: limits', () => {
  let bs: SampleBackend[];
  let m: Running;
  before(async () => {
    bs = await backends(2);
    m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [
          {
            name: 'web',
            address: '127.0.0.1',
            port: 0,
            routes: [{ cluster: 'c' }],
            limits: { max_header_bytes: 4096, max_headers: 20, max_url_bytes: 256, max_body_bytes: 1000 },
          },
        ],
        clusters: [{ name: 'c', endpoints: bs.map((b) => ({ address: `127.0.0.1:${b.port}`, id: b.name })) }],
      }),
    );
  });
  after(() => closeAll(m, bs));

  it('a request within every limit passes', async () => {
    const r = await get(m.port, '/upload', { method: 'POST', body: 'x'.repeat(1000), headers: { 'x-a': 'a'.repeat(2000) } });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { bytes: 1000 });
  });

  it('headers over the configured max_header_bytes (6 KB > 4096) → 431', async (t) => {
    await refused(t, m, bs, `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(6000)}\r\n\r\n`, 431);
  });

  it("headers over Node's own 16 KiB → 431", async (t) => {
    await refused(t, m, bs, `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431);
  });

  it('more than max_headers (30 > 20) header fields → 431', async (t) => {
    const many = Array.from({ length: 30 }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
    await refused(t, m, bs, `GET / HTTP/1.1\r\n${H}${many}\r\n`, 431);
  });

  it('URL over max_url_bytes (300 > 256) → 414', async (t) => {
    await refused(t, m, bs, `GET /${'a'.repeat(300)} HTTP/1.1\r\n${H}\r\n`, 414);
  });

  it('Content-Length over max_body_bytes → 413 before any body byte is sent', async (t) => {
    // No body follows the headers: the answer must come from the declared length alone.
    await refused(t, m, bs, `POST /upload HTTP/1.1\r\n${H}Content-Length: 5000\r\n\r\n`, 413, 1500);
  });

  it('chunked body growing past max_body_bytes → 413', async (t) => {
    const before = seen(bs);
    const chunk = `190\r\n${'x'.repeat(400)}\r\n`;
    // Headers first, then 400-byte chunks: the third one crosses 1000 bytes.
    const r = await send(m.port, [`POST /upload HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n`, chunk, chunk, chunk, chunk, '0\r\n\r\n'], 2000, 30);
    const afterwards = seen(bs);
    t.diagnostic(`got ${firstLine(r)}; closed=${r.closedByServer}; backend requests +${afterwards.requests - before.requests} (a streaming proxy may have sent the headers on; the backend must then see the body cut, never complete)`);
    assert.equal(r.status, 413, `expected 413, got: ${firstLine(r)}`);
    assert.ok(r.closedByServer, 'Meridian must close the connection after refusing');
    // Whatever the backend got, its answer was not what the client saw: the exchange is Meridian's 413.
    const rec = m.records.at(-1);
    t.diagnostic(`access record: status ${rec?.status}, reason ${rec?.reason}, body bytes forwarded ${rec?.bytesIn}`);
    assert.equal(rec?.status, 413);
    assert.ok((rec?.bytesIn ?? 0) <= 1000 + 400, `forwarded ${rec?.bytesIn} body bytes, limit 1000`);
  });
});

describe('hostile input: slow clients', () => {
  let bs: SampleBackend[];
  let m: Running;
  before(async () => {
    bs = await backends(2);
    m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }], timeouts: { request_headers: '1s' } }],
        clusters: [{ name: 'c', endpoints: bs.map((b) => ({ address: `127.0.0.1:${b.port}`, id: b.name })) }],
      }),
    );
  });
  after(() => closeAll(m, bs));

  /** Normal requests every `everyMs` until stopped; returns every status seen. */
  function keepAsking(port: number, everyMs = 100): { stop(): Promise<number[]> } {
    const statuses: number[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        try {
          statuses.push((await get(port, '/', { agent: false, timeoutMs: 3000 })).status);
        } catch {
          statuses.push(0);
        }
        await sleep(everyMs);
      }
    })();
    return {
      async stop() {
        running = false;
        await loop;
        return statuses;
      },
    };
  }

  it('slowloris: 200 connections sending headers a byte at a time are all closed; normal requests keep working', async (t) => {
    const before = seen(bs);
    const asking = keepAsking(m.port);
    const text = `GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(1000)}\r\n\r\n`;
    const sockets: Socket[] = [];
    const closed = new Set<Socket>();
    const replies = new Map<Socket, string>();
    const timers: NodeJS.Timeout[] = [];
    for (let i = 0; i < 200; i++) {
      const s = connect(m.port, '127.0.0.1');
      sockets.push(s);
      s.on('error', () => undefined);
      s.on('data', (c: Buffer) => replies.set(s, (replies.get(s) ?? '') + c.toString('latin1')));
      s.on('close', () => closed.add(s));
      let at = 0;
      timers.push(
        setInterval(() => {
          if (!s.destroyed && s.writable && at < text.length) s.write(text[at++] as string);
        }, 50),
      );
    }
    try {
      // Headers take 1000 × 50 ms to arrive; the 1 s header timeout must cut them long before.
      await until(() => closed.size === sockets.length, 6000, `all slow connections closed (${closed.size}/200 so far)`);
    } finally {
      for (const x of timers) clearInterval(x);
      for (const s of sockets) s.destroy();
    }
    const statuses = await asking.stop();
    const got408 = [...replies.values()].filter((r) => r.startsWith('HTTP/1.1 408')).length;
    const afterwards = seen(bs);
    t.diagnostic(`slow connections closed: ${closed.size}/200, ${got408} answered 408; normal requests: ${statuses.length} (${statuses.filter((s) => s === 200).length} × 200); backend requests +${afterwards.requests - before.requests}`);
    assert.ok(statuses.length >= 5, `only ${statuses.length} normal requests completed`);
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
      'every normal request during the attack succeeds',
    );
    assert.equal(afterwards.requests - before.requests, statuses.length, 'only the normal requests reach a backend');
  });

  it('slowhttptest -H (slowloris, 200 connections, 5 s) leaves Meridian serving', async (t) => {
    if (spawnSync('slowhttptest', ['-h'], { stdio: 'ignore' }).error) {
      t.skip('slowhttptest is not installed (Debian package "slowhttptest")');
      return;
    }
    const asking = keepAsking(m.port, 200);
    const out = `/tmp/meridian-slowhttptest-${process.pid}`;
    // -c connections, -H slow headers, -i seconds between follow-up headers, -r connections/s,
    // -l test length (s), -g/-o statistics to OUT.csv/OUT.html, -p probe timeout (s).
    const child = spawn('slowhttptest', ['-c', '200', '-H', '-i', '1', '-r', '100', '-l', '5', '-p', '2', '-u', `http://127.0.0.1:${m.port}/`, '-g', '-o', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    clearTimeout(killer);
    const statuses = await asking.stop();
    rmSync(`${out}.csv`, { force: true });
    rmSync(`${out}.html`, { force: true });
    const plain = output.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), ''); // ANSI colours
    const last = (re: RegExp) => [...plain.matchAll(re)].at(-1)?.[1]?.trim();
    const available = last(/service available:\s*(\w+)/gi);
    t.diagnostic(
      `slowhttptest exit ${code} (${last(/Exit status:\s*(.*)/gi) ?? '?'}); its last report: closed ${last(/closed:\s*(\d+)/gi) ?? '?'}, connected ${last(/connected:\s*(\d+)/gi) ?? '?'}, service available ${available ?? '?'}; normal requests during: ${statuses.length}, non-200: ${statuses.filter((s) => s !== 200).length}`,
    );
    assert.deepEqual(statuses.filter((s) => s !== 200), [], 'normal requests during slowhttptest succeed');
    if (available !== undefined) assert.equal(available.toUpperCase(), 'YES', 'slowhttptest found the service unavailable');
    const r = await get(m.port, '/', { agent: false });
    assert.equal(r.status, 200);
  });

  it('slow body (1 byte / 200 ms of a 100000-byte body) is cut off within a few seconds; normal requests keep working', async (t) => {
    const asking = keepAsking(m.port);
    const s = connect(m.port, '127.0.0.1');
    let reply = '';
    let closedAt = 0;
    const start = Date.now();
    s.on('error', () => undefined);
    s.on('data', (c: Buffer) => (reply += c.toString('latin1')));
    s.on('close', () => (closedAt = Date.now()));
    s.write(`POST /upload HTTP/1.1\r\n${H}Content-Length: 100000\r\n\r\n`);
    const drip = setInterval(() => {
      if (!s.destroyed && s.writable) s.write('x');
    }, 200);
    try {
      await until(() => closedAt > 0, 5000, 'the slow body to be cut off');
    } catch (e) {
      t.diagnostic(`still open after 5 s; reply so far: ${JSON.stringify(reply.slice(0, 80))}`);
      throw e;
    } finally {
      clearInterval(drip);
      s.destroy();
      const statuses = await asking.stop();
      t.diagnostic(`normal requests meanwhile: ${statuses.length}, non-200: ${statuses.filter((x) => x !== 200).length}`);
      assert.deepEqual(statuses.filter((x) => x !== 200), [], 'normal requests during a slow body succeed');
    }
    const line = reply.split('\r\n')[0] ?? '';
    t.diagnostic(`cut after ${closedAt - start} ms; reply: ${line || '(connection closed, nothing written)'}`);
    assert.ok(line === '' || /^HTTP\/1\.1 408 /.test(line), `expected 408 or a bare close, got: ${line}`);
  });
});

/**
 * One request normalisation for the request path and the upgrade path (request-target.ts):
 * each raw request here is sent as it is and again with `Connection: Upgrade` and
 * `Upgrade: websocket`, and must be answered, routed and forwarded the same way. The
 * backends answer an upgrade with their ordinary answer (they have no upgrade handler),
 * which Meridian relays before closing, so what they saw comes back either way.
 */
describe('hostile input: request line, Host and transfer codings, on the request and the upgrade path alike', () => {
  let internal: SampleBackend[];
  let pub: SampleBackend[];
  let all: SampleBackend[];
  let m: Running;
  const hosts = ['internal.example', 'x'];
  before(async () => {
    internal = await backends(1, { name: 'internal' });
    pub = await backends(1, { name: 'public' });
    all = [...internal, ...pub];
    const cluster = (name: string, bs: SampleBackend[]) => ({ name, endpoints: bs.map((b) => ({ address: `127.0.0.1:${b.port}`, id: b.name })) });
    m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ match: { host: ['internal.example'] }, cluster: 'internal' }, { cluster: 'public' }] }],
        clusters: [cluster('internal', internal), cluster('public', pub)],
      }),
    );
  });
  after(() => closeAll(m, all));

  const UPGRADE = 'Connection: Upgrade\r\nUpgrade: websocket\r\n';
  const paths = [
    ['request', (line: string, fields: string) => `${line}\r\n${fields}Connection: close\r\n\r\n`],
    ['upgrade', (line: string, fields: string) => `${line}\r\n${fields}${UPGRADE}\r\n`],
  ] as const;

  // [what, request line, header fields, status, reason]
  const refusals: readonly (readonly [string, string, string, number, string])[] = [
    ['two Host fields', 'GET /echo HTTP/1.1', 'Host: a.example\r\nHost: b.example\r\n', 400, 'invalid_host'],
    ['two identical Host fields', 'GET /echo HTTP/1.1', 'Host: a.example\r\nHost: a.example\r\n', 400, 'invalid_host'],
    ['no Host on HTTP/1.1', 'GET /echo HTTP/1.1', '', 400, 'invalid_host'],
    ['no Host on HTTP/1.0', 'GET /echo HTTP/1.0', '', 400, 'invalid_host'],
    ['Host: bad host', 'GET /echo HTTP/1.1', 'Host: bad host\r\n', 400, 'invalid_host'],
    ['Host: a/b@c', 'GET /echo HTTP/1.1', 'Host: a/b@c\r\n', 400, 'invalid_host'],
    ['Host: user@example (userinfo)', 'GET /echo HTTP/1.1', 'Host: user@example\r\n', 400, 'invalid_host'],
    ['an empty Host', 'GET /echo HTTP/1.1', 'Host: \r\n', 400, 'invalid_host'],
    ['Host port over 65535', 'GET /echo HTTP/1.1', 'Host: x:65536\r\n', 400, 'invalid_host'],
    ['Host: [not-an-ip]', 'GET /echo HTTP/1.1', 'Host: [not-an-ip]\r\n', 400, 'invalid_host'],
    ['absolute-form with userinfo', 'GET http://user@internal.example/echo HTTP/1.1', 'Host: x\r\n', 400, 'invalid_host'],
    ['absolute-form with a bad authority', 'GET http://a%zz/echo HTTP/1.1', 'Host: x\r\n', 400, 'invalid_host'],
    ['absolute-form with a scheme other than http(s)', 'GET ftp://internal.example/echo HTTP/1.1', 'Host: x\r\n', 400, 'bad_request'],
    ['a fragment in the target', 'GET /echo#top HTTP/1.1', 'Host: x\r\n', 400, 'bad_request'],
    ['GET /echo HTTP/2.0', 'GET /echo HTTP/2.0', 'Host: x\r\n', 505, 'http_version_not_supported'],
    ['GET /echo HTTP/0.9', 'GET /echo HTTP/0.9', 'Host: x\r\n', 400, 'bad_request'],
    ['a request line without a version (HTTP/0.9 form) followed by fields', 'GET /echo', 'Host: x\r\n', 400, 'bad_request'],
    ['two spaces after the method', 'GET  /echo HTTP/1.1', 'Host: x\r\n', 400, 'bad_request'],
    ['two spaces before the version', 'GET /echo  HTTP/1.1', 'Host: x\r\n', 400, 'bad_request'],
    ['two spaces and HTTP/2.0', 'GET /echo  HTTP/2.0', 'Host: x\r\n', 400, 'bad_request'],
    ['Transfer-Encoding: gzip, chunked', 'POST /echo HTTP/1.1', 'Host: x\r\nTransfer-Encoding: gzip, chunked\r\n', 501, 'transfer_coding_not_implemented'],
    ['Transfer-Encoding: gzip then Transfer-Encoding: chunked', 'POST /echo HTTP/1.1', 'Host: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n', 501, 'transfer_coding_not_implemented'],
  ];
  for (const [path, make] of paths) {
    for (const [what, line, fields, status, reason] of refusals) {
      it(`${path} path: ${what} → ${status} ${reason}`, async (t) => {
        const body = /^POST/.test(line) ? '5\r\nhello\r\n0\r\n\r\n' : '';
        await refused(t, m, all, make(line, fields) + body, status, 2000, 0, { reason, hosts });
      });
    }
  }

  // [what, request line, header fields, backend, url it sees, Host it sees]
  const forwards: readonly (readonly [string, string, string, string, string, string])[] = [
    ['absolute-form naming another host than Host: routed and forwarded by its authority', 'GET http://internal.example/echo?a=1 HTTP/1.1', 'Host: public.example\r\n', 'internal', '/echo?a=1', 'internal.example'],
    ['absolute-form with a port, uppercase scheme', 'GET HTTP://internal.example:8080/echo HTTP/1.1', 'Host: x\r\n', 'internal', '/echo', 'internal.example:8080'],
    ['Host in another case', 'GET /echo HTTP/1.1', 'Host: INTERNAL.example\r\n', 'internal', '/echo', 'INTERNAL.example'],
    ['an IPv6 literal Host with a port', 'GET /echo HTTP/1.1', 'Host: [::1]:8080\r\n', 'public', '/echo', '[::1]:8080'],
    ['HTTP/1.0 with Host', 'GET /echo HTTP/1.0', 'Host: internal.example\r\n', 'internal', '/echo', 'internal.example'],
  ];
  for (const [what, line, fields, backend, url, host] of forwards) {
    it(`${what}: the same on both paths`, async (t) => {
      const asRequest = await echoed(t, m, paths[0][1](line, fields));
      const asUpgrade = await echoed(t, m, paths[1][1](line, fields));
      for (const seen of [asRequest, asUpgrade]) {
        assert.equal(seen.name, backend);
        assert.equal(seen.url, url);
        assert.equal(seen.headers['host'], host);
        assert.equal(seen.headers['x-forwarded-host'], host);
      }
    });
  }

  for (const te of ['chunked', 'Chunked', ', chunked']) {
    it(`Transfer-Encoding: "${te}" is chunked (case-insensitive, empty list elements ignored) and forwarded`, async (t) => {
      const seen = await echoed(t, m, `POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${te}\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
      assert.equal(seen.bodyBytes, 5);
    });
  }

  it('a bad request line pipelined after a good one: the first is answered, the second refused, the backend sees only the first', async (t) => {
    const sight = new BackendSight(all);
    try {
      sight.start();
      const r = await send(m.port, `GET /echo?first HTTP/1.1\r\nHost: x\r\n\r\nGET  /echo?second HTTP/1.1\r\nHost: x\r\n\r\n`);
      const besides = await sight.settle(m.port, hosts);
      const statuses = [...r.reply.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((x) => Number(x[1]));
      t.diagnostic(`statuses ${statuses.join(', ')}; backends saw ${JSON.stringify(besides)}`);
      assert.deepEqual(statuses, [200, 400]);
      assert.ok(r.closedByServer);
      assert.deepEqual(besides.requests, ['public /echo?first']);
    } finally {
      sight.close();
    }
  });

  it('an Expect that Node answers itself (417) leaves the request-line check in step: the next request on the connection is forwarded', async (t) => {
    // Targets of different lengths: a verdict taken for the wrong request is then caught.
    const r = await send(m.port, `GET /echo HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\nGET /echo?second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    const statuses = [...r.reply.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((x) => Number(x[1]));
    t.diagnostic(`statuses ${statuses.join(', ')}`);
    assert.deepEqual(statuses, [417, 200]);
  });

  it('valid requests pipelined on one connection — bodies, chunk extensions, trailers, blank lines between — are all forwarded', async (t) => {
    const requests = [
      'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nGET  /x HTT',
      'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;name="a b"\r\nhello\r\nB\r\nGET  /x HTT\r\n0\r\nX-Trailer: GET  /y HTTP/1.1\r\n\r\n',
      '\r\n\r\nGET /echo?q=a%20b HTTP/1.1\r\nHost: internal.example\r\n\r\n',
      'GET /echo HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n',
      'GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    ];
    const r = await send(m.port, requests.join(''));
    const statuses = [...r.reply.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((x) => Number(x[1]));
    t.diagnostic(`statuses ${statuses.join(', ')}`);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
    assert.deepEqual([...r.reply.matchAll(/\{"bytes":(\d+)\}/g)].map((x) => Number(x[1])), [11, 16]);
  });
});

/**
 * Whether this Node's own HTTP/2 server resets a stream whose :authority carries userinfo
 * before any handler sees it (nghttp2 1.70, in Node 24, does; 1.61, in Node 20, does not,
 * and Meridian answers 400 invalid_host itself). Asked of a bare node:http2 server.
 */
async function nodeH2RefusesUserinfo(): Promise<boolean> {
  const server = createH2Server((_req, res) => res.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const session = h2connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  session.on('error', () => {});
  try {
    const stream = session.request({ ':path': '/', ':authority': 'user@one.example' });
    stream.on('error', () => {});
    stream.resume();
    stream.end();
    let status = 0;
    stream.on('response', (h) => (status = Number(h[':status'])));
    await new Promise<void>((r) => stream.on('close', r));
    return status === 0 && stream.rstCode === h2constants.NGHTTP2_PROTOCOL_ERROR;
  } finally {
    session.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
}
const NODE_H2_REFUSES_USERINFO = await nodeH2RefusesUserinfo();

describe('hostile input: Host and :authority on HTTP/2', () => {
  let bs: SampleBackend[];
  let m: Running;
  before(async () => {
    bs = await backends(2);
    m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'h2c', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }], http2: { enabled: true } }],
        clusters: [{ name: 'c', endpoints: bs.map((b) => ({ address: `127.0.0.1:${b.port}`, id: b.name })) }],
      }),
    );
  });
  after(() => closeAll(m, bs));

  /** One h2c request; the session is closed after it. */
  function h2(headers: Record<string, string>): Promise<{ status: number; reason: unknown; body: string }> {
    return new Promise((resolve, reject) => {
      const session = h2connect(`http://127.0.0.1:${m.port}`);
      session.on('error', reject);
      const stream = session.request({ ':path': '/echo', ...headers });
      let status = 0;
      let reason: unknown;
      let body = '';
      stream.on('response', (h) => {
        status = Number(h[':status']);
        reason = h['x-meridian-reason'];
      });
      stream.on('data', (d: Buffer) => (body += d.toString()));
      stream.on('end', () => {
        session.close();
        resolve({ status, reason, body });
      });
      stream.on('error', (e) => {
        session.close();
        reject(e);
      });
      stream.end();
    });
  }

  for (const [what, headers] of [
    ['a host header that differs from :authority (RFC 9113 §8.3.1)', { ':authority': 'one.example', host: 'two.example' }],
    ...(NODE_H2_REFUSES_USERINFO ? [] : [[':authority with userinfo', { ':authority': 'user@one.example' }] as const]),
  ] as const) {
    it(`${what} → 400 invalid_host, nothing upstream`, async (t) => {
      const sight = new BackendSight(bs);
      try {
        sight.start();
        const r = await h2(headers);
        const besides = await sight.settle(m.port);
        t.diagnostic(`got ${r.status} ${String(r.reason)}; backends saw ${JSON.stringify(besides)}`);
        assert.equal(r.status, 400);
        assert.equal(r.reason, 'invalid_host');
        assert.deepEqual(besides.requests, []);
        assert.equal(besides.connections, 0);
      } finally {
        sight.close();
      }
    });
  }

  if (NODE_H2_REFUSES_USERINFO) {
    it(`:authority with userinfo → the stream reset (PROTOCOL_ERROR) by Node's HTTP/2 layer (nghttp2 ${process.versions.nghttp2}), nothing upstream`, async () => {
      const sight = new BackendSight(bs);
      try {
        sight.start();
        await assert.rejects(h2({ ':authority': 'user@one.example' }), { code: 'ERR_HTTP2_STREAM_ERROR', message: /NGHTTP2_PROTOCOL_ERROR/ });
        const besides = await sight.settle(m.port);
        assert.deepEqual(besides.requests, []);
        assert.equal(besides.connections, 0);
      } finally {
        sight.close();
      }
    });
  }

  it('a host header equal to :authority but for case is forwarded, with :authority as Host', async () => {
    const r = await h2({ ':authority': 'one.example', host: 'ONE.example' });
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as Echoed;
    assert.equal(seen.headers['host'], 'one.example');
    assert.equal(seen.headers['x-forwarded-host'], 'one.example');
  });
});

/** Every kind of listener that speaks HTTP/1.1 checks its request lines (the check hooks into each server's own connection event). */
describe('hostile input: the request-line check on every HTTP/1.1 listener', () => {
  let certs: CertDir;
  let bs: SampleBackend[];
  const ms: Record<string, Running> = {};
  before(async () => {
    certs = certDir();
    const cert = certs.make('a.test');
    bs = await backends(1);
    const listener = (extra: Record<string, unknown>) =>
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'l', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }], ...extra }],
        clusters: [{ name: 'c', endpoints: bs.map((b) => ({ address: `127.0.0.1:${b.port}`, id: b.name })) }],
      });
    ms['http'] = await startMeridian(listener({}));
    ms['http with h2c'] = await startMeridian(listener({ http2: { enabled: true } }));
    ms['https'] = await startMeridian(listener({ protocol: 'https', tls: { certificates: [cert] }, http2: { enabled: false } }));
    ms['https with h2'] = await startMeridian(listener({ protocol: 'https', tls: { certificates: [cert] } }));
  });
  after(async () => {
    await closeAll(Object.values(ms), bs);
    certs.remove();
  });

  /** Raw bytes over TLS (ALPN http/1.1) or plain TCP; everything back until the server closes. */
  function exchange(port: number, tls: boolean, bytes: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = tls ? tlsConnect({ host: '127.0.0.1', port, servername: 'a.test', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }) : connect(port, '127.0.0.1');
      let out = '';
      const timer = setTimeout(() => s.destroy(), 2000);
      s.on('data', (d: Buffer) => (out += d.toString('latin1')));
      s.on('close', () => {
        clearTimeout(timer);
        resolve(out);
      });
      s.on('error', reject);
      s.write(bytes);
    });
  }

  for (const kind of ['http', 'http with h2c', 'https', 'https with h2']) {
    it(`${kind}: a well-formed request line is forwarded, "GET  /echo" refused with 400 bad_request`, async () => {
      const m = ms[kind] as Running;
      const tls = kind.startsWith('https');
      const good = await exchange(m.port, tls, 'GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match(good, /^HTTP\/1\.1 200 /);
      const bad = await exchange(m.port, tls, 'GET  /echo HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.match(bad, /^HTTP\/1\.1 400 /);
      assert.match(bad, /\r\nx-meridian-reason: bad_request\r\n/i);
    });
  }
});

