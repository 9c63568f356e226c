import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { downstreamResponseFields, downstreamResponseList, headerObject } from '../../src/proxy/headers.js';

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
