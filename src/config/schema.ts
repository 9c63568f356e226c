/**
 * The Meridian config schema: the one definition of what a config file may contain.
 * The TypeScript types below are inferred from it, so the validator and the types
 * cannot drift apart. docs/config.md documents every key and default; keep it in step.
 *
 * Conventions of the parsed (output) value:
 * - keys stay snake_case, as written in the file;
 * - every duration is a number of milliseconds, `jitter` a fraction 0..1;
 * - defaults are filled in, so consumers never handle "absent" except where absence
 *   means "off" (health_check, outlier_detection, slow_start, hash, per-route timeout);
 * - alternatives ("exactly one of") become tagged unions with a `kind`.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { isPrime, MAX_MAGLEV_TABLE_SIZE } from '../core/maglev.js';
import { OUTLIER_DEFAULTS } from '../core/outlier-detector.js';
import { MAX_RING_SIZE } from '../core/ring-hash.js';
import { checkCluster, checkConfig, checkListener } from './checks.js';
import {
  ALWAYS,
  bindAddress,
  cidr,
  decimal,
  duration,
  exactlyOne,
  fail,
  healthThresholds,
  hostPatterns,
  hostPort,
  integer,
  name,
  percentNumber,
  percentString,
  regexSource,
  statusRange,
  upgradeProtocol,
  urlPath,
  type Ctx,
} from './fields.js';
import { isHost, parseHostPort } from '../shared/address.js';
import { describeValue, listValues } from './describe.js';
import { globalSchema } from './global-schema.js';
import { sharedHealthSchema, syncSchema } from './sync-schema.js';
import { formatDuration, parseDuration } from './duration.js';
import { parseLatency } from './latency-spec.js';
import { adaptiveConcurrencySchema, hedgeSchema, prioritySchema } from './overload.js';

// The names match src/core's POLICY_NAMES (a test checks it); config does not import
// core so that a config can be validated without loading the data plane.
export const POLICIES = ['round_robin', 'random', 'least_request', 'peak_ewma', 'ring_hash', 'maglev', 'prequal', 'predictive'] as const;
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE'] as const;
/**
 * gRPC statuses a cluster may retry (Envoy's `retry_on` gRPC names, with underscores), by
 * their code: retried only when the answer carried no message and nothing of it went to
 * the client, and the request's body was held whole (`grpc_buffer_bytes`).
 */
export const GRPC_RETRY_STATUSES = { cancelled: 1, deadline_exceeded: 4, resource_exhausted: 8, internal: 13, unavailable: 14 } as const;
export const RETRY_CONDITIONS = ['connect_failure', 'reset', 'timeout', '5xx', 'gateway_error', 'cancelled', 'deadline_exceeded', 'resource_exhausted', 'internal', 'unavailable'] as const;
/**
 * What is safe to send again without the route owner's word: a connect failure (nothing
 * reached the upstream, so any request, even a POST) and a reset before any answer, which
 * `#decide` retries only for an idempotent request whose body is still whole (RFC 9110
 * §9.2.2; nginx's default `proxy_next_upstream error`). Without `reset`, a GET in flight
 * on a backend that dies is lost. The simulator's default too.
 */
export const DEFAULT_RETRY_ON: readonly RetryOn[] = ['connect_failure', 'reset'];

/** Envoy's bounds: its ring_hash maximum and its largest allowed maglev table. */

// ---- admin -------------------------------------------------------------------------

const adminSchema = z.strictObject({
  address: bindAddress().default('127.0.0.1'),
  port: integer(0, 65535).default(9901),
  /** Bearer token for state-changing admin calls; MERIDIAN_ADMIN_TOKEN overrides it. */
  token: z.string().min(1).optional(),
  /** Host names (or `*.suffix`) the admin API answers to besides its own address and, on loopback, localhost. */
  allowed_hosts: hostPatterns().default([]),
});

// ---- routes ------------------------------------------------------------------------

export type PathMatch = { readonly kind: 'exact' | 'prefix' | 'regex'; readonly value: string };

const pathMatchSchema = z
  .strictObject({ exact: urlPath().optional(), prefix: urlPath().optional(), regex: regexSource().optional() })
  .superRefine(exactlyOne(['exact', 'prefix', 'regex']))
  .transform((p): PathMatch => {
    if (p.exact !== undefined) return { kind: 'exact', value: p.exact };
    if (p.prefix !== undefined) return { kind: 'prefix', value: p.prefix };
    return { kind: 'regex', value: p.regex ?? '' };
  });

