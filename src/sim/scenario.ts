/**
 * The scenario file: what `meridian simulate FILE` reads. YAML (or JSON), validated
 * once here with zod and every problem listed by path as `meridian validate` lists a
 * config's (`regions[0].service_time.mean: ...`); the engine receives only the typed,
 * checked `Scenario`. The fields the scenario shares with a cluster config (durations,
 * retries, outlier detection, health checks, slow start) are the config's own schemas,
 * so they read, default and fail alike.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import {
  ALWAYS,
  adaptiveConcurrencySchema,
  circuitBreakerSchema,
  coreHedgeOptions,
  coreOverloadOptions,
  hedgeSchema,
  prioritySchema,
  configErrorMap,
  coreOutlierOptions,
  coreSlowStart,
  type Ctx,
  decimal,
  DEFAULT_RETRY_ON,
  describeValue,
  duration,
  fail,
  formatIssues,
  healthThresholds,
  integer,
  listValues,
  outlierSchema,
  percentNumber,
  retryBudgetSchema,
  retryOnSchema,
  type RetryOn,
  slowStartSchema,
} from '../config/index.js';
import type { CircuitBreakerLimits } from '../core/circuit-breaker.js';
import type { HedgeOptions } from '../core/hedging.js';
import type { OverloadOptions } from '../core/overload-gate.js';
import type { Priority } from '../core/priority.js';
import type { OutlierOptions } from '../core/outlier-detector.js';
import type { RetryBudgetOptions } from '../core/retry-budget.js';
import type { SlowStartOptions } from '../core/slow-start.js';
import { requestClass } from '../core/request-class.js';
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
  /**
   * Antagonists (Prequal's time-varying load from other tenants): the server flips between
   * full speed and 1 / factor of it, holding each state for an exponential time of mean holdMs.
   */
  readonly speedChanges?: { readonly factor: number; readonly holdMs: number };
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
  /** The class of the group's requests under overload. */
  readonly priority: Priority;
  /** The request class its requests carry (request-class.ts: from `route`), for the learning policies; none when unset. */
  readonly requestClass?: number;
  /** Backend time of one of its requests, as a multiple of the servers' service time. Default 1. */
  readonly work: number;
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
  /** What is retried, as the proxy's `retries.retry_on` (and with its default: connect failures and resets). */
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
  /** prequal: probes per request, pool, reply age, RIF quantile; the probe's round trip and its cost to the server. */
  readonly prequal?: { readonly probesPerRequest?: number; readonly maxPool?: number; readonly maxAgeMs?: number; readonly rifQuantile?: number; readonly probeRttMs: number; readonly probeCostMs: number };
  /** predictive: candidates per pick and the model's forgetting factor. */
  readonly predictive?: { readonly candidates?: number; readonly forgetting?: number; readonly requestClass?: boolean };
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
  /** Adaptive concurrency at each region's load balancer (the proxy's `adaptive_concurrency`). */
  readonly overload?: OverloadOptions;
  /** Hedged requests (the proxy's route `hedge`). */
  readonly hedge?: HedgeOptions;
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
  /** Scale-in: the servers leave the region's endpoint set (they drain: what they hold still finishes). */
  | { readonly atMs: number; readonly kind: 'remove'; readonly region: number; readonly servers: readonly ServerRef[] }
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

const RATE_UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const RATE_RE = /^(\d+(?:\.\d+)?)\/(s|m|h|d)$/;

/** `"800/s"` -> 800 per second, `"6000/m"` -> 100; a bare number is per second. */
export function parseRate(v: unknown): number | undefined {
  if (typeof v === 'number') return v >= 0 && Number.isFinite(v) ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = RATE_RE.exec(v.trim());
  return m ? (Number(m[1]) * 1000) / (RATE_UNIT_MS[m[2] as string] as number) : undefined;
}

// ---- field types ---------------------------------------------------------------------

/**
 * The config's duration grammar (`250ms`, `2s`, `1m`, `1h`; whole milliseconds), without
 * the config's cap: that cap is what a Node timer can wait, and the simulator's time is virtual.
 */
const dur = () => duration({ allowZero: true, maxMs: Number.MAX_SAFE_INTEGER });
/** A duration that divides or repeats (a run, a bucket, a period, an interval): 0 is refused. */
const span = () => duration({ maxMs: Number.MAX_SAFE_INTEGER });

