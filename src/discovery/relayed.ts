/**
 * A worker's discovery (`workers` > 1): no sources of its own. The primary asks every source
 * once for the whole pool and sends each set it applies, numbered, to every worker; a worker
 * applies it through the same path its own sources would (applyDiscovered). So all workers
 * balance over the same set, and DNS servers and the file system see one client per node,
 * as Envoy's main thread resolves for its workers. See docs/config.md, "Discovery with workers".
 */
import type { Logger } from 'pino';
import type { DiscoveryStatus } from '../admin/types.js';
import type { Config } from '../config/index.js';
import type { Endpoint } from '../core/types.js';
import { applyDiscovered, type ClusterDiscovery, type DiscoveredCluster, type PreparedSets } from './discovery.js';

/** One cluster's discovered set as the primary applied it; `version` counts the sets it sent for the cluster. */
export interface RelayedSet {
  readonly cluster: string;
  readonly endpoints: readonly Endpoint[];
  readonly version: number;
}

export interface RelayedDiscoveryOptions {
  readonly log: Logger;
  readonly runtime: () => { readonly config: Config; readonly clusters: ReadonlyMap<string, DiscoveredCluster> };
  readonly afterApply: () => void;
}

class PreparedRelayed implements PreparedSets {
  readonly sets: ReadonlyMap<string, RelayedSet>;

  constructor(sets: ReadonlyMap<string, RelayedSet>) {
    this.sets = sets;
  }

  get count(): number {
    return this.sets.size;
  }

  endpoints(): Map<string, readonly Endpoint[]> {
    return new Map([...this.sets].map(([name, s]) => [name, s.endpoints]));
  }
}

export class RelayedDiscovery implements ClusterDiscovery {
  readonly #o: RelayedDiscoveryOptions;
  /** The latest set of every cluster the primary sent. */
  #sets = new Map<string, RelayedSet>();
  /** The primary's sets for the config a start or reload is about to build. */
  #staged = new Map<string, RelayedSet>();
  readonly #shadowWarned = new Map<string, string>();

  constructor(options: RelayedDiscoveryOptions) {
    this.#o = options;
  }

  /** The sets for the next prepare() (start, or a reload the primary asked for). */
  stage(sets: readonly RelayedSet[]): void {
    this.#staged = new Map(sets.map((s) => [s.cluster, s]));
  }

  /** A set the primary applied: in force here at once when the running config discovers that cluster. */
  receive(set: RelayedSet): void {
    const seen = this.#sets.get(set.cluster);
    // IPC keeps order; a reload's staged set may still be newer than one in flight.
    if (seen !== undefined && seen.version >= set.version) return;
    this.#sets.set(set.cluster, set);
    const runtime = this.#o.runtime();
    const c = runtime.clusters.get(set.cluster);
    if (c === undefined || c.config.discovery === undefined) return;
    applyDiscovered(c, set.endpoints, this.#o.log, this.#shadowWarned);
    this.#o.afterApply();
  }

  prepare(config: Config): Promise<PreparedSets> {
    const sets = new Map<string, RelayedSet>();
    for (const c of config.clusters) {
      if (c.discovery === undefined) continue;
      // Staged for this config first; else the last the primary sent; else none yet (configured endpoints only).
      const s = this.#staged.get(c.name) ?? this.#sets.get(c.name);
      sets.set(c.name, s ?? { cluster: c.name, endpoints: [], version: 0 });
    }
    return Promise.resolve(new PreparedRelayed(sets));
  }

  commit(prepared: PreparedSets): void {
    const sets = (prepared as PreparedRelayed).sets;
    // Clusters the new config no longer discovers are forgotten.
    this.#sets = new Map(sets);
    this.#staged.clear();
    const runtime = this.#o.runtime();
    for (const [name, s] of sets) {
      const c = runtime.clusters.get(name);
      if (c !== undefined) applyDiscovered(c, s.endpoints, this.#o.log, this.#shadowWarned);
    }
    if (sets.size > 0) this.#o.afterApply();
  }

  stop(): void {
    this.#sets.clear();
  }

  /** The primary reports its sources' status (it runs them). */
  status(): DiscoveryStatus | undefined {
    return undefined;
  }

  discoveredIds(cluster: string): ReadonlySet<string> | undefined {
    const s = this.#sets.get(cluster);
    return s === undefined ? undefined : new Set(s.endpoints.map((e) => e.id));
  }

  /** The version of the set in force, by cluster (the primary tells a worker behind from one in step). */
  versions(): Record<string, number> {
    return Object.fromEntries([...this.#sets].map(([name, s]) => [name, s.version]));
  }
}
