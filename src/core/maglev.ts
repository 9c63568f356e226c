import { ActiveTotal, boundedCapacity } from './bounded-load.js';
import { murmur3, rehash } from './hash.js';
import type { Rng } from './rng.js';
import type { Balancer, Host, PickContext } from './types.js';

export const DEFAULT_MAGLEV_TABLE_SIZE = 65537;
/** Envoy's cap on the table size: 5,000,011 slots is ~20 MB of owners. */
export const MAX_MAGLEV_TABLE_SIZE = 5_000_011;

export interface MaglevOptions {
  /** Lookup-table size M: a prime, well above the host count (the paper suggests M >= 100 n). Default 65537. */
  readonly tableSize?: number;
  /** Bounded-load factor c (> 1); undefined disables bounded loads. */
  readonly boundedLoad?: number;
}

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/**
 * Maglev's table population (Eisenbud et al., NSDI 2016, Pseudocode 1), weighted as in
 * Envoy: host i prefers slots offset_i, offset_i + skip_i, offset_i + 2 skip_i, ... (mod M)
 * and the hosts take turns claiming their next free preferred slot. A host of weight w
 * takes a turn in round r only when r * w / maxWeight has caught up with the turns it
 * already took, so slot counts follow weights. Returns owner indices, one per slot.
 *
 * Offsets and skips are parameters so the paper's worked example (Table 1) can be
 * checked directly; `buildMaglevTable` derives them from hashes of host addresses.
 */
export function populateMaglev(offsets: readonly number[], skips: readonly number[], weights: readonly number[], tableSize: number): Uint32Array {
  const n = offsets.length;
  const table = new Uint32Array(tableSize);
  if (n === 0) return table;
  const taken = new Uint8Array(tableSize);
  // A loop, not Math.max(...weights): spreading 100k+ arguments overflows the stack.
  let maxWeight = 0;
  for (const w of weights) if (w > maxWeight) maxWeight = w;
  const normalized = weights.map((w) => w / maxWeight);
  const next = offsets.map((o) => o % tableSize);
  const target = new Float64Array(n);
  let filled = 0;
  for (let round = 1; filled < tableSize; round++) {
    for (let i = 0; i < n && filled < tableSize; i++) {
      const w = normalized[i] as number;
      if (round * w < (target[i] as number)) continue;
      target[i] = (target[i] as number) + 1;
      const skip = skips[i] as number;
      let c = next[i] as number;
      while (taken[c] === 1) c = (c + skip) % tableSize;
      table[c] = i;
      taken[c] = 1;
      next[i] = (c + skip) % tableSize;
      filled++;
    }
  }
  return table;
}

/** The table for hosts named by address: offset and skip from two independent hashes. */
export function buildMaglevTable(addresses: readonly string[], weights: readonly number[], tableSize = DEFAULT_MAGLEV_TABLE_SIZE): Uint32Array {
  if (!isPrime(tableSize)) throw new RangeError(`maglev table size must be prime, got ${tableSize}`);
  const offsets = addresses.map((a) => murmur3(a, 0xdeadbeef) % tableSize);
  const skips = addresses.map((a) => (murmur3(a, 0x5bd1e995) % (tableSize - 1)) + 1);
  return populateMaglev(offsets, skips, weights, tableSize);
}

interface MaglevTable {
  readonly hosts: readonly Host[];
  readonly weights: readonly number[];
  readonly totalWeight: number;
  readonly table: Uint32Array;
}

/** maglev: O(1) per pick (one table lookup); O(M log M) to build, on membership change only. */
export class MaglevBalancer implements Balancer {
  readonly policy = 'maglev' as const;
  readonly #rng: Rng;
  readonly #tableSize: number;
  readonly #boundedLoad: number | undefined;
  readonly #active = new ActiveTotal();
  #table: MaglevTable = { hosts: [], weights: [], totalWeight: 0, table: new Uint32Array(0) };

  constructor(rng: Rng, options: MaglevOptions = {}) {
    this.#rng = rng;
    this.#tableSize = options.tableSize ?? DEFAULT_MAGLEV_TABLE_SIZE;
    this.#boundedLoad = options.boundedLoad;
    if (!isPrime(this.#tableSize)) throw new RangeError(`maglev table size must be prime, got ${this.#tableSize}`);
  }

  get table(): Uint32Array {
    return this.#table.table;
  }

  update(hosts: readonly Host[], weights: readonly number[]): void {
    const table = buildMaglevTable(
      hosts.map((h) => h.endpoint.address),
      weights,
      this.#tableSize,
    );
    this.#table = { hosts: [...hosts], weights: [...weights], totalWeight: weights.reduce((a, b) => a + b, 0), table };
    this.#active.reset(hosts);
  }

  pick(ctx: PickContext): Host | undefined {
    const t = this.#table;
    if (t.hosts.length === 0) return undefined;
    const hash = rehash(ctx.hash ?? (this.#rng.next() * 4294967296) >>> 0, ctx.attempt ?? 0);
    const m = t.table.length;
    const slot = hash % m;
    const c = this.#boundedLoad;
    if (c === undefined) return t.hosts[t.table[slot] as number];
    // Full host: probe the following slots, which belong to hosts in a key-independent
    // but well-mixed order, until one has room.
    const total = this.#active.value;
    for (let step = 0; step < m; step++) {
      const owner = t.table[(slot + step) % m] as number;
      const host = t.hosts[owner] as Host;
      if (host.active < boundedCapacity(c, total, t.weights[owner] as number, t.totalWeight)) return host;
    }
    return t.hosts[t.table[slot] as number];
  }

  // In-flight totals matter only to bounded loads; without them the hooks cost more than the pick.
  onStart(host: Host): void {
    if (this.#boundedLoad !== undefined) this.#active.started(host);
  }

  onEnd(host: Host): void {
    if (this.#boundedLoad !== undefined) this.#active.ended(host);
  }
}