const rate = () =>
  z.unknown().transform((v, ctx): number => {
    const r = parseRate(v);
    if (r === undefined) {
      fail(ctx, `expected a rate such as 800/s (or /m, /h, /d), got ${describeValue(v)}`);
      return z.NEVER;
    }
    return r;
  });

const SERVER_REF_RE = /^(.+)\/(\d+)$/;

const serviceTimeSchema = z.discriminatedUnion('dist', [
  z.strictObject({ dist: z.literal('constant'), value: dur() }),
  z.strictObject({ dist: z.literal('exponential'), mean: dur() }),
  z.strictObject({ dist: z.literal('normal'), mean: dur(), sd: dur() }),
  z
    .strictObject({ dist: z.literal('lognormal'), mean: dur(), sigma: decimal(0).optional(), p99: dur().optional() })
    .superRefine((o, ctx) => {
      const given = [o.sigma, o.p99].filter((x) => x !== undefined).length;
      if (given !== 1) fail(ctx, `expected exactly one of sigma, p99; got ${given === 0 ? 'none' : 'both'}`);
      else if (typeof o.p99 === 'number' && typeof o.mean === 'number') {
        try {
          lognormalSigmaFromP99(o.mean, o.p99);
        } catch (e) {
          fail(ctx, (e as Error).message, ['p99']);
        }
      }
    }, ALWAYS),
  z.strictObject({ dist: z.literal('bimodal'), p: decimal(0, 1), a: dur(), b: dur() }),
  z.strictObject({ dist: z.literal('pareto'), mean: dur(), alpha: decimal(1, Infinity, { exclusiveMin: true }) }),
]);

const regionSchema = z.strictObject({
  name: z.string().min(1),
  servers: integer(1, 100_000),
  concurrency: integer(1, 100_000).default(1),
  service_time: serviceTimeSchema,
  /** Work per unit of time relative to nominal, for all servers or one per server. */
  speed: z.union([decimal(0, Infinity, { exclusiveMin: true }), z.array(decimal(0, Infinity, { exclusiveMin: true }))]).optional(),
  max_queue: integer(0, 1e9).optional(),
  abandoned: z.enum(['drop', 'serve']).default('drop'),
  rtt: z.record(z.string(), dur()).default({}),
  capacity: z.strictObject({ rate: rate().optional(), in_flight: integer(1, 1e9).optional() }).optional(),
  speed_changes: z.strictObject({ factor: decimal(1, 1000), hold: span() }).optional(),
});

const clientSchema = z.strictObject({
  name: z.string().min(1),
  rate: rate(),
  rtt: z.record(z.string(), dur()).optional(),
  spikes: z.array(z.strictObject({ at: dur(), multiply: decimal(0), for: dur() })).default([]),
  curve: z.array(z.strictObject({ at: dur(), factor: decimal(0) })).default([]),
  diurnal: z.strictObject({ period: span().prefault('24h'), amplitude: decimal(0, 1), peak_at: dur().prefault('0s') }).optional(),
  keys: integer(1, 1e9).optional(),
  priority: prioritySchema.default('default'),
  route: integer(0, 1000).optional(),
  work: decimal(0, 1000, { exclusiveMin: true }).default(1),
});

/** The proxy's health check as far as the simulator models it: interval and thresholds. */
const healthCheckSchema = (interval: string) => z.strictObject({ interval: span().prefault(interval), ...healthThresholds() });

