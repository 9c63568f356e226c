/**
 * DNS Response Rate Limiting, as BIND 9 and Knot DNS do it: UDP answers to one client
 * prefix (a /24 for IPv4, a /56 for IPv6 by default) are held to `responsesPerSecond`.
 * Past that, answers are dropped, except every `slip`-th one, which goes out as an
 * empty TC=1 answer: a real resolver behind a busy prefix retries over TCP (which
 * proves its address and is not limited), while a spoofed flood gets nothing bigger
 * than what it sent, so the responder cannot be used as an amplifier.
 *
 * Accounting is BIND's: each prefix holds a balance credited `responsesPerSecond` per
 * second up to one second's worth, debited one per answer. An answer that would take
 * it below zero is limited; the balance can sink to -(rate x window) and must climb
 * back above zero before answers flow again, so a flood that pauses is still limited
 * for up to `window` after it stops. Pure: the time is the injected clock's.
 *
 * Keyed by prefix only (BIND also keys by the response): a steering responder answers
 * a handful of names, so one budget per prefix is what matters. The table holds at most
 * `maxPrefixes`; past it the longest-held prefix is forgotten (a spoofed flood over
 * random prefixes cannot grow memory; a forgotten prefix starts with a full second).
 */
import type { Clock } from './clock.js';
import type { IpAddress } from './ip.js';

export interface ResponseRateLimitOptions {
  readonly responsesPerSecond: number;
  /** How far back a flood is remembered (ms): the balance floor is -(rate x window). */
  readonly windowMs: number;
  /** Every `slip`-th limited answer goes out truncated (TC=1); 0 = drop them all, 1 = truncate them all. */
  readonly slip: number;
  readonly ipv4PrefixLength: number;
  readonly ipv6PrefixLength: number;
  readonly maxPrefixes: number;
}

export type RateLimitAction = 'answer' | 'drop' | 'slip';

interface Bucket {
  balance: number;
  stampMs: number;
  limited: number;
}

export class ResponseRateLimiter {
  readonly #o: ResponseRateLimitOptions;
  readonly #clock: Clock;
  readonly #floor: number;
  /** IPv4 prefixes as numbers (at most 32 bits), IPv6 as latin1 strings of the masked bytes. */
  readonly #v4 = new Map<number, Bucket>();
  readonly #v6 = new Map<string, Bucket>();
  readonly #v4Mask: number;

  constructor(options: ResponseRateLimitOptions, clock: Clock) {
    if (!(options.responsesPerSecond > 0)) throw new RangeError(`responsesPerSecond must be > 0, got ${options.responsesPerSecond}`);
    if (!(options.windowMs >= 0)) throw new RangeError(`windowMs must be >= 0, got ${options.windowMs}`);
    if (!(Number.isInteger(options.slip) && options.slip >= 0)) throw new RangeError(`slip must be a whole number >= 0, got ${options.slip}`);
    if (!(options.maxPrefixes >= 1)) throw new RangeError(`maxPrefixes must be >= 1, got ${options.maxPrefixes}`);
    this.#o = options;
    this.#clock = clock;
    this.#floor = -(options.responsesPerSecond * options.windowMs) / 1000;
    const bits = options.ipv4PrefixLength;
    this.#v4Mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  }

  /** Prefixes being tracked. */
  get size(): number {
    return this.#v4.size + this.#v6.size;
  }

  /** What to do with one answer to `ip`. */
  check(ip: IpAddress): RateLimitAction {
    const b = ip.bytes;
    const now = this.#clock.nowMs();
    if (ip.family === 4) {
      const key = ((((b[0] as number) << 24) | ((b[1] as number) << 16) | ((b[2] as number) << 8) | (b[3] as number)) & this.#v4Mask) >>> 0;
      return this.#charge(this.#v4, key, now);
    }
    return this.#charge(this.#v6, v6Key(b, this.#o.ipv6PrefixLength), now);
  }

  #charge<K>(table: Map<K, Bucket>, key: K, now: number): RateLimitAction {
    const rate = this.#o.responsesPerSecond;
    let bucket = table.get(key);
    if (bucket === undefined) {
      if (this.size >= this.#o.maxPrefixes) this.#evictOne();
      bucket = { balance: rate, stampMs: now, limited: 0 };
      table.set(key, bucket);
    } else if (now > bucket.stampMs) {
      bucket.balance = Math.min(rate, bucket.balance + ((now - bucket.stampMs) * rate) / 1000);
      bucket.stampMs = now;
    }
    if (bucket.balance >= 1) {
      bucket.balance -= 1;
      return 'answer';
    }
    bucket.balance = Math.max(this.#floor, bucket.balance - 1);
    bucket.limited++;
    const slip = this.#o.slip;
    return slip > 0 && bucket.limited % slip === 0 ? 'slip' : 'drop';
  }

  #evictOne(): void {
    // Maps iterate in insertion order: the first key is the longest held.
    const table = this.#v4.size >= this.#v6.size ? this.#v4 : this.#v6;
    for (const k of table.keys()) {
      table.delete(k as never);
      return;
    }
  }
}

function v6Key(bytes: Uint8Array, prefixLength: number): string {
  let s = '';
  const full = prefixLength >> 3;
  for (let i = 0; i < full; i++) s += String.fromCharCode(bytes[i] as number);
  const rest = prefixLength & 7;
  if (rest !== 0) s += String.fromCharCode((bytes[full] as number) & (0xff << (8 - rest)) & 0xff);
  return s;
}
