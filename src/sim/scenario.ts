/**
 * The scenario file: what `meridian simulate FILE` reads. YAML (or JSON), validated
 * once here with every problem listed by path (`regions[0].service_time.mean: ...`);
 * the engine receives only the typed, checked `Scenario`.
 */
import { parse as parseYaml } from 'yaml';
import { DEFAULT_RETRY_ON, retryOnSchema, type RetryOn } from '../config/index.js';
import type { CircuitBreakerLimits } from '../core/circuit-breaker.js';
import type { OutlierOptions } from '../core/outlier-detector.js';
import type { RetryBudgetOptions } from '../core/retry-budget.js';
import type { SlowStartOptions } from '../core/slow-start.js';
import { POLICY_NAMES, type PolicyName } from '../core/types.js';
import { lognormalSigmaFromP99, type ServiceTime } from './distributions.js';

export interface ServerSpec {
  readonly concurrency: number;
  /** Work per unit of time relative to nominal: 0.25 takes four times as long. */
  readonly speed: number;
  readonly serviceTime: ServiceTime;
  /** Requests waiting beyond the busy workers; past it the server answers 503 at once. Infinity = unbounded. */
  readonly maxQueue: number;
  /** Skip a queued request whose LB has given up on it (timeout) instead of serving it for nobody. */
  readonly dropAbandoned: boolean;
}

export interface RegionSpec {
  readonly name: string;
  readonly servers: readonly ServerSpec[];
  /** Round-trip time from this region's load balancer to other regions' servers, ms (either side may say it). */
  readonly rttMs: ReadonlyMap<string, number>;
  /**
   * With lb.cross_region: the region's own servers as a locality with a capacity; above it,
   * only the excess spills to the next region (the core's waterfall).
   */
  readonly capacity?: { readonly maxRequestsPerSecond?: number; readonly maxInFlight?: number };
}

export interface Spike {
  readonly atMs: number;
  readonly multiply: number;
  readonly forMs: number;
}

export interface ClientSpec {
  readonly name: string;
  /** Base arrival rate, requests per second. */
  readonly ratePerS: number;
  /** Round-trip time to each region, ms; a region not listed is unreachable for this group. */
  readonly rttMs: ReadonlyMap<string, number>;
  readonly spikes: readonly Spike[];
  /** Piecewise-linear multiplier of the base rate over time: [{ atMs, factor }], constant past the ends. */
  readonly curve: readonly { readonly atMs: number; readonly factor: number }[];
  /** base x (1 + amplitude cos(2 pi (t - peakAt) / period)). */
  readonly diurnal?: { readonly periodMs: number; readonly amplitude: number; readonly peakAtMs: number };
  /** Fraction of requests carrying a hash key (for ring_hash / maglev); keys drawn from `keys` distinct values. */
  readonly keys: number;
}

export interface HealthCheckSpec {
  readonly intervalMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
}

export interface LbSpec {
  /** Whole-request deadline at the load balancer; Infinity = none. */
  readonly timeoutMs: number;
  /** Deadline of one try; Infinity = none (the request deadline applies). */
  readonly perTryTimeoutMs: number;
  readonly retries: number;
  /** What is retried, as the proxy's `retries.retry_on` (and with its default: connect failures only). */
  readonly retryOn: readonly RetryOn[];
  readonly retryBudget?: RetryBudgetOptions;
  readonly circuitBreaker?: CircuitBreakerLimits;
  readonly rateLimit?: { readonly ratePerSecond: number; readonly burst?: number };
  readonly healthCheck?: HealthCheckSpec;
  readonly outlierDetection?: OutlierOptions;
  readonly slowStart?: SlowStartOptions;
  readonly panicThresholdPercent?: number;
  readonly choiceCount?: number;
  readonly latencyTauMs?: number;
  readonly boundedLoad?: number;
  /** How long a connection attempt to a black-holed server (partition, region down) waits. Default 1 s. */
  readonly connectTimeoutMs: number;
  /**
   * Each region's load balancer also balances over the other regions' servers, as
   * lower-priority remote localities nearest first (the core's locality routing): a region
   * losing servers sheds traffic to the next region at once, paying the inter-region RTT.
   */
  readonly crossRegion: boolean;
  /** Envoy's overprovisioning factor for those priority levels. Default 1.4. */
  readonly overprovisioningFactor?: number;
}

