import { createHash, randomInt } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Socket, type Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import pino, { type Logger } from 'pino';
import type { AcceptResult, AdminTarget, ChangeResult, ClusterState, OverloadView, ReloadResult } from '../admin/types.js';
import type { OverloadGate } from '../core/overload-gate.js';
import { ProxyMetrics } from '../admin/metrics.js';
import { causeOf, ErrorReporter } from '../admin/error-reporter.js';
import { createAdminServer } from '../admin/server.js';
import type { Clock } from '../core/clock.js';
import type { Cluster } from '../core/cluster.js';
import type { BalancerStats } from '../core/types.js';
import { SeededRng } from '../core/rng.js';
import { OUTLIER_DEFAULTS } from '../core/outlier-detector.js';
import { countOf } from '../config/describe.js';
import { loadConfigFile, type Config, type HttpListenerConfig, type TcpListenerConfig } from '../config/index.js';
import { type ClusterDiscovery, Discovery } from '../discovery/discovery.js';
import { RelayedDiscovery } from '../discovery/relayed.js';
import { ActiveHealthChecker } from '../health/active-checker.js';
import { clusterCheckTarget } from './cluster-check-target.js';
import { type GlobalLayer, syncGlobalLayer } from '../global/global-layer.js';
import { forward, type ExchangeRecord, type ListenerContext } from '../proxy/forward.js';
import { buildRuntime, type Runtime } from '../proxy/runtime.js';
import { createHttpServer, type AnyServerRequest, type AnyServerResponse, type ListenerServer } from '../proxy/http-server.js';
import { ConnectionLimits } from '../proxy/connection-limits.js';
import { LOCAL_REPLIES, rawLocalReply, type LocalReplyCode } from '../proxy/errors.js';
import { PrequalProber } from '../proxy/prequal-probes.js';
import { TcpProxy } from '../proxy/tcp-proxy.js';
import { SniCertificates } from '../proxy/tls.js';
import { upstreamTlsOptions } from '../proxy/upstream-tls.js';
import { handleUpgrade, UpgradeTracker } from '../proxy/upgrade.js';
import { decideStrongLimit } from '../proxy/global-limits.js';
import { Fleet, type ControlChange, type FleetView, type LocalLimit, type SharedHealthCluster } from '../fleet/fleet.js';
import { fleetRoutes } from '../fleet/fleet-routes.js';
import { listenOptions } from './listen.js';
import { wallClock } from '../proxy/wall-clock.js';
import { keepStringPrototypeFast } from '../shared/string-prototype.js';

export { wallClock };

export interface MeridianOptions {
  /** Where the config came from, for reloads; omit to allow only `reload(config)`. */
  readonly configPath?: string;
  /** Application log (not the access log). Default: pino to stderr. */
  readonly logger?: Logger;
  /** Overrides the config's access_log (tests collect records here). */
  readonly onAccess?: (r: ExchangeRecord) => void;
  /** The admin token; default: the config's, overridden by MERIDIAN_ADMIN_TOKEN. */
  readonly adminToken?: string;
  readonly clock?: Clock;
  readonly seed?: number;
  /** false: no admin server (a worker process, whose primary serves the admin API). */
  readonly admin?: boolean;
  /**
   * 'external': run no active health checks here; their results arrive through
   * applyCheck() (a worker, whose primary probes once for all workers).
   */
  readonly activeChecks?: 'local' | 'external';
  /**
   * 'relayed': ask no discovery source here; the sets arrive through `relayedDiscovery`
   * (a worker, whose primary asks once for all workers).
   */
  readonly discovery?: 'local' | 'relayed';
}

interface Listening {
  readonly config: HttpListenerConfig;
  readonly ls: ListenerServer;
  readonly certs: SniCertificates | undefined;
  port: number;
}

interface TcpListening {
  readonly config: TcpListenerConfig;
  readonly proxy: TcpProxy;
  readonly port: number;
}

/**
 * Whether a listener's socket is the one `next` asks for: same address, and the same port
 * as configured or as bound (a config that names the port a `port: 0` listener got keeps it).
 */
function sameSocket(l: { readonly config: { readonly address: string; readonly port: number }; readonly port: number }, next: { readonly address: string; readonly port: number }): boolean {
  return l.config.address === next.address && (l.config.port === next.port || l.port === next.port);
}

/** A tcp listener a reload can keep as it is (anything else about it changed: a new one replaces it). */
function sameTcpListener(t: TcpListening, next: TcpListenerConfig): boolean {
  return sameSocket(t, next) && t.config.cluster === next.cluster && t.config.timeouts.idle === next.timeouts.idle;
}

/**
 * One Meridian process: HTTP listeners forwarding through the runtime of the current
 * config version, active health checkers, the admin server, reload and drain.
 */
