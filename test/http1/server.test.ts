// Meridian's HTTP/1.1 server engine (src/http1/server.ts) over real sockets: the framing
// and connection rules the proxy relies on, each observed from a raw client.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { readAccepted } from '../../src/http1/read-buffer.js';
import { Http1Server, type Http1Handlers } from '../../src/http1/server.js';
import type { Http1ServerRequest } from '../../src/http1/server-request.js';
import type { Http1ServerResponse } from '../../src/http1/server-response.js';
import { raw, until } from '../proxy/harness.js';

const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

type Handlers = Partial<Http1Handlers>;

async function serve(h: Handlers, timeouts: { headersMs?: number; idleMs?: number } = {}): Promise<{ port: number; engine: Http1Server; errors: string[] }> {
  const errors: string[] = [];
  const engine = new Http1Server(
    { maxHeadBytes: 8192, maxFields: 50, headersTimeoutMs: timeouts.headersMs ?? 5000, idleTimeoutMs: timeouts.idleMs ?? 5000 },
    {
      request: h.request ?? ((_req, res) => res.writeHead(200, { 'content-length': 2 }).end('ok')),
      upgrade: h.upgrade,
      clientError: (err, socket) => {
        errors.push(err.code ?? '');
        socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      },
    },
  );
  const server = createServer({ allowHalfOpen: true }, (s) => engine.connection(s));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, engine, errors };
}

/** The answer's bytes with the Date line taken out (it changes every second). */
function noDate(s: string): string {
  return s.replace(/\r\nDate: [^\r]*/, '');
}

