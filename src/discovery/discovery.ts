/**
 * Every cluster's discovery source, kept in step with the config, and the one place a
 * discovered set reaches a cluster: the same `Cluster.setEndpoints` a reload calls, with
 * the cluster's configured endpoints first. So hosts present before and after keep their
 * health and latency history, new ones enter slow start (not under hash policies), and
 * removed ones take no new requests while those in flight finish; their connection pools
 * close once idle.
 *
 * Life cycle, around a config (start or reload):
 *   prepare(config)  asks every new source once (an unchanged one keeps running as it is);
 *   buildRuntime(..., prepared.endpoints())  builds the sets in, as a reload builds endpoints;
 *   commit(prepared) starts the new sources' schedules and stops the ones the config dropped.
 * A reload refused after prepare() leaves nothing behind: a prepared source starts nothing.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { AcceptResult, DiscoveryStatus } from '../admin/types.js';
import { coreEndpoints, type ClusterConfig, type Config } from '../config/index.js';
import type { Clock } from '../core/clock.js';
import { mergeEndpoints } from '../core/discovery.js';
import type { Endpoint } from '../core/types.js';
import { type ChangeResult, type RefreshResult, SourceRunner } from './source-runner.js';

export interface DiscoveryMetrics {
  discoveryRefresh(cluster: string, result: RefreshResult): void;
  discoveryChange(cluster: string, result: ChangeResult): void;
}

/**
 * What discovery needs of a cluster in force (the proxy's runtime has it): the configured
 * endpoints that come first, the balancer a set goes to, and the pools that let go of
 * endpoints no longer in it. Declared here so that discovery does not depend on the proxy.
 */
export interface DiscoveredCluster {
  readonly config: ClusterConfig;
  readonly core: { setEndpoints(endpoints: readonly Endpoint[]): void };
  readonly pools: { retain(addresses: ReadonlySet<string>): void };
}

export interface DiscoveryOptions {
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: DiscoveryMetrics;
  /** The runtime in force now: sets are applied to its clusters. */
  readonly runtime: () => { readonly clusters: ReadonlyMap<string, DiscoveredCluster> };
  /** After a set was applied outside a reload (health checkers pick up new hosts, metrics forget old ones). */
  readonly afterApply: () => void;
  /** Every set applied, as found (without the configured endpoints): a worker pool's primary sends it to its workers. */
  readonly relay?: (cluster: string, discovered: readonly Endpoint[]) => void;
}

/** Each cluster's discovered endpoints for a config, ready for buildRuntime and then commit(). */
export interface PreparedSets {
  /** How many clusters of the config have a discovery source. */
  readonly count: number;
  endpoints(): Map<string, readonly Endpoint[]>;
}

/** What a Meridian process needs of discovery: its own sources (Discovery) or its primary's sets (RelayedDiscovery). */
export interface ClusterDiscovery {
  prepare(config: Config): Promise<PreparedSets>;
  commit(prepared: PreparedSets): void;
  stop(): void;
  status(cluster: string): DiscoveryStatus | undefined;
  /** Ids of the endpoints a cluster's source found (shown as discovered). */
  discoveredIds(cluster: string): ReadonlySet<string> | undefined;
}

/**
 * Make `discovered` a cluster's discovered endpoints, after its configured ones: the path a
 * reload takes. `shadowWarned` remembers, by cluster, the ids already warned about.
 */
export function applyDiscovered(c: DiscoveredCluster, discovered: readonly Endpoint[], log: Logger, shadowWarned: Map<string, string>): void {
  const { endpoints, shadowed } = mergeEndpoints(coreEndpoints(c.config), discovered);
  const key = shadowed.join(',');
  if (shadowed.length > 0 && shadowWarned.get(c.config.name) !== key) {
    log.warn({ cluster: c.config.name, endpoints: shadowed }, 'discovery: endpoints found that the config already lists; the configured ones are kept');
  }
  shadowWarned.set(c.config.name, key);
  c.core.setEndpoints(endpoints);
  c.pools.retain(new Set(endpoints.map((e) => e.address)));
}