export type HeaderMatch = { readonly name: string } & (
  | { readonly kind: 'exact' | 'regex'; readonly value: string }
  | { readonly kind: 'present'; readonly present: boolean }
);

const headerMatchSchema = z
  .strictObject({
    name: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: (i) => `not a header name: ${describeValue(i.input)}` }),
    exact: z.string().optional(),
    regex: regexSource().optional(),
    /** true: the header must be present; false: it must be absent. */
    present: z.boolean().optional(),
  })
  .superRefine(exactlyOne(['exact', 'regex', 'present']))
  .transform((h): HeaderMatch => {
    // Node lowercases incoming header names, so compare in lowercase.
    const name = h.name.toLowerCase();
    if (h.exact !== undefined) return { name, kind: 'exact', value: h.exact };
    if (h.regex !== undefined) return { name, kind: 'regex', value: h.regex };
    return { name, kind: 'present', present: h.present ?? true };
  });

const matchSchema = z.strictObject({
  /** Exact hosts or `*.suffix`, lowercase; the proxy strips any `:port` from Host first. */
  host: hostPatterns().optional(),
  path: pathMatchSchema.optional(),
  methods: z.array(z.enum(HTTP_METHODS)).min(1).optional(),
  headers: z.array(headerMatchSchema).optional(),
});

/** 16 MiB: buffering holds a body in memory, so one request may not hold more. */
export const MAX_REQUEST_BODY_BUFFER_BYTES = 16 * 1024 * 1024;

/** A local token bucket: `per: route` shares one bucket, `per: client_ip` keeps one per client. */
const rateLimitSchema = z.strictObject({
  requests_per_second: decimal(0, Infinity, { exclusiveMin: true }),
  /** Requests allowed at once after a quiet spell; default one second's worth. */
  burst: integer(1).optional(),
  per: z.enum(['route', 'client_ip']).default('route'),
  /** `local`: this node's own bucket. `global`: one limit for the whole fleet, through `sync:` (docs/fleet.md). */
  scope: z.enum(['local', 'global']).default('local'),
  /** For `scope: global`. `strong`: every decision is one atomic Redis call. `local`: this node's bucket, reconciled every `sync.sync_interval`. */
  consistency: z.enum(['strong', 'local']).default('strong'),
  /** For `consistency: strong`, when Redis cannot answer in `sync.command_timeout`: admit (`allow`) or refuse with 503 (`deny`). */
  on_unavailable: z.enum(['allow', 'deny']).default('allow'),
});

const routeSchema = z.strictObject({
  /** Omitted: the route matches every request. All present conditions must hold. */
  match: matchSchema.prefault({}),
  rate_limit: rateLimitSchema.optional(),
  cluster: z.string(),
  /** Whole-request timeout for this route; absent = the cluster's timeouts.request. */
  timeout: duration().optional(),
  /**
   * Request bodies up to this many bytes are read whole, and their framing checked, before
   * anything goes upstream, then sent with Content-Length (which also lets a retry send
   * them again); larger ones stream. 0 = off. Capped because a buffered body is held in memory.
   */
  request_body_buffer_bytes: integer(0, MAX_REQUEST_BODY_BUFFER_BYTES).default(65_536),
  /** Upgrade protocols this route tunnels; any other Upgrade request is refused (403), as Envoy's upgrade_configs. */
  upgrades: z.array(upgradeProtocol()).default(['websocket']),
  /** The class of this route's requests under overload; absent = `default` (a cluster's adaptive_concurrency.priority_header may say otherwise). */
  priority: prioritySchema.optional(),
  /** Absent: off. A second try of an idempotent request to another endpoint after `after` (docs/overload.md). */
  hedge: hedgeSchema.optional(),
  /** Absent: the cluster's `retries`. Present: in their place for this route's requests (the budget stays the cluster's). */
  retries: z.lazy(() => retriesSchema.omit({ budget: true })).optional(),
});

// ---- listeners ---------------------------------------------------------------------

/** A certificate and its key (PEM files), for the server names it covers. */
const certificateSchema = z.strictObject({
  cert: z.string().min(1),
  key: z.string().min(1),
  /** Names (exact or `*.suffix`) this certificate answers for with SNI; absent = read from the certificate. */
  server_names: hostPatterns().optional(),
});

