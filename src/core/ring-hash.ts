import { ActiveTotal, boundedCapacity } from './bounded-load.js';
import { murmur3, rehash } from './hash.js';
import type { Rng } from './rng.js';
import type { Balancer, Host, PickContext } from './types.js';

export interface RingHashOptions {
  /** Ring points at least; more when weights need them. Default 1024 (Envoy's). */
  readonly minRingSize?: number;
  /** Ring points at most. Default 8M (Envoy's). */
  readonly maxRingSize?: number;
  /** Bounded-load factor c (> 1); undefined disables bounded loads. */
  readonly boundedLoad?: number;
}

export interface Ring {
  /** Sorted 32-bit positions. */
  readonly points: Uint32Array;
  /** owners[i] is the index of the host at points[i]. */
  readonly owners: Uint32Array;
}

/**
 * Build a Ketama-style ring: each host gets virtual nodes hash("address_i") in
 * proportion to its weight. Sizing follows Envoy: scale so the lightest host gets
 * ceil(minRingSize * its share) points, capped at maxRingSize in all.
 */
export function buildRing(addresses: readonly string[], weights: readonly number[], minRingSize = 1024, maxRingSize = 8 * 1024 * 1024): Ring {
  const n = addresses.length;
  if (n === 0) return { points: new Uint32Array(0), owners: new Uint32Array(0) };
  if (n >= 1 << 20) throw new RangeError('ring_hash supports fewer than 1,048,576 hosts');
  const total = weights.reduce((a, b) => a + b, 0);
  const minShare = Math.min(...weights) / total;
  const scale = Math.min(Math.ceil(minShare * minRingSize) / minShare, maxRingSize);
  // Pack (position, owner) into one float64 so a single typed-array sort orders both:
  // position < 2^32 and owner < 2^20 keep the product exact below 2^53.
  const packed: number[] = [];
  let target = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    target += (scale * (weights[i] as number)) / total;
    const address = addresses[i] as string;
    for (let k = 0; count < target; k++, count++) packed.push(murmur3(`${address}_${k}`) * 1048576 + i);
  }
  const sorted = Float64Array.from(packed).sort();
  const points = new Uint32Array(sorted.length);
  const owners = new Uint32Array(sorted.length);
  for (let j = 0; j < sorted.length; j++) {
    const v = sorted[j] as number;
    const owner = v % 1048576;
    points[j] = (v - owner) / 1048576;
    owners[j] = owner;
  }
  return { points, owners };
}

/** Index of the first point at or after `hash`, wrapping to 0: the key's owner. */
export function ringLookup(ring: Ring, hash: number): number {
  const points = ring.points;
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((points[mid] as number) < hash) lo = mid + 1;
    else hi = mid;
  }
  return lo === points.length ? 0 : lo;
}

interface RingTable {
  readonly hosts: readonly Host[];
  readonly weights: readonly number[];
  readonly totalWeight: number;
  readonly ring: Ring;
}

/** ring_hash: consistent hashing on a ring; O(log ring size) per pick. */
export class RingHashBalancer implements Balancer {
  readonly policy = 'ring_hash' as const;
  readonly #rng: Rng;
  readonly #options: RingHashOptions;
  readonly #active = new ActiveTotal();
  #table: RingTable = { hosts: [], weights: [], totalWeight: 0, ring: buildRing([], []) };

  constructor(rng: Rng, options: RingHashOptions = {}) {
    this.#rng = rng;
    this.#options = options;
  }

  get ring(): Ring {
    return this.#table.ring;
  }

  update(hosts: readonly Host[], weights: readonly number[]): void {
    const ring = buildRing(
      hosts.map((h) => h.endpoint.address),
      weights,
      this.#options.minRingSize,
      this.#options.maxRingSize,
    );
    this.#table = { hosts: [...hosts], weights: [...weights], totalWeight: weights.reduce((a, b) => a + b, 0), ring };
    this.#active.reset(hosts);
  }

  pick(ctx: PickContext): Host | undefined {
    const t = this.#table;
    if (t.hosts.length === 0) return undefined;
    const hash = rehash(ctx.hash ?? (this.#rng.next() * 4294967296) >>> 0, ctx.attempt ?? 0);
    const start = ringLookup(t.ring, hash);
    const c = this.#options.boundedLoad;
    if (c === undefined) return t.hosts[t.ring.owners[start] as number];
    // Walk clockwise to the first host with room.
    const len = t.ring.points.length;
    const total = this.#active.value;
    for (let step = 0; step < len; step++) {
      const owner = t.ring.owners[(start + step) % len] as number;
      const host = t.hosts[owner] as Host;
      if (host.active < boundedCapacity(c, total, t.weights[owner] as number, t.totalWeight)) return host;
    }
    return t.hosts[t.ring.owners[start] as number];
  }

  onStart(host: Host): void {
    this.#active.started(host);
  }

  onEnd(host: Host): void {
    this.#active.ended(host);
  }
}