const lbSchema = z.strictObject({
  timeout: dur().optional(),
  per_try_timeout: dur().optional(),
  retries: integer(0, 10).default(0),
  retry_on: z.array(retryOnSchema).prefault([...DEFAULT_RETRY_ON]),
  retry_budget: retryBudgetSchema.optional(),
  circuit_breaker: circuitBreakerSchema.pick({ max_requests: true, max_retries: true }).optional(),
  rate_limit: z.strictObject({ rate: rate(), burst: integer(1).optional() }).optional(),
  health_check: healthCheckSchema('5s').optional(),
  outlier_detection: outlierSchema.optional(),
  slow_start: slowStartSchema.optional(),
  panic_threshold: percentNumber().optional(),
  choice_count: integer(2, 100).optional(),
  latency_decay: span().optional(),
  bounded_load: decimal(1, Infinity, { exclusiveMin: true }).optional(),
  prequal: z
    .strictObject({
      probes: integer(0, 16).optional(),
      pool: integer(2, 1024).optional(),
      max_age: span().optional(),
      rif_quantile: decimal(0, 1, { exclusiveMin: true }).optional(),
      probe_rtt: dur().prefault('1ms'),
      /** Server work one probe costs, ms (fractions allowed): probes count as load. */
      probe_cost_ms: decimal(0).default(0.05),
    })
    .optional(),
  predictive: z.strictObject({ candidates: integer(2, 100).optional(), forgetting: decimal(0, 1, { exclusiveMin: true }).optional(), request_class: z.boolean().optional() }).optional(),
  connect_timeout: dur().prefault('1s'),
  cross_region: z.boolean().default(false),
  overprovisioning_factor: decimal(1, 100).optional(),
  adaptive_concurrency: adaptiveConcurrencySchema.optional(),
  hedge: hedgeSchema.optional(),
});

const EVENT_KINDS = ['kill', 'revive', 'slow', 'errors', 'region_down', 'region_up', 'add', 'remove', 'partition', 'heal'] as const;
type EventKind = (typeof EVENT_KINDS)[number];

const target = z.string().min(1);
const EVENT_SCHEMAS = {
  kill: z.strictObject({ at: dur(), kill: target }),
  revive: z.strictObject({ at: dur(), revive: target }),
  slow: z.strictObject({ at: dur(), slow: target, factor: decimal(0, Infinity, { exclusiveMin: true }), for: dur().optional() }),
  errors: z.strictObject({ at: dur(), errors: target, rate: decimal(0, 1), for: dur().optional() }),
  region_down: z.strictObject({ at: dur(), region_down: target }),
  region_up: z.strictObject({ at: dur(), region_up: target }),
  add: z.strictObject({ at: dur(), add: target, servers: integer(1, 100_000), cold_factor: decimal(1, 1000).default(1), warm_for: dur().prefault('0s') }),
  /** `remove: us-east/3` takes that server out; `remove: us-east, servers: 2` the two highest-numbered still in. */
  remove: z.strictObject({ at: dur(), remove: target, servers: integer(1, 100_000).optional() }),
  partition: z.strictObject({ at: dur(), partition: target, region: target, for: dur().optional() }),
  heal: z.strictObject({ at: dur(), heal: target, region: target }),
} satisfies Record<EventKind, z.ZodType>;

type RawEvent = { [K in EventKind]: { kind: K } & z.output<(typeof EVENT_SCHEMAS)[K]> }[EventKind];

/**
 * An event is one mapping whose kind is the key it carries (`kill: us-east/3`), so the
 * kind picks the schema; the chosen schema's problems are reported at the event's path.
 */
const eventSchema = z.unknown().transform((v, ctx): RawEvent => {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    fail(ctx, `expected a mapping, got ${describeValue(v)}`);
    return z.NEVER;
  }
  const kinds = EVENT_KINDS.filter((k) => (v as Record<string, unknown>)[k] !== undefined);
  const kind = kinds[0];
  if (kind === undefined || kinds.length > 1) {
    fail(ctx, `expected exactly one of ${listValues(EVENT_KINDS)}; got ${kinds.length === 0 ? 'none' : kinds.join(' and ')}`);
    return z.NEVER;
  }
  const schema = EVENT_SCHEMAS[kind];
  const r = schema.safeParse(v, { error: configErrorMap });
  if (!r.success) {
    for (const line of formatIssues(r.error.issues, schema)) {
      const [path, ...rest] = line.split(': ');
      fail(ctx, rest.join(': '), path === '(root)' ? [] : [path as string]);
    }
    return z.NEVER;
  }
  return { kind, ...r.data } as RawEvent;
});

const scenarioSchema = z
  .strictObject({
    name: z.string().default('scenario'),
    seed: integer(0, 4294967295).default(1),
    duration: span(),
    warmup: dur().prefault('0s'),
    /** Width of one time-series bucket; default about 120 of a round width. */
    bucket: span().optional(),
    regions: z.array(regionSchema).min(1),
    clients: z.array(clientSchema).min(1),
    lb: lbSchema.prefault({}),
    global: z.strictObject({ dns_ttl: dur().prefault('0s'), health_check: healthCheckSchema('10s').prefault({}) }).prefault({}),
    policies: z.array(z.enum(POLICY_NAMES)).min(1).optional(),
    /** One policy: the same as `policies: [x]`. */
    policy: z.enum(POLICY_NAMES).optional(),
    events: z.array(eventSchema).default([]),
  })
  .superRefine(checkReferences, ALWAYS);

