import { isDeepStrictEqual } from 'node:util';
import { RateWindow } from '../core/rate-window.js';
import type { Clock } from '../core/clock.js';
import { Cluster } from '../core/cluster.js';
import { CircuitBreaker } from '../core/circuit-breaker.js';
import type { HashKeySpec } from '../core/hash-key.js';
import type { RetryRules } from '../core/request-lifecycle.js';
import { RetryBudget } from '../core/retry-budget.js';
import { mergeEndpoints } from '../core/discovery.js';
import type { Rng } from '../core/rng.js';
import { OverloadGate } from '../core/overload-gate.js';
import { coreOverloadOptions } from '../config/index.js';
import type { Endpoint } from '../core/types.js';
import { coreClusterOptions, coreEndpoints, coreHashKey, coreRetryRules, type ClusterConfig, type Config, type NodeConfig } from '../config/index.js';
import { TrustedProxies } from './client-ip.js';
import { RouteRateLimiter } from './rate-limits.js';
import { Router, routeKey } from './router.js';
import { UpstreamPools } from './upstream-pool.js';
import { ClusterTls, upstreamConnector } from './upstream-tls.js';
import { UpstreamH2Pools } from './upstream-h2.js';

/** One cluster's machinery: the core's balancing and health, plus the I/O around it. */
export interface ClusterRuntime {
  readonly name: string;
  readonly config: ClusterConfig;
  readonly core: Cluster;
  readonly breaker: CircuitBreaker;
  readonly budget: RetryBudget;
  readonly pools: UpstreamPools;
  /** TLS to the endpoints, files read at this config version (absent: plaintext). */
  readonly tls: ClusterTls | undefined;
  /** HTTP/2 to the endpoints (upstream_protocol h2 or auto); absent: HTTP/1.1 through `pools`. */
  readonly h2: UpstreamH2Pools | undefined;
  readonly hashKey: HashKeySpec | undefined;
  readonly retry: RetryRules;
  /** The node settings the core was built with (zone-aware routing depends on them). */
  readonly node: NodeConfig;
  /** Requests admitted per second, over the last 10 s: the load this region reports. */
  readonly load: RateWindow;
  /** Adaptive concurrency (`adaptive_concurrency`), when configured. */
  readonly overload: OverloadGate | undefined;
}

/**
 * Everything a request needs, for one config version. A request reads the runtime once
 * when it arrives and keeps it to the end, so a reload never changes the rules under a
 * request in flight; the next request sees the new version whole.
 */
export interface Runtime {
  readonly version: number;
  readonly config: Config;
  readonly clusters: ReadonlyMap<string, ClusterRuntime>;
  readonly routers: ReadonlyMap<string, Router>;
  /** Keyed by `${listener}/${route index}`. */
  readonly rateLimiters: ReadonlyMap<string, RouteRateLimiter>;
  /** Listeners with a `consistency: strong` global limit on some route: their requests wait for Redis first. */
  readonly strongLimits: ReadonlySet<string>;
  readonly trusted: TrustedProxies;
}

/** What, besides endpoints, decides how a cluster balances: a change rebuilds the core cluster. */
function balancingShape(c: ClusterConfig): unknown {
  const { endpoints: _e, localities: _l, discovery: _d, retries: _r, timeouts: _t, circuit_breaker: _cb, shared_health: _sh, ...rest } = c;
  return rest;
}

/** A cluster's endpoints: those configured, then those its discovery source found (see src/discovery). */
export function clusterEndpoints(c: ClusterConfig, discovered: readonly Endpoint[] | undefined): Endpoint[] {
  return mergeEndpoints(coreEndpoints(c), discovered ?? []).endpoints;
}

/** A runtime built off to the side, and what installing it changes in the running one. */
export interface RuntimeBuild {
  readonly runtime: Runtime;
  /**
   * Run once the runtime is the one in force, and not before: it moves the live clusters
   * it kept to their new endpoints and retires connection pools. It cannot fail, so a
   * reload refused before it (a port taken, a file that cannot be opened) changed nothing.
   */
  commit(): void;
}

/**
 * Build the runtime for `config` without changing `previous`. A cluster whose balancing
 * settings are unchanged keeps its core (`Cluster`: health, ejections, in-flight counts,
 * latency, by endpoint id) and its connection pools; the new endpoints reach them only at
 * `commit()`. The core is kept as the same object rather than copied, because requests in
 * flight on the previous runtime report their outcome to it: one writer per host keeps
 * their ends, ejections and outlier statistics in the live state.
 * `discovered`: each cluster's discovered endpoints, added to its configured ones.
 */
