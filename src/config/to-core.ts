// From a validated cluster config to the core's types: the one place snake_case config
// meets the core's camelCase options, so the proxy and the simulator build clusters alike.
import type { Clock } from '../core/clock.js';
import { Cluster, type ClusterOptions } from '../core/cluster.js';
import type { HashKeySpec } from '../core/hash-key.js';
import type { RetryRules } from '../core/request-lifecycle.js';
import type { Rng } from '../core/rng.js';
import type { Endpoint } from '../core/types.js';
import type { OutlierOptions } from '../core/outlier-detector.js';
import type { SlowStartOptions } from '../core/slow-start.js';
import { GRPC_RETRY_STATUSES, type ClusterConfig, type HashKey, type NodeConfig, type OutlierDetectionConfig, type RetryOn, type SlowStartConfig } from './schema.js';

export function coreEndpoints(c: ClusterConfig): Endpoint[] {
  if (c.endpoints) return c.endpoints.map((e) => ({ id: e.id, address: e.address, weight: e.weight }));
  return (c.localities ?? []).flatMap((l) =>
    l.endpoints.map((e) => ({
      id: e.id,
      address: e.address,
      weight: e.weight,
      locality: {
        region: l.region,
        priority: l.priority,
        remote: l.remote,
        ...(l.zone === undefined ? {} : { zone: l.zone }),
        ...(l.weight === undefined ? {} : { weight: l.weight }),
        ...(l.max_requests_per_second === undefined ? {} : { maxRequestsPerSecond: l.max_requests_per_second }),
        ...(l.max_in_flight === undefined ? {} : { maxInFlight: l.max_in_flight }),
      },
    })),
  );
}

export function coreHashKey(k: HashKey): HashKeySpec {
  switch (k.kind) {
    case 'header':
      return { header: k.name };
    case 'cookie':
      return { cookie: k.name };
    case 'source_ip':
      return { sourceIp: true };
    case 'path':
      return { path: true };
  }
}

/** `node`: where this Meridian runs (config `node:`), for zone-aware routing. */
export function coreClusterOptions(c: ClusterConfig, clock: Clock, rng: Rng, node: Partial<Pick<NodeConfig, 'region' | 'zone'>> = {}): ClusterOptions {
  const od = c.outlier_detection;
  const ss = c.slow_start;
  return {
    policy: c.policy,
    clock,
    rng,
    latencyTauMs: c.peak_ewma.decay,
    leastRequest: { choiceCount: c.least_request.choice_count, activeRequestBias: c.least_request.active_request_bias },
    peakEwma: { penaltyMs: c.peak_ewma.penalty },
    prequal: { probesPerRequest: c.prequal.probes, maxPool: c.prequal.pool, maxAgeMs: c.prequal.max_age, rifQuantile: c.prequal.rif_quantile },
    predictive: { candidates: c.predictive.candidates, forgetting: c.predictive.forgetting },
    ringHash: { minRingSize: c.ring_hash.min_ring_size, maxRingSize: c.ring_hash.max_ring_size },
    maglev: { tableSize: c.maglev.table_size },
    ...(c.hash?.bounded_load === undefined ? {} : { boundedLoad: c.hash.bounded_load }),
    ...(c.health_check
      ? { activeChecks: { healthyThreshold: c.health_check.healthy_threshold, unhealthyThreshold: c.health_check.unhealthy_threshold } }
      : {}),
    ...(od?.enabled ? { outlierDetection: coreOutlierOptions(od) } : {}),
    connectFailureEjection: {
      consecutiveFailures: c.connect_failure_ejection.consecutive_failures,
      baseEjectionMs: c.connect_failure_ejection.base_ejection_time,
      maxEjectionMs: c.connect_failure_ejection.max_ejection_time,
    },
    panicThresholdPercent: c.panic_threshold,
    overprovisioningFactor: c.overprovisioning_factor,
    local: { ...(node.region === undefined ? {} : { region: node.region }), ...(node.zone === undefined ? {} : { zone: node.zone }) },
    zoneAware: { minClusterSize: c.zone_aware.min_cluster_size, ...(c.zone_aware.callers === undefined ? {} : { callers: c.zone_aware.callers }) },
    ...(ss ? { slowStart: coreSlowStart(ss) } : {}),
  };
}

/** `outlier_detection` (of a cluster, or of a simulator scenario's `lb`) as the core's detector takes it. */
export function coreOutlierOptions(od: OutlierDetectionConfig): OutlierOptions {
  const sr = od.success_rate;
  return {
    consecutive5xx: od.consecutive_5xx,
    consecutiveGatewayErrors: od.consecutive_gateway_errors,
    intervalMs: od.interval,
    baseEjectionMs: od.base_ejection_time,
    maxEjectionMs: od.max_ejection_time,
    maxEjectionPercent: od.max_ejection_percent,
    ...(sr ? { successRate: { minimumHosts: sr.minimum_hosts, requestVolume: sr.request_volume, stdevFactor: sr.stdev_factor } } : {}),
  };
}

export function coreSlowStart(ss: SlowStartConfig): SlowStartOptions {
  return { windowMs: ss.window, aggression: ss.aggression, minWeightPercent: ss.min_weight_percent };
}

/** A core Cluster for a cluster config. */
export function buildCluster(c: ClusterConfig, clock: Clock, rng: Rng, node: Partial<Pick<NodeConfig, 'region' | 'zone'>> = {}): Cluster {
  return new Cluster(c.name, coreEndpoints(c), coreClusterOptions(c, clock, rng, node));
}

/**
 * `retries` as the request lifecycle reads it: the conditions of `retry_on` expanded
 * (Envoy's names: `5xx` covers connect failures, resets and every 5xx; `gateway_error`
 * connect failures, resets, timeouts and 502-504). The proxy and the simulator both
 * build their rules here.
 */
export function coreRetryRules(r: { readonly attempts: number; readonly retry_on: readonly RetryOn[]; readonly per_try_timeout?: number | undefined }): RetryRules {
  const on = new Set<RetryOn>(r.retry_on);
  const statuses = new Set<number>();
  for (let s = 500; s <= 599; s++) {
    if (on.has('5xx') || on.has(s) || (on.has('gateway_error') && (s === 502 || s === 503 || s === 504))) statuses.add(s);
  }
  return {
    attempts: r.attempts,
    onConnectFailure: on.has('connect_failure') || on.has('gateway_error') || on.has('5xx'),
    onReset: on.has('reset') || on.has('gateway_error') || on.has('5xx'),
    onTimeout: on.has('timeout') || on.has('gateway_error'),
    statuses,
    grpcStatuses: new Set(Object.entries(GRPC_RETRY_STATUSES).flatMap(([name, code]) => (on.has(name as RetryOn) ? [code] : []))),
    perTryTimeoutMs: r.per_try_timeout,
  };
}
