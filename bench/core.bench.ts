/**
 * Benchmarks of the balancing core: pick cost per policy and table build times.
 *
 *   npm run bench                           full run (~12 s), a table on stdout
 *   node dist/bench/core.bench.js --quick   a fast, rougher run (smoke checks)
 *   node dist/bench/core.bench.js --json    machine-readable results
 *   node dist/bench/core.bench.js --only outlier   one group of cases (a policy, reference, outlier, lifecycle)
 *
 * Method: the pick cases of each policy run in a worker thread of their own (its own V8
 * isolate), so the `pick` call sites stay monomorphic, as in a process whose clusters use
 * one policy; measured in one isolate, six policies make them megamorphic and roughly
 * double the cheapest picks. Every case is warmed up and calibrated to batches of about
 * `batchMs`; then `batches` rounds each run one timed batch of every case, policy after
 * policy (interleaved, so a burst of noise on the machine lands on many cases once rather
 * than on one case throughout), and each case reports the median of its batches with the
 * min and max. Nothing here asserts a threshold: benchmarks are measurements, not tests.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import {
  buildMaglevTable,
  buildRing,
  CircuitBreaker,
  Cluster,
  createBalancer,
  HostState,
  ManualClock,
  POLICY_NAMES,
  RequestLifecycle,
  RetryBudget,
  SeededRng,
  type Endpoint,
  type PickContext,
  type PolicyName,
} from '../src/core/index.js';
import { summarize, type Summary } from './stats.js';

const USAGE = `usage: node dist/bench/core.bench.js [--quick] [--json] [--only GROUP[,GROUP]]
  --quick   fewer and shorter batches: a fast, rougher run
  --json    print one JSON object instead of tables
  --only    run only these groups: reference, outlier, lifecycle, or policy names (table builds are skipped)`;

const SIZES = [10, 100, 1000] as const;
/** Outlier detection's per-request cost must not grow with the cluster: measured up to 5,000 hosts. */
const OUTLIER_SIZES = [10, 1000, 5000] as const;
const UNEQUAL_WEIGHTS = [1, 2, 3, 4, 5] as const;
/** Precomputed request contexts, cycled through; a power of two so `i & MASK` indexes them. */
const CONTEXTS = 1 << 16;
const MASK = CONTEXTS - 1;
const OK = { status: 200, latencyMs: 10 } as const;
const FAILED = { status: 503, latencyMs: 10 } as const;

type Via = 'cluster' | 'cluster_10' | 'cluster_100' | 'balancer' | 'reference' | 'cluster_retry' | 'lifecycle' | 'lifecycle_retry';

interface PickCase {
  readonly policy: PolicyName | 'reference';
  readonly via: Via;
  readonly endpoints: number;
  readonly weights: 'equal' | '1..5';
  /** Cluster cases of the outlier group: outlier detection on or off. */
  readonly outlier?: 'on' | 'off';
  /** Runs `iterations` picks and returns the elapsed nanoseconds. */
  readonly run: (iterations: number) => number;
  iterations: number;
  readonly nsPerPick: number[];
}

interface BuildCase {
  readonly name: string;
  readonly endpoints: number;
  readonly param: string;
  /** Entries in the built table: slots (maglev) or ring points (ring_hash). */
  size: number;
  readonly build: () => number;
  readonly ms: number[];
}

function endpoints(n: number, weight: (i: number) => number = () => 1): Endpoint[] {
  return Array.from({ length: n }, (_, i) => ({ id: `e${i}`, address: `10.0.${i >> 8}.${i & 255}:8080`, weight: weight(i) }));
}

/** Random 32-bit key hashes, wrapped as the `{ hash }` a hash policy is picked with. */
function contexts(seed: number): PickContext[] {
  const rng = new SeededRng(seed);
  return Array.from({ length: CONTEXTS }, () => ({ hash: rng.nextUint32() }));
}

function timed(loop: () => void): number {
  const start = process.hrtime.bigint();
  loop();
  return Number(process.hrtime.bigint() - start);
}

/**
 * Through `Cluster`: pick + onStart + onEnd, the full bookkeeping of one request. With
 * `outlier`, outlier detection (Envoy's defaults) sees every outcome; all succeed. With
 * `inFlight` 10 or 100, that many requests are outstanding, each ended that many picks after
 * it started: at one latency, 10x the request rate is 10x the requests in flight (Little's
 * law), so 100 against 10 is a policy's cost at 10x the prediction load (issue 15).
 */
