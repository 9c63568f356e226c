/**
 * One node's membership of a fleet: the Redis mechanism behind global rate limits,
 * shared control, shared health and the member list. The decisions it feeds (bucket
 * reconciliation, version order, votes) are src/core's; this module only moves state
 * between this node and Redis, and degrades to this node alone when Redis is away
 * (docs/fleet.md, "Faults").
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { SyncConfig } from '../config/index.js';
import { fleetEjections, type FleetHealthRule, type HealthReport } from '../core/fleet-health.js';
import { FleetTally, type NodeCount } from '../core/fleet-tally.js';
import type { TakeResult } from '../core/token-bucket.js';
import { VersionedOverrides } from '../core/versioned-overrides.js';
import { FleetMetrics, type NodeSeen } from './fleet-metrics.js';
import { RedisLink } from './redis-link.js';
import { CONTROL, HEALTH, HEARTBEAT, LEAVE, TAKE_TOKEN, TALLY } from './scripts.js';

/** An operator's change that every node applies. `null` restores what the config says. */
export type ControlChange =
  | { readonly kind: 'drain'; readonly cluster: string; readonly endpoint: string; readonly draining: boolean }
  | { readonly kind: 'weight'; readonly cluster: string; readonly endpoint: string; readonly weight: number | null }
  | { readonly kind: 'region'; readonly region: string; readonly override: 'up' | 'down' | null };

/** A `consistency: local` limit as the fleet reconciles it: this node's bucket and what it admitted. */
export interface LocalLimit {
  readonly key: string;
  /** Requests this node admitted under the limit since it started (never decreases). */
  admitted(): number;
  /** Take `n` tokens for requests other nodes admitted. */
  debit(n: number): void;
}

/** A cluster whose health the fleet shares (`shared_health`), as the fleet reads and sets it. */
export interface SharedHealthCluster {
  readonly name: string;
  readonly rule: FleetHealthRule;
  endpoints(): string[];
  /** Endpoints this node's own checks fail or its own outlier detection has ejected. */
  localBad(): Set<string>;
  /** Take out exactly these endpoints on the fleet's word (and return the others). */
  apply(out: ReadonlySet<string>): void;
}

export interface FleetMember {
  readonly node: string;
  readonly region: string;
  readonly version: string;
  /** A digest of the node's config: nodes running different configs show different ones. */
  readonly config: string;
  readonly lastSeen: string;
  readonly ageMs: number;
  readonly self: boolean;
}

export interface FleetView {
  readonly node: string;
  readonly region: string;
  readonly redis: 'up' | 'down';
  readonly nodes: readonly FleetMember[];
  /** Shared-health votes by cluster, endpoint: how many nodes judge it bad; and what the fleet took out here. */
  readonly health: Readonly<Record<string, { readonly votes: Readonly<Record<string, number>>; readonly ejected: readonly string[] }>>;
}

export interface FleetOptions {
  readonly sync: SyncConfig;
  readonly defaultRegion: string | undefined;
  readonly log: Logger;
  readonly registry: Registry;
  /** A digest of the config in force, published with each heartbeat. */
  readonly configDigest: () => string;
  /** Apply a change that came from the fleet (or from Redis at start and after an outage). */
  readonly applyControl: (change: ControlChange) => void;
  /** Another node asked the fleet to reload its configs. */
  readonly reload: (origin: string) => void;
}