export interface GlobalSpec {
  /** How long a client keeps a DNS answer; clients switch to a new answer spread evenly over one TTL. */
  readonly dnsTtlMs: number;
  /** The steering layer's probe of each region from each client group's vantage point. */
  readonly healthCheck: HealthCheckSpec;
}

export type ServerRef = { readonly region: number; readonly index: number; readonly label: string };

export type SimEvent =
  | { readonly atMs: number; readonly kind: 'kill' | 'revive'; readonly server: ServerRef }
  | { readonly atMs: number; readonly kind: 'slow'; readonly server: ServerRef; readonly factor: number; readonly forMs: number }
  | { readonly atMs: number; readonly kind: 'errors'; readonly server: ServerRef; readonly rate: number; readonly forMs: number }
  | { readonly atMs: number; readonly kind: 'region_down' | 'region_up'; readonly region: number }
  | { readonly atMs: number; readonly kind: 'add'; readonly region: number; readonly count: number; readonly coldFactor: number; readonly warmMs: number }
  | { readonly atMs: number; readonly kind: 'partition' | 'heal'; readonly client: number; readonly region: number; readonly forMs: number };

export interface Scenario {
  readonly name: string;
  readonly seed: number;
  readonly durationMs: number;
  readonly warmupMs: number;
  /** Width of one time-series bucket. */
  readonly bucketMs: number;
  readonly regions: readonly RegionSpec[];
  readonly clients: readonly ClientSpec[];
  readonly lb: LbSpec;
  readonly global: GlobalSpec;
  readonly policies: readonly PolicyName[];
  readonly events: readonly SimEvent[];
}

