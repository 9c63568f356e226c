import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { downstreamResponseList, headerObject } from '../../src/proxy/headers.js';

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