const tlsSchema = z
  .strictObject({
    /** The first is the default, for clients that send no (or an unknown) server name. */
    certificates: z.array(certificateSchema).min(1),
    min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    /** PEM bundle of the CAs whose client certificates this listener requires (mTLS); absent: no client certificate asked for. */
    client_ca: z.string().min(1).optional(),
    /** With client_ca: the client certificate's names (DNS subjectAltNames, else its CN) allowed in; absent: any the CA signed. */
    client_names: z.array(z.string().min(1)).min(1).optional(),
  })
  .superRefine((t, ctx) => {
    if (t.client_names !== undefined && t.client_ca === undefined) fail(ctx, 'needs client_ca: names are checked on verified client certificates only', ['client_names']);
  });

/**
 * TLS from Meridian to a cluster's (or a locality's) endpoints: verified against `ca` (the
 * system's CAs when absent), with SNI, and a client certificate for mTLS when `cert` is given.
 */
export const upstreamTlsSchema = z
  .strictObject({
    /** PEM bundle of the CAs the endpoints' certificates must chain to; absent: the system's. */
    ca: z.string().min(1).optional(),
    /** SNI and the name checked in the certificate; absent: the endpoint's host (no SNI for an IP). */
    server_name: z.string().min(1).optional(),
    /** Client certificate and key (PEM files) for endpoints that require mTLS. */
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    /** false skips verification (never silently: a test setting, said so in the log at load). */
    verify: z.boolean().default(true),
    min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
  })
  .superRefine((t, ctx) => {
    if ((t.cert === undefined) !== (t.key === undefined)) fail(ctx, 'cert and key go together (a client certificate needs its key)', [t.cert === undefined ? 'cert' : 'key']);
  });

const http2Schema = z.strictObject({
  /** Offer h2 by ALPN on https listeners; accept h2c (prior knowledge) on http listeners. */
  enabled: z.boolean().default(true),
  max_concurrent_streams: integer(1, 10_000).default(100),
  /** Largest header list (HPACK-decoded) a client may send. */
  max_header_list_bytes: integer(1024, 1 << 24).default(16_384),
  /** Streams a client may reset per second before the connection is closed (rapid reset, CVE-2023-44487). */
  max_resets_per_second: integer(1).default(100),
});

/** Request limits: past them Meridian answers itself and nothing reaches a backend. */
const limitsSchema = z.strictObject({
  /** Bytes of request line and headers (431). */
  max_header_bytes: integer(1024, 1 << 20).default(16_384),
  /** Header fields in a request (431). */
  max_headers: integer(1, 10_000).default(100),
  /** Bytes of the request target (414). */
  max_url_bytes: integer(16, 1 << 20).default(8_192),
  /** Bytes of a request body (413); 0 = no limit. */
  max_body_bytes: integer(0).default(104_857_600),
  /** A client sending a body slower than this, after the first second, is cut off (408); 0 = no minimum. */
  min_body_rate_bytes_per_second: integer(0).default(1_024),
});

const listenerSchema = z
  .strictObject({
    name: name(),
    address: bindAddress().default('0.0.0.0'),
    port: integer(0, 65535),
    protocol: z.enum(['http', 'https', 'tcp']).default('http'),
    routes: z.array(routeSchema).optional(),
    cluster: z.string().optional(),
    tls: tlsSchema.optional(),
    /** https: h2 by ALPN (on by default); http: h2c with prior knowledge (off unless enabled). */
    http2: http2Schema.optional(),
    limits: limitsSchema.prefault({}),
    /** Client connections open at once on this listener; absent: only the process-wide max_connections applies. */
    max_connections: integer(1).optional(),
    timeouts: z
      .strictObject({
        /** Time to receive a request's headers (slowloris). */
        request_headers: duration().prefault('10s'),
        /** A client's keep-alive connection closes after this long without a request. */
        idle: duration().prefault('60s'),
      })
      .prefault({}),
  })
  .superRefine(checkListener, ALWAYS)
  .transform((l) => {
    const common = { name: l.name, address: l.address, port: l.port, timeouts: l.timeouts, max_connections: l.max_connections };
    const http2 = l.http2 ?? { enabled: l.protocol === 'https', max_concurrent_streams: 100, max_header_list_bytes: 16_384, max_resets_per_second: 100 };
    if (l.protocol === 'tcp') return { ...common, protocol: 'tcp' as const, cluster: l.cluster ?? '' };
    const http = { ...common, routes: l.routes ?? [], limits: l.limits, http2 };
    return l.protocol === 'http' ? { ...http, protocol: 'http' as const, tls: undefined } : { ...http, protocol: 'https' as const, tls: l.tls as NonNullable<typeof l.tls> };
  });

