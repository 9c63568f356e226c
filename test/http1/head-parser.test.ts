import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BodyDecoder, Framing, type BodySink } from '../../src/http1/body-decoder.js';
import { FAILED, HeadParser, NEED_MORE } from '../../src/http1/head-parser.js';
import { parseAll } from './parse-all.js';

const LIMITS = { maxHeadBytes: 256, maxFields: 8 };
const bytes = (s: string) => Buffer.from(s, 'latin1');

function response(s: string): HeadParser {
  const p = new HeadParser(false, { maxHeadBytes: 4096, maxFields: 64 });
  const end = p.execute(bytes(s), 0);
  assert.notEqual(end, NEED_MORE, 'a complete head');
  return p;
}

describe('HeadParser: requests', () => {
  it('frames a request in one read and in reads of one byte, with the same head', () => {
    const text = 'POST /a?b=c HTTP/1.1\r\nHost: h\r\nX-A:  a b \t\r\nContent-Length: 5\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nExpect: 100-Continue\r\n\r\nhello';
    const whole = parseAll(bytes(text));
    assert.deepEqual(parseAll(bytes(text), 1), whole);
    const p = new HeadParser(true, LIMITS);
    const end = p.execute(bytes(text), 0);
    assert.equal(end, text.length - 5);
    const h = p.head;
    assert.deepEqual([h.method, h.target, h.versionMajor, h.versionMinor], ['POST', '/a?b=c', 1, 1]);
    assert.deepEqual(h.raw.slice(0, 4), ['Host', 'h', 'X-A', 'a b']);
    assert.deepEqual([h.contentLength, h.chunked, h.close, h.connectionUpgrade, h.upgrade, h.expectContinue, h.hostCount], [5, false, false, true, 'websocket', true, 1]);
  });

  it('frames pipelined requests alike whatever size the reads, a read ending anywhere in a line, a head or a body', () => {
    const text = `GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nxyz\r\nGET /c HTTP/1.1\r\nHost: c\r\nX-Long: ${'v'.repeat(40)}\r\n\r\n`;
    const whole = parseAll(bytes(text));
    assert.deepEqual(
      whole.requests.map((r) => r.target),
      ['/', '/b', '/c'],
    );
    assert.equal(whole.stopped, undefined);
    for (let size = 1; size < text.length; size++) assert.deepEqual(parseAll(bytes(text), size), whole, `reads of ${size} bytes`);
  });

  it('refuses what RFC 9112 only tolerates, naming the rule', () => {
    const cases: [string, string][] = [
      ['GET / HTTP/1.1\nHost: h\r\n\r\n', 'bare_lf'],
      ['GET  / HTTP/1.1\r\n\r\n', 'request_line_spaces'],
      ['GET /x\r\n\r\n', 'no_version'],
      ['FOO / HTTP/1.1\r\n\r\n', 'method'],
      ['CONNECT h:443 HTTP/1.1\r\n\r\n', 'method'],
      ['GET /\xe9 HTTP/1.1\r\n\r\n', 'target'],
      ['GET / HTTP/1.2\r\n\r\n', 'version'],
      ['GET / HTTP/1.1\r\nX : y\r\n\r\n', 'field_name'],
      ['GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n', 'field_name'],
      ['GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n', 'field_value'],
      ['GET / HTTP/1.1\r\nX: a\rb\r\n\r\n', 'field_value'],
      ['POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n', 'content_length_twice'],
      ['POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n', 'content_length'],
      ['POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n', 'transfer_encoding'],
      ['POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n', 'transfer_encoding'],
      ['POST / HTTP/1.1\r\nTransfer-Encoding: chunked,\r\n\r\n', 'transfer_encoding'],
      [`GET / HTTP/1.1\r\nX: ${'a'.repeat(300)}\r\n\r\n`, 'head_bytes'],
      [`GET / HTTP/1.1\r\n${'X: a\r\n'.repeat(9)}\r\n`, 'fields'],
    ];
    for (const [text, reason] of cases) {
      const p = new HeadParser(true, LIMITS);
      assert.equal(p.execute(bytes(text), 0), FAILED, JSON.stringify(text));
      assert.equal(p.reason, reason, JSON.stringify(text));
      assert.equal(p.error, reason === 'head_bytes' || reason === 'fields' ? 'header_fields_too_large' : 'bad_request');
    }
  });

  it('refuses every control byte but HTAB in a value, whether the head comes whole or a byte at a time; a body after it may hold any', () => {
    for (let c = 0; c < 0x20; c++) {
      if (c === 0x09 || c === 0x0a) continue; // HTAB is allowed; LF ends the line (a bare LF is bare_lf)
      for (const text of [`GET / HTTP/1.1\r\nX: a${String.fromCharCode(c)}b\r\n\r\n`, `GET / HTTP/1.1\r\nHost: h\r\nX: ${String.fromCharCode(c)}\tb\r\nY: z\r\n\r\n`]) {
        const whole = new HeadParser(true, LIMITS);
        assert.equal(whole.execute(bytes(text), 0), FAILED, JSON.stringify(text));
        assert.equal(whole.reason, 'field_value', JSON.stringify(text));
        assert.equal(parseAll(bytes(text), 1).stopped, 'field_value', JSON.stringify(text));
      }
    }
    const del = new HeadParser(true, LIMITS);
    assert.equal(del.execute(bytes('GET / HTTP/1.1\r\nX: \x7f\r\n\r\n'), 0), FAILED);
    const head = 'POST / HTTP/1.1\r\nHost: h\r\nX: a\tb\r\nContent-Length: 4\r\n\r\n';
    const p = new HeadParser(true, LIMITS);
    assert.equal(p.execute(bytes(`${head}\x00\r\x7f\x01`), 0), head.length);
    assert.deepEqual(p.head.raw, ['Host', 'h', 'X', 'a\tb', 'Content-Length', '4']);
  });

  it('leaves transfer codings besides chunked, and versions 0.9 and 2.0, to the listener to answer', () => {
    const p = new HeadParser(true, LIMITS);
    assert.ok(p.execute(bytes('POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n'), 0) > 0);
    assert.deepEqual([p.head.chunked, p.head.otherCoding], [true, true]);
    assert.equal(parseAll(bytes('GET / HTTP/2.0\r\n\r\n')).stopped, 'version');
    assert.equal(parseAll(bytes('POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n')).stopped, 'transfer_coding');
  });

  it('skips empty lines between requests, and HTTP/1.0 closes unless it asks keep-alive', () => {
    const r = parseAll(bytes('\r\n\r\nGET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n\r\nGET /b HTTP/1.0\r\n\r\nGET /c HTTP/1.1\r\n\r\n'));
    assert.deepEqual(r.requests.map((x) => x.target), ['/a', '/b']);
    assert.equal(r.stopped, 'closed');
  });
});