export class Meridian implements AdminTarget {
  readonly metrics = new ProxyMetrics();
  readonly log: Logger;
  /** Errors absorbed to keep serving: counted, and logged at most once a minute per cause. */
  readonly #errors: ErrorReporter;
  readonly #o: MeridianOptions;
  readonly #clock: Clock;
  readonly #rng: SeededRng;
  #runtime: Runtime;
  #listeners = new Map<string, Listening>();
  #tcp = new Map<string, TcpListening>();
  /** tcp listeners a reload removed or replaced whose connections are still open: drain waits for them too. */
  readonly #retiredTcp = new Set<TcpProxy>();
  /** http listeners a reload removed or moved whose connections are still open: the drain deadline cuts them too. */
  readonly #retired = new Set<ListenerServer>();
  /** Client connections counted by listener, under the listener and process caps. */
  readonly #connections: ConnectionLimits;
  /** WebSocket (and other Upgrade) tunnels: long-lived, so drain waits for them, then closes them. */
  readonly #tunnels = new UpgradeTracker();
  #checkers: ActiveHealthChecker[] = [];
  readonly #discovery: ClusterDiscovery;
  /** Set for a worker: where its primary's discovered sets are handed in. */
  readonly relayedDiscovery: RelayedDiscovery | undefined;
  #subscribed = new WeakSet<Cluster>();
  /** Prequal's probe clients, one per `prequal` cluster core in force. */
  readonly #probers = new Map<Cluster, PrequalProber>();
  #admin: ReturnType<typeof createAdminServer> | undefined;
  /** The DNS steering layer (config.global); run by the process that serves admin, not by workers. */
  #global: GlobalLayer | undefined;
  #adminPort = 0;
  #accessLog: AccessLog | undefined;
  #inFlight = 0;
  /** Woken when #inFlight comes back to 0 (drain waits for it). */
  #idleWaiters: (() => void)[] = [];
  #draining = false;
  #stopped: Promise<void> | undefined;
  #started = false;
  /** The last reload asked for (they run in order). */
  #reloads: Promise<unknown> = Promise.resolve();
  /** This node's part in a fleet (`sync:`), run by the process that serves admin. */
  #fleet: Fleet | undefined;
  /** Cores whose health events the fleet hears of. */
  readonly #fleetWatched = new WeakSet<Cluster>();

