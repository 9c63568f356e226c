/**
 * The contract between the admin API (and the metrics' scrape-time gauges) and the
 * data plane. The admin side only reads state through `AdminTarget.clusters()` and
 * changes it through the other methods; it never reaches into the proxy's objects.
 */
import type { HostView, LocalityView } from '../core/cluster.js';
import type { HealthStatus } from '../core/health.js';

/** One endpoint as operators see it: the core's view plus its upstream connection pool. */
export interface EndpointState extends HostView {
  /** Connections open to the endpoint now, busy and idle together. */
  readonly poolOpen: number;
  /** Of `poolOpen`, those idle in the keep-alive pool. */
  readonly poolIdle: number;
  /** Found by the cluster's discovery source, not listed in the config. */
  readonly discovered?: true;
}

/** A cluster's discovery source as operators see it (`discovery:` in the config). */
export interface DiscoveryStatus {
  readonly source: 'dns' | 'file';
  /** What is asked: `dns SRV _http._tcp.api.internal @10.0.0.2:53`, `file /etc/meridian/api.yaml`. */
  readonly target: string;
  /** Discovered endpoints in the cluster now. */
  readonly endpoints: number;
  /** When the source last answered (or failed to), ISO 8601; null before the first try ends. */
  readonly lastRefresh: string | null;
  /** Why the last answer was not used (failure, empty answer); null once an answer is good again. */
  readonly lastError: string | null;
  /** The last answer's TTL (DNS), before clamping to min_ttl/max_ttl; null for files and failures. */
  readonly ttlSeconds: number | null;
  /** Time until the next refresh, ms. */
  readonly nextRefreshMs: number | null;
  /** A change not applied yet, and why (held by max_removal_percent, damped by min_change_interval). */
  readonly pending: string | null;
  /**
   * With `workers` > 1 (the primary asks the source and sends each set to the workers): the
   * version of the set applied last (1 = the first), and how many workers have not reported it yet.
   */
  readonly relayed?: { readonly version: number; readonly workersBehind: number };
}

export interface ClusterState {
  readonly name: string;
  readonly policy: string;
  /** Too few endpoints are routable, so the cluster balances over all of them. */
  readonly inPanic: boolean;
  readonly endpoints: readonly EndpointState[];
  /** Localities with endpoints, in spill order, with their share of traffic now (empty: no localities configured). */
  readonly localities?: readonly LocalityView[];
  /** Requests admitted per second over the last 10 s. */
  readonly loadRps?: number;
  /** Present when the cluster has a `discovery` source. */
  readonly discovery?: DiscoveryStatus;
  /** Present when the cluster has `adaptive_concurrency`. */
  readonly overload?: OverloadView;
}

/** A cluster's adaptive concurrency now (docs/overload.md). */
export interface OverloadView {
  readonly limit: number;
  readonly inFlight: number;
  readonly queued: number;
  /** How long the oldest queued request has waited, ms. */
  readonly queueDelayMs: number;
  /** The latency baseline, ms (0 until measured). */
  readonly minRttMs: number;
  /** Refused since the cluster's limit was built, by class. */
  readonly refused: { readonly critical: number; readonly default: number; readonly sheddable: number };
}

/** Accepting a cluster's pending discovery change: done, no such cluster, no discovery source, or nothing waiting. */
export type AcceptResult = 'ok' | 'no_cluster' | 'no_discovery' | 'nothing_pending';

/** The outcome of a change addressed to one endpoint. */
export type ChangeResult = 'ok' | 'no_cluster' | 'no_endpoint';

/** A reload either took effect whole, or changed nothing and says why (every error, by path). */
export type ReloadResult = { readonly ok: true; readonly summary: string } | { readonly ok: false; readonly errors: readonly string[] };

/** What the admin API reads and changes; the proxy implements it. */
export interface AdminTarget {
  clusters(): ClusterState[];
  /** Listeners bound and not draining. */
  ready(): boolean;
  drain(cluster: string, endpoint: string, draining: boolean): ChangeResult;
  /** null restores the configured weight. */
  setWeight(cluster: string, endpoint: string, weight: number | null): ChangeResult;
  reload(): Promise<ReloadResult>;
  /** Apply a cluster's change held by max_removal_percent (or damped) now; absent: not offered. */
  acceptDiscovery?(cluster: string): AcceptResult;
  /** The DNS steering layer, when `global:` is configured. */
  global?(): GlobalAdmin | undefined;
}

/** What the admin API reads and changes of the global layer (src/global/global-layer.ts implements it). */
export interface GlobalAdmin {
  status(): unknown;
  setRegionOverride(name: string, override: 'up' | 'down' | undefined): boolean;
  reportRtt(clientIp: string, region: string, ms: number): boolean;
  decide(hostname: string, clientIp?: string): unknown;
}

/** Why Meridian answered a request itself instead of relaying an upstream's response. */
export type LocalReason =
  | 'no_route'
  | 'upgrade_refused'
  | 'rate_limited'
  | 'rate_limit_unavailable'
  | 'circuit_open'
  | 'overloaded'
  | 'no_healthy_endpoint'
  | 'connect_failure'
  | 'upstream_tls'
  | 'timeout'
  | 'upstream_reset'
  | 'upstream_protocol_error'
  | 'bad_request'
  | 'invalid_host'
  | 'transfer_coding_not_implemented'
  | 'http_version_not_supported'
  | 'request_timeout'
  | 'payload_too_large'
  | 'uri_too_long'
  | 'header_fields_too_large'
  | 'draining';

// Every key of HealthStatus, no more: `satisfies` fails to compile when the core adds one.
const STATUS_KEYS = { draining: 0, unhealthy: 0, ejected: 0, slow_start: 0, healthy: 0 } as const satisfies Record<HealthStatus, 0>;

/** Every HealthStatus, in the core's order of precedence: the states of `meridian_endpoint_status`. */
export const HEALTH_STATUSES: readonly HealthStatus[] = Object.keys(STATUS_KEYS) as HealthStatus[];
