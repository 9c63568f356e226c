/**
 * Meridian's Prometheus metrics, on a registry of their own (never prom-client's global
 * one, so two proxies in one process, or a test, never share series).
 *
 * Two kinds of metric:
 * - events, counted as they happen by the data plane and health checkers through the
 *   methods below (requests, local replies, retries, health changes, reloads);
 * - state, read at scrape time from `setSource()`'s snapshot (endpoint status, in-flight
 *   requests, weights, latency, pools, panic). Nothing is updated on the hot path for
 *   these, and endpoints removed by a reload vanish from the next scrape.
 *
 * Every metric carries a one-line help text; docs/metrics.md lists each with its type
 * and labels, and a test keeps the two in step.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry, type Aggregator } from 'prom-client';
import { CounterCell, FastCounter, FastHistogram, HistogramCell } from './fast-metrics.js';
import { HEALTH_STATUSES, type ClusterState, type LocalReason } from './types.js';
import type { RetryRefusal } from '../core/retry-budget.js';
import type { BalancerStats } from '../core/types.js';

/** 0.5 ms to 30 s, roughly 1-2.5-5 per decade: a proxy's own overhead sits at the bottom, timeouts at the top. */
export const DURATION_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;
/** Tries per request: 1 is no retry; few policies allow more than 4. */
export const ATTEMPT_BUCKETS = [1, 2, 3, 4, 5] as const;

export interface ProxyMetricsOptions {
  /** Also export prom-client's process and Node.js metrics, prefixed `meridian_`. Default true. */
  readonly defaultMetrics?: boolean;
}

/** The labels of one finished request. `cluster` and `endpoint` are '' when none was chosen. */
export interface RequestLabels {
  readonly listener: string;
  readonly cluster: string;
  /** The endpoint of the last attempt. */
  readonly endpoint: string;
  /** The status code sent to the client. */
  readonly code: number;
}

type CounterChild = Counter.Internal;

/** The sub-map of `m` at `k`, created on first use. */
function sub<K, V>(m: Map<K, Map<string | number, V>>, k: K): Map<string | number, V> {
  let v = m.get(k);
  if (v === undefined) {
    v = new Map();
    m.set(k, v);
  }
  return v;
}

/** Something /metrics can serve: one process's metrics, or several workers' aggregated. */
export interface MetricsText {
  readonly contentType: string;
  metricsText(): Promise<string>;
}

export class ProxyMetrics implements MetricsText {
  readonly registry = new Registry();