describe('HeadParser: responses', () => {
  it('reads the status line, the reason (or none) and Keep-Alive', () => {
    const h = response('HTTP/1.1 404 Not Found\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n').head;
    assert.deepEqual([h.status, h.reason, h.keepAliveTimeoutS, h.contentLength], [404, 'Not Found', 5, 0]);
    assert.deepEqual([response('HTTP/1.0 200\r\n\r\n').head.status, response('HTTP/1.0 200\r\n\r\n').head.close], [200, true]);
  });

  it('refuses a status line that is not HTTP/1.x with a three-digit status', () => {
    for (const text of ['HTTTP/1.1 200 OK\r\n\r\n', 'HTTP/1.1 20 OK\r\n\r\n', 'HTTP/1.1 600 X\r\n\r\n', 'HTTP/2.0 200 OK\r\n\r\n', 'HTTP/1.1 200OK\r\n\r\n']) {
      assert.equal(new HeadParser(false, LIMITS).execute(bytes(text), 0), FAILED, text);
    }
  });
});

class Sink implements BodySink {
  readonly chunks: string[] = [];
  constructor(readonly stopAfter = Infinity) {}
  onBody(chunk: Buffer): boolean {
    this.chunks.push(chunk.toString('latin1'));
    return this.chunks.length < this.stopAfter;
  }
}

describe('BodyDecoder', () => {
  it('decodes chunks with extensions and trailers, and stops where the body ends', () => {
    const d = new BodyDecoder(1024);
    d.start(Framing.Chunked, -1);
    const body = bytes('5;a=b;c="d \\" e"\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT');
    const sink = new Sink();
    assert.equal(d.execute(body, 0, sink), body.length - 4);
    assert.deepEqual([sink.chunks.join(''), d.trailers, d.done], ['hello world', ['X-T', '1'], true]);
  });

  it('refuses malformed chunk framing', () => {
    for (const text of ['zz\r\n', ' 5\r\nhello\r\n', '5 \r\nhello\r\n', '0x5\r\n', '-1\r\n', '5\nhello\r\n', '5\r\nhelloXX', '5;\r\n', '5;a b\r\n', '5;a="b\r\n', '0\r\nBad T: 1\r\n\r\n', '00000000000001\r\n']) {
      const d = new BodyDecoder(1024);
      d.start(Framing.Chunked, -1);
      assert.equal(d.execute(bytes(text), 0, new Sink()), FAILED, JSON.stringify(text));
    }
  });

  it('stops when the sink asks, and goes on from there', () => {
    const d = new BodyDecoder(1024);
    d.start(Framing.Chunked, -1);
    const body = bytes('3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n');
    const first = new Sink(1);
    const at = d.execute(body, 0, first);
    assert.deepEqual([first.chunks, d.done], [['abc'], false]);
    const rest = new Sink();
    assert.equal(d.execute(body, at, rest), body.length);
    assert.deepEqual([rest.chunks, d.done], [['def'], true]);
  });

  it('takes exactly Content-Length bytes', () => {
    const d = new BodyDecoder(1024);
    d.start(Framing.Length, 3);
    const sink = new Sink();
    assert.equal(d.execute(bytes('ab'), 0, sink), NEED_MORE);
    assert.equal(d.execute(bytes('cdef'), 0, sink), 1);
    assert.deepEqual(sink.chunks, ['ab', 'c']);
  });
});
