import { ActiveTotal, boundedCapacity } from './bounded-load.js';
import { murmur3, rehash } from './hash.js';
import type { Rng } from './rng.js';
import type { Balancer, Host, PickContext } from './types.js';

/** Envoy's cap on ring points (8M). */
export const MAX_RING_SIZE = 8 * 1024 * 1024;

export interface RingHashOptions {
  /** Ring points at least (while maxRingSize allows). Default 1024 (Envoy's). */
  readonly minRingSize?: number;
  /** Ring points at most, unless one point per unit of weight already exceeds it. Default 8M (Envoy's). */
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
 * Build a Ketama-style ring: host i gets weight_i x k virtual nodes, at hash("address_i").
 *
 * k, the points per unit of weight, is the smallest power of two that gives the ring at
 * least `minRingSize` points (fewer if that would pass `maxRingSize`). Envoy instead
 * rescales every host's point count whenever the set changes, which moves keys between
 * hosts that stayed; with a power of two, k stays the same across most membership
 * changes, so removing a host moves only that host's keys (about 1/N of them) and adding
 * one moves only the keys it takes. k changes, moving more keys once, only when the
 * total weight crosses a power-of-two boundary of minRingSize.
 * The ring is a pure function of the hosts and weights, so every node agrees on it.
 */
export function buildRing(addresses: readonly string[], weights: readonly number[], minRingSize = 1024, maxRingSize = MAX_RING_SIZE): Ring {
  const n = addresses.length;
  if (n === 0) return { points: new Uint32Array(0), owners: new Uint32Array(0) };
  if (n >= 1 << 20) throw new RangeError('ring_hash supports fewer than 1,048,576 hosts');
  const units = weights.map((w) => Math.max(1, Math.round(w)));
  const totalUnits = units.reduce((a, b) => a + b, 0);
  let k = 1;
  while (k * totalUnits < minRingSize) k *= 2;
  while (k > 1 && k * totalUnits > maxRingSize) k /= 2;
  // Pack (position, owner) into one float64 so a single typed-array sort orders both:
  // position < 2^32 and owner < 2^20 keep the product exact below 2^53.
  const packed = new Float64Array(k * totalUnits);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const address = addresses[i] as string;
    const points = k * (units[i] as number);
    for (let p = 0; p < points; p++) packed[count++] = murmur3(`${address}_${p}`) * 1048576 + i;
  }
  packed.sort();
  const points = new Uint32Array(count);
  const owners = new Uint32Array(count);
  for (let j = 0; j < count; j++) {
    const v = packed[j] as number;
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

  // In-flight totals matter only to bounded loads; without them the hooks cost more than the pick.
  onStart(host: Host): void {
    if (this.#options.boundedLoad !== undefined) this.#active.started(host);
  }

  onEnd(host: Host): void {
    if (this.#options.boundedLoad !== undefined) this.#active.ended(host);
  }
}
