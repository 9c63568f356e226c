import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import pino, { type Logger } from 'pino';
import { AggregatorRegistry, Registry } from 'prom-client';
import { causeOf, ErrorReporter } from '../admin/error-reporter.js';
import { mergeExpositions } from '../admin/merge-expositions.js';
import { internalErrorsCounter } from '../admin/metrics.js';
import { createAdminServer } from '../admin/server.js';
import type { AcceptResult, AdminTarget, ChangeResult, ClusterState, ReloadResult } from '../admin/types.js';
import { loadConfigFile, type Config } from '../config/index.js';
import { buildCluster } from '../config/index.js';
import type { Cluster } from '../core/cluster.js';
import { SeededRng } from '../core/rng.js';
import { ActiveHealthChecker, type CheckResult } from '../health/active-checker.js';
import { ClusterTls, upstreamTlsOptions } from '../proxy/upstream-tls.js';
import { clusterCheckTarget } from './cluster-check-target.js';
import { adminToken, Meridian, wallClock } from './meridian.js';
import { type GlobalLayer, syncGlobalLayer } from '../global/global-layer.js';
import { discoveryCounters } from '../admin/metrics.js';
import { coreEndpoints } from '../config/index.js';
import { mergeEndpoints } from '../core/discovery.js';
import type { Endpoint } from '../core/types.js';
import { type DiscoveredCluster, Discovery } from '../discovery/discovery.js';
import type { RelayedDiscovery, RelayedSet } from '../discovery/relayed.js';

/**
 * `workers: N`: one primary process and N workers (node:cluster), so one node uses every
 * core. Each worker is a whole Meridian (listeners sharing the ports, its own balancing
 * state and passive outlier detection, as nginx workers keep theirs); the primary serves
 * the admin API, aggregates the workers' metrics, runs the active health checks once for
 * all workers (as Envoy's main thread does: backends see one prober per node, and every
 * worker reaches the same verdicts from the same results), and coordinates reloads,
 * drains and restarts.
 */

export function workerCount(setting: Config['workers']): number {
  return setting === 'auto' ? availableParallelism() : setting;
}

type ToWorker =
  | { readonly type: 'meridian:drain' }
  | { readonly type: 'meridian:reload'; readonly id: number; readonly discovered: readonly RelayedSet[] }
  | { readonly type: 'meridian:drain-endpoint'; readonly cluster: string; readonly endpoint: string; readonly draining: boolean }
  | { readonly type: 'meridian:weight'; readonly cluster: string; readonly endpoint: string; readonly weight: number | null }
  | { readonly type: 'meridian:check'; readonly cluster: string; readonly endpoint: string; readonly ok: boolean; readonly reason?: string }
  | { readonly type: 'meridian:health'; readonly verdicts: readonly HealthVerdict[] }
  /** A set the primary's discovery applied; or, answering `meridian:hello`, every set now (`sets`). */
  | { readonly type: 'meridian:discovered'; readonly set: RelayedSet }
  | { readonly type: 'meridian:discovered-all'; readonly sets: readonly RelayedSet[] };

interface HealthVerdict {
  readonly cluster: string;
  readonly endpoint: string;
  readonly healthy: boolean;
}

type FromWorker =
  | { readonly type: 'meridian:state'; readonly ready: boolean; readonly ports: Record<string, number>; readonly clusters: ClusterState[]; readonly discoveryVersions: Record<string, number> }
  /** A worker whose config discovers endpoints asks for the sets before it builds its clusters. */
  | { readonly type: 'meridian:hello' }
  | { readonly type: 'meridian:reloaded'; readonly id: number; readonly result: ReloadResult };

const STATE_INTERVAL_MS = 500;
/**
 * How long the primary waits for every worker to answer a reload. A worker re-reads the
 * config, loads certificates and binds new listeners: well under a second when healthy.
 * One that has not answered by then (stuck, stopped) fails the reload, named.
 */
export const RELOAD_DEADLINE_MS = 10_000;
/** How long `start` waits for every worker to listen. */
const START_DEADLINE_MS = 15_000;

