// The request normalisation shared by the request and the upgrade path (src/proxy/request-target.ts):
// the Host grammar, and what a real node:http server's requests normalise to.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Http1Server } from '../../src/http1/server.js';
import { requestTarget, validHost } from '../../src/proxy/request-target.js';
import { raw } from './harness.js';

describe('validHost: RFC 9110 §7.2 uri-host [ ":" port ]', () => {
  for (const host of ['example.com', 'EXAMPLE.com:8080', 'a', '127.0.0.1', '127.0.0.1:0', 'x:', 'x:65535', '[::1]', '[::1]:443', '[v1.fe80::a+en1]', 'a_b-c~d.e', "sub!$&'()*+,;=", 'caf%C3%A9.example']) {
    it(`valid: ${host}`, () => assert.equal(validHost(host), true));
  }
  for (const host of ['', 'bad host', 'a/b@c', 'user@example.com', 'a:b', 'x:65536', 'x:1:2', '[::1', '[::1]x', '[not-an-ip]', '[fe80::1%eth0]', 'a%zz', 'a%4', 'tab\there', 'a"b', 'a<b>', ':80']) {
    it(`invalid: ${JSON.stringify(host)}`, () => assert.equal(validHost(host), false));
  }
});

describe("requestTarget on requests as Meridian's HTTP/1.1 engine parses them", () => {
  let server: Server;
  let port: number;
  before(async () => {
    const engine = new Http1Server(
      { maxHeadBytes: 16384, maxFields: 100, headersTimeoutMs: 5000, idleTimeoutMs: 5000 },
      {
        request: (req, res) => {
          const t = requestTarget(req as unknown as IncomingMessage);
          const body = JSON.stringify(typeof t === 'string' ? { refused: t } : { ...t, hostHeader: req.headers.host });
          res.writeHead(200, { connection: 'close', 'content-length': Buffer.byteLength(body) }).end(body);
        },
        upgrade: undefined,
        // The parser's refusals, with the rule that refused (its error message ends with it).
        clientError: (err, socket) => {
          const body = JSON.stringify({ refusedByParser: err.message.slice(err.message.lastIndexOf(' ') + 1) });
          socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
        },
      },
    );
    server = createServer({ allowHalfOpen: true }, (socket) => engine.connection(socket));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
  });

  async function normalise(line: string, fields = 'Host: x\r\n'): Promise<unknown> {
    const out = await raw(port, `${line}\r\n${fields}\r\n`);
    return JSON.parse(out.slice(out.indexOf('\r\n\r\n') + 4));
  }

  for (const [line, want] of [
    ['GET /a?b HTTP/1.1', { url: '/a?b', host: 'x', hostHeader: 'x' }],
    ['GET http://a.example HTTP/1.1', { url: '/', host: 'a.example', hostHeader: 'a.example' }],
    ['GET http://a.example?q=1 HTTP/1.1', { url: '/?q=1', host: 'a.example', hostHeader: 'a.example' }],
    ['GET HTTPS://a.example:8443/p/../q HTTP/1.1', { url: '/p/../q', host: 'a.example:8443', hostHeader: 'a.example:8443' }],
    ['GET http://a.example/#f HTTP/1.1', { refused: 'bad_request' }],
    ['GET /a#f HTTP/1.1', { refused: 'bad_request' }],
    ['GET http:///x HTTP/1.1', { refused: 'invalid_host' }],
    ['GET ftp://a.example/x HTTP/1.1', { refused: 'bad_request' }],
    ['OPTIONS * HTTP/1.1', { refused: 'bad_request' }],
    ['GET /a HTTP/2.0', { refused: 'http_version_not_supported' }],
    ['GET  /a HTTP/1.1', { refusedByParser: 'request_line_spaces' }],
  ] as const) {
    it(`${line} → ${JSON.stringify(want)}`, async () => {
      assert.deepEqual(await normalise(line), want);
    });
  }

  for (const [fields, want] of [
    ['Host: x\r\nTransfer-Encoding: chunked\r\n', { url: '/', host: 'x', hostHeader: 'x' }],
    ['Host: x\r\nTransfer-Encoding: , CHUNKED\r\n', { url: '/', host: 'x', hostHeader: 'x' }],
    ['Host: x\r\nTransfer-Encoding: gzip, chunked\r\n', { refused: 'transfer_coding_not_implemented' }],
    ['Host: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n', { refused: 'transfer_coding_not_implemented' }],
    ['Host: x\r\nhost: x\r\n', { refused: 'invalid_host' }],
    ['', { refused: 'invalid_host' }],
  ] as const) {
    it(`POST / with ${JSON.stringify(fields)} → ${JSON.stringify(want)}`, async () => {
      const body = fields.includes('chunked') ? '0\r\n\r\n' : '';
      const out = await raw(port, `POST / HTTP/1.1\r\n${fields}\r\n${body}`);
      assert.deepEqual(JSON.parse(out.slice(out.indexOf('\r\n\r\n') + 4)), want);
    });
  }
});
