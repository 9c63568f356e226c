import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { downstreamResponseFields, downstreamResponseList, headerObject, upstreamRequestFields, upstreamRequestHeaders } from '../../src/proxy/headers.js';
import { incomingHeaders } from '../../src/http1/incoming-headers.js';
import { BodyMode, requestHead } from '../../src/http1/request-writer.js';

const raw = (...pairs: string[]): Buffer[] => pairs.map((s) => Buffer.from(s, 'latin1'));

describe('downstreamResponseList', () => {
  it('drops hop-by-hop headers and those the Connection header names, keeps trailer and repeated fields', () => {
    const out = downstreamResponseList(
      raw('Content-Type', 'text/plain', 'Connection', 'X-Secret, keep-alive', 'Keep-Alive', 'timeout=5', 'X-Secret', 's', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Trailer', 'x-sum', 'Transfer-Encoding', 'chunked'),
      'rid-1',
    );
    assert.deepEqual(out, ['content-type', 'text/plain', 'set-cookie', 'a=1', 'set-cookie', 'b=2', 'trailer', 'x-sum', 'x-request-id', 'rid-1']);
  });

  it("keeps the upstream's x-request-id rather than adding a second", () => {
    assert.deepEqual(downstreamResponseList(raw('X-Request-Id', 'up', 'Connection', 'keep-alive'), 'rid-2'), ['x-request-id', 'up']);
  });

  it('adds the id when the upstream sent one but Connection names it', () => {
    assert.deepEqual(downstreamResponseList(raw('x-request-id', 'up', 'connection', 'x-request-id'), 'rid-3'), ['x-request-id', 'rid-3']);
  });

  it('headerObject joins repeated fields and keeps set-cookie as a list', () => {
    assert.deepEqual(headerObject(['a', '1', 'A', '2', 'set-cookie', 'x', 'set-cookie', 'y']), { a: '1, 2', 'set-cookie': ['x', 'y'] });
  });
});

describe('downstreamResponseFields', () => {
  it('passes fields on as sent, drops hop-by-hop ones, notes Content-Length and Date, adds the id', () => {
    const f = downstreamResponseFields(['Server', 'nginx', 'Date', 'Mon', 'Content-Length', '3', 'Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'TE', 'x', 'Trailer', 'x-sum', 'Upgrade', 'h2c', 'Proxy-Connection', 'y', 'HTTP2-Settings', 'z', 'Transfer-Encoding', 'chunked'], 'rid-1');
    assert.deepEqual(f, { text: 'Server: nginx\r\nDate: Mon\r\nContent-Length: 3\r\nTrailer: x-sum\r\nx-request-id: rid-1\r\n', contentLength: true, date: true });
  });

  it("keeps the upstream's x-request-id, and leaves a Connection that names fields to the list path", () => {
    assert.deepEqual(downstreamResponseFields(['X-Request-Id', 'up'], 'rid-2'), { text: 'X-Request-Id: up\r\n', contentLength: false, date: false });
    assert.equal(downstreamResponseFields(['Connection', 'X-Secret', 'X-Secret', 's'], 'rid-3'), undefined);
  });

  it('says what downstreamResponseList says, field for field, whatever the fields and their case', () => {
    const names = ['Server', 'date', 'Content-Length', 'connection', 'Keep-Alive', 'te', 'Trailer', 'upgrade', 'Proxy-Connection', 'http2-settings', 'Transfer-Encoding', 'x-request-id', 'Set-Cookie', 'x-long-header-name-of-17', 'abcd', 'abcdefghij'];
    const caseOf = (name: string, flips: number): string => [...name].map((c, i) => ((flips >> i % 31) & 1 ? c.toUpperCase() : c.toLowerCase())).join('');
    const field = fc.tuple(fc.constantFrom(...names), fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.constantFrom('keep-alive', 'close', 'v', '1', 'a b'));
    fc.assert(
      fc.property(fc.array(field, { maxLength: 12 }), fc.option(fc.constant('rid'), { nil: undefined }), (fields, rid) => {
        const raw = fields.flatMap(([name, flips, value]) => [caseOf(name, flips), value]);
        const list = downstreamResponseList(raw, rid);
        const f = downstreamResponseFields(raw, rid);
        if (f === undefined) {
          // Only a Connection naming something other than keep-alive or close goes to the list path.
          assert.ok(raw.some((x, i) => i % 2 === 0 && x.toLowerCase() === 'connection' && !/^(keep-alive|close)$/i.test(raw[i + 1] as string)));
          return;
        }
        const lines = f.text.split('\r\n').slice(0, -1);
        assert.deepEqual(
          lines.map((l) => l.replace(/^([^:]+)/, (n) => n.toLowerCase())),
          list.reduce<string[]>((acc, x, i) => (i % 2 === 0 ? [...acc, `${x}: ${list[i + 1] as string}`] : acc), []),
        );
        assert.equal(f.contentLength, list.includes('content-length'));
        assert.equal(f.date, list.includes('date'));
      }),
      { numRuns: 500, seed: 13 },
    );
  });
});

describe('upstreamRequestFields', () => {
  const fwd = { clientIp: '10.0.0.9', forwardedFor: '10.0.0.9', proto: 'http', host: 'shop.example', fromTrustedPeer: false };

  it('passes fields on as sent, repeats included; drops hop-by-hop ones, Expect and the framing; sets Host, X-Forwarded-* and the id', () => {
    const f = upstreamRequestFields(
      ['Host', 'shop.example', 'Accept', 'a', 'Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'X-Forwarded-For', '1.2.3.4', 'Cookie', 'a=1', 'Cookie', 'b=2', 'TE', 'trailers, deflate', 'Expect', '100-continue', 'Content-Length', '12', 'Upgrade', 'h2c', 'X-Request-Id', 'theirs'],
      'shop.example',
      fwd,
      'rid-1',
      undefined,
    );
    assert.ok(f !== undefined);
    assert.equal(f.contentLength, 12);
    assert.equal(f.text, 'Host: shop.example\r\nAccept: a\r\nCookie: a=1\r\nCookie: b=2\r\nte: trailers\r\nx-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: http\r\nx-forwarded-host: shop.example\r\nx-request-id: rid-1\r\n');
  });

  it("puts the request's host in Host's place (an absolute-form target's authority), and appends this node to the hops header through another region", () => {
    const f = upstreamRequestFields(['host', 'old.example', 'X-Meridian-Hops', 'eu-1'], 'new.example', fwd, 'rid-2', 'us-1');
    assert.equal(f?.text, 'host: new.example\r\nx-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: http\r\nx-forwarded-host: shop.example\r\nx-request-id: rid-2\r\nx-meridian-hops: eu-1, us-1\r\n');
    assert.equal(f?.contentLength, -1);
    // Not through another region: the client's hops header goes on as it is.
    assert.match(upstreamRequestFields(['X-Meridian-Hops', 'eu-1'], 'h', fwd, 'r', undefined)?.text ?? '', /^X-Meridian-Hops: eu-1\r\n/);
  });

  it('leaves a Connection that names fields to the object path', () => {
    assert.equal(upstreamRequestFields(['Connection', 'X-Secret', 'X-Secret', 's'], 'h', fwd, 'r', undefined), undefined);
  });

  it('sends what the object path sends (upstreamRequestHeaders and requestHead), field for field, whatever the fields and their case', () => {
    const names = ['Host', 'accept', 'Connection', 'Keep-Alive', 'TE', 'Trailer', 'Upgrade', 'Proxy-Connection', 'HTTP2-Settings', 'Transfer-Encoding', 'Expect', 'Content-Length', 'X-Forwarded-For', 'x-forwarded-proto', 'X-Forwarded-Host', 'X-Request-Id', 'X-Meridian-Hops', 'User-Agent', 'abcdefghij', 'x-long-header-name-of-17'];
    const caseOf = (name: string, flips: number): string => [...name].map((c, i) => ((flips >> i % 31) & 1 ? c.toUpperCase() : c.toLowerCase())).join('');
    const field = fc.tuple(fc.constantFrom(...names), fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.constantFrom('keep-alive', 'close', 'v', '7', 'trailers', 'a b'));
    // Each name at most once: repeats are where the two paths differ on purpose.
    const fields = fc.uniqueArray(field, { maxLength: 12, selector: ([name]) => name.toLowerCase() });
    const fwdOf = fc.record({ clientIp: fc.constant('1.1.1.1'), forwardedFor: fc.constantFrom('1.1.1.1', '9.9.9.9, 1.1.1.1'), proto: fc.constantFrom('http', 'https'), host: fc.option(fc.constantFrom('h', 'xfh'), { nil: undefined }), fromTrustedPeer: fc.boolean() });
    fc.assert(
      fc.property(fields, fwdOf, fc.option(fc.constant('us-1'), { nil: undefined }), fc.constantFrom('GET', 'POST'), (list, f, via, method) => {
        const raw = list.flatMap(([name, flips, value]) => [caseOf(name, flips), value]);
        const host = list.some(([name]) => name === 'Host') ? 'the-host' : undefined;
        const headers = incomingHeaders(raw);
        if (host !== undefined) headers.host = host;
        const text = upstreamRequestFields(raw, host ?? '', f, 'rid', via);
        if (text === undefined) {
          assert.ok(raw.some((x, i) => i % 2 === 0 && x.toLowerCase() === 'connection' && !/^(keep-alive|close)$/i.test(raw[i + 1] as string)));
          return;
        }
        const object = upstreamRequestHeaders(headers, f, 'rid', via);
        delete object['expect'];
        const viaObject = requestHead(method, '/', object as Record<string, string>, BodyMode.None, 0);
        const viaText = requestHead(method, '/', text, BodyMode.None, 0);
        const lines = (head: string) =>
          head
            .split('\r\n')
            .slice(1, -2)
            .map((l) => l.replace(/^([^:]+)/, (n) => n.toLowerCase()))
            .sort();
        assert.deepEqual(lines(viaText), lines(viaObject));
      }),
      { numRuns: 500, seed: 17 },
    );
  });
});