/** A worker: serve until the primary says drain (or goes away). */
export async function runWorker(configPath: string, config: Config): Promise<void> {
  const meridian = new Meridian(config, { configPath, admin: false, activeChecks: 'external', discovery: 'relayed' });
  const relayed = meridian.relayedDiscovery as RelayedDiscovery;
  let gotSets: (() => void) | undefined;
  AggregatorRegistry.setRegistries([meridian.metrics.registry]);
  // prom-client answers the primary's metric requests only once an AggregatorRegistry
  // has been constructed in the worker too (that is where it adds its listener).
  new AggregatorRegistry();
  // The primary coordinates: a Ctrl-C reaching the whole process group must not stop a
  // worker mid-request, nor a SIGHUP reload it out of step with the others.
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => {});
  const send = (m: FromWorker) => {
    if (process.connected) process.send?.(m);
  };
  const report = () => send({ type: 'meridian:state', ready: meridian.ready(), ports: meridian.ports(), clusters: meridian.clusters(), discoveryVersions: relayed.versions() });
  const stop = async () => {
    clearInterval(timer);
    await meridian.drainAndStop();
    process.exit(0);
  };
  process.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'meridian:drain':
        return void stop();
      case 'meridian:reload':
        relayed.stage(m.discovered);
        return void meridian.reload().then((result) => {
          send({ type: 'meridian:reloaded', id: m.id, result });
          report();
        });
      case 'meridian:drain-endpoint':
        meridian.drain(m.cluster, m.endpoint, m.draining);
        return report();
      case 'meridian:weight':
        meridian.setWeight(m.cluster, m.endpoint, m.weight);
        return report();
      case 'meridian:check':
        meridian.applyCheck(m.cluster, m.endpoint, m.ok, m.reason);
        return;
      case 'meridian:health':
        meridian.assumeHealth(m.verdicts);
        return report();
      case 'meridian:discovered':
        relayed.receive(m.set);
        return report();
      case 'meridian:discovered-all':
        relayed.stage(m.sets);
        return gotSets?.();
    }
  });
  process.on('disconnect', () => void stop());
  const timer = setInterval(report, STATE_INTERVAL_MS);
  if (config.clusters.some((c) => c.discovery !== undefined)) {
    // The first sets before the clusters are built, so the listeners start with them (as a single process's do).
    await new Promise<void>((resolve) => {
      gotSets = resolve;
      send({ type: 'meridian:hello' });
    });
  }
  await meridian.start();
  report();
}

/** The primary: fork, watch, restart, and answer the admin API for all workers. */
export class WorkerPool implements AdminTarget {
  readonly log: Logger;
  readonly #configPath: string;
  #config: Config;
  readonly #count: number;
  readonly #states = new Map<number, Extract<FromWorker, { type: 'meridian:state' }>>();
  /** Reloads sent to workers and not yet answered by all of them. */
  readonly #pending = new Set<PendingReload>();
  /** Woken when every worker has reported ready (start waits for it). */
  #readyWaiters: (() => void)[] = [];
  readonly #aggregator = new AggregatorRegistry();
  #admin: ReturnType<typeof createAdminServer> | undefined;
  #adminPort = 0;
  /** The DNS steering layer runs once, here in the primary, beside the admin server. */
  #global: GlobalLayer | undefined;
  /** Active health checks run once, here, and every worker applies their results. */
  #checks: SharedHealthChecks | undefined;
  readonly #globalRegistry = new Registry();
  /** Errors the primary absorbs (its health checks, its DNS layer): counted beside the workers' own. */
  readonly #errors: ErrorReporter;
  #draining = false;
  #nextReloadId = 1;
  /** Reloads applied so far, and how many had been when each worker was forked. */
  #configGeneration = 0;
  readonly #forkedAt = new Map<number, number>();
  /**
   * Discovery runs once, here, for all workers (as Envoy's main thread resolves for its
   * workers): each set applied goes to every worker, numbered per cluster, and to the
   * shared health checks, so they probe discovered endpoints too.
   */
  readonly #discovery: Discovery;
  readonly #versions = new Map<string, number>();