  // ---- events (hot path: prom-client children cached by label values in nested maps,
  //      so a repeat call does a few Map lookups and allocates nothing of its own) ------
  // The five per-request series are fast-metrics.ts's: no label hashing on each update.
  readonly #requests = new FastCounter({
    name: 'meridian_requests_total',
    help: 'Requests answered, by listener, cluster, endpoint (of the last attempt; empty if none) and status code sent to the client.',
    labelNames: ['listener', 'cluster', 'endpoint', 'code'] as const,
    registers: [this.registry],
  });
  readonly #requestDuration = new FastHistogram({
    name: 'meridian_request_duration_seconds',
    help: "Time from a request's arrival to the end of its response, retries included, by cluster.",
    labelNames: ['cluster'] as const,
    buckets: [...DURATION_BUCKETS_S],
    registers: [this.registry],
  });
  readonly #upstreamDuration = new FastHistogram({
    name: 'meridian_upstream_duration_seconds',
    help: "Time the endpoint took to answer the attempt whose response was sent, from sending the request to the response's end.",
    labelNames: ['cluster', 'endpoint'] as const,
    buckets: [...DURATION_BUCKETS_S],
    registers: [this.registry],
  });
  readonly #attempts = new FastHistogram({
    name: 'meridian_request_attempts',
    help: 'Upstream attempts per request (1 = answered without a retry), by cluster.',
    labelNames: ['cluster'] as const,
    buckets: [...ATTEMPT_BUCKETS],
    registers: [this.registry],
  });
  readonly #localReplies = new Counter({
    name: 'meridian_local_replies_total',
    help: "Responses Meridian generated itself instead of relaying an upstream's, by listener, reason and status code.",
    labelNames: ['listener', 'reason', 'code'] as const,
    registers: [this.registry],
  });
  readonly #retries = new Counter({
    name: 'meridian_retries_total',
    help: 'Retries sent upstream, by cluster and the condition that caused them.',
    labelNames: ['cluster', 'reason'] as const,
    registers: [this.registry],
  });
  readonly #retriesRefused = new Counter({
    name: 'meridian_retries_refused_total',
    help: 'Failed tries that retry_on covers but that were not retried, by cluster and why: not_replayable, attempts_exhausted, max_retries (the circuit breaker), budget.',
    labelNames: ['cluster', 'reason'] as const,
    registers: [this.registry],
  });
  readonly #hedges = new Counter({
    name: 'meridian_hedges_total',
    help: 'Hedged tries by cluster and event: started (a second try sent beside the first), won (it answered first and its answer was taken), cancelled (given up: the first try answered first, or the request ended).',
    labelNames: ['cluster', 'event'] as const,
    registers: [this.registry],
  });
  readonly #transitions = new Counter({
    name: 'meridian_health_transitions_total',
    help: 'Endpoint health changes, by the state entered (healthy or unhealthy) and the detector (active or outlier).',
    labelNames: ['cluster', 'endpoint', 'to', 'source'] as const,
    registers: [this.registry],
  });
  readonly #ejections = new Counter({
    name: 'meridian_ejections_total',
    help: 'Endpoints ejected by outlier detection or for failing to connect, by cluster, endpoint and reason.',
    labelNames: ['cluster', 'endpoint', 'reason'] as const,
    registers: [this.registry],
  });
  readonly #healthChecks = new Counter({
    name: 'meridian_health_checks_total',
    help: 'Active health checks completed, by cluster, endpoint and result (success, or why the check failed).',
    labelNames: ['cluster', 'endpoint', 'result'] as const,
    registers: [this.registry],
    // With workers > 1 the primary probes once and every worker applies the same results:
    // one worker's count is the count.
    aggregator: 'first',
  });
  readonly #tcpConnections = new Counter({
    name: 'meridian_tcp_connections_total',
    help: 'Connections through tcp listeners, by listener, cluster, the endpoint of the last try, and how they ended (closed, or why not).',
    labelNames: ['listener', 'cluster', 'endpoint', 'result'] as const,
    registers: [this.registry],
  });
  readonly #tcpBytes = new Counter({
    name: 'meridian_tcp_bytes_total',
    help: 'Bytes through tcp listeners, by listener, cluster and direction (in: from clients, out: to clients).',
    labelNames: ['listener', 'cluster', 'direction'] as const,
    registers: [this.registry],
  });
  readonly #reloads = new Counter({
    name: 'meridian_config_reloads_total',
    help: 'Configuration reloads, by result: success (the new config is in force) or failure (the old one stays).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly #discovery = discoveryCounters(this.registry);

  // ---- state, computed at scrape time from the source ---------------------------------
  readonly #endpointStatus: Gauge<'cluster' | 'endpoint' | 'status'>;
  readonly #endpointInFlight: Gauge<'cluster' | 'endpoint'>;
  readonly #endpointWeight: Gauge<'cluster' | 'endpoint'>;
  readonly #endpointLatency: Gauge<'cluster' | 'endpoint'>;
  readonly #endpointPool: Gauge<'cluster' | 'endpoint' | 'state'>;
  readonly #clusterPanic: Gauge<'cluster'>;
  readonly #clusterInFlight: Gauge<'cluster'>;
  readonly #localityShare: Gauge<'cluster' | 'region' | 'zone' | 'priority'>;
  readonly #localitySpilled: Gauge<'cluster' | 'region' | 'zone' | 'priority' | 'direction'>;
  readonly #acLimit: Gauge<'cluster'>;
  readonly #acInFlight: Gauge<'cluster'>;
  readonly #acQueued: Gauge<'cluster'>;
  readonly #acQueueDelay: Gauge<'cluster'>;
  readonly #acMinRtt: Gauge<'cluster'>;
  readonly #acRefused: Gauge<'cluster' | 'class'>;

  #source: (() => readonly ClusterState[]) | undefined;
  /** Set while one scrape's gauges are filled in: the source is read once per scrape, not once per gauge. */
  #filled = false;

  readonly #requestChildren = new Map<string, Map<string | number, Map<string | number, Map<string | number, CounterCell>>>>();
  readonly #requestDurationChildren = new Map<string, HistogramCell>();
  readonly #upstreamChildren = new Map<string, Map<string | number, HistogramCell>>();
  readonly #attemptChildren = new Map<string, HistogramCell>();
  readonly #localReplyChildren = new Map<string, Map<string | number, Map<string | number, CounterChild>>>();
  readonly #retryChildren = new Map<string, Map<string | number, CounterChild>>();
  readonly #refusedChildren = new Map<string, Map<string | number, CounterChild>>();
  /** Every per-endpoint series by `cluster\0endpoint`, so a reload can drop those of endpoints that are gone. */
  readonly #endpointSeries = new Map<string, Map<string, { readonly metric: { remove(labels: Record<string, string>): void }; readonly labels: Record<string, string> }>>();

  constructor(options: ProxyMetricsOptions = {}) {
    // `aggregator` says how prom-client's AggregatorRegistry combines workers' values
    // (workers > 1): counts add up; a state or weight is each worker's own view, so the
    // first worker's stands for all.
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], aggregator: Aggregator = 'sum'): Gauge<L> =>
      new Gauge<L>({ name, help, labelNames, registers: [this.registry], collect: () => this.#fill(), aggregator });
    this.#endpointStatus = gauge(
      'meridian_endpoint_status',
      "Endpoint state set: 1 for the endpoint's current status, 0 for each other status.",
      ['cluster', 'endpoint', 'status'],
      'first',
    );
    this.#endpointInFlight = gauge('meridian_endpoint_in_flight', 'Requests in flight to the endpoint.', ['cluster', 'endpoint']);
    this.#endpointWeight = gauge(
      'meridian_endpoint_weight',
      "The endpoint's effective balancing weight: 0 while not eligible for traffic, reduced during slow start.",
      ['cluster', 'endpoint'],
      'first',
    );
    this.#endpointLatency = gauge(
      'meridian_endpoint_latency_ewma_seconds',
      "Peak-EWMA of the endpoint's response latency, as of its last response.",
      ['cluster', 'endpoint'],
      'average',
    );
    this.#endpointPool = gauge(
      'meridian_endpoint_pool_connections',
      'Connections to the endpoint: open (busy and idle together) and, of those, idle in the keep-alive pool.',
      ['cluster', 'endpoint', 'state'],
    );
    this.#clusterPanic = gauge(
      'meridian_cluster_panic',
      '1 while the cluster is in panic mode (too few routable endpoints, so it balances over all of them), else 0.',
      ['cluster'],
      'max',
    );
    this.#clusterInFlight = gauge('meridian_cluster_in_flight', "Requests in flight to the cluster's endpoints.", ['cluster']);
    this.#localityShare = gauge(
      'meridian_locality_traffic_share',
      "The locality's share of its cluster's traffic now (0..1), from priority levels, zone-aware routing and locality weights.",
      ['cluster', 'region', 'zone', 'priority'],
      'first',
    );
    this.#localitySpilled = gauge(
      'meridian_locality_spilled_requests',
      'Requests that found the locality at capacity and went on to the next (direction out), or that it took for a full one (in), since the cluster was built.',
      ['cluster', 'region', 'zone', 'priority', 'direction'],
    );

    // Adaptive concurrency (docs/overload.md): each worker has its own limit, so they add up.
    this.#acLimit = gauge('meridian_adaptive_concurrency_limit', "The cluster's adaptive concurrency limit on requests in flight.", ['cluster']);
    this.#acInFlight = gauge('meridian_adaptive_concurrency_in_flight', 'Requests holding a slot of the adaptive concurrency limit.', ['cluster']);
    this.#acQueued = gauge('meridian_adaptive_concurrency_queued', 'Requests waiting in the queue over the limit.', ['cluster']);
    this.#acQueueDelay = gauge('meridian_adaptive_concurrency_queue_delay_seconds', 'How long the oldest queued request has waited.', ['cluster'], 'max');
    this.#acMinRtt = gauge('meridian_adaptive_concurrency_min_rtt_seconds', 'The latency baseline the limit is computed against (0 until measured).', ['cluster'], 'average');
    this.#acRefused = gauge(
      'meridian_adaptive_concurrency_refused_requests',
      'Requests refused as overloaded (503 overloaded), by class (critical, default, sheddable), since the limit was built.',
      ['cluster', 'class'],
    );

    // Both results exist from the start, so that rate() and alerts see a 0 before the first reload.
    this.#reloads.labels('success').inc(0);
    this.#reloads.labels('failure').inc(0);
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'meridian_' });
  }

  /** Where the scrape-time gauges read cluster state; undefined = no state gauges. */
  setSource(source: (() => readonly ClusterState[]) | undefined): void {
    this.#source = source;
  }

  /** The Content-Type of `metricsText()`. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every metric. Rejects when the source throws. */
  metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * A request answered on `l.listener`, whoever produced the response (local replies are
   * also counted by `localReply`). `upstreamSeconds` is the answering attempt's time;
   * `attempts` the upstream tries made (omit both when no endpoint was tried).
   */
  observeRequest(l: RequestLabels, totalSeconds: number, upstreamSeconds?: number, attempts?: number): void {
    const { listener, cluster, endpoint, code } = l;
    const byCode = sub(sub(sub(this.#requestChildren, listener), cluster), endpoint);
    let c = byCode.get(code);
    if (c === undefined) {
      c = this.#requests.labels(listener, cluster, endpoint, String(code));
      byCode.set(code, c);
      this.#noteSeries(cluster, endpoint, this.#requests, { listener, cluster, endpoint, code: String(code) });
    }
    c.inc();

    let d = this.#requestDurationChildren.get(cluster);
    if (d === undefined) {
      d = this.#requestDuration.labels(cluster);
      this.#requestDurationChildren.set(cluster, d);
    }
    d.observe(totalSeconds);

    if (upstreamSeconds !== undefined) {
      const byEndpoint = sub(this.#upstreamChildren, cluster);
      let u = byEndpoint.get(endpoint);
      if (u === undefined) {
        u = this.#upstreamDuration.labels(cluster, endpoint);
        byEndpoint.set(endpoint, u);
        this.#noteSeries(cluster, endpoint, this.#upstreamDuration, { cluster, endpoint });
      }
      u.observe(upstreamSeconds);
    }

    if (attempts !== undefined) {
      let a = this.#attemptChildren.get(cluster);
      if (a === undefined) {
        a = this.#attempts.labels(cluster);
        this.#attemptChildren.set(cluster, a);
      }
      a.observe(attempts);
    }
  }

  /** A response Meridian generated itself (404 no route, 429, 502, 503, 504, 400). */
  localReply(listener: string, reason: LocalReason, code: number): void {
    const byCode = sub(sub(this.#localReplyChildren, listener), reason);
    let c = byCode.get(code);
    if (c === undefined) {
      c = this.#localReplies.labels(listener, reason, String(code));
      byCode.set(code, c);
    }
    c.inc();
  }

  /** A retry sent; `reason` is the retry_on condition that matched (e.g. connect_failure, 503). */
  retry(cluster: string, reason: string): void {
    const byReason = sub(this.#retryChildren, cluster);
    let c = byReason.get(reason);
    if (c === undefined) {
      c = this.#retries.labels(cluster, reason);
      byReason.set(reason, c);
    }
    c.inc();
  }

  /** A failed try that retry_on covers, not retried; `reason` as the core's decideRetry names it. */
  retryRefused(cluster: string, reason: RetryRefusal): void {
    const byReason = sub(this.#refusedChildren, cluster);
    let c = byReason.get(reason);
    if (c === undefined) {
      c = this.#retriesRefused.labels(cluster, reason);
      byReason.set(reason, c);
    }
    c.inc();
  }

  /** A hedge started, won or was cancelled (src/proxy/forward.ts's hedge section); rare enough for a label lookup. */
  hedge(cluster: string, event: 'started' | 'won' | 'cancelled'): void {
    this.#hedges.labels(cluster, event).inc();
  }

  /** A connection through a tcp listener ended: counted once, with its bytes. */
  tcpConnection(listener: string, cluster: string, endpoint: string, result: string, bytesIn: number, bytesOut: number): void {
    this.#tcpConnections.labels(listener, cluster, endpoint, result).inc();
    if (bytesIn > 0) this.#tcpBytes.labels(listener, cluster, 'in').inc(bytesIn);
    if (bytesOut > 0) this.#tcpBytes.labels(listener, cluster, 'out').inc(bytesOut);
  }

  /** An endpoint's health flipped: by active checks' verdict, or by outlier ejection (false) and return (true). */
  healthTransition(cluster: string, endpoint: string, healthy: boolean, source: 'active' | 'outlier'): void {
    const labels = { cluster, endpoint, to: healthy ? 'healthy' : 'unhealthy', source };
    this.#transitions.inc(labels);
    this.#noteSeries(cluster, endpoint, this.#transitions, labels);
  }

  /** An ejection; `reason` as the core names it (consecutive_5xx, consecutive_gateway_errors, success_rate, connect_failure). */
  ejection(cluster: string, endpoint: string, reason: string): void {
    this.#ejections.inc({ cluster, endpoint, reason });
    this.#noteSeries(cluster, endpoint, this.#ejections, { cluster, endpoint, reason });
  }

  /** An active health check's result; a failure's `reason` should come from a small fixed set (timeout, connect_failure, status...). */
  healthCheck(cluster: string, endpoint: string, ok: boolean, reason?: string): void {
    const labels = { cluster, endpoint, result: ok ? 'success' : (reason ?? 'failure') };
    this.#healthChecks.inc(labels);
    this.#noteSeries(cluster, endpoint, this.#healthChecks, labels);
  }

  /**
   * After a reload: drop the series of endpoints no longer configured (`live`: cluster ->
   * endpoint ids), so endpoint churn (autoscaling) does not grow /metrics without bound.
   * Their counts end with them, as a target's series end when it goes away.
   */
  forgetEndpoints(live: ReadonlyMap<string, ReadonlySet<string>>): void {
    for (const [key, series] of this.#endpointSeries) {
      const [cluster, endpoint] = key.split('\0') as [string, string];
      if (live.get(cluster)?.has(endpoint)) continue;
      for (const { metric, labels } of series.values()) metric.remove(labels);
      this.#endpointSeries.delete(key);
      for (const byCluster of this.#requestChildren.values()) byCluster.get(cluster)?.delete(endpoint);
      this.#upstreamChildren.get(cluster)?.delete(endpoint);
    }
  }

  #noteSeries(cluster: string, endpoint: string, metric: { remove(labels: Record<string, string>): void }, labels: Record<string, string>): void {
    if (endpoint === '') return; // local replies: no endpoint to outlive
    const key = `${cluster}\0${endpoint}`;
    let series = this.#endpointSeries.get(key);
    if (series === undefined) {
      series = new Map();
      this.#endpointSeries.set(key, series);
    }
    const id = Object.values(labels).join('\0');
    if (!series.has(id)) series.set(id, { metric, labels });
  }

  /** An answer from a cluster's discovery source. */
  discoveryRefresh(cluster: string, result: 'ok' | 'empty' | 'failure'): void {
    this.#discovery.discoveryRefresh(cluster, result);
  }

  /** A change of a cluster's discovered endpoints: applied, or not yet and why. */
  discoveryChange(cluster: string, result: 'applied' | 'damped' | 'held'): void {
    this.#discovery.discoveryChange(cluster, result);
  }

  /** A configuration reload, from SIGHUP or the admin API: count it where the reload is done, once. */
  reload(ok: boolean): void {
    this.#reloads.inc({ result: ok ? 'success' : 'failure' });
  }

  // ---- upstream protocols and gRPC ------------------------------------------------------
  readonly #upstreamAnswers = new FastCounter({
    name: 'meridian_upstream_answers_total',
    help: 'Requests an upstream answered, by cluster, the protocol spoken to it (http1, h2) and the TLS version negotiated (none: plaintext).',
    labelNames: ['cluster', 'protocol', 'tls'] as const,
    registers: [this.registry],
  });
  readonly #upstreamAnswerChildren = new Map<string, Map<string | number, Map<string | number, CounterCell>>>();
  readonly #grpcCalls = new Counter({
    name: 'meridian_grpc_calls_total',
    help: "gRPC calls, by listener, cluster and the grpc-status the client got (the backend's, or Meridian's own for local replies and calls cut mid-stream).",
    labelNames: ['listener', 'cluster', 'grpc_status'] as const,
    registers: [this.registry],
  });
  readonly #grpcChildren = new Map<string, Map<string | number, Map<string | number, CounterChild>>>();

  /** An upstream's answer: `tls` is the negotiated version, or undefined for plaintext. */
  upstreamAnswer(cluster: string, protocol: 'http1' | 'h2', tls: string | undefined): void {
    const byTls = sub(sub(this.#upstreamAnswerChildren, cluster), protocol);
    const t = tls ?? 'none';
    let c = byTls.get(t);
    if (c === undefined) {
      c = this.#upstreamAnswers.labels(cluster, protocol, t);
      byTls.set(t, c);
    }
    c.inc();
  }

  grpcCall(listener: string, cluster: string, grpcStatus: string): void {
    const byStatus = sub(sub(this.#grpcChildren, listener), cluster);
    let c = byStatus.get(grpcStatus);
    if (c === undefined) {
      c = this.#grpcCalls.labels(listener, cluster, grpcStatus);
      byStatus.set(grpcStatus, c);
    }
    c.inc();
  }

  // ---- client connections and absorbed errors ----------------------------------------
  #connectionSource: (() => Iterable<readonly [string, number]>) | undefined;
  readonly #connectionsActive = new Gauge({
    name: 'meridian_connections_active',
    help: 'Client connections open now, by listener (all protocols; an HTTP/2 session or an upgraded tunnel is one connection).',
    labelNames: ['listener'] as const,
    registers: [this.registry],
    collect: () => {
      this.#connectionsActive.reset();
      for (const [listener, open] of this.#connectionSource?.() ?? []) this.#connectionsActive.set({ listener }, open);
    },
  });
  readonly #connectionsRefused = new Counter({
    name: 'meridian_connections_refused_total',
    help: "Client connections closed at accept because a limit was reached, by listener and reason (listener_limit: the listener's max_connections; process_limit: the process-wide max_connections).",
    labelNames: ['listener', 'reason'] as const,
    registers: [this.registry],
  });
  readonly #internalErrors = internalErrorsCounter(this.registry);

  /** Where meridian_connections_active reads open connections per listener at scrape time. */
  setConnectionSource(source: () => Iterable<readonly [string, number]>): void {
    this.#connectionSource = source;
  }

  /** A connection closed at accept (see meridian_connections_refused_total). */
  connectionRefused(listener: string, reason: 'listener_limit' | 'process_limit'): void {
    this.#connectionsRefused.inc({ listener, reason });
  }

  /** An error absorbed rather than crashing or dropped unseen (src/admin/error-reporter.ts logs it). */
  internalError(component: string, cause: string): void {
    this.#internalErrors.inc({ component, cause });
  }

  /**
   * Called by each state gauge's collect(). prom-client calls every metric's collect()
   * synchronously within one registry.metrics() call, so the first fills all the gauges
   * from one snapshot and the flag, cleared in a microtask, makes the rest no-ops: the
   * gauges of one scrape agree with each other.
   */
  #fill(): void {
    if (this.#filled) return;
    this.#filled = true;
    queueMicrotask(() => {
      this.#filled = false;
    });
    const gauges = [
      this.#endpointStatus,
      this.#endpointInFlight,
      this.#endpointWeight,
      this.#endpointLatency,
      this.#endpointPool,
      this.#clusterPanic,
      this.#clusterInFlight,
      this.#localityShare,
      this.#localitySpilled,
      this.#acLimit,
      this.#acInFlight,
      this.#acQueued,
      this.#acQueueDelay,
      this.#acMinRtt,
      this.#acRefused,
    ] as const;
    for (const g of gauges) g.reset();
    const clusters = this.#source?.() ?? [];
    for (const c of clusters) {
      const cluster = c.name;
      let inFlight = 0;
      for (const e of c.endpoints) {
        const endpoint = e.id;
        for (const status of HEALTH_STATUSES) this.#endpointStatus.set({ cluster, endpoint, status }, status === e.status ? 1 : 0);
        this.#endpointInFlight.set({ cluster, endpoint }, e.active);
        this.#endpointWeight.set({ cluster, endpoint }, e.effectiveWeight);
        this.#endpointLatency.set({ cluster, endpoint }, e.latencyEwmaMs / 1000);
        this.#endpointPool.set({ cluster, endpoint, state: 'open' }, e.poolOpen);
        this.#endpointPool.set({ cluster, endpoint, state: 'idle' }, e.poolIdle);
        inFlight += e.active;
      }
      this.#clusterPanic.set({ cluster }, c.inPanic ? 1 : 0);
      const o = c.overload;
      if (o !== undefined) {
        this.#acLimit.set({ cluster }, o.limit);
        this.#acInFlight.set({ cluster }, o.inFlight);
        this.#acQueued.set({ cluster }, o.queued);
        this.#acQueueDelay.set({ cluster }, o.queueDelayMs / 1000);
        this.#acMinRtt.set({ cluster }, o.minRttMs / 1000);
        for (const k of ['critical', 'default', 'sheddable'] as const) this.#acRefused.set({ cluster, class: k }, o.refused[k]);
      }
      this.#clusterInFlight.set({ cluster }, inFlight);
      for (const l of c.localities ?? []) {
        const labels = { cluster, region: l.region ?? '', zone: l.zone ?? '', priority: String(l.priority) };
        this.#localityShare.set(labels, l.share);
        this.#localitySpilled.set({ ...labels, direction: 'out' }, l.spilledOut);
        this.#localitySpilled.set({ ...labels, direction: 'in' }, l.spilledIn);
      }
    }
  }

  // ---- adaptive policies (prequal, predictive): probe events counted as they happen,
  //      the balancers' state read at scrape time from setBalancerSource() ---------------
  #balancerSource: (() => Iterable<{ readonly cluster: string; readonly locality: string; readonly stats: BalancerStats }>) | undefined;
  readonly #probes = new Counter({
    name: 'meridian_prequal_probes_total',
    help: "Prequal probe replies, by cluster, source (backend: the endpoint's probe answer; local: Meridian's own in-flight count and peak-EWMA latency, for endpoints without a probe endpoint) and result (ok; error: refused, reset or timed out; skipped: too many probes in flight).",
    labelNames: ['cluster', 'source', 'result'] as const,
    registers: [this.registry],
  });
  readonly #modelSwitches = new Counter({
    name: 'meridian_predictive_switches_total',
    help: 'predictive: switches of a locality between the learned model and its peak-EWMA fallback, by cluster, locality, to (fallback, model) and reason (drift, worse_than_baseline, recovered).',
    labelNames: ['cluster', 'locality', 'to', 'reason'] as const,
    registers: [this.registry],
  });
  readonly #poolSize = this.#balancerGauge('meridian_prequal_pool_size', 'prequal: probe replies in the pool now, by cluster and locality.');
  readonly #fallbackState = this.#balancerGauge('meridian_predictive_fallback', 'predictive: 1 while picks follow the peak-EWMA fallback, 0 while the model is in force, by cluster and locality.');
  readonly #modelMae = this.#balancerGauge('meridian_predictive_mae_seconds', "predictive: the model's mean absolute prediction error over the responses seen, by cluster and locality.");
  readonly #baselineMae = this.#balancerGauge('meridian_predictive_baseline_mae_seconds', "predictive: peak EWMA's mean absolute error as a latency prediction (ewma x (in flight + 1)) on the same responses, by cluster and locality.");
  readonly #modelP90 = this.#balancerGauge('meridian_predictive_p90_abs_error_seconds', "predictive: the 90th percentile of the model's absolute prediction error, by cluster and locality.");
  readonly #baselinePickRatio = this.#balancerGauge('meridian_predictive_baseline_pick_ratio', 'predictive: of the picks made while the model was in force, the share it left to peak EWMA because it could not tell the candidates apart (their predictions closer than half its recent mean absolute error), by cluster and locality.');

  #balancerGauge(name: string, help: string): Gauge<'cluster' | 'locality'> {
    return new Gauge({ name, help, labelNames: ['cluster', 'locality'] as const, registers: [this.registry], collect: () => this.#fillBalancers() });
  }

  /** Every adaptive-balancer gauge from one read of the source (each gauge's collect calls it: a scrape reads them all). */
  #fillBalancers(): void {
    const gauges = [this.#poolSize, this.#fallbackState, this.#modelMae, this.#baselineMae, this.#modelP90, this.#baselinePickRatio];
    for (const g of gauges) g.reset();
    for (const { cluster, locality, stats: s } of this.#balancerSource?.() ?? []) {
      const labels = { cluster, locality };
      if (s.poolSize !== undefined) this.#poolSize.set(labels, s.poolSize);
      if (s.fallback !== undefined) this.#fallbackState.set(labels, s.fallback ? 1 : 0);
      if (s.maeMs !== undefined) this.#modelMae.set(labels, s.maeMs / 1000);
      if (s.baselineMaeMs !== undefined) this.#baselineMae.set(labels, s.baselineMaeMs / 1000);
      if (s.p90AbsErrorMs !== undefined) this.#modelP90.set(labels, s.p90AbsErrorMs / 1000);
      const picks = (s.modelPicks ?? 0) + (s.baselinePicks ?? 0);
      if (picks > 0) this.#baselinePickRatio.set(labels, (s.baselinePicks ?? 0) / picks);
    }
  }

  /** Where the adaptive balancers' state is read at scrape time. */
  setBalancerSource(source: (() => Iterable<{ readonly cluster: string; readonly locality: string; readonly stats: BalancerStats }>) | undefined): void {
    this.#balancerSource = source;
  }

  /** A prequal probe's reply, its failure, or a probe skipped (too many in flight); from the endpoint or Meridian's local stand-in. */
  probe(cluster: string, source: 'backend' | 'local', result: 'ok' | 'error' | 'skipped'): void {
    this.#probes.inc({ cluster, source, result });
  }

  /** predictive switched a locality to its fallback (peak EWMA) or back to the model. */
  modelSwitch(cluster: string, locality: string, fallback: boolean, reason: string): void {
    this.#modelSwitches.inc({ cluster, locality, to: fallback ? 'fallback' : 'model', reason });
  }
}

/**
 * meridian_internal_errors_total in `registry`: a worker pool's primary counts the errors
 * of its own health checks and DNS responder in a registry of its own.
 */
export function internalErrorsCounter(registry: Registry): Counter<'component' | 'cause'> {
  return new Counter({
    name: 'meridian_internal_errors_total',
    help: 'Errors absorbed to keep serving, by component (http2_session, http2_stream, health_check, region_probe, dns_responder, access_log, listener) and cause (an error code or name); each cause is also logged, at most once a minute.',
    labelNames: ['component', 'cause'] as const,
    registers: [registry],
  });
}

/**
 * Discovery's counters on `registry`: a process's own, or a worker pool's primary's (it runs
 * the sources for all workers; its exposition is merged with theirs).
 */
export function discoveryCounters(registry: Registry): {
  discoveryRefresh(cluster: string, result: 'ok' | 'empty' | 'failure'): void;
  discoveryChange(cluster: string, result: 'applied' | 'damped' | 'held'): void;
} {
  const refreshes = new Counter({
    name: 'meridian_discovery_refreshes_total',
    help: "Answers from clusters' discovery sources (DNS, file), by cluster and result: ok, empty (no endpoints) or failure.",
    labelNames: ['cluster', 'result'] as const,
    registers: [registry],
  });
  const changes = new Counter({
    name: 'meridian_discovery_changes_total',
    help: 'Endpoint-set changes found by discovery, by cluster and result: applied, damped (waiting for min_change_interval) or held (over max_removal_percent).',
    labelNames: ['cluster', 'result'] as const,
    registers: [registry],
  });
  return {
    discoveryRefresh: (cluster, result) => void refreshes.inc({ cluster, result }),
    discoveryChange: (cluster, result) => void changes.inc({ cluster, result }),
  };
}