function clusterCase(policy: PolicyName, n: number, unequal: boolean, outlier?: 'on' | 'off', inFlight: 1 | 10 | 100 = 1): PickCase {
  const eps = endpoints(n, unequal ? (i) => UNEQUAL_WEIGHTS[i % UNEQUAL_WEIGHTS.length] as number : undefined);
  const cluster = new Cluster('bench', eps, { policy, clock: new ManualClock(), rng: new SeededRng(1), ...(outlier === 'on' ? { outlierDetection: {} } : {}) });
  const ctxs = contexts(2);
  const outstanding: HostState[] = [];
  let next = 0;
  const run = (iterations: number): number =>
    timed(() => {
      for (let i = 0; i < iterations; i++) {
        const host = cluster.pick(ctxs[i & MASK]);
        if (host === undefined) throw new Error(`${policy}: no host`);
        cluster.onStart(host);
        if (inFlight === 1) {
          cluster.onEnd(host, OK);
          continue;
        }
        const old = outstanding[next];
        if (old !== undefined) cluster.onEnd(old, OK);
        outstanding[next] = host;
        next = (next + 1) % inFlight;
      }
    });
  const via: Via = inFlight === 1 ? 'cluster' : inFlight === 10 ? 'cluster_10' : 'cluster_100';
  return { policy, via, endpoints: n, weights: unequal ? '1..5' : 'equal', ...(outlier ? { outlier } : {}), run, iterations: 0, nsPerPick: [] };
}

/**
 * A request's whole lifecycle around the pick (src/core/request-lifecycle.ts), as the proxy
 * and the simulator drive it: a new lifecycle, admit (breaker slot, budget), pick +
 * onStart, the outcome, end. With `retry`, the first try is a 503 that `retry_on` covers:
 * the retry decision (budget, max_retries, backoff) and a second try on another host.
 * Against it, the same picks through `Cluster` alone (`cluster_retry`: two picks, the
 * second excluding the first host), so the difference is the lifecycle's own cost.
 */
function lifecycleCase(n: number, via: 'cluster_retry' | 'lifecycle' | 'lifecycle_retry'): PickCase {
  const clock = new ManualClock();
  const rng = new SeededRng(1);
  const cluster = new Cluster('bench', endpoints(n), { policy: 'round_robin', clock, rng });
  const life = {
    core: cluster,
    breaker: new CircuitBreaker(),
    budget: new RetryBudget({ percent: 100, minPerSecond: 0 }, 0),
    retry: { attempts: 1, onConnectFailure: true, onReset: false, onTimeout: false, statuses: new Set([503]), perTryTimeoutMs: undefined },
  };
  const options = { slot: 'requests', pooled: true } as const;
  const exclude = new Set<HostState>();
  const retry = via === 'lifecycle_retry';
  const run = (iterations: number): number =>
    timed(() => {
      for (let i = 0; i < iterations; i++) {
        if (via === 'cluster_retry') {
          const first = cluster.pick({ attempt: 0 }) as HostState;
          cluster.onStart(first);
          cluster.onEnd(first, FAILED);
          exclude.add(first);
          const second = cluster.pick({ attempt: 1, exclude }) as HostState;
          exclude.clear();
          cluster.onStart(second);
          cluster.onEnd(second, OK);
          continue;
        }
        const lc = new RequestLifecycle(life, clock, rng, options);
        if (!lc.admit() || lc.startTry() === undefined) throw new Error('lifecycle: refused');
        if (retry) {
          lc.endTry(FAILED);
          if (lc.shouldRetryStatus(503, true) !== 'retry' || lc.startTry() === undefined) throw new Error('lifecycle: no retry');
        }
        lc.endTry(OK);
        lc.end();
      }
    });
  return { policy: 'round_robin', via, endpoints: n, weights: 'equal', run, iterations: 0, nsPerPick: [] };
}