/** The Meridian version each node reports: the package's, read once. */
const VERSION = ((): string => {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();

export class Fleet {
  readonly node: string;
  readonly region: string;
  readonly metrics: FleetMetrics;
  readonly #o: FleetOptions;
  readonly #sync: SyncConfig;
  readonly #link: RedisLink;
  readonly #boot = randomBytes(6).toString('hex');
  readonly #overrides = new VersionedOverrides<ControlChange>();
  readonly #tallies = new Map<string, FleetTally>();
  #local: readonly LocalLimit[] = [];
  #members: FleetMember[] = [];
  /** performance.now() at the last heartbeat answer: ages grow between beats. */
  #membersAt = 0;
  #timers: NodeJS.Timeout[] = [];
  #tallying = false;
  #onFirstSync: (() => void) | undefined;
  #health: readonly SharedHealthCluster[] = [];
  /** The last reports read and the endpoints taken out, by cluster: for /api/fleet. */
  readonly #healthSeen = new Map<string, { reports: HealthReport[]; out: ReadonlySet<string> }>();
  /** Clusters with a health sync running, and whether another is wanted after it. */
  readonly #healthBusy = new Map<string, { again: boolean; announce: boolean }>();
  readonly #keys: { nodes: string; info: string; version: string; control: string; controlChannel: string; reloadChannel: string; healthChannel: string };

  constructor(o: FleetOptions) {
    this.#o = o;
    this.#sync = o.sync;
    this.node = o.sync.node ?? hostname();
    this.region = o.sync.region ?? o.defaultRegion ?? '';
    this.metrics = new FleetMetrics(o.registry);
    this.metrics.setLiveSource(() => this.view().nodes.map((n): NodeSeen => ({ node: n.node, region: n.region, version: n.version, ageMs: n.ageMs })));
    const p = o.sync.key_prefix;
    this.#keys = {
      nodes: `{${p}:fleet}:nodes`,
      info: `{${p}:fleet}:info`,
      version: `{${p}:fleet}:control-version`,
      control: `{${p}:fleet}:control`,
      controlChannel: `${p}:control`,
      reloadChannel: `${p}:reload`,
      healthChannel: `${p}:health`,
    };
    this.#link = new RedisLink(o.sync, o.log, {
      up: (resync) => {
        this.metrics.setUp(true);
        void this.#resync(resync);
      },
      down: () => {
        this.metrics.setUp(false);
        // Alone again: this node's own judgement is all it has, until Redis returns.
        for (const c of this.#health) c.apply(new Set());
        this.#healthSeen.clear();
      },
    });
    this.#link.sub.on('message', (channel: string, message: string) => this.#message(channel, message));
  }

  /**
   * Connect and start the timers. Resolves once the first resync is done (stored control
   * changes applied, tallies and members read), or after `connectMs` if Redis is not there:
   * a node serves without Redis rather than wait for it.
   */
  async start(connectMs: number): Promise<void> {
    const synced = new Promise<void>((resolve) => (this.#onFirstSync = resolve));
    this.#link.connect();
    void this.#link.sub.subscribe(this.#keys.controlChannel, this.#keys.reloadChannel, this.#keys.healthChannel).catch(() => {});
    this.#timers.push(setInterval(() => void this.#heartbeat(), this.#sync.heartbeat_interval));
    this.#timers.push(
      setInterval(() => {
        void this.#tally();
        for (const c of this.#health) this.#syncHealth(c.name, false);
      }, this.#sync.sync_interval),
    );
    for (const t of this.#timers) t.unref();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([synced, new Promise<void>((resolve) => (timer = setTimeout(resolve, connectMs)))]);
    clearTimeout(timer);
  }

  async stop(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    if (this.#link.up) await this.#link.run(LEAVE, [this.#keys.nodes, this.#keys.info, this.node]).catch(() => {});
    await this.#link.close();
  }

  get up(): boolean {
    return this.#link.up;
  }

  // ---- global rate limits ------------------------------------------------------------

  /**
   * One `consistency: strong` decision, atomic in Redis. 'unavailable' when Redis did
   * not answer within `command_timeout` (or is known to be down: then at once).
   */
  async take(key: string, ratePerSecond: number, burst: number): Promise<TakeResult | 'unavailable'> {
    try {
      const [ok, wait] = (await this.#link.run(TAKE_TOKEN, [`{${this.#sync.key_prefix}:rl:${key}}`, ratePerSecond, burst])) as [number, number];
      this.metrics.strong(ok === 1 ? 'admitted' : 'limited');
      return ok === 1 ? ADMITTED : { ok: false, retryAfterMs: wait };
    } catch {
      this.metrics.error('limit');
      this.metrics.strong('unavailable');
      return 'unavailable';
    }
  }

  /** The `consistency: local` limits in force (a reload replaces the list). */
  setLocalLimits(limits: readonly LocalLimit[]): void {
    this.#local = limits;
    for (const key of [...this.#tallies.keys()]) if (!limits.some((l) => l.key === key)) this.#tallies.delete(key);
  }

  /** Every sync interval: publish each local limit's count, debit what the others admitted. */
  async #tally(): Promise<void> {
    if (!this.#link.up || this.#tallying || this.#local.length === 0) return;
    this.#tallying = true;
    try {
      const expiry = Math.max(60_000, 10 * this.#sync.sync_interval);
      await Promise.all(
        this.#local.map(async (limit) => {
          let tally = this.#tallies.get(limit.key);
          if (tally === undefined) this.#tallies.set(limit.key, (tally = new FleetTally(this.node)));
          try {
            const flat = (await this.#link.run(TALLY, [`{${this.#sync.key_prefix}:tally:${limit.key}}`, this.node, `${this.#boot}:${limit.admitted()}`, expiry])) as string[];
            const others = tally.observe(countsOf(flat));
            if (others > 0) {
              limit.debit(others);
              this.metrics.debited(others);
            }
          } catch {
            this.metrics.error('tally');
            // Whatever the others admitted meanwhile is past: the next read starts afresh.
            tally.rebase();
          }
        }),
      );
    } finally {
      this.#tallying = false;
    }
  }

  // ---- membership --------------------------------------------------------------------

  view(): FleetView {
    const since = performance.now() - this.#membersAt;
    return {
      node: this.node,
      region: this.region,
      redis: this.#link.up ? 'up' : 'down',
      nodes: this.#members.map((m) => ({ ...m, ageMs: Math.round(m.ageMs + since) })),
      health: Object.fromEntries(
        [...this.#healthSeen].map(([name, seen]) => {
          const votes: Record<string, number> = {};
          for (const r of seen.reports) for (const id of r.bad) votes[id] = (votes[id] ?? 0) + 1;
          return [name, { votes, ejected: [...seen.out].sort() }];
        }),
      ),
    };
  }

  // ---- shared health -----------------------------------------------------------------

  /** The clusters with `shared_health` in the config in force (a reload replaces the list). */
  setHealthClusters(clusters: readonly SharedHealthCluster[]): void {
    this.#health = clusters;
    for (const name of [...this.#healthSeen.keys()]) if (!clusters.some((c) => c.name === name)) this.#healthSeen.delete(name);
  }

  /** This node's own judgement of `cluster` changed: tell the fleet now, not at the next tick. */
  healthChanged(cluster: string): void {
    this.#syncHealth(cluster, true);
  }

  /**
   * Publish this node's bad endpoints of `name`, read every live node's, and take out
   * what the vote says. One at a time per cluster; a request made meanwhile runs after.
   */
  #syncHealth(name: string, announce: boolean): void {
    const busy = this.#healthBusy.get(name);
    if (busy !== undefined) {
      busy.again = true;
      busy.announce ||= announce;
      return;
    }
    const cluster = this.#health.find((c) => c.name === name);
    if (cluster === undefined || !this.#link.up) return;
    const state = { again: false, announce: false };
    this.#healthBusy.set(name, state);
    const local = cluster.localBad();
    const stale = 5 * this.#sync.sync_interval;
    this.#link.run(HEALTH, [`{${this.#sync.key_prefix}:health:${name}}`, this.node, JSON.stringify([...local]), Math.max(60_000, 2 * stale), stale, announce ? this.#keys.healthChannel : ''])
      .then((flat) => {
        const reports: HealthReport[] = [];
        const list = flat as string[];
        for (let i = 0; i + 1 < list.length; i += 2) reports.push({ node: list[i] as string, bad: parseList(list[i + 1] as string) });
        const out = fleetEjections(reports, local, cluster.endpoints(), cluster.rule);
        cluster.apply(out);
        this.#healthSeen.set(name, { reports, out });
      })
      .catch(() => this.metrics.error('health'))
      .finally(() => {
        this.#healthBusy.delete(name);
        if (state.again) this.#syncHealth(name, state.announce);
      });
  }

  async #heartbeat(): Promise<void> {
    if (!this.#link.up) return;
    const info = JSON.stringify({ region: this.region, version: VERSION, config: this.#o.configDigest() });
    try {
      const out = (await this.#link.run(HEARTBEAT, [this.#keys.nodes, this.#keys.info, this.node, info, 3 * this.#sync.heartbeat_interval])) as string[];
      const now = Number(out[0]);
      const members: FleetMember[] = [];
      for (let i = 1; i + 2 < out.length; i += 3) {
        const seen = Number(out[i + 1]);
        const inf = parseInfo(out[i + 2] as string);
        members.push({ node: out[i] as string, region: inf.region, version: inf.version, config: inf.config, lastSeen: new Date(seen).toISOString(), ageMs: Math.max(0, now - seen), self: out[i] === this.node });
      }
      this.#members = members;
      this.#membersAt = performance.now();
    } catch {
      this.metrics.error('heartbeat');
    }
  }

  // ---- shared control ----------------------------------------------------------------

  /**
   * A change made on this node (already applied here): stamped with the fleet's next
   * version, kept in Redis and announced. Undefined when Redis could not take it: the
   * change then holds on this node only, and the caller says so.
   */
  async publish(change: ControlChange): Promise<number | undefined> {
    const field = fieldOf(change);
    try {
      const version = Number(await this.#link.run(CONTROL, [this.#keys.version, this.#keys.control, field, JSON.stringify(change), this.#keys.controlChannel]));
      this.#overrides.offer(field, version, change);
      this.metrics.control('sent');
      return version;
    } catch {
      this.metrics.error('control');
      return undefined;
    }
  }

  /** Every change the fleet holds, oldest first: re-applied after a reload rebuilt the clusters. */
  controls(): ControlChange[] {
    return this.#overrides.entries().map((e) => e.value);
  }

  /** Ask every other node to reload its config; false when Redis could not take the message. */
  async announceReload(): Promise<boolean> {
    try {
      await this.#link.cmd.publish(this.#keys.reloadChannel, this.node);
      return true;
    } catch {
      this.metrics.error('control');
      return false;
    }
  }

  #message(channel: string, message: string): void {
    if (channel === this.#keys.reloadChannel) {
      if (message !== this.node) this.#o.reload(message);
      return;
    }
    if (channel === this.#keys.controlChannel) this.#offer(message);
    // Another node's judgement changed: read the reports again now.
    if (channel === this.#keys.healthChannel && message !== this.node) for (const c of this.#health) this.#syncHealth(c.name, false);
  }

  /** One stored or announced change, "version json": applied if newer than what its target holds. */
  #offer(message: string): void {
    const space = message.indexOf(' ');
    const version = Number(message.slice(0, space));
    let change: ControlChange;
    try {
      change = JSON.parse(message.slice(space + 1)) as ControlChange;
    } catch {
      return;
    }
    if (!Number.isInteger(version)) return;
    if (!this.#overrides.offer(fieldOf(change), version, change)) {
      this.metrics.control('stale');
      return;
    }
    this.metrics.control('applied');
    this.#o.applyControl(change);
  }

  /** On connect, and after an outage: what the fleet decided meanwhile, the member list, fresh tallies. */
  async #resync(afterOutage: boolean): Promise<void> {
    if (afterOutage) for (const t of this.#tallies.values()) t.rebase();
    await this.#heartbeat();
    try {
      const all = (await this.#link.cmd.hvals(this.#keys.control)).sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
      for (const m of all) this.#offer(m);
    } catch {
      this.metrics.error('control');
    }
    this.#onFirstSync?.();
    this.#onFirstSync = undefined;
  }
}

const ADMITTED: TakeResult = { ok: true };

function fieldOf(c: ControlChange): string {
  return JSON.stringify(c.kind === 'region' ? [c.kind, c.region] : [c.kind, c.cluster, c.endpoint]);
}

function countsOf(flat: readonly string[]): NodeCount[] {
  const out: NodeCount[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const v = flat[i + 1] as string;
    const colon = v.lastIndexOf(':');
    out.push({ node: flat[i] as string, boot: v.slice(0, colon), count: Number(v.slice(colon + 1)) });
  }
  return out;
}

function parseInfo(s: string): { region: string; version: string; config: string } {
  try {
    const o = JSON.parse(s) as Record<string, unknown>;
    return { region: String(o['region'] ?? ''), version: String(o['version'] ?? ''), config: String(o['config'] ?? '') };
  } catch {
    return { region: '', version: '', config: '' };
  }
}

function parseList(s: string): string[] {
  try {
    const v = JSON.parse(s) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}