// ---- clusters ----------------------------------------------------------------------

const endpointSchema = z
  .strictObject({
    address: hostPort(),
    weight: integer(1, 10_000).default(1),
    /** Stable identity across reloads (keys health and outlier state); default = address. */
    id: z.string().min(1).optional(),
  })
  .transform((e) => {
    const hp = parseHostPort(e.address);
    const { host, port } = typeof hp === 'string' ? { host: '', port: 0 } : hp;
    return { id: e.id ?? e.address, address: e.address, host, port, weight: e.weight };
  });

const localitySchema = z.strictObject({
  region: z.string().min(1),
  zone: z.string().min(1).optional(),
  /** 0 is preferred; higher priorities take traffic only as lower ones fail. */
  priority: integer(0).default(0),
  /** Locality-weighted balancing inside a priority: share = weight x health. */
  weight: integer(1).optional(),
  /** Spillover capacity: above this rate the excess goes to the next locality. */
  max_requests_per_second: decimal(0, Infinity, { exclusiveMin: true }).optional(),
  /** Spillover capacity: with this many requests in flight here, new ones go to the next locality. */
  max_in_flight: integer(1).optional(),
  /** The endpoints are other regions' Meridians: requests sent there carry the hop header, and a request that already crossed regions is never sent on. */
  remote: z.boolean().default(false),
  /** TLS to this locality's endpoints, in place of the cluster's `tls` (e.g. mTLS to another region's Meridian). */
  tls: upstreamTlsSchema.optional(),
  endpoints: z.array(endpointSchema).min(1),
});

/** `refresh: ttl` (follow the records' TTL) or a fixed interval. */
const refreshSchema = z.unknown().transform((v, ctx): 'ttl' | number => {
  if (v === 'ttl') return 'ttl';
  const ms = parseDuration(v);
  if (ms === undefined || ms === 0) {
    fail(ctx, `expected "ttl" or a duration like "30s", got ${describeValue(v)}`);
    return z.NEVER;
  }
  return ms;
});

/** `hold_for`: a duration, or `never` (held until the config is reloaded), as Infinity. */
const holdForSchema = z.unknown().transform((v, ctx): number => {
  if (v === 'never') return Infinity;
  const ms = parseDuration(v);
  if (ms === undefined || ms === 0) {
    fail(ctx, `expected a duration like "5m", or "never", got ${describeValue(v)}`);
    return z.NEVER;
  }
  return ms;
});

/** A resolver to ask instead of the system's: an IP and port (Node's resolver takes no host name here). */
const resolverAddress = () =>
  z.string().superRefine((s, ctx) => {
    const hp = parseHostPort(s);
    if (typeof hp === 'string') fail(ctx, hp);
    else if (isIP(hp.host) === 0) fail(ctx, `expected an IP address and port like "10.0.0.2:53", got ${describeValue(s)}`);
  });

const dnsDiscoverySchema = z
  .strictObject({
    name: z.string().superRefine((s, ctx) => {
      if (!isHost(s) || isIP(s) !== 0) fail(ctx, `expected a DNS name like "api.internal", got ${describeValue(s)}`);
    }),
    type: z.enum(['A', 'AAAA', 'SRV']).default('A'),
    /** A and AAAA only: the port of every address; SRV records carry their own. */
    port: integer(1, 65535).optional(),
    refresh: refreshSchema.prefault('ttl'),
    /** Bounds on the TTL when `refresh: ttl`; min_ttl also starts the backoff after a failure. */
    min_ttl: duration().prefault('5s'),
    max_ttl: duration().prefault('5m'),
    /** Default: the system's resolvers (/etc/resolv.conf). */
    resolver: resolverAddress().optional(),
    /** One query's timeout (a try; Node's resolver tries 2 times). */
    timeout: duration().prefault('2s'),
  })
  .superRefine((d, ctx) => {
    // Runs even when other fields are invalid (ALWAYS): check each part's shape first.
    const type = (d as { type?: unknown }).type;
    if (type === 'SRV' && d.port !== undefined) fail(ctx, 'not for SRV: each SRV record names its port', ['port']);
    if ((type === 'A' || type === 'AAAA') && d.port === undefined) fail(ctx, `required for ${type} records: the port every address listens on`, ['port']);
    if (typeof d.min_ttl === 'number' && typeof d.max_ttl === 'number' && d.max_ttl < d.min_ttl) {
      fail(ctx, `must be >= min_ttl (${formatDuration(d.min_ttl)}), got ${formatDuration(d.max_ttl)}`, ['max_ttl']);
    }
  }, ALWAYS);