/** Directly on the balancer: `pick` alone, on idle hosts that each have a latency sample. */
function balancerCase(policy: PolicyName, n: number, unequal: boolean): PickCase {
  const eps = endpoints(n, unequal ? (i) => UNEQUAL_WEIGHTS[i % UNEQUAL_WEIGHTS.length] as number : undefined);
  const hosts = eps.map((e, i) => {
    const h = new HostState(e, 10_000, true);
    h.latency.observe(5 + (i % 7), 0); // peak_ewma compares real costs, not all-zero ones
    return h;
  });
  const balancer = createBalancer(policy, new SeededRng(1), new ManualClock());
  balancer.update(hosts, eps.map((e) => e.weight));
  const ctxs = contexts(2);
  const run = (iterations: number): number =>
    timed(() => {
      for (let i = 0; i < iterations; i++) {
        if (balancer.pick(ctxs[i & MASK] as PickContext) === undefined) throw new Error(`${policy}: no host`);
      }
    });
  return { policy, via: 'balancer', endpoints: n, weights: unequal ? '1..5' : 'equal', run, iterations: 0, nsPerPick: [] };
}

/**
 * A reference, not a policy: the same loop picking hosts[hash % n], the cheapest
 * conceivable hash pick (the modulo of a 32-bit hash is most of its cost).
 */
function referenceCase(n: number): PickCase {
  const hosts = endpoints(n);
  const ctxs = contexts(2);
  const run = (iterations: number): number =>
    timed(() => {
      for (let i = 0; i < iterations; i++) {
        if (hosts[((ctxs[i & MASK] as PickContext).hash as number) % n] === undefined) throw new Error('no host');
      }
    });
  return { policy: 'reference', via: 'reference', endpoints: n, weights: 'equal', run, iterations: 0, nsPerPick: [] };
}

function buildCase(name: string, param: string, n: number, make: (addresses: string[], weights: number[]) => number): BuildCase {
  const eps = endpoints(n);
  const addresses = eps.map((e) => e.address);
  const weights = eps.map((e) => e.weight);
  return { name, param, endpoints: n, size: 0, build: () => make(addresses, weights), ms: [] };
}

/** Grow the iteration count until one batch takes about `batchMs`. */
function calibrate(c: PickCase, batchMs: number): void {
  let iterations = 1000;
  for (;;) {
    const ns = c.run(iterations);
    if (ns >= batchMs * 1e6 * 0.25 || iterations >= 1 << 28) {
      c.iterations = Math.max(1000, Math.round((iterations * batchMs * 1e6) / Math.max(ns, 1)));
      return;
    }
    iterations *= 4;
  }
}

interface Results {
  readonly node: string;
  readonly platform: string;
  readonly cpus: number;
  readonly cpu_model: string;
  readonly quick: boolean;
  readonly batches: number;
  readonly batch_ms: number;
  readonly picks: readonly (Omit<PickCase, 'run' | 'nsPerPick' | 'iterations'> & { iterations_per_batch: number; ns_per_pick: Summary })[];
  readonly builds: readonly (Omit<BuildCase, 'build' | 'ms'> & { ms: Summary })[];
}

/** Which pick cases share an isolate: one policy's, the reference's, or outlier detection's. */
type Group = PolicyName | 'reference' | 'outlier' | 'lifecycle';
const GROUPS: readonly Group[] = ['reference', ...POLICY_NAMES, 'outlier', 'lifecycle'];

function groupCases(group: Group): PickCase[] {
  if (group === 'reference') return SIZES.map((n) => referenceCase(n));
  if (group === 'lifecycle') {
    return SIZES.flatMap((n) => [clusterCase('round_robin', n, false), lifecycleCase(n, 'lifecycle'), lifecycleCase(n, 'cluster_retry'), lifecycleCase(n, 'lifecycle_retry')]);
  }
  if (group === 'outlier') return OUTLIER_SIZES.flatMap((n) => [clusterCase('round_robin', n, false, 'off'), clusterCase('round_robin', n, false, 'on')]);
  const cases: PickCase[] = [];
  for (const n of SIZES) cases.push(clusterCase(group, n, false), balancerCase(group, n, false));
  if (group === 'peak_ewma' || group === 'predictive' || group === 'prequal') for (const n of SIZES) cases.push(clusterCase(group, n, false, undefined, 10), clusterCase(group, n, false, undefined, 100));
  if (group === 'round_robin' || group === 'least_request') cases.push(clusterCase(group, 1000, true), balancerCase(group, 1000, true));
  return cases;
}

interface WorkerSettings {
  readonly group: Group;
  readonly batchMs: number;
  readonly warmupIterations: number;
}

