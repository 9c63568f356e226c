import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { extractHashKey, hashRequest, murmur3, rehash } from '../../src/core/index.js';

function murmur3Bytes(b: Uint8Array, seed = 0): number {
  let h = seed;
  const n = b.length - (b.length % 4);
  const mix = (k: number) => {
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    return Math.imul(k, 0x1b873593);
  };
  for (let i = 0; i < n; i += 4) {
    h ^= mix(b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24));
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  for (let i = b.length - 1; i >= n; i--) k = (k << 8) | b[i]!;
  if (b.length > n) h ^= mix(k);
  h ^= b.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

describe('murmur3 (x86, 32-bit)', () => {
  it('matches the reference implementation on known vectors', () => {
    // Vectors from Austin Appleby's SMHasher / the widely published test table.
    assert.equal(murmur3(''), 0);
    assert.equal(murmur3('', 1), 0x514e28b7);
    assert.equal(murmur3('hello'), 0x248bfa47);
    assert.equal(murmur3('The quick brown fox jumps over the lazy dog'), 0x2e4ff723);
    assert.equal(murmur3('a'), 0x3c2569b2);
    assert.equal(murmur3('abc'), 0xb3dd93fa);
    assert.equal(murmur3('abcd'), 0x43ed676a);
  });

  it('hashes the UTF-8 bytes of non-ASCII text', () => {
    // A byte-array transcription of the reference, fed Node's own UTF-8 encoding.
    for (const s of ['ü', 'naïve-café', '東京/region', '🙂 emoji']) {
      assert.equal(murmur3(s), murmur3Bytes(Buffer.from(s, 'utf8')), s);
    }
    assert.notEqual(murmur3('ü'), murmur3('u'));
  });

  it('encodes any UTF-16 string as Node does, lone surrogates included (core has no TextEncoder)', () => {
    const units = fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 12 }).map((a) => String.fromCharCode(...a));
    fc.assert(fc.property(units, (s) => murmur3(s) === murmur3Bytes(Buffer.from(s, 'utf8'))), { numRuns: 2000 });
  });

  it('rehash leaves attempt 0 alone and moves later attempts', () => {
    assert.equal(rehash(12345, 0), 12345);
    assert.notEqual(rehash(12345, 1), 12345);
    assert.notEqual(rehash(12345, 1), rehash(12345, 2));
  });
});

describe('hash keys', () => {
  const req = {
    headers: { 'x-user': 'alice', cookie: 'theme=dark; session=abc123; x=1' },
    sourceIp: '192.0.2.7',
    path: '/cart',
  };

  it('takes the key from a header (case-insensitive name), cookie, source IP or path', () => {
    assert.equal(extractHashKey({ header: 'X-User' }, req), 'alice');
    assert.equal(extractHashKey({ cookie: 'session' }, req), 'abc123');
    assert.equal(extractHashKey({ sourceIp: true }, req), '192.0.2.7');
    assert.equal(extractHashKey({ path: true }, req), '/cart');
  });

  it('has no key when the source is absent, and hashes nothing then', () => {
    assert.equal(extractHashKey({ header: 'x-missing' }, req), undefined);
    assert.equal(extractHashKey({ cookie: 'nope' }, req), undefined);
    assert.equal(hashRequest({ header: 'x-missing' }, req), undefined);
    assert.equal(hashRequest({ header: 'x-user' }, req), murmur3('alice'));
  });
});