type ScenarioDoc = z.output<typeof scenarioSchema>;

// ---- cross-field checks ----------------------------------------------------------------

/** A parsed number, or `fallback` where the field itself failed (its problem is already reported). */
const num = (v: unknown, fallback: number): number => (typeof v === 'number' ? v : fallback);

/**
 * What no single field can check: names that refer to other parts of the file, and time.
 * Runs even when fields failed (ALWAYS), so every problem is listed in one go; hence the
 * defensive reads.
 */
function checkReferences(doc: ScenarioDoc, ctx: Ctx): void {
  const durationMs = num(doc.duration, Infinity);
  const warmupMs = num(doc.warmup, 0);
  if (durationMs !== Infinity && warmupMs >= durationMs) fail(ctx, 'must be shorter than duration', ['warmup']);
  const bucketMs = num(doc.bucket, defaultBucketMs(durationMs));
  if (durationMs !== Infinity && durationMs / bucketMs > 2000) {
    fail(ctx, `at most 2000 buckets per run (duration / bucket = ${Math.ceil(durationMs / bucketMs)})`, ['bucket']);
  }
  if (doc.policies !== undefined && doc.policy !== undefined) fail(ctx, 'expected policies or policy, not both', ['policy']);

  const regions = Array.isArray(doc.regions) ? doc.regions : [];
  const names = regions.map((r) => (typeof r?.name === 'string' ? r.name : undefined));
  regions.forEach((reg, i) => {
    const name = names[i];
    if (name === undefined) return;
    if (names.indexOf(name) < i) fail(ctx, `duplicate region "${name}"`, ['regions', i, 'name']);
    if (name.includes('/')) fail(ctx, 'must not contain "/"', ['regions', i, 'name']);
    for (const other of Object.keys(reg.rtt ?? {})) {
      if (other === name) fail(ctx, 'a region has no RTT to itself', ['regions', i, 'rtt', other]);
      else if (!names.includes(other)) fail(ctx, `no region "${other}"; regions: ${names.join(', ')}`, ['regions', i, 'rtt', other]);
    }
    if (Array.isArray(reg.speed) && reg.speed.length !== reg.servers) {
      fail(ctx, `expected ${reg.servers} factors (one per server), got ${reg.speed.length}`, ['regions', i, 'speed']);
    }
  });

  const clients = Array.isArray(doc.clients) ? doc.clients : [];
  clients.forEach((c, i) => {
    if (c?.rtt !== undefined && c.rtt !== null && typeof c.rtt === 'object') {
      const keys = Object.keys(c.rtt);
      if (keys.length === 0) fail(ctx, 'expected the RTT to at least one region', ['clients', i, 'rtt']);
      for (const reg of keys) if (!names.includes(reg)) fail(ctx, `no region named "${reg}"`, ['clients', i, 'rtt', reg]);
    }
    const curve = Array.isArray(c?.curve) ? c.curve : [];
    for (let j = 1; j < curve.length; j++) {
      if (num(curve[j]?.at, 0) < num(curve[j - 1]?.at, 0)) fail(ctx, 'points must be in time order', ['clients', i, 'curve', j, 'at']);
    }
  });

  // Servers exist at an event's time if they were there at the start or an earlier `add` brought them;
  // they are members of the endpoint set until a `remove` takes them out.
  const sizes = regions.map((r) => num(r?.servers, 0));
  const removed = regions.map(() => new Set<number>());
  const clientNames = clients.map((c) => c?.name);
  const regionAt = (name: string, path: PropertyKey[]): number => {
    const r = names.indexOf(name);
    if (r < 0) fail(ctx, `no region named ${JSON.stringify(name)}`, path);
    return r;
  };
  for (const { e, i } of inTimeOrder(Array.isArray(doc.events) ? doc.events : [])) {
    if (e === null || typeof e !== 'object' || !('kind' in e)) continue;
    if (num(e.at, 0) > durationMs) fail(ctx, 'after the end of the run', ['events', i, 'at']);
    switch (e.kind) {
      case 'kill':
      case 'revive':
      case 'slow':
      case 'errors': {
        const ref = (e as Record<string, unknown>)[e.kind] as string;
        const path = ['events', i, e.kind];
        const m = SERVER_REF_RE.exec(ref);
        if (!m) {
          fail(ctx, `expected REGION/INDEX such as us-east/3; got ${JSON.stringify(ref)}`, path);
          break;
        }
        const r = regionAt(m[1] as string, path);
        const size = sizes[r] ?? 0;
        if (r >= 0 && Number(m[2]) >= size) fail(ctx, size === 0 ? `${m[1]} has no servers at that time` : `${m[1]} has servers 0..${size - 1} at that time`, path);
        break;
      }
      case 'region_down':
      case 'region_up':
        regionAt((e as Record<string, unknown>)[e.kind] as string, ['events', i, e.kind]);
        break;
      case 'add': {
        const r = regionAt(e.add, ['events', i, 'add']);
        if (r >= 0) sizes[r] = (sizes[r] ?? 0) + num(e.servers, 0);
        break;
      }
      case 'remove': {
        const path = ['events', i, 'remove'];
        const m = SERVER_REF_RE.exec(e.remove);
        const r = regionAt(m ? (m[1] as string) : e.remove, path);
        if (r < 0) break;
        const gone = removed[r] as Set<number>;
        const picked = removalOf(sizes[r] ?? 0, gone, m ? Number(m[2]) : undefined, e.servers);
        if (typeof picked === 'string') fail(ctx, picked, m || e.servers === undefined ? path : ['events', i, 'servers']);
        else for (const j of picked) gone.add(j);
        break;
      }
      case 'partition':
      case 'heal': {
        const group = (e as Record<string, unknown>)[e.kind];
        if (!clientNames.includes(group as string)) fail(ctx, `no client group named ${JSON.stringify(group)}`, ['events', i, e.kind]);
        regionAt(e.region, ['events', i, 'region']);
        break;
      }
    }
  }
}

