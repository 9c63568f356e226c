import { type IpAddress, type IpNetwork, parseCidr, parseIp } from './ip.js';

/** What a lookup found: the value of the longest prefix that contains the address. */
export interface CidrMatch<T> {
  readonly value: T;
  /** The matched entry's network. */
  readonly network: IpNetwork;
}

interface Node<T> {
  zero?: Node<T>;
  one?: Node<T>;
  entry?: CidrMatch<T>;
}

/**
 * Longest-prefix match of an address against CIDR blocks, IPv4 and IPv6 in separate
 * binary tries (one bit per level, so a lookup is at most 32 or 128 steps and needs
 * no sorting). Immutable once built: a reload builds a new table and swaps it in.
 *
 * An IPv4-mapped IPv6 address looks up the IPv4 trie (see parseIp).
 */
export class CidrTable<T> {
  readonly #v4: Node<T> = {};
  readonly #v6: Node<T> = {};
  readonly size: number;

  /** Throws on a bad CIDR (config validation catches those first) or a repeated one. */
  constructor(entries: Iterable<{ readonly cidr: string; readonly value: T }>) {
    let n = 0;
    for (const { cidr, value } of entries) {
      const network = parseCidr(cidr);
      if (typeof network === 'string') throw new RangeError(`bad CIDR "${cidr}": ${network}`);
      let node = network.family === 4 ? this.#v4 : this.#v6;
      for (let i = 0; i < network.prefixLength; i++) {
        const bit = bitAt(network.bytes, i);
        const next: Node<T> = (bit ? node.one : node.zero) ?? {};
        if (bit) node.one = next;
        else node.zero = next;
        node = next;
      }
      if (node.entry !== undefined) throw new RangeError(`CIDR "${cidr}" is listed twice`);
      node.entry = { value, network };
      n++;
    }
    this.size = n;
  }

  /** The longest matching prefix for `ip` (text or parsed), or undefined. */
  lookup(ip: string | IpAddress): CidrMatch<T> | undefined {
    const addr = typeof ip === 'string' ? parseIp(ip) : ip;
    if (addr === undefined) return undefined;
    let node: Node<T> | undefined = addr.family === 4 ? this.#v4 : this.#v6;
    let best = node.entry;
    const bits = addr.bytes.length * 8;
    for (let i = 0; i < bits && node !== undefined; i++) {
      node = bitAt(addr.bytes, i) ? node.one : node.zero;
      if (node?.entry !== undefined) best = node.entry;
    }
    return best;
  }
}

function bitAt(bytes: Uint8Array, i: number): boolean {
  return (((bytes[i >> 3] as number) >> (7 - (i & 7))) & 1) === 1;
}
