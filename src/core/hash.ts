/**
 * MurmurHash3 (x86, 32-bit) over the UTF-8 bytes of a string.
 *
 * Hand-written because it sits on the pick path of ring_hash and maglev, and src/core
 * may not import node:crypto; Math.imul keeps it in 32-bit integer arithmetic. ASCII
 * (the common case for addresses, header values and paths) is hashed without encoding.
 */
export function murmur3(key: string, seed = 0): number {
  const bytes = isAscii(key) ? undefined : utf8(key);
  const len = bytes ? bytes.length : key.length;
  const at = bytes ? (i: number) => bytes[i] as number : (i: number) => key.charCodeAt(i);
  let h = seed >>> 0;
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  const blocks = len & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = at(i) | (at(i + 1) << 8) | (at(i + 2) << 16) | (at(i + 3) << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = len & 3;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= at(blocks + 2) << 16;
    if (tail >= 2) k ^= at(blocks + 1) << 8;
    k ^= at(blocks);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= len;
  return fmix32(h);
}

/** Murmur3's finaliser: a fast, well-mixed 32-bit -> 32-bit bijection. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A different, deterministic hash for retry `attempt` of the same key. */
export function rehash(hash: number, attempt: number): number {
  return attempt === 0 ? hash >>> 0 : fmix32((hash + Math.imul(attempt, 0x9e3779b9)) | 0);
}

/**
 * The UTF-8 bytes of `s` exactly as TextEncoder gives them (a lone surrogate becomes
 * U+FFFD), written out because src/core compiles against the ECMAScript library alone.
 */
function utf8(s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const low = s.charCodeAt(i + 1);
      if (c <= 0xdbff && low >= 0xdc00 && low <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
        i++;
      } else c = 0xfffd;
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  return out;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}