/** A scenario that does not validate: every problem, each as `path: message`. */
export class ScenarioError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`${problems.length} problem${problems.length === 1 ? '' : 's'} in the scenario:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_RE = /^(?:\d+(?:\.\d+)?(?:us|ms|s|m|h|d))+$/;
const DURATION_PART_RE = /(\d+(?:\.\d+)?)(us|ms|s|m|h|d)/g;
const RATE_RE = /^(\d+(?:\.\d+)?)\/(s|m|h|d)$/;

/**
 * `"1.5s"` -> 1500, `"250us"` -> 0.25, `"1m30s"` -> 90000 (parts from the largest unit down,
 * each once, as in configs: src/config/duration.ts); undefined if not a duration. Bare
 * numbers are refused: say the unit.
 */
export function parseSimDuration(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const text = v.trim();
  if (!DURATION_RE.test(text)) return undefined;
  let ms = 0;
  let previous = Infinity;
  for (const [, n, unit] of text.matchAll(DURATION_PART_RE)) {
    const size = UNIT_MS[unit as string] as number;
    if (size >= previous) return undefined;
    previous = size;
    ms += Number(n) * size;
  }
  return ms;
}

/** `"800/s"` -> 800 per second, `"6000/m"` -> 100; a bare number is per second. */
export function parseRate(v: unknown): number | undefined {
  if (typeof v === 'number') return v >= 0 && Number.isFinite(v) ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = RATE_RE.exec(v.trim());
  return m ? (Number(m[1]) * 1000) / (UNIT_MS[m[2] as string] as number) : undefined;
}

type Obj = Record<string, unknown>;

/** Reads fields off plain objects, collecting problems by path instead of stopping at the first. */
class Reader {
  readonly problems: string[] = [];

  bad(path: string, msg: string): undefined {
    this.problems.push(`${path}: ${msg}`);
    return undefined;
  }

  obj(v: unknown, path: string): Obj | undefined {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return this.bad(path, 'expected a mapping');
    return v as Obj;
  }

  known(o: Obj, path: string, keys: readonly string[]): void {
    for (const k of Object.keys(o)) if (!keys.includes(k)) this.bad(`${path}.${k}`, `unknown field (expected one of: ${keys.join(', ')})`);
  }

  duration(v: unknown, path: string): number | undefined {
    const ms = parseSimDuration(v);
    return ms === undefined ? this.bad(path, `expected a duration such as 250ms, 2s, 1m; got ${JSON.stringify(v)}`) : ms;
  }

  optDuration(o: Obj, key: string, path: string, fallback: number): number {
    return o[key] === undefined ? fallback : (this.duration(o[key], `${path}.${key}`) ?? fallback);
  }

  num(v: unknown, path: string, min: number, max = Infinity, integer = false): number | undefined {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      return this.bad(path, `expected ${integer ? 'an integer' : 'a number'} in ${min}..${max === Infinity ? 'inf' : max}; got ${JSON.stringify(v)}`);
    }
    return v;
  }

  optNum(o: Obj, key: string, path: string, min: number, max: number, integer: boolean): number | undefined {
    return o[key] === undefined ? undefined : this.num(o[key], `${path}.${key}`, min, max, integer);
  }

  str(v: unknown, path: string): string | undefined {
    return typeof v === 'string' && v.length > 0 ? v : this.bad(path, 'expected a non-empty string');
  }

  list(v: unknown, path: string): unknown[] | undefined {
    return Array.isArray(v) ? v : this.bad(path, 'expected a list');
  }
}

export function parseScenarioText(text: string): Scenario {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ScenarioError([`(file): not YAML/JSON: ${(e as Error).message.split('\n')[0]}`]);
  }
  return parseScenario(doc);
}

export function parseScenario(doc: unknown): Scenario {
  const r = new Reader();
  const root = r.obj(doc, '(root)');
  if (!root) throw new ScenarioError(r.problems);
  r.known(root, '(root)', ['name', 'seed', 'duration', 'warmup', 'bucket', 'regions', 'clients', 'lb', 'global', 'policies', 'policy', 'events']);
  const seed = root.seed === undefined ? 1 : (r.num(root.seed, 'seed', 0, 4294967295, true) ?? 1);
  const durationMs = r.duration(root.duration, 'duration') ?? 1000;
  const warmupMs = r.optDuration(root, 'warmup', '(root)', 0);
  if (warmupMs >= durationMs) r.bad('warmup', 'must be shorter than duration');
  const bucketMs = r.optDuration(root, 'bucket', '(root)', defaultBucketMs(durationMs));
  if (durationMs / bucketMs > 2000) r.bad('bucket', `at most 2000 buckets per run (duration / bucket = ${Math.ceil(durationMs / bucketMs)})`);

  const regions = parseRegions(r, root.regions);
  const regionNames = regions.map((x) => x.name);
  regions.forEach((reg, i) => {
    for (const other of reg.rttMs.keys()) {
      if (!regionNames.includes(other)) r.bad(`regions[${i}].rtt.${other}`, `no region "${other}"; regions: ${regionNames.join(', ')}`);
      else if (other === reg.name) r.bad(`regions[${i}].rtt.${other}`, 'a region has no RTT to itself');
    }
  });
  const clients = parseClients(r, root.clients, regionNames);
  const lb = parseLb(r, root.lb);
  const global = parseGlobal(r, root.global);
  let policies: PolicyName[] = ['least_request'];
  const rawPolicies = root.policies ?? (root.policy === undefined ? undefined : [root.policy]);
  if (rawPolicies !== undefined) {
    const list = r.list(rawPolicies, 'policies') ?? [];
    policies = [];
    list.forEach((p, i) => {
      if (typeof p === 'string' && (POLICY_NAMES as readonly string[]).includes(p)) policies.push(p as PolicyName);
      else r.bad(`policies[${i}]`, `expected one of ${POLICY_NAMES.join(', ')}; got ${JSON.stringify(p)}`);
    });
    if (list.length === 0) r.bad('policies', 'expected at least one policy');
  }
  const events = parseEvents(r, root.events, regions, clients.map((c) => c.name), durationMs);
  if (r.problems.length > 0) throw new ScenarioError(r.problems);
  return {
    name: typeof root.name === 'string' ? root.name : 'scenario',
    seed,
    durationMs,
    warmupMs,
    bucketMs,
    regions,
    clients,
    lb,
    global,
    policies,
    events,
  };
}

/** About 120 buckets of a round width: 1 s for two minutes, 10 s for twenty. */
function defaultBucketMs(durationMs: number): number {
  for (const b of [100, 250, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000, 300_000, 600_000, 1_800_000, 3_600_000]) {
    if (durationMs / b <= 200) return b;
  }
  return 3_600_000;
}

function parseServiceTime(r: Reader, v: unknown, path: string): ServiceTime | undefined {
  const o = r.obj(v, path);
  if (!o) return undefined;
  const d = (key: string): number => r.duration(o[key], `${path}.${key}`) ?? 1;
  const n = (key: string, min: number, max = Infinity): number => r.num(o[key], `${path}.${key}`, min, max) ?? 1;
  switch (o.dist) {
    case 'constant':
      r.known(o, path, ['dist', 'value']);
      return { dist: 'constant', valueMs: d('value') };
    case 'exponential':
      r.known(o, path, ['dist', 'mean']);
      return { dist: 'exponential', meanMs: d('mean') };
    case 'normal':
      r.known(o, path, ['dist', 'mean', 'sd']);
      return { dist: 'normal', meanMs: d('mean'), sdMs: d('sd') };
    case 'lognormal': {
      r.known(o, path, ['dist', 'mean', 'sigma', 'p99']);
      const meanMs = d('mean');
      if (o.sigma !== undefined) return { dist: 'lognormal', meanMs, sigma: n('sigma', 0) };
      if (o.p99 === undefined) return r.bad(path, 'lognormal needs sigma or p99');
      try {
        return { dist: 'lognormal', meanMs, sigma: lognormalSigmaFromP99(meanMs, d('p99')) };
      } catch (e) {
        return r.bad(`${path}.p99`, (e as Error).message);
      }
    }
    case 'bimodal':
      r.known(o, path, ['dist', 'p', 'a', 'b']);
      return { dist: 'bimodal', p: n('p', 0, 1), aMs: d('a'), bMs: d('b') };
    case 'pareto':
      r.known(o, path, ['dist', 'mean', 'alpha']);
      return { dist: 'pareto', meanMs: d('mean'), alpha: r.num(o.alpha, `${path}.alpha`, 1.000001) ?? 2 };
    default:
      return r.bad(`${path}.dist`, `expected constant, exponential, normal, lognormal, bimodal or pareto; got ${JSON.stringify(o.dist)}`);
  }
}

function parseRegions(r: Reader, v: unknown): RegionSpec[] {
  const list = r.list(v, 'regions') ?? [];
  if (list.length === 0) r.bad('regions', 'expected at least one region');
  const names = new Set<string>();
  return list.flatMap((item, i): RegionSpec[] => {
    const path = `regions[${i}]`;
    const o = r.obj(item, path);
    if (!o) return [];
    r.known(o, path, ['name', 'servers', 'concurrency', 'service_time', 'speed', 'max_queue', 'abandoned', 'rtt', 'capacity']);
    const name = r.str(o.name, `${path}.name`) ?? `region${i}`;
    if (names.has(name)) r.bad(`${path}.name`, `duplicate region "${name}"`);
    if (name.includes('/')) r.bad(`${path}.name`, 'must not contain "/"');
    names.add(name);
    const count = r.num(o.servers, `${path}.servers`, 1, 100_000, true) ?? 1;
    const concurrency = o.concurrency === undefined ? 1 : (r.num(o.concurrency, `${path}.concurrency`, 1, 100_000, true) ?? 1);
    const serviceTime = parseServiceTime(r, o.service_time, `${path}.service_time`) ?? { dist: 'constant', valueMs: 1 };
    const maxQueue = o.max_queue === undefined ? Infinity : (r.num(o.max_queue, `${path}.max_queue`, 0, 1e9, true) ?? Infinity);
    let dropAbandoned = true;
    if (o.abandoned !== undefined) {
      if (o.abandoned === 'drop' || o.abandoned === 'serve') dropAbandoned = o.abandoned === 'drop';
      else r.bad(`${path}.abandoned`, `expected drop or serve; got ${JSON.stringify(o.abandoned)}`);
    }
    let speeds: number[] = Array.from({ length: count }, () => 1);
    if (o.speed !== undefined) {
      if (typeof o.speed === 'number') speeds = speeds.map(() => r.num(o.speed, `${path}.speed`, 1e-6) ?? 1);
      else {
        const s = r.list(o.speed, `${path}.speed`) ?? [];
        if (s.length !== count) r.bad(`${path}.speed`, `expected ${count} factors (one per server), got ${s.length}`);
        speeds = speeds.map((_, j) => (s[j] === undefined ? 1 : (r.num(s[j], `${path}.speed[${j}]`, 1e-6) ?? 1)));
      }
    }
    const rttMs = new Map<string, number>();
    if (o.rtt !== undefined) {
      const m = r.obj(o.rtt, `${path}.rtt`) ?? {};
      for (const [other, d] of Object.entries(m)) {
        const ms = r.duration(d, `${path}.rtt.${other}`);
        if (ms !== undefined) rttMs.set(other, ms);
      }
    }
    let capacity: { maxRequestsPerSecond?: number; maxInFlight?: number } | undefined;
    if (o.capacity !== undefined) {
      const c = r.obj(o.capacity, `${path}.capacity`) ?? {};
      r.known(c, `${path}.capacity`, ['rate', 'in_flight']);
      capacity = {};
      if (c.rate !== undefined) capacity.maxRequestsPerSecond = parseRate(c.rate) ?? r.bad(`${path}.capacity.rate`, 'expected a rate such as 500/s') ?? 1;
      if (c.in_flight !== undefined) capacity.maxInFlight = r.num(c.in_flight, `${path}.capacity.in_flight`, 1, 1e9, true) ?? 1;
    }
    return [{ name, servers: speeds.map((speed) => ({ concurrency, speed, serviceTime, maxQueue, dropAbandoned })), rttMs, ...(capacity === undefined ? {} : { capacity }) }];
  });
}

function parseClients(r: Reader, v: unknown, regions: readonly string[]): ClientSpec[] {
  const list = r.list(v, 'clients') ?? [];
  if (list.length === 0) r.bad('clients', 'expected at least one client group');
  return list.flatMap((item, i): ClientSpec[] => {
    const path = `clients[${i}]`;
    const o = r.obj(item, path);
    if (!o) return [];
    r.known(o, path, ['name', 'rate', 'rtt', 'spikes', 'curve', 'diurnal', 'keys']);
    const name = r.str(o.name, `${path}.name`) ?? `clients${i}`;
    const ratePerS = parseRate(o.rate) ?? r.bad(`${path}.rate`, `expected a rate such as 800/s; got ${JSON.stringify(o.rate)}`) ?? 0;
    const rttMs = new Map<string, number>();
    if (o.rtt === undefined) {
      for (const reg of regions) rttMs.set(reg, 0);
    } else {
      const rtt = r.obj(o.rtt, `${path}.rtt`) ?? {};
      for (const [reg, d] of Object.entries(rtt)) {
        if (!regions.includes(reg)) r.bad(`${path}.rtt.${reg}`, `no region named "${reg}"`);
        rttMs.set(reg, r.duration(d, `${path}.rtt.${reg}`) ?? 0);
      }
      if (rttMs.size === 0) r.bad(`${path}.rtt`, 'expected the RTT to at least one region');
    }
    const spikes = (o.spikes === undefined ? [] : (r.list(o.spikes, `${path}.spikes`) ?? [])).flatMap((s, j): Spike[] => {
      const sp = `${path}.spikes[${j}]`;
      const so = r.obj(s, sp);
      if (!so) return [];
      r.known(so, sp, ['at', 'multiply', 'for']);
      return [{ atMs: r.duration(so.at, `${sp}.at`) ?? 0, multiply: r.num(so.multiply, `${sp}.multiply`, 0) ?? 1, forMs: r.duration(so.for, `${sp}.for`) ?? 0 }];
    });
    const curve = (o.curve === undefined ? [] : (r.list(o.curve, `${path}.curve`) ?? [])).flatMap((s, j) => {
      const sp = `${path}.curve[${j}]`;
      const so = r.obj(s, sp);
      if (!so) return [];
      r.known(so, sp, ['at', 'factor']);
      return [{ atMs: r.duration(so.at, `${sp}.at`) ?? 0, factor: r.num(so.factor, `${sp}.factor`, 0) ?? 1 }];
    });
    for (let j = 1; j < curve.length; j++) {
      if ((curve[j] as { atMs: number }).atMs < (curve[j - 1] as { atMs: number }).atMs) r.bad(`${path}.curve[${j}].at`, 'points must be in time order');
    }
    let diurnal: ClientSpec['diurnal'];
    if (o.diurnal !== undefined) {
      const dp = `${path}.diurnal`;
      const d = r.obj(o.diurnal, dp) ?? {};
      r.known(d, dp, ['period', 'amplitude', 'peak_at']);
      diurnal = {
        periodMs: r.optDuration(d, 'period', dp, 86_400_000),
        amplitude: r.num(d.amplitude, `${dp}.amplitude`, 0, 1) ?? 0,
        peakAtMs: r.optDuration(d, 'peak_at', dp, 0),
      };
    }
    const keys = o.keys === undefined ? 0 : (r.num(o.keys, `${path}.keys`, 1, 1e9, true) ?? 0);
    return [{ name, ratePerS, rttMs, spikes, curve, ...(diurnal ? { diurnal } : {}), keys }];
  });
}

function parseHealthCheck(r: Reader, v: unknown, path: string, fallbackIntervalMs: number): HealthCheckSpec {
  const o = v === undefined ? {} : (r.obj(v, path) ?? {});
  r.known(o, path, ['interval', 'healthy_threshold', 'unhealthy_threshold']);
  return {
    intervalMs: r.optDuration(o, 'interval', path, fallbackIntervalMs),
    healthyThreshold: r.optNum(o, 'healthy_threshold', path, 1, 1000, true) ?? 2,
    unhealthyThreshold: r.optNum(o, 'unhealthy_threshold', path, 1, 1000, true) ?? 3,
  };
}

function parseLb(r: Reader, v: unknown): LbSpec {
  const path = 'lb';
  const o = v === undefined ? {} : (r.obj(v, path) ?? {});
  r.known(o, path, [
    'timeout', 'per_try_timeout', 'retries', 'retry_on', 'retry_budget', 'circuit_breaker', 'rate_limit', 'health_check',
    'outlier_detection', 'slow_start', 'panic_threshold', 'choice_count', 'latency_decay', 'bounded_load', 'connect_timeout',
    'cross_region', 'overprovisioning_factor',
  ]);
  const sub = (key: string, keys: readonly string[]): Obj | undefined => {
    if (o[key] === undefined) return undefined;
    const s = r.obj(o[key], `${path}.${key}`);
    if (s) r.known(s, `${path}.${key}`, keys);
    return s;
  };
  const lb: {
    -readonly [K in keyof LbSpec]: LbSpec[K];
  } = {
    timeoutMs: o.timeout === undefined ? Infinity : (r.duration(o.timeout, `${path}.timeout`) ?? Infinity),
    perTryTimeoutMs: o.per_try_timeout === undefined ? Infinity : (r.duration(o.per_try_timeout, `${path}.per_try_timeout`) ?? Infinity),
    retries: r.optNum(o, 'retries', path, 0, 10, true) ?? 0,
    retryOn: DEFAULT_RETRY_ON,
    connectTimeoutMs: r.optDuration(o, 'connect_timeout', path, 1000),
    crossRegion: false,
  };
  if (o.retry_on !== undefined) {
    if (!Array.isArray(o.retry_on)) r.bad(`${path}.retry_on`, 'expected a list of retry conditions');
    else {
      lb.retryOn = o.retry_on.flatMap((c: unknown, i: number) => {
        const parsed = retryOnSchema.safeParse(c);
        if (parsed.success) return [parsed.data];
        r.bad(`${path}.retry_on[${i}]`, parsed.error.issues[0]?.message ?? 'not a retry condition');
        return [];
      });
    }
  }
  if (o.cross_region !== undefined) {
    if (typeof o.cross_region === 'boolean') lb.crossRegion = o.cross_region;
    else r.bad(`${path}.cross_region`, `expected true or false; got ${JSON.stringify(o.cross_region)}`);
  }
  const opf = r.optNum(o, 'overprovisioning_factor', path, 1, 100, false);
  if (opf !== undefined) lb.overprovisioningFactor = opf;
  const rb = sub('retry_budget', ['percent', 'min_per_second']);
  if (rb) lb.retryBudget = { percent: r.optNum(rb, 'percent', `${path}.retry_budget`, 0, 100, false) ?? 20, minPerSecond: r.optNum(rb, 'min_per_second', `${path}.retry_budget`, 0, 1e9, false) ?? 3 };
  const cb = sub('circuit_breaker', ['max_requests', 'max_retries']);
  if (cb) {
    lb.circuitBreaker = {
      maxRequests: r.optNum(cb, 'max_requests', `${path}.circuit_breaker`, 1, 1e9, true) ?? 1024,
      maxRetries: r.optNum(cb, 'max_retries', `${path}.circuit_breaker`, 0, 1e9, true) ?? 3,
    };
  }
  const rl = sub('rate_limit', ['rate', 'burst']);
  if (rl) {
    const rate = parseRate(rl.rate) ?? r.bad(`${path}.rate_limit.rate`, 'expected a rate such as 1000/s') ?? 1;
    lb.rateLimit = { ratePerSecond: rate, ...(rl.burst === undefined ? {} : { burst: r.num(rl.burst, `${path}.rate_limit.burst`, 1) ?? 1 }) };
  }
  if (o.health_check !== undefined) lb.healthCheck = parseHealthCheck(r, o.health_check, `${path}.health_check`, 5000);
  const od = sub('outlier_detection', ['consecutive_5xx', 'consecutive_gateway_errors', 'interval', 'base_ejection_time', 'max_ejection_time', 'max_ejection_percent', 'success_rate']);
  if (od) {
    const p = `${path}.outlier_detection`;
    let successRate: OutlierOptions['successRate'];
    if (od.success_rate !== undefined) {
      const sr = r.obj(od.success_rate, `${p}.success_rate`) ?? {};
      r.known(sr, `${p}.success_rate`, ['minimum_hosts', 'request_volume', 'stdev_factor']);
      successRate = {
        minimumHosts: r.optNum(sr, 'minimum_hosts', `${p}.success_rate`, 1, 1e6, true) ?? 5,
        requestVolume: r.optNum(sr, 'request_volume', `${p}.success_rate`, 1, 1e9, true) ?? 100,
        stdevFactor: r.optNum(sr, 'stdev_factor', `${p}.success_rate`, 0, 100, false) ?? 1.9,
      };
    }
    lb.outlierDetection = {
      consecutive5xx: r.optNum(od, 'consecutive_5xx', p, 0, 1e6, true) ?? 5,
      consecutiveGatewayErrors: r.optNum(od, 'consecutive_gateway_errors', p, 0, 1e6, true) ?? 5,
      intervalMs: r.optDuration(od, 'interval', p, 10_000),
      baseEjectionMs: r.optDuration(od, 'base_ejection_time', p, 30_000),
      maxEjectionMs: r.optDuration(od, 'max_ejection_time', p, 300_000),
      maxEjectionPercent: r.optNum(od, 'max_ejection_percent', p, 0, 100, false) ?? 10,
      ...(successRate ? { successRate } : {}),
    };
  }
  const ss = sub('slow_start', ['window', 'aggression', 'min_weight_percent']);
  if (ss) {
    const p = `${path}.slow_start`;
    lb.slowStart = {
      windowMs: r.duration(ss.window, `${p}.window`) ?? 30_000,
      aggression: r.optNum(ss, 'aggression', p, 0.01, 100, false) ?? 1,
      minWeightPercent: r.optNum(ss, 'min_weight_percent', p, 0, 100, false) ?? 10,
    };
  }
  const panic = r.optNum(o, 'panic_threshold', path, 0, 100, false);
  if (panic !== undefined) lb.panicThresholdPercent = panic;
  const cc = r.optNum(o, 'choice_count', path, 2, 100, true);
  if (cc !== undefined) lb.choiceCount = cc;
  if (o.latency_decay !== undefined) lb.latencyTauMs = r.duration(o.latency_decay, `${path}.latency_decay`) ?? 10_000;
  const bl = r.optNum(o, 'bounded_load', path, 1, 100, false);
  if (bl !== undefined) lb.boundedLoad = bl;
  return lb;
}

function parseGlobal(r: Reader, v: unknown): GlobalSpec {
  const o = v === undefined ? {} : (r.obj(v, 'global') ?? {});
  r.known(o, 'global', ['dns_ttl', 'health_check']);
  return { dnsTtlMs: r.optDuration(o, 'dns_ttl', 'global', 0), healthCheck: parseHealthCheck(r, o.health_check, 'global.health_check', 10_000) };
}

const EVENT_KINDS = ['kill', 'revive', 'slow', 'errors', 'region_down', 'region_up', 'add', 'partition', 'heal'] as const;

function parseEvents(r: Reader, v: unknown, regions: readonly RegionSpec[], clients: readonly string[], durationMs: number): SimEvent[] {
  if (v === undefined) return [];
  const list = r.list(v, 'events') ?? [];
  // Servers that exist by the time of each event: the initial ones plus earlier `add`s.
  const sizes = regions.map((reg) => reg.servers.length);
  const regionIndex = (name: unknown, path: string): number => {
    const i = regions.findIndex((reg) => reg.name === name);
    return i >= 0 ? i : (r.bad(path, `no region named ${JSON.stringify(name)}`) ?? 0);
  };
  const serverRef = (ref: unknown, path: string): ServerRef => {
    const m = typeof ref === 'string' ? /^(.+)\/(\d+)$/.exec(ref) : null;
    if (!m) return r.bad(path, `expected REGION/INDEX such as us-east/3; got ${JSON.stringify(ref)}`) ?? { region: 0, index: 0, label: '?' };
    const region = regionIndex(m[1], path);
    const index = Number(m[2]);
    if (index >= (sizes[region] ?? 0)) r.bad(path, `${m[1]} has servers 0..${(sizes[region] ?? 1) - 1} at that time`);
    return { region, index, label: ref as string };
  };
  const parsed = list.map((item, i) => ({ item, i, at: parseSimDuration((item as Obj | null)?.at) ?? 0 }));
  // Events run in time order; the file's order breaks ties.
  parsed.sort((a, b) => a.at - b.at || a.i - b.i);
  return parsed.flatMap(({ item, i }): SimEvent[] => {
    const path = `events[${i}]`;
    const o = r.obj(item, path);
    if (!o) return [];
    const atMs = r.duration(o.at, `${path}.at`) ?? 0;
    if (atMs > durationMs) r.bad(`${path}.at`, 'after the end of the run');
    const kinds = EVENT_KINDS.filter((k) => o[k] !== undefined);
    if (kinds.length !== 1) return r.bad(path, `expected exactly one of ${EVENT_KINDS.join(', ')}`) ?? [];
    const kind = kinds[0] as (typeof EVENT_KINDS)[number];
    const forMs = (): number => (o.for === undefined ? Infinity : (r.duration(o.for, `${path}.for`) ?? Infinity));
    switch (kind) {
      case 'kill':
      case 'revive':
        r.known(o, path, ['at', kind]);
        return [{ atMs, kind, server: serverRef(o[kind], `${path}.${kind}`) }];
      case 'slow':
        r.known(o, path, ['at', 'slow', 'factor', 'for']);
        return [{ atMs, kind, server: serverRef(o.slow, `${path}.slow`), factor: r.num(o.factor, `${path}.factor`, 1e-6) ?? 1, forMs: forMs() }];
      case 'errors':
        r.known(o, path, ['at', 'errors', 'rate', 'for']);
        return [{ atMs, kind, server: serverRef(o.errors, `${path}.errors`), rate: r.num(o.rate, `${path}.rate`, 0, 1) ?? 0, forMs: forMs() }];
      case 'region_down':
      case 'region_up':
        r.known(o, path, ['at', kind]);
        return [{ atMs, kind, region: regionIndex(o[kind], `${path}.${kind}`) }];
      case 'add': {
        r.known(o, path, ['at', 'add', 'servers', 'cold_factor', 'warm_for']);
        const region = regionIndex(o.add, `${path}.add`);
        const count = r.num(o.servers, `${path}.servers`, 1, 100_000, true) ?? 1;
        sizes[region] = (sizes[region] ?? 0) + count;
        return [{ atMs, kind, region, count, coldFactor: r.optNum(o, 'cold_factor', path, 1, 1000, false) ?? 1, warmMs: r.optDuration(o, 'warm_for', path, 0) }];
      }
      case 'partition':
      case 'heal': {
        r.known(o, path, ['at', kind, 'region', 'for']);
        const client = clients.indexOf(o[kind] as string);
        if (client < 0) r.bad(`${path}.${kind}`, `no client group named ${JSON.stringify(o[kind])}`);
        return [{ atMs, kind, client: Math.max(0, client), region: regionIndex(o.region, `${path}.region`), forMs: kind === 'partition' ? forMs() : Infinity }];
      }
    }
  });
}