/**
 * The server indexes a `remove` takes out of a region that has had `size` servers, `gone`
 * of them already removed: the one named, or the `count` highest-numbered still in; or why not.
 */
function removalOf(size: number, gone: ReadonlySet<number>, index: number | undefined, count: number | undefined): number[] | string {
  if (index !== undefined) {
    if (count !== undefined) return 'expected REGION with servers: N, or REGION/INDEX without servers';
    if (index >= size) return size === 0 ? 'the region has no servers at that time' : `the region has servers 0..${size - 1} at that time`;
    if (gone.has(index)) return 'already removed at that time';
    return [index];
  }
  if (count === undefined) return 'expected REGION/INDEX such as us-east/3, or REGION with servers: N';
  const members: number[] = [];
  for (let j = size - 1; j >= 0 && members.length < count; j--) if (!gone.has(j)) members.push(j);
  if (members.length < count) return `the region has ${size - gone.size} servers in its set at that time, fewer than ${count}`;
  return members;
}

/** Events run in time order; the file's order breaks ties. */
function inTimeOrder<E extends { at: number }>(events: readonly E[]): { e: E; i: number }[] {
  return events.map((e, i) => ({ e, i })).sort((a, b) => num(a.e?.at, 0) - num(b.e?.at, 0) || a.i - b.i);
}

/** About 120 buckets of a round width: 1 s for two minutes, 10 s for twenty. */
function defaultBucketMs(durationMs: number): number {
  for (const b of [100, 250, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000, 300_000, 600_000, 1_800_000, 3_600_000]) {
    if (durationMs / b <= 200) return b;
  }
  return 3_600_000;
}

// ---- reading --------------------------------------------------------------------------

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
  const r = scenarioSchema.safeParse(doc, { error: configErrorMap });
  if (!r.success) throw new ScenarioError(formatIssues(r.error.issues, scenarioSchema));
  return toScenario(r.data);
}

