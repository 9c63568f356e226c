/**
 * `meridian hash`: measure a consistent-hash policy (maglev or ring_hash) on synthetic
 * endpoints and keys, so its balance and its disruption on membership change are
 * figures, not claims.
 *
 * For N endpoints (10.a.b.c:8080 from the index, weight 1) it builds the table, hashes K
 * seeded random keys, then removes endpoint floor(N/2) and, separately, adds one new
 * endpoint, rebuilds, and counts the keys whose endpoint changed. Consistent hashing
 * ideally moves only the keys it must: 1/N of them on removal, 1/(N+1) on addition.
 *
 * Exit codes: 0 done; 2 bad arguments (the message names the option); 1 internal error.
 * Output is one `io.stdout` call (no trailing newline): a table, or one JSON object with --json.
 */
import { performance } from 'node:perf_hooks';
import { buildMaglevTable, buildRing, isPrime, MAX_MAGLEV_TABLE_SIZE, MAX_RING_SIZE, murmur3, ringLookup, SeededRng } from '../core/index.js';
import { integerOption, parseCommand, parseOptions, UsageError } from './args.js';
import type { Io } from './io.js';


export const HASH_USAGE_LINE =
  'usage: meridian hash --policy maglev|ring_hash --endpoints N [--table-size M] [--max-ring-size R] [--keys K] [--seed S] [--json]';

export const HASH_USAGE = `${HASH_USAGE_LINE}

Builds a maglev table or a hash ring over N synthetic endpoints (10.a.b.c:8080, weight 1),
hashes K seeded random keys through it, and reports the balance and how many keys move
when one endpoint is removed or added, next to the ideal (1/N, 1/(N+1)).
  --policy P          maglev or ring_hash (required)
  --endpoints N       number of endpoints, 1..1048574 (required)
  --table-size M      maglev: table size, a prime > N, at most 5000011 (default 65537)
                      ring_hash: minimum ring size, 1..8388608 (default 1024)
  --max-ring-size R   ring_hash only: maximum ring size, 1..8388608 (default 8388608)
  --keys K            keys to hash, 1..10000000 (default 1000000)
  --seed S            seed of the key stream, 0..4294967295 (default 1)
  --json              print one JSON object instead of a table
  -h, --help          show this help

Exit status: 0 done, 2 bad arguments.`;

/** ring_hash packs owners in 20 bits, and the addition run needs N + 1 hosts. */
const MAX_ENDPOINTS = (1 << 20) - 2;
/** 8 bytes per key (hash + owner) stay resident: 80 MB at the limit. */
const MAX_KEYS = 10_000_000;
/** Owner of every key when no endpoint is left (removal from N = 1). */
const NO_ENDPOINT = 0xffffffff;

export type HashPolicy = 'maglev' | 'ring_hash';

export interface HashReport {
  readonly policy: HashPolicy;
  readonly endpoints: number;
  /** maglev: the table size M; ring_hash: the number of ring points built. */
  readonly table_size: number;
  readonly min_ring_size?: number;
  readonly max_ring_size?: number;
  readonly keys: number;
  readonly seed: number;
  /** Largest endpoint share of the table (slots, or arc of the ring) over the mean share 1/N. */
  readonly max_over_mean: number;
  /** Largest endpoint share of the K keys over the mean K/N. */
  readonly keys_max_over_mean: number;
  readonly removed_endpoint: string;
  readonly moved_fraction_on_removal: number;
  readonly ideal_moved_fraction_on_removal: number;
  readonly added_endpoint: string;
  readonly moved_fraction_on_addition: number;
  readonly ideal_moved_fraction_on_addition: number;
  /** Wall time of the first build (N endpoints), in ms. */
  readonly build_ms: number;
}

export interface HashSettings {
  readonly policy: HashPolicy;
  readonly endpoints: number;
  readonly tableSize: number;
  readonly maxRingSize: number;
  readonly keys: number;
  readonly seed: number;
  readonly json: boolean;
}

/** Endpoint `id` (0 .. 2^24 - 1) -> `10.a.b.c:8080`; distinct ids give distinct addresses. */
export function endpointAddress(id: number): string {
  return `10.${(id >>> 16) & 255}.${(id >>> 8) & 255}.${id & 255}:8080`;
}

/** Largest prime below n and smallest prime above it (the first is undefined below 3). */
export function nearestPrimes(n: number): [number | undefined, number] {
  let below: number | undefined;
  for (let p = Math.min(Math.floor(n) - 1, MAX_MAGLEV_TABLE_SIZE); p >= 2; p--) {
    if (isPrime(p)) {
      below = p;
      break;
    }
  }
  let above = Math.max(2, Math.floor(n) + 1);
  while (!isPrime(above)) above++;
  return [below, above];
}