  constructor(config: Config, options: MeridianOptions = {}) {
    this.#o = options;
    this.#clock = options.clock ?? wallClock;
    this.#rng = new SeededRng(options.seed ?? randomInt(2 ** 31));
    this.log = options.logger ?? pino({ base: null, timestamp: pino.stdTimeFunctions.isoTime, level: process.env['MERIDIAN_LOG_LEVEL'] ?? 'info' }, pino.destination(2));
    this.#errors = new ErrorReporter({ log: this.log, count: (component, cause) => this.metrics.internalError(component, cause) });
    this.#runtime = buildRuntime(config, undefined, this.#clock, this.#rng).runtime;
    this.metrics.setSource(() => this.clusters());
    this.metrics.setBalancerSource(() => this.balancerStats());
    this.#connections = new ConnectionLimits(config.max_connections, (listener, reason) => this.metrics.connectionRefused(listener, reason));
    this.metrics.setConnectionSource(() => this.#connections.openByListener(this.#runtime.config.listeners.map((l) => l.name)));
    const afterApply = (): void => {
      this.#forgetGoneEndpoints(this.#runtime);
      for (const c of this.#checkers) c.membershipChanged();
    };
    this.relayedDiscovery = options.discovery === 'relayed' ? new RelayedDiscovery({ log: this.log, runtime: () => this.#runtime, afterApply }) : undefined;
    this.#discovery = this.relayedDiscovery ?? new Discovery({ clock: this.#clock, log: this.log, metrics: this.metrics, runtime: () => this.#runtime, afterApply });
  }

  get config(): Config {
    return this.#runtime.config;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Bound ports by listener name (useful with port 0). */
  ports(): Record<string, number> {
    return Object.fromEntries([...[...this.#listeners].map(([name, l]) => [name, l.port] as const), ...[...this.#tcp].map(([name, t]) => [name, t.port] as const)]);
  }

  /**
   * The DNS steering layer. In a fleet, a region override made through it (the admin API's)
   * is applied here and then sent to every node, like a drain.
   */
  global(): GlobalLayer | undefined {
    const layer = this.#global;
    if (layer === undefined || this.#fleet === undefined) return layer;
    return new Proxy(layer, {
      get: (t, k) => {
        if (k === 'setRegionOverride') return (region: string, override: 'up' | 'down' | undefined) => this.#shared({ kind: 'region', region, override: override ?? null }) === 'ok';
        // The layer's own methods run on the layer itself (they use its private fields).
        const v: unknown = Reflect.get(t, k, t);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
  }

  /** This node's view of its fleet (`sync:`), as GET /api/fleet shows it; undefined alone. */
  fleetView(): FleetView | undefined {
    return this.#fleet?.view();
  }

  get adminPort(): number {
    return this.#adminPort;
  }

  async start(): Promise<void> {
    // Every module is loaded by now (ioredis's String subclass included): see string-prototype.ts.
    keepStringPrototypeFast();
    const config = this.#runtime.config;
    this.#accessLog = this.#openAccessLog(config);
    const discovered = await this.#discovery.prepare(config);
    if (discovered.count > 0) this.#runtime = buildRuntime(config, undefined, this.#clock, this.#rng, discovered.endpoints()).runtime;
    this.#discovery.commit(discovered);
    // Before the listeners: the first requests already find the fleet's limits and control changes.
    await this.#startFleet(config);
    for (const l of config.listeners) {
      if (l.protocol !== 'tcp') this.#listeners.set(l.name, await this.#listen(l));
      else this.#tcp.set(l.name, await this.#listenTcp(l));
    }
    this.#applyRuntimeSideEffects();
    await this.#syncGlobal(config);
    if (this.#o.admin !== false) {
      this.#admin = createAdminServer({
        target: this,
        metrics: this.metrics,
        ...adminToken(config, this.#o.adminToken),
        address: config.admin.address,
        port: config.admin.port,
        allowedHosts: config.admin.allowed_hosts,
        logger: this.log,
        ...(this.#fleet === undefined ? {} : { routes: fleetRoutes(this.#fleet, () => this.reload()) }),
      });
      this.#adminPort = (await this.#admin.listen()).port;
    }
    this.#started = true;
  }

  /**
   * An active health check's result made elsewhere (the primary, for workers): fed to the
   * endpoint's health state machine exactly as a local probe's would be. False when the
   * cluster or endpoint is not in the running config.
   */
  applyCheck(cluster: string, endpoint: string, ok: boolean, reason?: string): boolean {
    const c = this.#runtime.clusters.get(cluster);
    const host = c?.core.host(endpoint);
    if (c === undefined || host === undefined) return false;
    c.core.recordCheck(host, ok);
    this.metrics.healthCheck(cluster, endpoint, ok, reason);
    return true;
  }

  /** Verdicts reached elsewhere (the primary's, for a worker that just started): taken as they are. */
  assumeHealth(verdicts: readonly { readonly cluster: string; readonly endpoint: string; readonly healthy: boolean }[]): void {
    for (const v of verdicts) this.#runtime.clusters.get(v.cluster)?.core.assumeHealth(v.endpoint, v.healthy);
  }

  // ---- AdminTarget -----------------------------------------------------------------

  clusters(): ClusterState[] {
    return [...this.#runtime.clusters.values()].map((c) => {
      const discovery = this.#discovery.status(c.name);
      const found = this.#discovery.discoveredIds(c.name);
      return {
        name: c.name,
        policy: c.core.policy,
        inPanic: c.core.inPanic,
        localities: c.config.localities === undefined && c.config.discovery === undefined ? [] : c.core.localities(),
        loadRps: c.load.rate(this.#clock.nowMs()),
        endpoints: c.core.view().map((v) => {
          const pool = c.pools.stats(v.address);
          return { ...v, poolOpen: pool.open, poolIdle: pool.idle, ...(found?.has(v.id) === true ? { discovered: true as const } : {}) };
        }),
        ...(discovery === undefined ? {} : { discovery }),
        ...(c.overload === undefined ? {} : { overload: overloadView(c.overload, this.#clock.nowMs()) }),
      };
    });
  }

  ready(): boolean {
    return this.#started && !this.#draining;
  }

  acceptDiscovery(cluster: string): AcceptResult {
    if (!this.#runtime.clusters.has(cluster)) return 'no_cluster';
    // A worker's sets are decided by its primary, which serves the admin API.
    return this.#discovery instanceof Discovery ? this.#discovery.accept(cluster) : 'no_discovery';
  }

  drain(cluster: string, endpoint: string, draining: boolean): ChangeResult {
    return this.#shared({ kind: 'drain', cluster, endpoint, draining });
  }

  setWeight(cluster: string, endpoint: string, weight: number | null): ChangeResult {
    return this.#shared({ kind: 'weight', cluster, endpoint, weight });
  }

  /** A change made through this node's admin API: applied here, then (in a fleet) sent to every node. */
  #shared(change: ControlChange): ChangeResult {
    const result = this.#control(change);
    if (result === 'ok' && this.#fleet !== undefined) {
      void this.#fleet.publish(change).then((v) => {
        if (v === undefined) this.log.warn({ fleet: 'control', change }, 'fleet: Redis did not take the change: it holds on this node only');
      });
    }
    return result;
  }

  #control(change: ControlChange): ChangeResult {
    if (change.kind === 'region') return this.#global?.setRegionOverride(change.region, change.override ?? undefined) === true ? 'ok' : 'no_endpoint';
    const c = this.#runtime.clusters.get(change.cluster);
    if (!c) return 'no_cluster';
    const done = change.kind === 'drain' ? c.core.setDraining(change.endpoint, change.draining) : c.core.setWeight(change.endpoint, change.weight ?? undefined);
    return done ? 'ok' : 'no_endpoint';
  }

  /**
   * Re-read the config file and apply it; an invalid one is refused and the running one stays.
   * Reloads run one at a time: each builds on the runtime the one before it left in force.
   */
  reload(config?: Config): Promise<ReloadResult> {
    const result = this.#reloads.then(() => this.#reload(config));
    this.#reloads = result;
    return result;
  }

  async #reload(config: Config | undefined): Promise<ReloadResult> {
    let next = config;
    if (next === undefined) {
      if (this.#o.configPath === undefined) return { ok: false, errors: ['no config file to reload from'] };
      const r = await loadConfigFile(this.#o.configPath);
      if (!r.ok) {
        const errors = r.kind === 'invalid' ? r.errors : [r.message];
        this.metrics.reload(false);
        this.log.error({ errors }, 'reload refused: the running config stays in force');
        return { ok: false, errors };
      }
      next = r.config;
    }
    try {
      await this.#apply(next);
    } catch (e) {
      this.metrics.reload(false);
      const message = (e as Error).message;
      this.log.error({ err: message }, 'reload failed while applying; the running config stays in force');
      return { ok: false, errors: [message] };
    }
    this.metrics.reload(true);
    this.#attachFleet();
    const summary = `version ${this.#runtime.version}: ${countOf(next.listeners.length, 'listener')}, ${countOf(next.clusters.length, 'cluster')}`;
    this.log.info({ version: this.#runtime.version }, `config reloaded (${summary})`);
    return { ok: true, summary };
  }

  /**
   * Stop taking new connections, let requests in flight (tcp connections and tunnels
   * included) finish, telling keep-alive clients to close, then close everything. At the
   * deadline whatever is still open is cut, whatever it is: keep-alive connections, HTTP/2
   * sessions, tunnels, half-closed upgrades, requests whose upstream never answers. No
   * client can keep Meridian from stopping. A second call waits for the first.
   */
  drainAndStop(deadlineMs = this.#runtime.config.drain_timeout): Promise<void> {
    this.#stopped ??= this.#drain(deadlineMs);
    return this.#stopped;
  }

  async #drain(deadlineMs: number): Promise<void> {
    this.#draining = true;
    this.log.info({ inFlight: this.#inFlight, deadlineMs }, 'draining');
    for (const c of this.#checkers) c.stop();
    this.#discovery.stop();
    const closed = [...this.#listeners.values()].map((l) => closeServer(l.ls.server));
    for (const l of this.#listeners.values()) {
      l.ls.goaway(); // h2: GOAWAY, streams in flight finish
      l.ls.closeIdle();
    }
    const tcp = [...this.#tcp.values()].map((t) => t.proxy);
    await Promise.all(tcp.map((p) => p.stopAccepting()));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, deadlineMs)));
    const finished = Promise.all([this.#whenIdle(), ...[...tcp, ...this.#retiredTcp].map((p) => p.drained()), this.#tunnels.idle(deadlineMs)]);
    await Promise.race([finished, deadline]);
    clearTimeout(timer);
    for (const ls of [...[...this.#listeners.values()].map((l) => l.ls), ...this.#retired]) ls.closeAll();
    for (const p of [...tcp, ...this.#retiredTcp]) p.closeAll();
    this.#tunnels.closeAll();
    await Promise.all(closed);
    await this.#admin?.close();
    await this.#global?.close();
    await this.#fleet?.stop();
    for (const c of this.#runtime.clusters.values()) {
      c.pools.close();
      c.h2?.close();
    }
    for (const p of this.#probers.values()) p.close();
    this.#probers.clear();
    await closeAccessLog(this.#accessLog);
    this.log.info({ inFlight: this.#inFlight }, 'stopped');
  }

  async #startFleet(config: Config): Promise<void> {
    if (config.sync === undefined || this.#o.admin === false) return;
    const fleet = new Fleet({
      sync: config.sync,
      defaultRegion: config.node.region,
      log: this.log,
      registry: this.metrics.registry,
      configDigest: () => configDigest(this.#runtime.config),
      applyControl: (change) => {
        this.#control(change);
      },
      reload: (origin) => {
        this.log.info({ fleet: 'reload', origin }, 'fleet: reload announced by another node');
        void this.reload();
      },
    });
    this.#fleet = fleet;
    this.#attachFleet();
    await fleet.start(Math.max(1000, config.sync.command_timeout));
  }

  /**
   * Hand the runtime in force to the fleet: its strong global limits decide through Redis,
   * its local ones are reconciled; and the fleet's control changes, re-applied to clusters
   * a reload may have rebuilt.
   */
  #attachFleet(): void {
    const fleet = this.#fleet;
    if (fleet === undefined) return;
    const local: LocalLimit[] = [];
    for (const limiter of this.#runtime.rateLimiters.values()) {
      if (limiter.strong) limiter.globalTake = (key, rate, burst) => fleet.take(key, rate, burst);
      else if (limiter.reconciled) local.push({ key: limiter.key, admitted: () => limiter.admitted, debit: (n) => limiter.debit(this.#clock.nowMs(), n) });
    }
    fleet.setLocalLimits(local);
    const shared: SharedHealthCluster[] = [];
    for (const c of this.#runtime.clusters.values()) {
      const sh = c.config.shared_health;
      if (sh === undefined) {
        for (const h of c.core.hosts) c.core.setFleetEjected(h.endpoint.id, false);
        continue;
      }
      const core = c.core;
      shared.push({
        name: c.name,
        rule: { quorum: sh.quorum, maxEjectionPercent: c.config.outlier_detection?.max_ejection_percent ?? OUTLIER_DEFAULTS.maxEjectionPercent },
        endpoints: () => core.hosts.map((h) => h.endpoint.id),
        localBad: () => new Set(core.hosts.filter((h) => !h.health.activeHealthy || h.health.ejected || h.health.unreachable).map((h) => h.endpoint.id)),
        apply: (out) => {
          for (const h of core.hosts) core.setFleetEjected(h.endpoint.id, out.has(h.endpoint.id));
        },
      });
      if (!this.#fleetWatched.has(core)) {
        this.#fleetWatched.add(core);
        core.onEvent((e) => {
          if (e.type !== 'panic') fleet.healthChanged(c.name);
        });
      }
    }
    fleet.setHealthClusters(shared);
    for (const change of fleet.controls()) this.#control(change);
  }

  /** One request fewer in flight. */
  #release(): void {
    if (--this.#inFlight === 0 && this.#idleWaiters.length > 0) for (const w of this.#idleWaiters.splice(0)) w();
  }

  #whenIdle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Immediate stop, for tests. */
  async close(): Promise<void> {
    await this.drainAndStop(0);
  }

  // ---- internals -------------------------------------------------------------------

  async #syncGlobal(config: Config): Promise<void> {
    if (this.#o.admin === false) return;
    this.#global = await syncGlobalLayer(this.#global, config.global, { log: this.log, clock: this.#clock, rng: this.#rng, registry: this.metrics.registry, reportError: this.#errors.report });
  }

  /**
   * Apply `config` whole or not at all. Every step that can fail runs first, off to the side
   * (discovery's first answers, the new runtime, new listeners bound, certificates read, the
   * access log opened, the global layer), and a failure undoes those steps and leaves the
   * running config, its clusters and their endpoints exactly as they were. Then one swap
   * that cannot fail puts the new runtime in force (see docs/admin.md, "What a refused reload leaves").
   */
  async #apply(config: Config): Promise<void> {
    const previous = this.#runtime;
    const discovered = await this.#discovery.prepare(config);
    const { runtime, commit } = buildRuntime(config, previous, this.#clock, this.#rng, discovered.endpoints());
    // A listener bound before the swap serves the runtime it belongs to from its first request.
    let staged: Runtime | undefined = runtime;
    const serving = () => staged ?? this.#runtime;
    const wanted = new Map(config.listeners.filter((l): l is HttpListenerConfig => l.protocol !== 'tcp').map((l) => [l.name, l]));
    const wantedTcp = new Map(config.listeners.filter((l): l is TcpListenerConfig => l.protocol === 'tcp').map((l) => [l.name, l]));
    const opened: Listening[] = [];
    const openedTcp: TcpListening[] = [];
    const certSwaps = new Map<string, () => void>();
    const sameLog = isDeepStrictEqual(config.access_log, previous.config.access_log);
    let accessLog: AccessLog | undefined;
    try {
      for (const [name, l] of wanted) {
        const current = this.#listeners.get(name);
        if (current && sameSocket(current, l)) {
          if (current.certs) certSwaps.set(name, await current.certs.prepareReload());
          continue;
        }
        // Moved to another address on the same port: its old socket must close first (at the swap).
        if (current && l.port !== 0 && current.port === l.port) continue;
        opened.push(await this.#listen(l, serving));
      }
      for (const [name, l] of wantedTcp) {
        const current = this.#tcp.get(name);
        if (current && sameTcpListener(current, l)) continue;
        if (current && l.port !== 0 && current.port === l.port) continue;
        openedTcp.push(await this.#listenTcp(l, serving));
      }
      if (!sameLog) accessLog = this.#openAccessLog(config);
      await this.#syncGlobal(config); // last: a failure inside it leaves the layer as it was
    } catch (e) {
      staged = undefined;
      await Promise.all([
        ...opened.map((l) => {
          const closed = closeServer(l.ls.server);
          l.ls.closeAll();
          return closed;
        }),
        ...openedTcp.map(async (t) => {
          await t.proxy.stopAccepting();
          t.proxy.closeAll();
        }),
        closeAccessLog(accessLog),
      ]);
      // Binding registered the new caps under the listeners' names: the running ones' come back.
      for (const l of previous.config.listeners) this.#connections.listener(l.name, l.max_connections);
      throw e;
    }

    // The swap: nothing from here on refuses the reload.
    this.#runtime = runtime;
    staged = undefined;
    commit();
    this.#connections.setMax(config.max_connections);
    this.#discovery.commit(discovered);
    if (!sameLog) {
      void closeAccessLog(this.#accessLog);
      this.#accessLog = accessLog;
    }
    this.#forgetGoneEndpoints(runtime);
    for (const [name, l] of [...this.#listeners]) {
      const w = wanted.get(name);
      if (w && sameSocket(l, w)) {
        this.#refreshListener(l, w, certSwaps.get(name));
        continue;
      }
      // Removed (or moved): stop accepting; connections finish their requests on their own.
      this.#listeners.delete(name);
      this.#retired.add(l.ls);
      void closeServer(l.ls.server).then(() => this.#retired.delete(l.ls));
      l.ls.goaway();
      l.ls.closeIdle();
    }
    for (const l of opened) this.#listeners.set(l.config.name, l);
    for (const [name, t] of [...this.#tcp]) {
      const w = wantedTcp.get(name);
      if (w && sameTcpListener(t, w)) {
        this.#connections.listener(name, w.max_connections);
        continue;
      }
      // Removed or changed: stop accepting; open connections carry on to their end.
      this.#tcp.delete(name);
      void t.proxy.stopAccepting();
      this.#retiredTcp.add(t.proxy);
      void t.proxy.drained().then(() => this.#retiredTcp.delete(t.proxy));
    }
    for (const t of openedTcp) this.#tcp.set(t.config.name, t);
    // The listeners that kept their port but not their socket bind now, their old socket closed.
    for (const [name, w] of wanted) if (!this.#listeners.has(name)) this.#listeners.set(name, await this.#listen(w));
    for (const [name, w] of wantedTcp) if (!this.#tcp.has(name)) this.#tcp.set(name, await this.#listenTcp(w));
    if (config.admin.port !== previous.config.admin.port || config.admin.address !== previous.config.admin.address) {
      this.log.warn({}, 'admin address changes take effect at the next restart');
    }
    this.#applyRuntimeSideEffects();
  }

  #forgetGoneEndpoints(runtime: Runtime): void {
    this.metrics.forgetEndpoints(new Map([...runtime.clusters].map(([name, c]) => [name, new Set(c.core.hosts.map((h) => h.endpoint.id))])));
  }

  /** Health checkers and event subscriptions for the clusters of the current runtime. */
  #applyRuntimeSideEffects(): void {
    for (const c of this.#checkers) c.stop();
    this.#checkers = [];
    this.#syncProbers();
    for (const c of this.#runtime.clusters.values()) {
      if (!this.#subscribed.has(c.core)) {
        this.#subscribed.add(c.core);
        const name = c.name;
        c.core.onEvent((e) => {
          if (e.type === 'health_changed') {
            this.metrics.healthTransition(name, e.host.endpoint.id, e.healthy, 'active');
            // A recovery is good news (info); only losing an endpoint needs an operator's eye.
            if (e.healthy) this.log.info({ cluster: name, endpoint: e.host.endpoint.id, healthy: true }, 'endpoint healthy (active check)');
            else this.log.warn({ cluster: name, endpoint: e.host.endpoint.id, healthy: false }, 'endpoint unhealthy (active check)');
          } else if (e.type === 'ejected') {
            this.metrics.ejection(name, e.host.endpoint.id, e.reason);
            this.metrics.healthTransition(name, e.host.endpoint.id, false, 'outlier');
            this.log.warn({ cluster: name, endpoint: e.host.endpoint.id, reason: e.reason, untilMs: e.untilMs }, 'endpoint ejected');
          } else if (e.type === 'returned') {
            this.metrics.healthTransition(name, e.host.endpoint.id, true, 'outlier');
            this.log.info({ cluster: name, endpoint: e.host.endpoint.id }, 'endpoint returned from ejection');
          } else if (e.type === 'model_fallback') {
            this.metrics.modelSwitch(name, e.locality, e.fallback, e.reason);
            if (e.fallback) this.log.warn({ cluster: name, locality: e.locality, reason: e.reason }, 'predictive: model out of force, picks follow peak EWMA');
            else this.log.info({ cluster: name, locality: e.locality }, 'predictive: model back in force');
          } else {
            if (e.active) this.log.warn({ cluster: name, panic: true }, 'cluster in panic: balancing over all endpoints');
            else this.log.info({ cluster: name, panic: false }, 'cluster out of panic');
          }
        });
      }
      const check = c.config.health_check;
      if (check && !this.#draining && this.#o.activeChecks !== 'external') {
        const checker = new ActiveHealthChecker(clusterCheckTarget(c.core, (r) => this.metrics.healthCheck(c.name, r.endpoint.id, r.ok, r.reason)), check, {
          rng: this.#rng,
          onError: (err) => this.#errors.report('health_check', causeOf(err), err, { cluster: c.name }),
          tls: (address) => upstreamTlsOptions(c.tls, address),
          protocol: c.config.upstream_protocol === 'h2' ? 'h2' : 'http1',
        });
        checker.start();
        this.#checkers.push(checker);
      }
    }
  }

  /** The adaptive balancers' state (prequal's pool, predictive's model), per cluster and locality. */
  balancerStats(): { readonly cluster: string; readonly locality: string; readonly stats: BalancerStats }[] {
    return [...this.#runtime.clusters.values()].flatMap((c) => c.core.balancerStats().map((b) => ({ cluster: c.name, ...b })));
  }

    /** A Prequal probe client for each `prequal` cluster's core in force; those of cores gone are closed. */
  #syncProbers(): void {
    const live = new Set<Cluster>();
    for (const c of this.#runtime.clusters.values()) {
      if (c.core.policy !== 'prequal') continue;
      live.add(c.core);
      if (!this.#probers.has(c.core)) this.#probers.set(c.core, new PrequalProber(c.name, c.core, this.#clock, this.metrics));
    }
    for (const [core, prober] of this.#probers) {
      if (live.has(core)) continue;
      prober.close();
      this.#probers.delete(core);
    }
  }

    /** Bind an HTTP listener serving `runtime` (by default the one in force); the caller registers it. */
  async #listen(l: HttpListenerConfig, runtime: () => Runtime = () => this.#runtime): Promise<Listening> {
    const ctx: ListenerContext = {
      listener: l.name,
      encrypted: l.protocol === 'https',
      limits: l.limits,
      clock: this.#clock,
      runtime,
      draining: () => this.#draining,
      hooks: {
        done: (r) => this.#done(r),
        retry: (e) => this.metrics.retry(e.cluster, e.reason),
        retryRefused: (cluster, reason) => this.metrics.retryRefused(cluster, reason),
        hedge: (cluster, event) => this.metrics.hedge(cluster, event),
      },
    };
    const onRequest = (req: AnyServerRequest, res: AnyServerResponse, expectContinue: boolean) => {
      this.#inFlight++;
      // The HTTP/2 compat objects stand in for node:http's (see http-server.ts for what differs).
      const strong = this.#fleet === undefined ? undefined : decideStrongLimit(runtime(), l.name, ctx.encrypted, req as IncomingMessage);
      if (strong === undefined) return forward(ctx, req as IncomingMessage, res as ServerResponse, expectContinue);
      void strong.then(() => {
        // A client gone while Redis decided: nothing left to answer.
        if (res.destroyed) return this.#release();
        forward(ctx, req as IncomingMessage, res as ServerResponse, expectContinue);
      });
    };
    const certs = l.protocol === 'https' ? await SniCertificates.load(l.tls.certificates, l.tls.min_version, l.tls.client_ca) : undefined;
    const ls = createHttpServer(l, {
      request: onRequest,
      upgrade: (req, socket, head) => {
        this.#inFlight++; // handleUpgrade reports through hooks.done exactly once, like forward
        handleUpgrade(ctx, this.#tunnels, req, socket, head);
      },
      clientError: (err, socket) => this.#clientError(l.name, err, socket),
      rapidReset: (remoteAddress) => this.log.warn({ listener: l.name, client: remoteAddress }, 'http2 rapid reset: session closed'),
      error: (component, err) => this.#errors.report(component, causeOf(err), err, { listener: l.name }),
      clientRefused: (client) => this.log.warn({ listener: l.name, client }, 'client certificate names none of tls.client_names: connection closed'),
    }, certs, this.#connections.listener(l.name, l.max_connections).admit);
    const server = ls.server;
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listenOptions(l.port, l.address, runtime().config.worker_accept), () => {
        server.off('error', reject);
        const a = server.address();
        resolve(typeof a === 'object' && a ? a.port : l.port);
      });
    }).catch((e: NodeJS.ErrnoException) => {
      throw new Error(e.code === 'EADDRINUSE' ? `listener ${l.name}: port ${l.port} on ${l.address} is already in use` : `listener ${l.name}: ${e.message}`);
    });
    // After the bind, a failed accept (EMFILE: out of file descriptors) is an 'error' event:
    // with no listener it would throw and end the process.
    server.on('error', (err) => this.#errors.report('listener', causeOf(err), err, { listener: l.name }));
    const listening: Listening = { config: l, ls, certs, port };
    this.log.info({ listener: l.name, address: l.address, port }, 'listening');
    return listening;
  }

  /**
   * A listener kept across a reload (same address and port): certificates are re-read
   * (a broken file keeps the old ones, and the reload says so); HTTP/1.1 timeouts and
   * max_connections apply at once; other server settings (limits, http2, the certificate
   * list) at restart.
   */
  #refreshListener(l: Listening, next: HttpListenerConfig, useNewCerts: (() => void) | undefined): void {
    useNewCerts?.();
    l.ls.setHttp1Timeouts(next.timeouts.request_headers, next.timeouts.idle);
    this.#connections.listener(next.name, next.max_connections);
    const restartOnly = (c: HttpListenerConfig) => [c.protocol, c.limits, c.http2, c.tls?.certificates, c.tls?.min_version, c.tls?.client_ca, c.tls?.client_names];
    if (!isDeepStrictEqual(restartOnly(l.config), restartOnly(next))) {
      this.log.warn({ listener: next.name }, 'listener limits, http2 and certificate lists take effect at the next restart');
    }
  }

  /** Bind a tcp listener serving `runtime` (by default the one in force); the caller registers it. */
  async #listenTcp(l: TcpListenerConfig, runtime: () => Runtime = () => this.#runtime): Promise<TcpListening> {
    const proxy = new TcpProxy({
      listener: l.name,
      cluster: () => runtime().clusters.get(l.cluster),
      clock: this.#clock,
      idleTimeoutMs: l.timeouts.idle,
      log: this.log,
      admit: this.#connections.listener(l.name, l.max_connections).admit,
      onConnection: (r) => {
        this.metrics.tcpConnection(r.listener, l.cluster, r.endpoint, r.error ?? 'closed', r.bytesIn, r.bytesOut);
        this.#accessLog?.logger.info({ protocol: 'tcp', listener: r.listener, client: r.client, cluster: l.cluster, endpoint: r.endpoint, attempts: r.attempts, bytes_in: r.bytesIn, bytes_out: r.bytesOut, total_ms: round(r.durationMs), ...(r.error === undefined ? {} : { error: r.error }) });
      },
    });
    const port = await proxy.listen(listenOptions(l.port, l.address, runtime().config.worker_accept)).catch((e: NodeJS.ErrnoException) => {
      throw new Error(e.code === 'EADDRINUSE' ? `listener ${l.name}: port ${l.port} on ${l.address} is already in use` : `listener ${l.name}: ${e.message}`);
    });
    this.log.info({ listener: l.name, address: l.address, port, protocol: 'tcp' }, 'listening');
    return { config: l, proxy, port };
  }

  /** Malformed requests never reach a backend: answer 400 (431, 408) in Meridian's local-reply form, and close. */
  #clientError(listener: string, err: NodeJS.ErrnoException, socket: Duplex): void {
    const code: LocalReplyCode = err.code === 'HPE_HEADER_OVERFLOW' ? 'header_fields_too_large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout' : 'bad_request';
    if (err.code !== 'ECONNRESET' && socket.writable && !socket.writableEnded) {
      socket.end(rawLocalReply(code));
      this.metrics.localReply(listener, code, LOCAL_REPLIES[code].status);
    }
    if (socket instanceof Socket) socket.destroySoon();
    else socket.end();
  }

  #done(r: ExchangeRecord): void {
    this.#release();
    if (r.reason !== undefined && r.reason !== 'client_abort' && r.reason !== 'upstream_abort') this.metrics.localReply(r.listener, r.reason, r.status);
    this.metrics.observeRequest(
      { listener: r.listener, cluster: r.cluster, endpoint: r.endpoint, code: r.status },
      r.totalMs / 1000,
      r.upstreamMs === undefined ? undefined : r.upstreamMs / 1000,
      r.attempts,
    );
    if (r.upstreamProtocol !== undefined) this.metrics.upstreamAnswer(r.cluster, r.upstreamProtocol, r.upstreamTls);
    if (r.grpcStatus !== undefined) this.metrics.grpcCall(r.listener, r.cluster, r.grpcStatus);
    this.#o.onAccess?.(r);
    this.#accessLog?.logger.info({
      request_id: r.requestId,
      client: r.client,
      method: r.method,
      host: r.host,
      path: r.path,
      status: r.status,
      cluster: r.cluster,
      endpoint: r.endpoint,
      attempts: r.attempts,
      upstream_ms: r.upstreamMs === undefined ? null : round(r.upstreamMs),
      total_ms: round(r.totalMs),
      bytes_in: r.bytesIn,
      bytes_out: r.bytesOut,
      ...(r.reason === undefined ? {} : { reason: r.reason }),
      ...(r.hedged ? { hedged: true } : {}),
      ...(r.upstreamProtocol === undefined ? {} : { upstream_protocol: r.upstreamProtocol }),
      ...(r.upstreamTls === undefined ? {} : { upstream_tls: r.upstreamTls }),
      ...(r.grpcStatus === undefined ? {} : { grpc_status: r.grpcStatus }),
    });
  }

  /**
   * The access log of `config`, its file opened here and now (its folder created): a path
   * that cannot be opened fails start, or refuses the reload, with the reason, rather than
   * failing later in the background. A write error after that is absorbed and reported.
   */
  #openAccessLog(config: Config): AccessLog | undefined {
    if (!config.access_log.enabled || this.#o.onAccess) return undefined;
    const path = config.access_log.path;
    let fd = 1;
    if (path !== '-') {
      try {
        mkdirSync(dirname(path), { recursive: true });
        fd = openSync(path, 'a');
      } catch (e) {
        throw new Error(`access_log.path: cannot open ${path}: ${(e as Error).message}`, { cause: e });
      }
    }
    const stream = pino.destination({ fd, sync: false });
    stream.on('error', (err: Error) => this.#errors.report('access_log', causeOf(err), err, { path }));
    const logger = pino({ base: null, timestamp: pino.stdTimeFunctions.isoTime, messageKey: 'msg' }, stream);
    return { logger, stream, ownsFd: path !== '-' };
  }
}

/** The admin token: an explicit one, else MERIDIAN_ADMIN_TOKEN, else the config's. */
export function adminToken(config: Config, explicit?: string): { token?: string } {
  const token = explicit ?? process.env['MERIDIAN_ADMIN_TOKEN'] ?? config.admin.token;
  return token ? { token } : {};
}


function closeServer(server: NetServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}

interface AccessLog {
  readonly logger: Logger;
  readonly stream: ReturnType<typeof pino.destination>;
  /** A file Meridian opened (closed with the log), not standard output. */
  readonly ownsFd: boolean;
}

/** Write out what the (asynchronous) access log still holds, then close its file; never fails the shutdown. */
async function closeAccessLog(log: AccessLog | undefined): Promise<void> {
  if (log === undefined) return;
  await new Promise<void>((resolve) => {
    setTimeout(resolve, 1000).unref();
    try {
      log.logger.flush(() => resolve());
    } catch {
      resolve();
    }
  });
  if (log.ownsFd) log.stream.end();
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** A short digest of a config: nodes of a fleet showing different ones run different configs. */
function configDigest(config: Config): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 12);
}

/** What the admin API and the metrics show of a cluster's adaptive concurrency. */
function overloadView(g: OverloadGate, nowMs: number): OverloadView {
  return {
    limit: g.limiter.limit,
    inFlight: g.limiter.inFlight,
    queued: g.queue.length,
    queueDelayMs: g.queue.oldestWaitMs(nowMs),
    minRttMs: g.limiter.minRttMs,
    refused: { ...g.refused },
  };
}