const fileDiscoverySchema = z.strictObject({
  path: z.string().min(1),
  /** Default: json for `*.json`, yaml for anything else. */
  format: z.enum(['yaml', 'json']).optional(),
  /** Read again this often, besides on every change the file system reports (a missed event costs at most this). */
  refresh: duration().prefault('30s'),
});

/** Endpoints that follow a DNS name or a watched file, besides (or instead of) `endpoints`/`localities`. */
const discoverySchema = z
  .strictObject({
    dns: dnsDiscoverySchema.optional(),
    file: fileDiscoverySchema.optional(),
    /** An answer with no endpoints: keep the last good set, or clear it. A failed answer always keeps it. */
    on_empty: z.enum(['keep', 'clear']).default('keep'),
    /** Changes closer together than this wait (damping a flapping source). */
    min_change_interval: duration({ allowZero: true }).prefault('5s'),
    /** A change removing more than this share of the discovered endpoints at once is held. 100 = no guard. */
    max_removal_percent: percentNumber().default(100),
    /** A held change is applied once the source has given that same set, and nothing else, this long. */
    hold_for: holdForSchema.prefault('5m'),
  })
  .superRefine(exactlyOne(['dns', 'file']));

export type HashKey =
  | { readonly kind: 'header' | 'cookie'; readonly name: string }
  | { readonly kind: 'source_ip' | 'path' };

const hashKeySchema = z
  .strictObject({
    header: z.string().min(1).optional(),
    cookie: z.string().min(1).optional(),
    source_ip: z.literal(true).optional(),
    path: z.literal(true).optional(),
  })
  .superRefine(exactlyOne(['header', 'cookie', 'source_ip', 'path']))
  .transform((k): HashKey => {
    if (k.header !== undefined) return { kind: 'header', name: k.header.toLowerCase() };
    if (k.cookie !== undefined) return { kind: 'cookie', name: k.cookie };
    return { kind: k.source_ip === true ? 'source_ip' : 'path' };
  });

const healthCheckSchema = z
  .strictObject({
    /** grpc: grpc.health.v1.Health/Check over HTTP/2 (h2c, or TLS with the cluster's `tls`). */
    type: z.enum(['http', 'tcp', 'grpc']).default('http'),
    /** grpc only: the service name asked about; empty = the server as a whole. */
    service: z.string().optional(),
    /** http only. */
    path: urlPath().default('/healthz'),
    /** http only. */
    expected_statuses: z.array(statusRange()).min(1).prefault(['200-399']),
    interval: duration().prefault('5s'),
    timeout: duration().prefault('1s'),
    jitter: percentString().prefault('10%'),
    ...healthThresholds(),
  })
  .superRefine((h, ctx) => {
    // A probe still running when the next is due would overlap it.
    if (h.timeout >= h.interval) {
      fail(ctx, `must be shorter than interval (${formatDuration(h.interval)}), got ${formatDuration(h.timeout)}`, ['timeout']);
    }
  });

/** Both ejection blocks: an ejection's cap may not be shorter than its first length. */
function maxEjectionAtLeastBase(o: { readonly base_ejection_time: number; readonly max_ejection_time: number }, ctx: Ctx): void {
  if (o.max_ejection_time < o.base_ejection_time) {
    fail(ctx, `must be >= base_ejection_time (${formatDuration(o.base_ejection_time)}), got ${formatDuration(o.max_ejection_time)}`, ['max_ejection_time']);
  }
}

const OD = OUTLIER_DEFAULTS;