  constructor(configPath: string, config: Config, logger?: Logger) {
    this.#configPath = configPath;
    this.#config = config;
    this.#count = workerCount(config.workers);
    this.log = logger ?? pino({ base: null, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
    const counter = internalErrorsCounter(this.#globalRegistry);
    this.#errors = new ErrorReporter({ log: this.log, count: (component, cause) => counter.inc({ component, cause }) });
    this.#discovery = new Discovery({
      clock: wallClock,
      log: this.log,
      metrics: discoveryCounters(this.#globalRegistry),
      runtime: () => ({ clusters: new Map(this.#config.clusters.map((c): [string, DiscoveredCluster] => [c.name, { config: c, core: { setEndpoints: (eps) => this.#checks?.setEndpoints(c.name, eps) }, pools: { retain: () => {} } }])) }),
      afterApply: () => {},
      relay: (cluster, endpoints) => {
        const version = (this.#versions.get(cluster) ?? 0) + 1;
        this.#versions.set(cluster, version);
        this.#broadcast({ type: 'meridian:discovered', set: { cluster, endpoints, version } });
      },
    });
  }

  get adminPort(): number {
    return this.#adminPort;
  }

  get count(): number {
    return this.#count;
  }

  /** Fork the workers and wait until every one listens; then start the admin server. */
  async start(): Promise<void> {
    cluster.on('message', (worker, m: FromWorker) => this.#onMessage(worker, m));
    cluster.on('fork', (worker) => this.#forkedAt.set(worker.id, this.#configGeneration));
    cluster.on('exit', (worker, code, signal) => {
      this.#states.delete(worker.id);
      this.#forkedAt.delete(worker.id);
      // A reload waiting for this worker would wait forever: its part fails now, with the reason.
      for (const p of this.#pending) p.lost(worker.id, `worker ${worker.id} exited (${signal ?? `code ${code}`}) before it answered the reload; the worker that replaces it reads the config file as it is then`);
      if (this.#draining) return;
      this.log.error({ worker: worker.id, code, signal }, 'worker exited unexpectedly; starting another');
      setTimeout(() => {
        if (!this.#draining) cluster.fork();
      }, 500).unref();
    });
    // The sources answer once before any worker starts: each worker's first clusters hold their sets.
    this.#discovery.commit(await this.#discovery.prepare(this.#config));
    for (let i = 0; i < this.#count; i++) cluster.fork();
    await this.#whenReady();
    this.#global = await syncGlobalLayer(undefined, this.#config.global, { log: this.log, registry: this.#globalRegistry, reportError: this.#errors.report });
    this.#checks = new SharedHealthChecks(this.#config, (m) => this.#broadcast(m), this.#errors, this.#discovery.current());
    const admin = createAdminServer({
      target: this,
      metrics: {
        contentType: this.#aggregator.contentType,
        metricsText: async () => mergeExpositions(await this.#aggregator.clusterMetrics(), await this.#globalRegistry.metrics()),
      },
      ...adminToken(this.#config),
      address: this.#config.admin.address,
      port: this.#config.admin.port,
      allowedHosts: this.#config.admin.allowed_hosts,
      logger: this.log,
    });
    this.#admin = admin;
    this.#adminPort = (await admin.listen()).port;
  }

  global(): GlobalLayer | undefined {
    return this.#global;
  }

  /** Listener ports as the workers report them. */
  ports(): Record<string, number> {
    return [...this.#states.values()][0]?.ports ?? {};
  }

  clusters(): ClusterState[] {
    const states = [...this.#states.values()];
    return mergeStates(states.map((s) => s.clusters)).map((c) => {
      const status = this.#discovery.status(c.name);
      if (status === undefined) return c;
      const version = this.#versions.get(c.name) ?? 0;
      const workersBehind = states.filter((s) => (s.discoveryVersions[c.name] ?? 0) < version).length;
      return { ...c, discovery: { ...status, relayed: { version, workersBehind } } };
    });
  }

  acceptDiscovery(clusterName: string): AcceptResult {
    if (!this.#config.clusters.some((c) => c.name === clusterName)) return 'no_cluster';
    return this.#discovery.accept(clusterName);
  }

  ready(): boolean {
    const states = [...this.#states.values()];
    return !this.#draining && states.length === this.#count && states.every((s) => s.ready);
  }

  drain(clusterName: string, endpoint: string, draining: boolean): ChangeResult {
    const found = this.#find(clusterName, endpoint);
    if (found === 'ok') this.#broadcast({ type: 'meridian:drain-endpoint', cluster: clusterName, endpoint, draining });
    return found;
  }

  setWeight(clusterName: string, endpoint: string, weight: number | null): ChangeResult {
    const found = this.#find(clusterName, endpoint);
    if (found === 'ok') this.#broadcast({ type: 'meridian:weight', cluster: clusterName, endpoint, weight });
    return found;
  }

  /** Validate here first, so an invalid config is refused once, before any worker sees it. */
  async reload(): Promise<ReloadResult> {
    const r = await loadConfigFile(this.#configPath);
    if (!r.ok) {
      const errors = r.kind === 'invalid' ? r.errors : [r.message];
      this.log.error({ errors }, 'reload refused: the running config stays in force');
      return { ok: false, errors };
    }
    try {
      this.#global = await syncGlobalLayer(this.#global, r.config.global, { log: this.log, registry: this.#globalRegistry, reportError: this.#errors.report });
    } catch (e) {
      const errors = [`global: ${(e as Error).message}`];
      this.log.error({ errors }, 'reload refused: the running config stays in force');
      return { ok: false, errors };
    }
    // New sources answer first (as in one process); the workers build their clusters with these sets.
    const prepared = await this.#discovery.prepare(r.config);
    const discovered = [...prepared.endpoints()].map(([name, endpoints]): RelayedSet => ({ cluster: name, endpoints, version: this.#versions.get(name) ?? 0 }));
    // Only workers that have reported: one still starting may not listen for messages yet (the
    // reload would be lost and wait out its deadline); it reads the file itself, and is caught
    // up when it first reports if it read it before this reload (#onMessage).
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected() && this.#states.has(w.id));
    const pending = new PendingReload(this.#nextReloadId++, workers.map((w) => w.id), RELOAD_DEADLINE_MS);
    this.#pending.add(pending);
    for (const w of workers) w.send({ type: 'meridian:reload', id: pending.id, discovered } satisfies ToWorker);
    const result = await pending.result;
    this.#pending.delete(pending);
    if (pending.applied) {
      // Some worker runs the new config: the primary's checks, config and sources follow it.
      this.#configGeneration++;
      this.#config = r.config;
      this.#checks?.stop();
      this.#checks = new SharedHealthChecks(r.config, (m) => this.#broadcast(m), this.#errors, prepared.endpoints());
      // Sends every set again, numbered after the ones the workers have.
      this.#discovery.commit(prepared);
    } else {
      // Every worker refused it and changed nothing: neither does the primary (its global layer goes back).
      this.#global = await syncGlobalLayer(this.#global, this.#config.global, { log: this.log, registry: this.#globalRegistry, reportError: this.#errors.report }).catch((e: Error) => {
        this.log.error({ err: e.message }, 'global layer: could not restore the running config');
        return this.#global;
      });
    }
    if (result.ok) this.log.info({ ok: true }, 'reload across workers');
    else this.log.error({ errors: result.errors }, 'reload across workers failed');
    return result;
  }

  async drainAndStop(): Promise<void> {
    this.#draining = true;
    this.#checks?.stop();
    this.#discovery.stop();
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    const exited = workers.map((w) => new Promise<void>((r) => (w.isDead() ? r() : w.once('exit', () => r()))));
    for (const w of workers) {
      // A worker still starting serves nothing and may not listen for messages yet.
      if (this.#states.has(w.id)) w.send({ type: 'meridian:drain' } satisfies ToWorker);
      else w.process.kill('SIGKILL');
    }
    // Workers drain within drain_timeout; one that does not is stopped hard.
    const hard = setTimeout(() => {
      for (const w of workers) if (!w.isDead()) w.process.kill('SIGKILL');
    }, this.#config.drain_timeout + 5000);
    await Promise.all(exited);
    clearTimeout(hard);
    await this.#global?.close();
    await this.#admin?.close();
  }

  #find(clusterName: string, endpoint: string): ChangeResult {
    const c = this.clusters().find((x) => x.name === clusterName);
    if (!c) return 'no_cluster';
    return c.endpoints.some((e) => e.id === endpoint) ? 'ok' : 'no_endpoint';
  }

  #broadcast(m: ToWorker): void {
    for (const w of Object.values(cluster.workers ?? {})) if (w?.isConnected()) w.send(m);
  }

  #onMessage(worker: Worker, m: FromWorker): void {
    if (m.type === 'meridian:state') {
      // A worker's first report: it starts with every endpoint healthy; bring it up to date
      // with the verdicts the shared checks have reached so far (a worker restarted after a crash).
      const first = !this.#states.has(worker.id);
      if (first && this.#checks !== undefined) worker.send({ type: 'meridian:health', verdicts: this.#checks.verdicts() } satisfies ToWorker);
      // Forked before a reload it was not sent: it may run the file as it was before; read it again.
      if (first && (this.#forkedAt.get(worker.id) ?? this.#configGeneration) < this.#configGeneration) this.#catchUp(worker);
      this.#states.set(worker.id, m);
      if (this.ready()) for (const w of this.#readyWaiters.splice(0)) w();
    } else if (m.type === 'meridian:hello') {
      worker.send({ type: 'meridian:discovered-all', sets: this.#currentSets() } satisfies ToWorker);
    } else if (m.type === 'meridian:reloaded') {
      if (m.id === 0) this.log[m.result.ok ? 'info' : 'error']({ worker: worker.id, result: m.result }, 'a worker started before the last reload has reloaded too');
      for (const p of this.#pending) if (p.id === m.id) p.answered(worker.id, m.result);
    }
  }

  /** The sets in force, each at the version the workers were last sent. */
  #currentSets(): RelayedSet[] {
    return [...this.#discovery.current()].map(([name, endpoints]): RelayedSet => ({ cluster: name, endpoints, version: this.#versions.get(name) ?? 0 }));
  }

  /** A reload for one worker, outside any admin request: its answer is only logged. */
  #catchUp(worker: Worker): void {
    this.#forkedAt.set(worker.id, this.#configGeneration);
    worker.send({ type: 'meridian:reload', id: 0, discovered: this.#currentSets() } satisfies ToWorker);
  }

  #whenReady(): Promise<void> {
    if (this.ready()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#readyWaiters = this.#readyWaiters.filter((w) => w !== done);
        reject(new Error(`timed out waiting for workers to listen (${START_DEADLINE_MS / 1000} s)`));
      }, START_DEADLINE_MS);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#readyWaiters.push(done);
    });
  }
}

/** One view of all workers: counts add up; status and weights are the first worker's. */
export function mergeStates(perWorker: readonly (readonly ClusterState[])[]): ClusterState[] {
  const [first, ...rest] = perWorker;
  if (!first) return [];
  return first.map((c) => {
    const others = rest.map((w) => w.find((x) => x.name === c.name));
    return {
      ...c,
      inPanic: c.inPanic || others.some((o) => o?.inPanic === true),
      ...(c.loadRps === undefined ? {} : { loadRps: others.reduce((n, o) => n + (o?.loadRps ?? 0), c.loadRps) }),
      endpoints: c.endpoints.map((e) => {
        const same = others.map((o) => o?.endpoints.find((x) => x.id === e.id)).filter((x) => x !== undefined);
        const sum = (k: 'active' | 'requestsTotal' | 'failuresTotal' | 'ejectionsTotal' | 'poolOpen' | 'poolIdle') => same.reduce((n, x) => n + x[k], e[k]);
        return {
          ...e,
          active: sum('active'),
          requestsTotal: sum('requestsTotal'),
          failuresTotal: sum('failuresTotal'),
          ejectionsTotal: sum('ejectionsTotal'),
          poolOpen: sum('poolOpen'),
          poolIdle: sum('poolIdle'),
        };
      }),
    };
  });
}

/**
 * One reload sent to the workers: settled once every worker it was sent to has answered,
 * exited, or the deadline passed, whichever comes first for each. Its result is the first
 * failure (a worker's own, an exit, silence), or the first success when all succeeded.
 */
class PendingReload {
  readonly id: number;
  readonly result: Promise<ReloadResult>;
  readonly #waiting: Set<number>;
  readonly #results: ReloadResult[] = [];
  readonly #timer: NodeJS.Timeout;
  #resolve!: (r: ReloadResult) => void;
  /** Whether some worker took the new config (a worker's refusal left it on the old one). */
  applied = false;

  constructor(id: number, workers: readonly number[], deadlineMs: number) {
    this.id = id;
    this.#waiting = new Set(workers);
    this.result = new Promise((resolve) => (this.#resolve = resolve));
    this.#timer = setTimeout(() => {
      for (const w of [...this.#waiting]) this.lost(w, `worker ${w} did not answer the reload within ${deadlineMs / 1000} s`);
    }, deadlineMs);
    this.#settleIfDone();
  }

  answered(worker: number, result: ReloadResult): void {
    if (!this.#waiting.delete(worker)) return;
    if (result.ok) this.applied = true;
    this.#results.push(result);
    this.#settleIfDone();
  }

  /** The worker will not answer (it exited, or the deadline passed). */
  lost(worker: number, why: string): void {
    this.answered(worker, { ok: false, errors: [why] });
  }

  #settleIfDone(): void {
    if (this.#waiting.size > 0) return;
    clearTimeout(this.#timer);
    const failures = this.#results.filter((r): r is Extract<ReloadResult, { ok: false }> => !r.ok);
    // Workers refusing one config refuse it alike: each reason once.
    if (failures.length > 0) this.#resolve({ ok: false, errors: [...new Set(failures.flatMap((r) => r.errors))] });
    else this.#resolve(this.#results[0] ?? { ok: false, errors: ['no worker to reload'] });
  }
}

/**
 * The primary's active health checks: one prober per cluster with a health_check, over a
 * core Cluster of its own (the checker needs hosts to probe), each result sent to every
 * worker, whose own Cluster applies it (Meridian.applyCheck) with the same thresholds.
 */
class SharedHealthChecks {
  readonly #checkers: ActiveHealthChecker[] = [];
  readonly #cores: Cluster[] = [];
  readonly #byName = new Map<string, { readonly config: Config['clusters'][number]; readonly core: Cluster; readonly checker: ActiveHealthChecker }>();

  /** `discovered`: each cluster's discovered endpoints now, probed beside the configured ones. */
  constructor(config: Config, send: (m: ToWorker) => void, errors: ErrorReporter, discovered: ReadonlyMap<string, readonly Endpoint[]>) {
    const rng = new SeededRng(Date.now() >>> 0);
    for (const c of config.clusters) {
      const check = c.health_check;
      if (check === undefined) continue;
      const core = buildCluster(c, wallClock, rng, config.node);
      this.#cores.push(core);
      const relay = (r: CheckResult): void => send({ type: 'meridian:check', cluster: c.name, endpoint: r.endpoint.id, ok: r.ok, ...(r.reason === undefined ? {} : { reason: r.reason }) });
      const tls = ClusterTls.load(c, undefined);
      const checker = new ActiveHealthChecker(clusterCheckTarget(core, relay), check, {
        rng,
        onError: (err) => errors.report('health_check', causeOf(err), err, { cluster: c.name }),
        tls: (address) => upstreamTlsOptions(tls, address),
        protocol: c.upstream_protocol === 'h2' ? 'h2' : 'http1',
      });
      this.#checkers.push(checker);
      this.#byName.set(c.name, { config: c, core, checker });
      const found = discovered.get(c.name);
      if (found !== undefined) core.setEndpoints(mergeEndpoints(coreEndpoints(c), found).endpoints);
      checker.start();
    }
  }

  /** A cluster's endpoints, configured and discovered, now: new ones are probed at once. */
  setEndpoints(cluster: string, endpoints: readonly Endpoint[]): void {
    const c = this.#byName.get(cluster);
    if (c === undefined) return;
    c.core.setEndpoints(endpoints);
    c.checker.membershipChanged();
  }

  /** The active verdict of every checked endpoint now. */
  verdicts(): HealthVerdict[] {
    return this.#cores.flatMap((core) => core.hosts.map((h) => ({ cluster: core.name, endpoint: h.endpoint.id, healthy: h.health.activeHealthy })));
  }

  stop(): void {
    for (const c of this.#checkers) c.stop();
  }
}