/** Sources for a config, asked once, not yet running. */
export class PreparedDiscovery implements PreparedSets {
  readonly runners: ReadonlyMap<string, SourceRunner>;

  constructor(runners: ReadonlyMap<string, SourceRunner>) {
    this.runners = runners;
  }

  get count(): number {
    return this.runners.size;
  }

  /** Each cluster's discovered endpoints now, for buildRuntime. */
  endpoints(): Map<string, readonly Endpoint[]> {
    const out = new Map<string, readonly Endpoint[]>();
    for (const [name, r] of this.runners) out.set(name, r.endpoints ?? []);
    return out;
  }
}

export class Discovery implements ClusterDiscovery {
  readonly #o: DiscoveryOptions;
  #runners = new Map<string, SourceRunner>();
  /** Discovered ids a configured endpoint shadows, by cluster: warned about once per set. */
  #shadowWarned = new Map<string, string>();

  constructor(options: DiscoveryOptions) {
    this.#o = options;
  }

  /** The sets applied last, by cluster (what a worker that starts now is given). */
  current(): Map<string, readonly Endpoint[]> {
    const out = new Map<string, readonly Endpoint[]>();
    for (const [name, r] of this.#runners) if (r.endpoints !== undefined) out.set(name, r.endpoints);
    return out;
  }

  async prepare(config: Config): Promise<PreparedDiscovery> {
    const runners = new Map<string, SourceRunner>();
    const fresh: SourceRunner[] = [];
    for (const c of config.clusters) {
      if (c.discovery === undefined) continue;
      const running = this.#runners.get(c.name);
      if (running !== undefined && isDeepStrictEqual(running.config, c.discovery)) {
        runners.set(c.name, running);
        continue;
      }
      const r = new SourceRunner(c.name, c.discovery, this.#o.clock, this.#o.log, {
        apply: (cluster, endpoints) => this.#apply(cluster, endpoints),
        refreshed: (cluster, result) => this.#o.metrics.discoveryRefresh(cluster, result),
        changed: (cluster, result) => this.#o.metrics.discoveryChange(cluster, result),
      });
      runners.set(c.name, r);
      fresh.push(r);
    }
    await Promise.all(fresh.map((r) => r.refresh()));
    return new PreparedDiscovery(runners);
  }

  /** The prepared sources are now the running ones (the runtime built with their sets is in force). */
  commit(prepared: PreparedDiscovery): void {
    for (const [name, r] of this.#runners) if (prepared.runners.get(name) !== r) r.stop();
    this.#runners = new Map(prepared.runners);
    for (const r of this.#runners.values()) {
      // A running source may have applied a change to the previous runtime while the new one
      // was being built from its older set: apply its current set again (no change if none).
      const current = r.endpoints;
      if (current !== undefined) this.#apply(r.cluster, current);
      r.start();
    }
  }

  stop(): void {
    for (const r of this.#runners.values()) r.stop();
    this.#runners.clear();
  }

  status(cluster: string): DiscoveryStatus | undefined {
    return this.#runners.get(cluster)?.status();
  }

  /** Apply a cluster's held or damped change now (POST /api/clusters/{cluster}/discovery/accept). */
  accept(cluster: string): AcceptResult {
    const r = this.#runners.get(cluster);
    if (r === undefined) return 'no_discovery';
    return r.accept() ? 'ok' : 'nothing_pending';
  }

  discoveredIds(cluster: string): ReadonlySet<string> | undefined {
    const eps = this.#runners.get(cluster)?.endpoints;
    return eps === undefined ? undefined : new Set(eps.map((e) => e.id));
  }

  #apply(cluster: string, discovered: readonly Endpoint[]): void {
    this.#o.relay?.(cluster, discovered);
    const c = this.#o.runtime().clusters.get(cluster);
    if (c === undefined) return;
    applyDiscovered(c, discovered, this.#o.log, this.#shadowWarned);
    this.#o.afterApply();
  }
}