function parse(argv: readonly string[]): HashSettings | 'help' {
  const values = parseOptions(argv, {
        policy: { type: 'string' },
        endpoints: { type: 'string' },
        'table-size': { type: 'string' },
        'max-ring-size': { type: 'string' },
        keys: { type: 'string' },
        seed: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      });
  if (values.help === true) return 'help';
  const policy = values.policy;
  if (policy === undefined) throw new UsageError('--policy is required (maglev or ring_hash)');
  if (policy !== 'maglev' && policy !== 'ring_hash') throw new UsageError(`--policy must be maglev or ring_hash, got '${policy}'`);
  const endpoints = integerOption('endpoints', values.endpoints, undefined, 1, MAX_ENDPOINTS);
  const keys = integerOption('keys', values.keys, 1_000_000, 1, MAX_KEYS);
  const seed = integerOption('seed', values.seed, 1, 0, 0xffffffff);
  let tableSize: number;
  let maxRingSize = MAX_RING_SIZE;
  if (policy === 'maglev') {
    if (values['max-ring-size'] !== undefined) throw new UsageError('--max-ring-size applies to ring_hash only, not maglev');
    tableSize = integerOption('table-size', values['table-size'], 65537, 2, MAX_MAGLEV_TABLE_SIZE);
    if (!isPrime(tableSize)) {
      const [below, above] = nearestPrimes(tableSize);
      const near = below === undefined ? `nearest prime: ${above}` : `nearest primes: ${below}, ${above}`;
      throw new UsageError(`--table-size must be a prime for maglev, got ${tableSize} (${near})`);
    }
    // Every one of the N + 1 hosts of the addition run needs a slot; the paper suggests M >= 100 N.
    if (tableSize <= endpoints) throw new UsageError(`--table-size must exceed --endpoints for maglev (M >= 100 N is usual), got M = ${tableSize} for N = ${endpoints}`);
  } else {
    tableSize = integerOption('table-size', values['table-size'], 1024, 1, MAX_RING_SIZE);
    maxRingSize = integerOption('max-ring-size', values['max-ring-size'], MAX_RING_SIZE, 1, MAX_RING_SIZE);
    if (tableSize > maxRingSize) throw new UsageError(`--table-size (minimum ring size, ${tableSize}) must not exceed --max-ring-size (${maxRingSize})`);
  }
  return { policy, endpoints, tableSize, maxRingSize, keys, seed, json: values.json === true };
}

/** A built table over some endpoints, answering key hash -> endpoint id (not index). */
interface Built {
  /** maglev: M; ring_hash: the points built. */
  readonly size: number;
  /** Share of the table (slots, or ring arc) owned by each position in `ids`. */
  readonly shares: Float64Array;
  readonly owner: (hash: number) => number;
}

/** `ids` are endpoint ids; `owner` maps back to them, so two builds compare by address. */
function build(s: HashSettings, ids: readonly number[]): Built {
  const n = ids.length;
  const weights = ids.map(() => 1);
  const addresses = ids.map(endpointAddress);
  const shares = new Float64Array(n);
  if (s.policy === 'maglev') {
    if (n === 0) return { size: s.tableSize, shares, owner: () => NO_ENDPOINT };
    const table = buildMaglevTable(addresses, weights, s.tableSize);
    const m = table.length;
    for (let slot = 0; slot < m; slot++) shares[table[slot] as number]! += 1 / m;
    return { size: m, shares, owner: (hash) => ids[table[hash % m] as number] as number };
  }
  const ring = buildRing(addresses, weights, s.tableSize, s.maxRingSize);
  const points = ring.points;
  const len = points.length;
  if (len === 0) return { size: 0, shares, owner: () => NO_ENDPOINT };
  // ringLookup gives a key to the first point at or after its hash, so point j owns
  // (points[j-1], points[j]] and point 0 also the wrap-around (points[len-1], 2^32).
  for (let j = 0; j < len; j++) {
    const arc = j === 0 ? (points[0] as number) + 4294967296 - (points[len - 1] as number) : (points[j] as number) - (points[j - 1] as number);
    shares[ring.owners[j] as number]! += arc / 4294967296;
  }
  return { size: len, shares, owner: (hash) => ids[ring.owners[ringLookup(ring, hash)] as number] as number };
}

function maxOverMean(shares: ArrayLike<number>): number {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < shares.length; i++) {
    const v = shares[i] as number;
    sum += v;
    if (v > max) max = v;
  }
  return sum === 0 ? 0 : (max * shares.length) / sum;
}

