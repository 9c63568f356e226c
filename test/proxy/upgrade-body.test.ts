// The upgrade path's own body reader: Node leaves an Upgrade request's body unread, raw.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BodyReader, bodyFraming } from '../../src/proxy/upgrade-body.js';

/** Feed `raw` in pieces of `step` bytes until the body ends: the decoded body, the verdict, and every byte after the body. */
function read(reader: BodyReader, raw: string, step: number): { body: string; verdict: string; rest: string } {
  const bytes = Buffer.from(raw, 'latin1');
  let body = '';
  let verdict = 'more';
  let i = 0;
  for (; i < bytes.length && verdict === 'more'; i += step) {
    verdict = reader.feed(bytes.subarray(i, i + step), (b) => (body += b.toString('latin1')));
  }
  return { body, verdict, rest: verdict === 'done' ? reader.rest.toString('latin1') + bytes.subarray(i).toString('latin1') : '' };
}

describe('upgrade request bodies', () => {
  it('decodes a chunked body however the bytes are split, keeping what follows it', () => {
    const raw = '5;a=b\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\nTUNNEL';
    for (const step of [1, 2, 3, 7, raw.length]) {
      assert.deepEqual(read(new BodyReader({ kind: 'chunked' }, 0), raw, step), { body: 'helloabcdefghijklmnopqrstuvwxyz', verdict: 'done', rest: 'TUNNEL' }, `in pieces of ${step}`);
    }
  });

  it('reads exactly a Content-Length, however split, keeping what follows it', () => {
    for (const step of [1, 4, 100]) {
      assert.deepEqual(read(new BodyReader({ kind: 'length', length: 10 }, 0), '0123456789rest', step), { body: '0123456789', verdict: 'done', rest: 'rest' }, `in pieces of ${step}`);
    }
  });

  it('refuses a chunk over the limit before its data, and framing that is not CRLF-strict', () => {
    assert.equal(read(new BodyReader({ kind: 'chunked' }, 10), '5\r\nhello\r\n6\r\n', 1).verdict, 'payload_too_large');
    for (const bad of ['5\r\nhello\n', '5\r\nhello\r0', '5 \r\nhello\r\n', '5\rx\nhello', '0\r\nnot a field\r\n\r\n', `${'f'.repeat(17)}\r\n`]) {
      assert.equal(read(new BodyReader({ kind: 'chunked' }, 0), bad, 1).verdict, 'bad_request', JSON.stringify(bad));
    }
  });

  it('takes the framing from the headers', () => {
    assert.deepEqual(bodyFraming({}), { kind: 'none' });
    assert.deepEqual(bodyFraming({ 'content-length': '00' }), { kind: 'none' });
    assert.deepEqual(bodyFraming({ 'content-length': '54' }), { kind: 'length', length: 54 });
    assert.equal(bodyFraming({ 'content-length': '99999999999999999999' }), 'bad_request');
    assert.deepEqual(bodyFraming({ 'transfer-encoding': 'chunked' }), { kind: 'chunked' });
  });
});