export function buildRuntime(config: Config, previous: Runtime | undefined, clock: Clock, rng: Rng, discovered?: ReadonlyMap<string, readonly Endpoint[]>): RuntimeBuild {
  const clusters = new Map<string, ClusterRuntime>();
  const effects: (() => void)[] = [];
  for (const c of config.clusters) {
    const old = previous?.clusters.get(c.name);
    const endpoints = clusterEndpoints(c, discovered?.get(c.name));
    let core: Cluster;
    if (old && isDeepStrictEqual(old.node, config.node) && isDeepStrictEqual(balancingShape(old.config), balancingShape(c))) {
      core = old.core;
      Cluster.checkEndpoints(c.name, endpoints);
      effects.push(() => core.setEndpoints(endpoints));
    } else {
      core = new Cluster(c.name, endpoints, coreClusterOptions(c, clock, rng, config.node));
    }
    // Re-read at every reload (renewed certificates); unchanged blocks keep their sessions and pools.
    const tls = ClusterTls.load(c, old?.tls);
    const poolOptions = {
      idleTimeoutMs: c.timeouts.idle,
      maxConnections: c.circuit_breaker.max_connections,
      connectTimeoutMs: c.timeouts.connect,
      tls,
    };
    let pools = old?.pools;
    if (pools === undefined || !pools.sameOptions(poolOptions)) {
      const replaced = pools;
      if (replaced !== undefined) effects.push(() => replaced.closeWhenIdle());
      pools = new UpstreamPools(poolOptions, (address) => upstreamConnector(tls, address));
    }
    const kept = pools;
    effects.push(() => kept.retain(new Set(endpoints.map((e) => e.address))));
    let h2 = old?.h2;
    if (c.upstream_protocol === 'http1') {
      if (h2 !== undefined) effects.push(() => old?.h2?.closeWhenIdle());
      h2 = undefined;
    } else {
      const h2Options = { ...poolOptions, protocol: c.upstream_protocol };
      // A new HTTP/1.1 pool set means new sessions too: `auto` endpoints fall back to the pools in force.
      if (h2 === undefined || !h2.sameOptions(h2Options) || pools !== old?.pools) {
        const replaced = h2;
        if (replaced !== undefined) effects.push(() => replaced.closeWhenIdle());
        h2 = new UpstreamH2Pools(h2Options, kept);
      }
      const keptH2 = h2;
      effects.push(() => keptH2.retain(new Set(endpoints.map((e) => e.address))));
    }
    const sameLimits = old !== undefined && isDeepStrictEqual(old.config.circuit_breaker, c.circuit_breaker);
    clusters.set(c.name, {
      name: c.name,
      config: c,
      node: config.node,
      load: old?.load ?? new RateWindow(),
      core,
      breaker:
        sameLimits && old
          ? old.breaker
          : new CircuitBreaker({
              maxConnections: c.circuit_breaker.max_connections,
              maxPendingRequests: c.circuit_breaker.max_pending_requests,
              maxRequests: c.circuit_breaker.max_requests,
              maxRetries: c.circuit_breaker.max_retries,
            }),
      budget:
        old && isDeepStrictEqual(old.config.retries.budget, c.retries.budget)
          ? old.budget
          : new RetryBudget({ percent: c.retries.budget.percent, minPerSecond: c.retries.budget.min_per_second }, clock.nowMs()),
      pools,
      tls,
      h2,
      hashKey: c.hash?.key ? coreHashKey(c.hash.key) : undefined,
      retry: coreRetryRules(c.retries),
      // A reload that leaves it as it was keeps the limit learnt and the requests queued.
      overload:
        c.adaptive_concurrency === undefined
          ? undefined
          : old?.overload !== undefined && isDeepStrictEqual(old.config.adaptive_concurrency, c.adaptive_concurrency)
            ? old.overload
            : new OverloadGate(coreOverloadOptions(c.adaptive_concurrency), rng),
    });
  }
  for (const [name, old] of previous?.clusters ?? []) {
    if (!clusters.has(name)) effects.push(() => (old.pools.closeWhenIdle(), old.h2?.closeWhenIdle()));
  }

  const routers = new Map<string, Router>();
  const rateLimiters = new Map<string, RouteRateLimiter>();
  for (const l of config.listeners) {
    if (l.protocol === 'tcp') continue;
    routers.set(l.name, new Router(l.routes, l.name));
    const before = previous?.config.listeners.find((p) => p.name === l.name);
    l.routes.forEach((r, i) => {
      if (!r.rate_limit) return;
      // A route the reload left as it was keeps its buckets: a reload is no way around a limit.
      const same = before?.protocol !== 'tcp' ? before?.routes.findIndex((p) => isDeepStrictEqual(p, r)) : -1;
      const kept = same === undefined || same < 0 ? undefined : previous?.rateLimiters.get(routeKey(l.name, same));
      rateLimiters.set(
        routeKey(l.name, i),
        kept ??
          new RouteRateLimiter(
            {
              requestsPerSecond: r.rate_limit.requests_per_second,
              per: r.rate_limit.per,
              ...(r.rate_limit.burst === undefined ? {} : { burst: r.rate_limit.burst }),
              scope: r.rate_limit.scope,
              consistency: r.rate_limit.consistency,
              onUnavailable: r.rate_limit.on_unavailable,
            },
            clock.nowMs(),
            routeKey(l.name, i),
          ),
      );
    });
  }
  return {
    runtime: {
      version: (previous?.version ?? 0) + 1,
      config,
      clusters,
      routers,
      rateLimiters,
      strongLimits: new Set([...rateLimiters.values()].filter((r) => r.strong).map((r) => r.key.slice(0, r.key.lastIndexOf('/')))),
      trusted: new TrustedProxies(config.trusted_proxies),
    },
    commit: () => {
      for (const effect of effects) effect();
    },
  };
}