function movedFraction(hashes: Uint32Array, before: Uint32Array, after: Built): number {
  let moved = 0;
  for (let i = 0; i < hashes.length; i++) if (after.owner(hashes[i] as number) !== before[i]) moved++;
  return moved / hashes.length;
}

export function measureHash(s: HashSettings): HashReport {
  const n = s.endpoints;
  const ids = Array.from({ length: n }, (_, i) => i);
  const t0 = performance.now();
  const base = build(s, ids);
  const buildMs = performance.now() - t0;

  // Keys are never kept as strings: 1M of them would cost ~50 MB for nothing.
  const rng = new SeededRng(s.seed);
  const hashes = new Uint32Array(s.keys);
  const owners = new Uint32Array(s.keys);
  const perEndpoint = new Float64Array(n);
  for (let i = 0; i < s.keys; i++) {
    const h = murmur3(`key-${rng.nextUint32()}-${rng.nextUint32()}`);
    hashes[i] = h;
    const id = base.owner(h);
    owners[i] = id;
    perEndpoint[id]! += 1; // ids of the base build are its indices
  }

  const removedId = Math.floor(n / 2);
  const removal = build(s, ids.filter((id) => id !== removedId));
  const addedId = n;
  const addition = build(s, [...ids, addedId]);

  const report: HashReport = {
    policy: s.policy,
    endpoints: n,
    table_size: base.size,
    ...(s.policy === 'ring_hash' ? { min_ring_size: s.tableSize, max_ring_size: s.maxRingSize } : {}),
    keys: s.keys,
    seed: s.seed,
    max_over_mean: maxOverMean(base.shares),
    keys_max_over_mean: maxOverMean(perEndpoint),
    removed_endpoint: endpointAddress(removedId),
    moved_fraction_on_removal: movedFraction(hashes, owners, removal),
    ideal_moved_fraction_on_removal: 1 / n,
    added_endpoint: endpointAddress(addedId),
    moved_fraction_on_addition: movedFraction(hashes, owners, addition),
    ideal_moved_fraction_on_addition: 1 / (n + 1),
    build_ms: Math.round(buildMs * 1000) / 1000,
  };
  return report;
}

const pct = (f: number): string => `${(f * 100).toFixed(2)}%`;
const ratio = (actual: number, ideal: number): string => `${(actual / ideal).toFixed(2)}x`;

export function formatHashReport(r: HashReport): string {
  const tableLabel = r.policy === 'maglev' ? `${r.table_size} slots` : `${r.table_size} points (min ${r.min_ring_size}, max ${r.max_ring_size})`;
  const rows: [string, string][] = [
    ['policy', r.policy],
    ['endpoints', String(r.endpoints)],
    ['table size', tableLabel],
    ['keys', `${r.keys} (seed ${r.seed})`],
    ['build', `${r.build_ms.toFixed(3)} ms`],
    ['max/mean share, table', r.max_over_mean.toFixed(4)],
    ['max/mean share, keys', r.keys_max_over_mean.toFixed(4)],
    ['moved on removal', `${pct(r.moved_fraction_on_removal)} (ideal ${pct(r.ideal_moved_fraction_on_removal)}; removed ${r.removed_endpoint})`],
    ['moved on addition', `${pct(r.moved_fraction_on_addition)} (ideal ${pct(r.ideal_moved_fraction_on_addition)}; added ${r.added_endpoint})`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  lines.push(
    '',
    `removal moved ${pct(r.moved_fraction_on_removal)} of keys (ideal ${pct(r.ideal_moved_fraction_on_removal)}, ` +
      `${ratio(r.moved_fraction_on_removal, r.ideal_moved_fraction_on_removal)}); ` +
      `addition moved ${pct(r.moved_fraction_on_addition)} (ideal ${pct(r.ideal_moved_fraction_on_addition)}, ` +
      `${ratio(r.moved_fraction_on_addition, r.ideal_moved_fraction_on_addition)})`,
  );
  return lines.join('\n');
}

/** `argv` is what follows `hash` on the command line. */
export async function runHash(argv: string[], io: Io): Promise<number> {
  const settings = parseCommand('hash', argv, io, parse, HASH_USAGE, HASH_USAGE_LINE);
  if (typeof settings === 'number') return settings;
  let report: HashReport;
  try {
    report = measureHash(settings);
  } catch (e) {
    io.stderr(`meridian hash: internal error: ${(e as Error).message}`);
    return 1;
  }
  io.stdout(settings.json ? JSON.stringify(report) : formatHashReport(report));
  return 0;
}