/** Outlier detection as a cluster and a simulator scenario write it; the defaults are the core's. */
export const outlierSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    consecutive_5xx: integer(0).default(OD.consecutive5xx),
    consecutive_gateway_errors: integer(0).default(OD.consecutiveGatewayErrors),
    interval: duration().default(OD.intervalMs),
    base_ejection_time: duration().default(OD.baseEjectionMs),
    max_ejection_time: duration().default(OD.maxEjectionMs),
    max_ejection_percent: percentNumber().default(OD.maxEjectionPercent),
    success_rate: z
      .strictObject({
        minimum_hosts: integer(1).default(OD.successRate.minimumHosts),
        request_volume: integer(1).default(OD.successRate.requestVolume),
        stdev_factor: decimal(0, Infinity, { exclusiveMin: true }).default(OD.successRate.stdevFactor),
      })
      .optional(),
  })
  .superRefine(maxEjectionAtLeastBase);

/**
 * On by default: an endpoint Meridian cannot connect to is out of the picks from its first
 * refused connect (nginx's max_fails=1; HAProxy's observe layer4 + on-error mark-down).
 */
const connectFailureEjectionSchema = z
  .strictObject({
    /** 0 turns it off: connect failures then count as outlier detection's gateway errors. */
    consecutive_failures: integer(0).default(1),
    /** Without health_check: length of the first ejection, doubled for each further one in a row. */
    base_ejection_time: duration().prefault('1s'),
    max_ejection_time: duration().prefault('30s'),
  })
  .superRefine(maxEjectionAtLeastBase);

export type RetryOn = (typeof RETRY_CONDITIONS)[number] | number;

/** A retry condition name, or a 5xx status as a number or a string (`503` or `"503"`). */
export const retryOnSchema = z.unknown().transform((v, ctx): RetryOn => {
  const named = RETRY_CONDITIONS.find((c) => c === v);
  if (named !== undefined) return named;
  const status = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  if (Number.isInteger(status) && status >= 500 && status <= 599) return status;
  fail(ctx, `expected one of ${listValues(RETRY_CONDITIONS)} or a status 500-599; got ${describeValue(v)}`);
  return z.NEVER;
});

/** Retries allowed beyond `percent` of active requests, with a floor: stops retry storms. */
export const retryBudgetSchema = z.strictObject({
  percent: percentNumber().default(20),
  min_per_second: integer(0).default(3),
});

export const slowStartSchema = z.strictObject({
  window: duration().prefault('30s'),
  aggression: decimal(0, Infinity, { exclusiveMin: true }).default(1.0),
  min_weight_percent: percentNumber().default(10),
});

export const circuitBreakerSchema = z.strictObject({
  max_connections: integer(1).default(1024),
  max_pending_requests: integer(1).default(1024),
  max_requests: integer(1).default(1024),
  max_retries: integer(0).default(3),
});

const retriesSchema = z.strictObject({
  /** Retries after the first try, so 1 means at most two tries. */
  attempts: integer(0).default(1),
  retry_on: z.array(retryOnSchema).prefault([...DEFAULT_RETRY_ON]),
  /** Absent: each try may use what is left of the request timeout. */
  per_try_timeout: duration().optional(),
  budget: retryBudgetSchema.prefault({}),
  /**
   * gRPC calls whose `retry_on` lists a gRPC status: the request body is copied up to this
   * many bytes as it streams (Envoy's per_request_buffer_limit_bytes); a longer one is not retried.
   */
  grpc_buffer_bytes: integer(0, MAX_REQUEST_BODY_BUFFER_BYTES).default(65_536),
});