type Request = { readonly type: 'warm' } | { readonly type: 'batch' };
type CaseInfo = Pick<PickCase, 'policy' | 'via' | 'endpoints' | 'weights' | 'outlier' | 'iterations'>;
type Reply = { readonly type: 'warmed'; readonly cases: CaseInfo[] } | { readonly type: 'batch'; readonly nsPerPick: number[] };

/** Worker side: owns one group's cases; warms them on request, then times one batch per request. */
function serveGroup(settings: WorkerSettings): void {
  const port = parentPort;
  if (port === null) throw new Error('serveGroup runs in a worker');
  const cases = groupCases(settings.group);
  const reply = (r: Reply): void => port.postMessage(r);
  port.on('message', (req: Request) => {
    if (req.type === 'warm') {
      for (const c of cases) {
        c.run(settings.warmupIterations); // let the JIT settle on this case
        calibrate(c, settings.batchMs);
      }
      reply({ type: 'warmed', cases: cases.map(({ policy, via, endpoints: n, weights, outlier, iterations }) => ({ policy, via, endpoints: n, weights, ...(outlier ? { outlier } : {}), iterations })) });
    } else {
      reply({ type: 'batch', nsPerPick: cases.map((c) => c.run(c.iterations) / c.iterations) });
    }
  });
}

class GroupWorker {
  readonly #worker: Worker;

  constructor(settings: WorkerSettings) {
    this.#worker = new Worker(new URL(import.meta.url), { workerData: settings });
  }

  /** One request, one reply: the main thread runs the workers strictly one at a time. */
  ask(req: Request): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.#worker.once('error', onError);
      this.#worker.once('message', (r: Reply) => {
        this.#worker.off('error', onError);
        resolve(r);
      });
      this.#worker.postMessage(req);
    });
  }

  terminate(): Promise<number> {
    return this.#worker.terminate();
  }
}