/** The checked file in the engine's terms: milliseconds, maps, region and server indexes. */
function toScenario(doc: ScenarioDoc): Scenario {
  const regionNames = doc.regions.map((r) => r.name);
  const regions = doc.regions.map((reg): RegionSpec => {
    const speeds = reg.speed === undefined ? [] : reg.speed;
    const serviceTime = toServiceTime(reg.service_time);
    const maxQueue = reg.max_queue ?? Infinity;
    const dropAbandoned = reg.abandoned === 'drop';
    const servers = Array.from({ length: reg.servers }, (_, j) => ({
      concurrency: reg.concurrency,
      speed: typeof speeds === 'number' ? speeds : (speeds[j] ?? 1),
      serviceTime,
      maxQueue,
      dropAbandoned,
      ...(reg.speed_changes ? { speedChanges: { factor: reg.speed_changes.factor, holdMs: reg.speed_changes.hold } } : {}),
    }));
    const c = reg.capacity;
    const capacity = c && { ...(c.rate === undefined ? {} : { maxRequestsPerSecond: c.rate }), ...(c.in_flight === undefined ? {} : { maxInFlight: c.in_flight }) };
    return { name: reg.name, servers, rttMs: new Map(Object.entries(reg.rtt)), ...(capacity === undefined ? {} : { capacity }) };
  });
  const clients = doc.clients.map((c): ClientSpec => {
    const d = c.diurnal;
    return {
      name: c.name,
      ratePerS: c.rate,
      rttMs: new Map(c.rtt === undefined ? regionNames.map((r) => [r, 0]) : Object.entries(c.rtt)),
      spikes: c.spikes.map((s) => ({ atMs: s.at, multiply: s.multiply, forMs: s.for })),
      curve: c.curve.map((p) => ({ atMs: p.at, factor: p.factor })),
      ...(d ? { diurnal: { periodMs: d.period, amplitude: d.amplitude, peakAtMs: d.peak_at } } : {}),
      keys: c.keys ?? 0,
      priority: c.priority,
      ...(c.route === undefined ? {} : { requestClass: requestClass(c.route, 0) }),
      work: c.work,
    };
  });
  const regionIndex = (name: string): number => regionNames.indexOf(name);
  const server = (ref: string): ServerRef => {
    const m = SERVER_REF_RE.exec(ref) as RegExpExecArray;
    return { region: regionIndex(m[1] as string), index: Number(m[2]), label: ref };
  };
  const removed = doc.regions.map(() => new Set<number>());
  const sizes = doc.regions.map((r) => r.servers);
  const events = inTimeOrder(doc.events).map(({ e }): SimEvent => {
    const atMs = e.at;
    switch (e.kind) {
      case 'kill':
        return { atMs, kind: e.kind, server: server(e.kill) };
      case 'revive':
        return { atMs, kind: e.kind, server: server(e.revive) };
      case 'slow':
        return { atMs, kind: e.kind, server: server(e.slow), factor: e.factor, forMs: e.for ?? Infinity };
      case 'errors':
        return { atMs, kind: e.kind, server: server(e.errors), rate: e.rate, forMs: e.for ?? Infinity };
      case 'region_down':
        return { atMs, kind: e.kind, region: regionIndex(e.region_down) };
      case 'region_up':
        return { atMs, kind: e.kind, region: regionIndex(e.region_up) };
      case 'add': {
        const region = regionIndex(e.add);
        sizes[region] = (sizes[region] as number) + e.servers;
        return { atMs, kind: e.kind, region, count: e.servers, coldFactor: e.cold_factor, warmMs: e.warm_for };
      }
      case 'remove': {
        const m = SERVER_REF_RE.exec(e.remove);
        const name = m ? (m[1] as string) : e.remove;
        const region = regionIndex(name);
        const gone = removed[region] as Set<number>;
        const picked = removalOf(sizes[region] as number, gone, m ? Number(m[2]) : undefined, e.servers) as number[];
        for (const j of picked) gone.add(j);
        return { atMs, kind: e.kind, region, servers: picked.map((index) => ({ region, index, label: `${name}/${index}` })) };
      }
      case 'partition':
        return { atMs, kind: e.kind, client: doc.clients.findIndex((c) => c.name === e.partition), region: regionIndex(e.region), forMs: e.for ?? Infinity };
      case 'heal':
        return { atMs, kind: e.kind, client: doc.clients.findIndex((c) => c.name === e.heal), region: regionIndex(e.region), forMs: Infinity };
    }
  });
  return {
    name: doc.name,
    seed: doc.seed,
    durationMs: doc.duration,
    warmupMs: doc.warmup,
    bucketMs: doc.bucket ?? defaultBucketMs(doc.duration),
    regions,
    clients,
    lb: toLb(doc.lb),
    global: { dnsTtlMs: doc.global.dns_ttl, healthCheck: toHealthCheck(doc.global.health_check) },
    policies: doc.policies ?? (doc.policy === undefined ? ['least_request'] : [doc.policy]),
    events,
  };
}