const clusterSchema = z
  .strictObject({
    name: name(),
    policy: z.enum(POLICIES).default('round_robin'),
    least_request: z
      .strictObject({
        choice_count: integer(2).default(2),
        active_request_bias: decimal(0).default(1.0),
      })
      .prefault({}),
    peak_ewma: z
      .strictObject({
        /** The EWMA's time constant (tau). */
        decay: duration().prefault('10s'),
        /** Latency assumed for an endpoint with no measurement yet (or after a failure). */
        penalty: duration().prefault('1s'),
      })
      .prefault({}),
    prequal: z
      .strictObject({
        /** Probes sent with each request, to distinct endpoints. */
        probes: integer(1, 16).default(3),
        /** Probe replies kept. */
        pool: integer(2, 1024).default(16),
        /** A reply older than this is dropped. */
        max_age: duration().prefault('1s'),
        /** Replies whose requests-in-flight are above this quantile of recent replies' are hot. */
        rif_quantile: decimal(0, 1, { exclusiveMin: true }).default(2 ** -0.25),
      })
      .prefault({}),
    predictive: z
      .strictObject({
        /** Endpoints whose latency is predicted per pick; the lowest prediction wins. */
        candidates: integer(2, 100).default(3),
        /** The model's forgetting factor per response (memory about 1 / (1 - forgetting) responses). */
        forgetting: decimal(0, 1, { exclusiveMin: true }).default(0.98),
      })
      .prefault({}),
    ring_hash: z
      .strictObject({
        min_ring_size: integer(1, MAX_RING_SIZE).default(1024),
        max_ring_size: integer(1, MAX_RING_SIZE).default(MAX_RING_SIZE),
      })
      .superRefine((r, ctx) => {
        if (r.min_ring_size > r.max_ring_size) {
          fail(ctx, `must be <= max_ring_size (${r.max_ring_size}), got ${r.min_ring_size}`, ['min_ring_size']);
        }
      })
      .prefault({}),
    maglev: z
      .strictObject({
        // Maglev's permutation (offset + j*skip mod M) visits every slot only when M is prime.
        table_size: integer(2, MAX_MAGLEV_TABLE_SIZE)
          .superRefine((n, ctx) => {
            if (Number.isInteger(n) && n >= 2 && !isPrime(n)) fail(ctx, `must be a prime number (e.g. 65537), got ${n}`);
          })
          .default(65537),
      })
      .prefault({}),
    hash: z
      .strictObject({
        /** Absent: ring_hash and maglev pick a random point (no affinity). */
        key: hashKeySchema.optional(),
        /** Consistent hashing with bounded loads: no endpoint above c x the mean load. */
        bounded_load: decimal(1, Infinity, { exclusiveMin: true }).optional(),
      })
      .optional(),
    endpoints: z.array(endpointSchema).optional(),
    localities: z.array(localitySchema).optional(),
    discovery: discoverySchema.optional(),
    /** A priority level keeps all its traffic until fewer than 1/factor of its endpoints are healthy (Envoy's 1.4). */
    overprovisioning_factor: decimal(1).default(1.4),
    zone_aware: z
      .strictObject({
        /** Below this many endpoints in a priority level, zone-aware routing is off. */
        min_cluster_size: integer(1).default(6),
        /** Share of the callers (this Meridian fleet) per `region/zone`; default: the endpoints' capacity per zone. */
        callers: z.record(z.string().min(1), decimal(0)).optional(),
      })
      .prefault({}),
    health_check: healthCheckSchema.optional(),
    /** TLS to the endpoints (absent: plaintext); a locality's own `tls` takes its place for its endpoints. */
    tls: upstreamTlsSchema.optional(),
    /** http1; h2 (over TLS with `tls`, else h2c with prior knowledge); auto: h2 when the endpoint offers it by ALPN, else HTTP/1.1 (plaintext: HTTP/1.1). */
    upstream_protocol: z.enum(['http1', 'h2', 'auto']).default('http1'),
    outlier_detection: outlierSchema.optional(),
    /** Share this cluster's health verdicts with the fleet (`sync:`); absent = this node's own judgement only. */
    shared_health: sharedHealthSchema.optional(),
    connect_failure_ejection: connectFailureEjectionSchema.prefault({}),
    /** Below this % of healthy endpoints, balance over all of them (Envoy's panic mode). */
    panic_threshold: percentNumber().default(50),
    slow_start: slowStartSchema.optional(),
    retries: retriesSchema.prefault({}),
    timeouts: z
      .strictObject({
        connect: duration().prefault('1s'),
        request: duration().prefault('15s'),
        /**
         * A pooled upstream connection idle this long is closed by Meridian: keep it below
         * the backends' own keep-alive timeout (Node's is 5s) so they never close one just
         * as it is reused. A backend's `Keep-Alive: timeout=N` hint shortens it further.
         */
        idle: duration().prefault('4s'),
      })
      .prefault({}),
    circuit_breaker: circuitBreakerSchema.prefault({}),
    /** Absent: off. `{}`: a limit on requests in flight found from measured latency (docs/overload.md). */
    adaptive_concurrency: adaptiveConcurrencySchema.optional(),
  })
  .superRefine(checkCluster, ALWAYS);

// ---- sample backends (demos and examples) -------------------------------------------