async function measure(quick: boolean, groups: readonly Group[]): Promise<Results> {
  const batches = quick ? 3 : 7;
  const batchMs = quick ? 2 : 30;
  const workers = groups.map((group) => new GroupWorker({ group, batchMs, warmupIterations: quick ? 20_000 : 200_000 }));
  try {
    const infos: CaseInfo[][] = [];
    for (const w of workers) {
      const r = await w.ask({ type: 'warm' });
      if (r.type !== 'warmed') throw new Error('worker protocol: expected warmed');
      infos.push(r.cases);
    }
    const samples: number[][][] = infos.map((cases) => cases.map(() => []));
    for (let b = 0; b < batches; b++) {
      for (const [g, w] of workers.entries()) {
        const r = await w.ask({ type: 'batch' });
        if (r.type !== 'batch') throw new Error('worker protocol: expected batch');
        r.nsPerPick.forEach((ns, c) => samples[g]?.[c]?.push(ns));
      }
    }
    const picks = infos.flatMap((cases, g) =>
      cases.map(({ iterations, ...info }, c) => ({ ...info, iterations_per_batch: iterations, ns_per_pick: summarize(samples[g]?.[c] ?? []) })),
    );
    // Table builds are a group of their own: a filtered run is after pick costs only.
    return { ...machine(quick, batches, batchMs), picks, builds: groups.length === GROUPS.length ? measureBuilds(batches) : [] };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** Table builds, on the main thread once the workers are idle. */
function measureBuilds(batches: number): Results['builds'] {
  const builds = [
    buildCase('maglev', 'M=65537', 1000, (a, w) => buildMaglevTable(a, w, 65537).length),
    buildCase('ring_hash', 'min_ring=1024', 1000, (a, w) => buildRing(a, w, 1024).points.length),
    buildCase('ring_hash', 'min_ring=100000', 1000, (a, w) => buildRing(a, w, 100_000).points.length),
  ];
  for (const c of builds) for (let i = 0; i < 2; i++) c.size = c.build(); // warm-up
  for (let b = 0; b < batches; b++) {
    for (const c of builds) c.ms.push(timed(() => (c.size = c.build())) / 1e6);
  }
  return builds.map(({ name, param, endpoints: n, size, ms }) => ({ name, param, endpoints: n, size, ms: summarize(ms) }));
}

function machine(quick: boolean, batches: number, batchMs: number): Omit<Results, 'picks' | 'builds'> {
  return {
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model ?? 'unknown',
    quick,
    batches,
    batch_ms: batchMs,
  };
}

function cell(s: Summary, digits: number): string {
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}-${s.max.toFixed(digits)})`;
}

const VIA_LABEL: Record<Via, string> = {
  cluster: 'cluster: pick+onStart+onEnd',
  cluster_10: 'cluster: same, 10 in flight',
  cluster_100: 'cluster: same, 100 in flight (10x)',
  balancer: 'balancer: pick only',
  reference: 'reference: hosts[hash % n]',
  cluster_retry: 'cluster: 2 x pick+onStart+onEnd',
  lifecycle: 'lifecycle: admit+pick+outcome+end',
  lifecycle_retry: 'lifecycle: same, one 503 retried',
};

function format(r: Results): string {
  const lines = [
    `Meridian core benchmarks: node ${r.node}, ${r.platform}, ${r.cpus} x ${r.cpu_model}${r.quick ? ' (--quick: rough)' : ''}`,
    `Each figure: median of ${r.batches} interleaved batches of ~${r.batch_ms} ms, (min-max) after it.`,
  ];
  const rows: string[][] = [['policy', 'weights', 'measured through', ...SIZES.map((n) => `${n} endpoints`)]];
  const seen = new Set<string>();
  for (const p of r.picks) {
    if (p.outlier !== undefined) continue;
    const key = `${p.policy}|${p.via}|${p.weights}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const cells = SIZES.map((n) => {
      const m = r.picks.find((q) => q.policy === p.policy && q.via === p.via && q.weights === p.weights && q.endpoints === n);
      return m ? cell(m.ns_per_pick, 1) : '-';
    });
    rows.push([p.policy, p.weights, VIA_LABEL[p.via], ...cells]);
  }
  if (rows.length > 1) lines.push('', 'Pick cost, ns per pick', ...table(rows, [false, false, false, true, true, true]));
  const outlierRows: string[][] = [['outlier detection', 'measured through', ...OUTLIER_SIZES.map((n) => `${n} endpoints`)]];
  for (const mode of ['off', 'on'] as const) {
    const cells = OUTLIER_SIZES.map((n) => {
      const m = r.picks.find((q) => q.outlier === mode && q.endpoints === n);
      return m ? cell(m.ns_per_pick, 1) : '-';
    });
    if (cells.some((c) => c !== '-')) outlierRows.push([mode, `round_robin ${VIA_LABEL.cluster}`, ...cells]);
  }
  if (outlierRows.length > 1) lines.push('', 'Outlier detection, ns per request (every outcome a success)', ...table(outlierRows, [false, false, true, true, true]));
  if (r.builds.length > 0) {
    lines.push('', 'Table build, ms per build');
    const buildRows = [['table', 'parameter', 'endpoints', 'entries', 'ms']];
    for (const b of r.builds) buildRows.push([b.name, b.param, String(b.endpoints), String(b.size), cell(b.ms, 2)]);
    lines.push(...table(buildRows, [false, false, true, true, true]));
  }
  return lines.join('\n');
}

function table(rows: readonly string[][], alignRight: readonly boolean[]): string[] {
  const widths = (rows[0] as string[]).map((_, c) => Math.max(...rows.map((row) => (row[c] ?? '').length)));
  return rows.map((row) =>
    row
      .map((v, c) => (alignRight[c] ? v.padStart(widths[c] as number) : v.padEnd(widths[c] as number)))
      .join('  ')
      .trimEnd(),
  );
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: { quick: { type: 'boolean' }, json: { type: 'boolean' }, only: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`core.bench: ${(e as Error).message}\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const only = values.only?.split(',').map((g) => g.trim());
  const unknown = only?.filter((g) => !GROUPS.includes(g as Group));
  if (unknown !== undefined && unknown.length > 0) {
    process.stderr.write(`core.bench: unknown group ${unknown.join(', ')} (groups: ${GROUPS.join(', ')})\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  const results = await measure(values.quick === true, only === undefined ? GROUPS : GROUPS.filter((g) => only.includes(g)));
  process.stdout.write(values.json === true ? `${JSON.stringify(results, null, 2)}\n` : `${format(results)}\n`);
}

if (isMainThread) await main();
else serveGroup(workerData as WorkerSettings);