describe('HTTP/1.1 engine: answers', () => {
  it('no Content-Length: chunked for HTTP/1.1, with trailers on the last chunk', async () => {
    const { port } = await serve({
      request: (_req, res) => {
        res.writeHead(200, ['x-a', '1']);
        res.write('hello');
        res.addTrailers([['x-t', 'done']]);
        res.end();
      },
    });
    const out = await raw(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(noDate(out), 'HTTP/1.1 200 OK\r\nx-a: 1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-t: done\r\n\r\n');
  });

  it('no Content-Length to an HTTP/1.0 client: the body runs to the close', async () => {
    const { port } = await serve({
      request: (_req, res) => {
        res.writeHead(200, {});
        res.write('abc');
        res.end('def');
      },
    });
    const out = await raw(port, 'GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    assert.equal(noDate(out), 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabcdef');
  });

  it('HEAD, 204 and 304 carry no body, whatever is written', async () => {
    const { port } = await serve({
      request: (req, res) => {
        const status = req.url === '/204' ? 204 : req.url === '/304' ? 304 : 200;
        res.writeHead(status, {});
        res.end('body');
      },
    });
    const out = await raw(port, 'HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(
      noDate(out).replace(/\r\nDate: [^\r]*/g, ''),
      'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n' +
        'HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n' +
        'HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n',
    );
  });

  it('a header value with a CR or LF is left out: no response splitting', async () => {
    const { port } = await serve({ request: (_req, res) => res.writeHead(200, { 'x-bad': 'a\r\nx-injected: 1', 'content-length': 0 }).end() });
    const out = await raw(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(noDate(out), 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\nConnection: close\r\n\r\n');
  });

  it('Expect: 100-continue: the handler is told, and writeContinue sends the interim answer before the body is read', async () => {
    let told = false;
    const { port } = await serve({
      request: (req, res, expectContinue) => {
        told = expectContinue;
        res.writeContinue();
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => res.writeHead(200, { 'content-length': 4 }).end(Buffer.concat(chunks).toString().toUpperCase()));
      },
    });
    const s = connect(port, '127.0.0.1');
    s.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n');
    let got = '';
    s.on('data', (c: Buffer) => {
      got += c.toString();
      if (got === 'HTTP/1.1 100 Continue\r\n\r\n') s.write('abcd');
    });
    await once(s, 'close');
    assert.equal(told, true);
    assert.match(got, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nABCD$/);
  });

  it('writeView copies what it keeps: a view overwritten after the call still goes out as written', async () => {
    // Each kind of answer writeView can meet: head and a small body in one buffer, a body
    // after the head went out, a large one, and a chunked one.
    const view = (text: string): Buffer => Buffer.from(text);
    const { port } = await serve({
      request: (req, res) => {
        const write = (text: string): void => {
          const b = view(text);
          res.writeView(b);
          b.fill('X'); // the read buffer, taken by the next read
        };
        if (req.url === '/small') {
          res.writeHead(200, { 'content-length': 5 });
          write('small');
          res.end();
        } else if (req.url === '/after-head') {
          res.writeHead(200, { 'content-length': 10 });
          res.flushHeaders();
          write('after');
          write('-head');
          res.end();
        } else if (req.url === '/large') {
          res.writeHead(200, { 'content-length': 5000 });
          write('L'.repeat(5000));
          res.end();
        } else {
          res.writeHead(200);
          write('chunk');
          res.end();
        }
      },
    });
    const body = async (path: string): Promise<string> => {
      const out = await raw(port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      return out.slice(out.indexOf('\r\n\r\n') + 4);
    };
    assert.equal(await body('/small'), 'small');
    assert.equal(await body('/after-head'), 'after-head');
    assert.equal(await body('/large'), 'L'.repeat(5000));
    assert.equal(await body('/chunked'), '5\r\nchunk\r\n0\r\n\r\n');
  });

  it('an Expect other than 100-continue: 417, and the connection serves the next request', async () => {
    const seen: string[] = [];
    const { port } = await serve({ request: (req, res) => (seen.push(req.url), res.writeHead(200, { 'content-length': 0 }).end()) });
    const out = await raw(port, 'GET /a HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(out, /^HTTP\/1\.1 417 Expectation Failed\r\n[\s\S]*HTTP\/1\.1 200 OK\r\n/);
    assert.deepEqual(seen, ['/b']);
  });
});

describe('HTTP/1.1 engine: connections', () => {
  it('pipelined requests: each waits, unread, until the answer before it is written', async () => {
    const events: string[] = [];
    const pending: Http1ServerResponse[] = [];
    const { port } = await serve({
      request: (req, res) => {
        if (req.url === '/marker') return void res.writeHead(200, { 'content-length': 0 }).end();
        events.push(`request ${req.url}`);
        pending.push(res);
      },
    });
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString()));
    s.write('GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await until(() => events.length === 1);
    // A marker round trip on another connection: the engine had every chance to read on.
    assert.match(await raw(port, 'GET /marker HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 200 /);
    assert.deepEqual(events, ['request /1']);
    for (let i = 1; i <= 3; i++) {
      await until(() => pending.length > 0 && events.includes(`request /${i}`));
      events.push(`answer /${i}`);
      (pending.shift() as Http1ServerResponse).writeHead(200, { 'content-length': 1 }).end(String(i));
    }
    await once(s, 'close');
    assert.deepEqual(events, ['request /1', 'answer /1', 'request /2', 'answer /2', 'request /3', 'answer /3']);
    assert.deepEqual(got.match(/\r\n\r\n(\d)/g), ['\r\n\r\n1', '\r\n\r\n2', '\r\n\r\n3']);
  });

  it('backpressure: a body nobody reads stops the socket being read; reading it takes in the rest, byte for byte', async () => {
    let req: Http1ServerRequest | undefined;
    let res: Http1ServerResponse | undefined;
    let serverSocket: Socket | undefined;
    const { port } = await serve({
      request: (r, s) => {
        req = r;
        res = s;
        serverSocket = r.socket;
      },
    });
    const size = 32 * 1024 * 1024;
    const c = connect(port, '127.0.0.1');
    let answer = '';
    c.on('data', (d: Buffer) => (answer += d.toString()));
    c.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`);
    const block = Buffer.alloc(1024 * 1024, 7);
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        sent += block.length;
        if (!c.write(block)) return void c.once('drain', pump);
      }
    };
    pump();
    await until(() => req !== undefined);
    // The client stops on its side once the kernel's buffers are full: the engine read only part of it.
    await until(() => c.writableNeedDrain, 10000, 'the client to be blocked');
    const readWhileFull = (serverSocket as Socket).bytesRead;
    assert.ok(readWhileFull < size / 2, `read ${readWhileFull} of ${size} with nobody reading the body`);
    let body = 0;
    let bad = 0;
    (req as Http1ServerRequest).on('data', (chunk: Buffer) => {
      body += chunk.length;
      for (let i = 0; i < chunk.length; i += 4096) if (chunk[i] !== 7) bad++;
    });
    await once((req as Http1ServerRequest).body, 'end');
    (res as Http1ServerResponse).writeHead(200, { 'content-length': 0 }).end();
    await once(c, 'close');
    assert.match(answer, /^HTTP\/1\.1 200 OK\r\n/);
    assert.equal(body, size);
    assert.equal(bad, 0);
  });

  it('client reads land in the shared read buffer on this Node, and everything kept past a read is a copy', async () => {
    // The engine's client sockets read into READ_BUFFER (read-buffer.ts) wherever net's internals allow; on Node 20 and 24 they do.
    const probe = createServer((s) => {
      accepted = readAccepted(s, () => true);
      s.destroy();
    });
    let accepted: boolean | undefined;
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const c0 = connect((probe.address() as AddressInfo).port, '127.0.0.1');
    c0.on('error', () => {});
    await until(() => accepted !== undefined);
    probe.close();
    assert.equal(accepted, true);

    // A body whose chunks the handler holds, unread as bytes, until its end; then a pipelined
    // request that arrived in the same reads. Later reads overwrite the shared buffer: a chunk
    // kept without copying would come out as later bytes.
    const chunks: Buffer[] = [];
    const urls: string[] = [];
    const { port } = await serve({
      request: (req, res) => {
        urls.push(req.url);
        if (req.method !== 'POST') return void res.writeHead(200, { 'content-length': 2 }).end('ok');
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => res.writeHead(200, { 'content-length': 2 }).end('ok'));
      },
    });
    let seed = 7;
    const body = Buffer.alloc(300_000);
    for (let i = 0; i < body.length; i++) body[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    const c = connect(port, '127.0.0.1');
    let got = '';
    c.on('data', (d: Buffer) => (got += d.toString()));
    c.write(`POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
    for (let off = 0; off < body.length; off += 7000) c.write(body.subarray(off, off + 7000));
    c.write('GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await once(c, 'close');
    assert.equal(got.match(/HTTP\/1\.1 200 OK/g)?.length, 2);
    assert.deepEqual(urls, ['/up', '/next']);
    assert.ok(Buffer.concat(chunks).equals(body), 'the body arrives byte for byte');
  });

  it('an answer written before the body was read: the rest of the body is dropped and the next request served', async () => {
    const seen: string[] = [];
    const { port } = await serve({ request: (req, res) => (seen.push(`${req.method} ${req.url}`), res.writeHead(200, { 'content-length': 0 }).end()) });
    const out = await raw(port, 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.deepEqual(seen, ['POST /a', 'GET /b']);
    assert.equal(out.match(/HTTP\/1\.1 200 OK/g)?.length, 2);
  });

  it('the client sends its FIN with a request in flight: the request is aborted and the answer sees close', async () => {
    let closed = false;
    let reqClosed = false;
    const { port } = await serve({
      request: (req, res) => {
        res.on('close', () => (closed = true));
        req.on('close', () => (reqClosed = true));
      },
    });
    const s = connect(port, '127.0.0.1');
    s.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc');
    await until(() => s.bytesWritten > 0);
    s.end();
    await until(() => closed && reqClosed, 5000, 'the abort to reach the request and its answer');
  });

  it('a head not complete within the header timeout: clientError ERR_HTTP_REQUEST_TIMEOUT, then the close', async () => {
    const { port, errors } = await serve({}, { headersMs: 200 });
    const out = await raw(port, 'GET / HTTP/1.1\r\nHost: x\r\n', 10000);
    assert.equal(out, 'HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    assert.deepEqual(errors, ['ERR_HTTP_REQUEST_TIMEOUT']);
  });

  it('a kept-alive connection idle past the idle timeout is closed without a byte', async () => {
    const { port, errors } = await serve({}, { idleMs: 200 });
    const out = await raw(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 10000);
    assert.equal(noDate(out), 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=1\r\n\r\nok');
    assert.deepEqual(errors, []);
  });

  it('malformed heads: the parser refuses them, the handler never sees them', async () => {
    let requests = 0;
    const { port, errors } = await serve({ request: (_r, res) => (requests++, res.end()) });
    for (const bad of ['GET  / HTTP/1.1\r\nHost: x\r\n\r\n', 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx', 'GET / HTTP/1.1\nHost: x\n\n']) {
      assert.match(await raw(port, bad), /^HTTP\/1\.1 400 /);
    }
    assert.match(await raw(port, `GET / HTTP/1.1\r\nHost: x\r\nX: ${'a'.repeat(9000)}\r\n\r\n`), /^HTTP\/1\.1 400 /);
    assert.deepEqual(errors, ['HPE_INVALID', 'HPE_INVALID', 'HPE_INVALID', 'HPE_HEADER_OVERFLOW']);
    assert.equal(requests, 0);
  });

  it('a bad chunk after the head, before any answer: clientError, and the request stream is destroyed', async () => {
    let destroyed = false;
    const { port, errors } = await serve({
      request: (req) => {
        req.on('close', () => (destroyed = true));
        req.resume();
      },
    });
    const out = await raw(port, 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
    assert.match(out, /^HTTP\/1\.1 400 /);
    assert.deepEqual(errors, ['HPE_INVALID_CHUNK_SIZE']);
    await until(() => destroyed);
  });

  it('upgrade: the handler gets the socket and the bytes past the head; the engine reads nothing more', async () => {
    let head = '';
    const later: string[] = [];
    let requests = 0;
    const { port } = await serve({
      request: () => requests++,
      upgrade: (req, socket, h) => {
        head = `${req.headers.upgrade} ${h.toString()}`;
        socket.on('data', (c: Buffer) => later.push(c.toString()));
        socket.resume();
        socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n');
      },
    });
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (c: Buffer) => {
      got += c.toString();
      if (got.endsWith('\r\n\r\n')) s.end('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    s.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\nearly');
    await until(() => later.join('') === 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(head, 'x early');
    assert.equal(requests, 0);
    s.destroy();
  });
});