const sampleBackendSchema = z.strictObject({
  /** Sent in every `x-backend` header. */
  name: z.string().regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces'),
  address: bindAddress().default('127.0.0.1'),
  port: integer(1, 65535),
  /** `0`, `10ms`, `exp:10ms` or `lognormal:10ms,1.0`. */
  latency: z
    .string()
    .default('0')
    .superRefine((s, ctx) => {
      try {
        parseLatency(s);
      } catch (e) {
        fail(ctx, (e as Error).message);
      }
    }),
  error_rate: decimal(0, 1).default(0),
});

// ---- root --------------------------------------------------------------------------

export const ConfigSchema = z
  .strictObject({
    admin: adminSchema.prefault({}),
    /** Processes serving the listeners (node:cluster); `auto` = one per core. */
    workers: z.union([integer(1, 256), z.literal('auto')]).default(1),
    /**
     * How workers share a listener's port: `reuse_port`, a socket per worker (SO_REUSEPORT,
     * the kernel spreads connections); `round_robin`, the primary accepts and hands each
     * connection on (node:cluster); `auto`, reuse_port where the runtime has it and the
     * port is fixed. See checkWorkerAccept and src/node/listen.ts.
     */
    worker_accept: z.enum(['auto', 'reuse_port', 'round_robin']).default('auto'),
    /** Addresses (IPs or CIDRs) whose X-Forwarded-For is trusted and appended to. */
    trusted_proxies: z.array(cidr()).default([]),
    access_log: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** `-` for standard output, or a file path. */
        path: z.string().min(1).default('-'),
      })
      .prefault({}),
    /** This Meridian: its name (in the hop header of cross-region requests) and where it runs (zone-aware routing). */
    node: z
      .strictObject({
        name: z
          .string()
          .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
          .default('meridian'),
        region: z.string().min(1).optional(),
        zone: z.string().min(1).optional(),
      })
      .prefault({}),
    /** On SIGTERM: how long requests in flight may take to finish before the process exits. */
    drain_timeout: duration().prefault('30s'),
    /**
     * Client connections open at once in this process, all listeners together (HAProxy's
     * global maxconn); past it new ones are closed at accept. Each worker has its own.
     */
    max_connections: integer(1).default(10_000),
    /** Sample HTTP backends `meridian start` runs beside the proxy: for demos and examples, not production. */
    sample_backends: z.array(sampleBackendSchema).default([]),
    /** At least one listener, unless `global` is set (a DNS-only Meridian); see checkConfig. */
    listeners: z.array(listenerSchema).default([]),
    clusters: z.array(clusterSchema).default([]),
    global: globalSchema.optional(),
    /** Many Meridians acting as one through Redis (docs/fleet.md); absent = this node alone. */
    sync: syncSchema.optional(),
  })
  .superRefine(checkConfig, ALWAYS);

/** A validated config with every default filled in. */
export type Config = z.output<typeof ConfigSchema>;
/** What a config file may contain (before defaults and conversions). */
export type ConfigInput = z.input<typeof ConfigSchema>;
export type AdminConfig = Config['admin'];
export type NodeConfig = Config['node'];
export type SampleBackendConfig = Config['sample_backends'][number];
export type ListenerConfig = Config['listeners'][number];
/** An HTTP listener, plain or TLS: both route requests. */
export type HttpListenerConfig = Extract<ListenerConfig, { protocol: 'http' | 'https' }>;
export type TcpListenerConfig = Extract<ListenerConfig, { protocol: 'tcp' }>;
export type RouteConfig = HttpListenerConfig['routes'][number];
export type ClusterConfig = Config['clusters'][number];
export type EndpointConfig = NonNullable<ClusterConfig['endpoints']>[number];
export type LocalityConfig = NonNullable<ClusterConfig['localities']>[number];
export type HealthCheckConfig = NonNullable<ClusterConfig['health_check']>;
export type UpstreamTlsConfig = NonNullable<ClusterConfig['tls']>;
export type DiscoveryConfig = NonNullable<ClusterConfig['discovery']>;
export type OutlierDetectionConfig = NonNullable<ClusterConfig['outlier_detection']>;
export type SlowStartConfig = NonNullable<ClusterConfig['slow_start']>;
export type { SyncConfig } from './sync-schema.js';
export type RateLimitConfig = NonNullable<RouteConfig['rate_limit']>;

/** Every endpoint of a cluster, whether listed directly or under localities. */
export function clusterEndpoints(c: ClusterConfig): EndpointConfig[] {
  return c.endpoints ?? (c.localities ?? []).flatMap((l) => l.endpoints);
}