function toServiceTime(st: ScenarioDoc['regions'][number]['service_time']): ServiceTime {
  switch (st.dist) {
    case 'constant':
      return { dist: 'constant', valueMs: st.value };
    case 'exponential':
      return { dist: 'exponential', meanMs: st.mean };
    case 'normal':
      return { dist: 'normal', meanMs: st.mean, sdMs: st.sd };
    case 'lognormal':
      return { dist: 'lognormal', meanMs: st.mean, sigma: st.sigma ?? lognormalSigmaFromP99(st.mean, st.p99 as number) };
    case 'bimodal':
      return { dist: 'bimodal', p: st.p, aMs: st.a, bMs: st.b };
    case 'pareto':
      return { dist: 'pareto', meanMs: st.mean, alpha: st.alpha };
  }
}

function toHealthCheck(h: { interval: number; healthy_threshold: number; unhealthy_threshold: number }): HealthCheckSpec {
  return { intervalMs: h.interval, healthyThreshold: h.healthy_threshold, unhealthyThreshold: h.unhealthy_threshold };
}

function toLb(l: ScenarioDoc['lb']): LbSpec {
  return {
    timeoutMs: l.timeout ?? Infinity,
    perTryTimeoutMs: l.per_try_timeout ?? Infinity,
    retries: l.retries,
    retryOn: l.retry_on,
    connectTimeoutMs: l.connect_timeout,
    crossRegion: l.cross_region,
    ...(l.overprovisioning_factor === undefined ? {} : { overprovisioningFactor: l.overprovisioning_factor }),
    ...(l.retry_budget ? { retryBudget: { percent: l.retry_budget.percent, minPerSecond: l.retry_budget.min_per_second } } : {}),
    ...(l.circuit_breaker ? { circuitBreaker: { maxRequests: l.circuit_breaker.max_requests, maxRetries: l.circuit_breaker.max_retries } } : {}),
    ...(l.rate_limit ? { rateLimit: { ratePerSecond: l.rate_limit.rate, ...(l.rate_limit.burst === undefined ? {} : { burst: l.rate_limit.burst }) } } : {}),
    ...(l.health_check ? { healthCheck: toHealthCheck(l.health_check) } : {}),
    ...(l.outlier_detection?.enabled ? { outlierDetection: coreOutlierOptions(l.outlier_detection) } : {}),
    ...(l.slow_start ? { slowStart: coreSlowStart(l.slow_start) } : {}),
    ...(l.panic_threshold === undefined ? {} : { panicThresholdPercent: l.panic_threshold }),
    ...(l.choice_count === undefined ? {} : { choiceCount: l.choice_count }),
    ...(l.latency_decay === undefined ? {} : { latencyTauMs: l.latency_decay }),
    ...(l.bounded_load === undefined ? {} : { boundedLoad: l.bounded_load }),
    ...(l.adaptive_concurrency ? { overload: coreOverloadOptions(l.adaptive_concurrency) } : {}),
    ...(l.hedge ? { hedge: coreHedgeOptions(l.hedge) } : {}),
    prequal: {
      probeRttMs: l.prequal?.probe_rtt ?? 1,
      probeCostMs: l.prequal?.probe_cost_ms ?? 0.05,
      ...(l.prequal?.probes === undefined ? {} : { probesPerRequest: l.prequal.probes }),
      ...(l.prequal?.pool === undefined ? {} : { maxPool: l.prequal.pool }),
      ...(l.prequal?.max_age === undefined ? {} : { maxAgeMs: l.prequal.max_age }),
      ...(l.prequal?.rif_quantile === undefined ? {} : { rifQuantile: l.prequal.rif_quantile }),
    },
    ...(l.predictive
      ? {
          predictive: {
            ...(l.predictive.candidates === undefined ? {} : { candidates: l.predictive.candidates }),
            ...(l.predictive.forgetting === undefined ? {} : { forgetting: l.predictive.forgetting }),
            ...(l.predictive.request_class === undefined ? {} : { requestClass: l.predictive.request_class }),
          },
        }
      : {}),
  };
}
