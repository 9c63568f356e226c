/**
 * `meridian demo` in one process, on loopback: per region, sample backends and a Meridian
 * whose cluster has its own backends at priority 0 and the other regions' Meridians
 * (through WAN links that add the round trip) as remote localities at priorities 1, 2...;
 * a load generator playing clients of several geographies; and a control admin server
 * that serves the dashboard, the live stream and the controls. stop() closes all of it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import pino, { type Logger } from 'pino';
import type { ActivityEvent, AdaptiveSnapshot, DemoSnapshot, EndpointSnapshot, FlowSnapshot, GeoSnapshot, RegionSnapshot } from '../admin/dashboard-types.js';
import { POLICIES } from '../admin/dashboard-types.js';
import { dashboardRoutes, type ControlResult, type DemoControl } from '../admin/dashboard.js';
import { ProxyMetrics } from '../admin/metrics.js';
import { createAdminServer, type AdminServer } from '../admin/server.js';
import type { AcceptResult, AdminTarget, ChangeResult, ClusterState, ReloadResult } from '../admin/types.js';
import { formatLatency, parseLatency, startSampleBackend, type SampleBackend } from '../backend/sample-backend.js';
import { validateConfig } from '../config/index.js';
import { GlobalLayer } from '../global/global-layer.js';
import type { ExchangeRecord } from '../proxy/forward.js';
import { Meridian } from '../node/meridian.js';
import { changes } from './activity.js';
import { LoadGenerator, type LoadClient } from './load.js';
import { backendsFileText, CLUSTER, DNS_TTL_S, GEOS, geoSubnet, globalConfigInput, HOSTNAME, nearest, regionConfigInput, REGIONS, rttMs, toConfig, withPolicy, type RegionSpec } from './topology.js';
import { startWanLink, type WanLink } from './wan-link.js';
import { WindowStats } from './window-stats.js';
import type { BalancerStats } from '../core/types.js';

export interface DemoOptions {
  /** 1-5. Default 3. */
  readonly regions?: number;
  /** Backends per region, 1-16. Default 4. */
  readonly backends?: number;
  /** Requests per second of the load generator. Default 50. */
  readonly rate?: number;
  readonly policy?: string;
  /** The dashboard's (control admin server's) port; 0 picks a free one. Default 9900. */
  readonly port?: number;
  /** The port was given by the user: when taken, fail rather than pick another. */
  readonly portExplicit?: boolean;
  /** Regions' client listeners: base, base+1, ...; 0 picks free ones. Default 8081. */
  readonly webPortBase?: number;
  /** The DNS responder's port (UDP and TCP); when taken, a free one is used and said. Default 8053. */
  readonly dnsPort?: number;
  /** false: no load generator (curl it yourself). */
  readonly load?: boolean;
  /** Bearer token of every admin API; default MERIDIAN_ADMIN_TOKEN or a random one. */
  readonly token?: string;
  /** Snapshot interval, ms. Default 1000. */
  readonly intervalMs?: number;
  readonly reportsDir?: string;
  readonly logger?: Logger;
}

/** A port that could not be had, named (the CLI exits 2 with this message). */
export class PortInUseError extends Error {
  constructor(
    readonly port: number,
    what: string,
  ) {
    super(`port ${port} (${what}) is already in use: stop whatever holds it, or choose another with --port`);
  }
}

interface Backend {
  readonly id: string;
  readonly region: string;
  readonly port: number;
  readonly latency: string;
  readonly errorRate: number;
  server: SampleBackend | undefined;
  slowLatency: string | undefined;
}

interface Region {
  readonly spec: RegionSpec;
  readonly backendsFile: string;
  readonly meridian: Meridian;
  configInput: Record<string, unknown>;
  readonly backends: Backend[];
  /** Its clients' listener: address and port. */
  readonly address: string;
  readonly webPort: number;
  readonly peerPort: number;
  readonly web: WindowStats;
  readonly endpoints: Map<string, WindowStats>;
  peerIn: number;
  readonly failoverOut: Map<string, number>;
}

const HISTORY = 180;
const HEALTH_PATH = '/healthz';

export class Demo implements DemoControl {
  readonly policies: readonly string[] = POLICIES;
  readonly token: string;
  /** What was changed to start (ports taken by others), for the banner. */
  readonly notes: string[] = [];
  readonly log: Logger;
  readonly #o: DemoOptions;
  readonly #intervalMs: number;
  readonly #regions: Region[] = [];
  readonly #backends = new Map<string, Backend>();
  readonly #links: WanLink[] = [];
  readonly #geoStats = new Map<string, WindowStats>();
  readonly #metrics = new ProxyMetrics({ defaultMetrics: false });
  readonly #subscribers = new Set<(s: DemoSnapshot) => void>();
  #history: DemoSnapshot[] = [];
  /** Controls answered since the last snapshot, for its events. */
  #recorded: ActivityEvent[] = [];
  #load: LoadGenerator | undefined;
  #baseRate: number;
  #spikeUntil: number | null = null;
  #spikeTimer: NodeJS.Timeout | undefined;
  #ticker: NodeJS.Timeout | undefined;
  #lastTick = 0;
  #admin: AdminServer | undefined;
  #global: GlobalLayer | undefined;
  #clients: (LoadClient & { readonly ip: string })[] = [];
  #resolver: NodeJS.Timeout | undefined;
  #port = 0;
  #stopped = false;
  /** The regions' backends files (a temporary directory, removed by stop()). */
  #filesDir: string | undefined;

  constructor(o: DemoOptions = {}) {
    this.#o = o;
    this.#intervalMs = o.intervalMs ?? 1000;
    this.#baseRate = o.rate ?? 50;
    this.token = o.token ?? process.env['MERIDIAN_ADMIN_TOKEN'] ?? randomBytes(16).toString('hex');
    this.log = o.logger ?? pino({ base: null, level: process.env['MERIDIAN_LOG_LEVEL'] ?? 'error' }, pino.destination(2));
  }

  /** The dashboard's port. */
  get port(): number {
    return this.#port;
  }

  get dashboardUrl(): string {
    return `http://127.0.0.1:${this.#port}/dashboard#token=${this.token}`;
  }

  /** `backendsFile`: the watched file its cluster finds its own backends in (edit it, and the region follows). */
  regions(): readonly { name: string; address: string; webPort: number; adminPort: number; backends: readonly string[]; backendsFile: string }[] {
    return this.#regions.map((r) => ({ name: r.spec.name, address: r.address, webPort: r.webPort, adminPort: r.meridian.adminPort, backends: r.backends.map((b) => b.id), backendsFile: r.backendsFile }));
  }

  /** The DNS responder: its port, and a `dig` that asks it as a London client would. */
  get dns(): { port: number; hostname: string; dig: string } | undefined {
    const port = this.#global?.ports().dns;
    if (port === undefined) return undefined;
    const london = GEOS.findIndex((g) => g.name === 'London');
    return { port, hostname: HOSTNAME, dig: `dig @127.0.0.1 -p ${port} ${HOSTNAME} +subnet=${geoSubnet(london).cidr} +short` };
  }

  /** Start everything; on failure, whatever was started is stopped again before the error is thrown. */
  async start(): Promise<void> {
    try {
      await this.#start();
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  async #start(): Promise<void> {
    const specs = REGIONS.slice(0, this.#o.regions ?? 3);
    const perRegion = this.#o.backends ?? 4;
    const policy = this.#o.policy ?? 'least_request';
    // The dashboard's port first: an explicit one that is taken ends the start before anything runs.
    const dashboardPort = await this.#choosePort(this.#o.port ?? 9900, this.#o.portExplicit ?? false, 'the dashboard');
    const base = this.#o.webPortBase ?? 8081;
    // Each region on a loopback address of its own (127.0.0.11, .12, ...) where the system
    // routes all of 127/8 to loopback (Linux); else all on 127.0.0.1. Ports differ either way.
    const aliases = await portFree(0, '127.0.0.11');
    const addresses = specs.map((_, i) => (aliases ? `127.0.0.${11 + i}` : '127.0.0.1'));
    const webPorts: number[] = [];
    for (const [i, s] of specs.entries()) webPorts.push(await this.#choosePort(base === 0 ? 0 : base + i, false, `${s.name}'s listener`, webPorts, addresses[i]));

    // WAN links: one per ordered pair of regions, target set once the peer listens.
    const links = new Map<string, WanLink>();
    for (const a of specs) {
      for (const b of specs) {
        if (a === b) continue;
        const link = await startWanLink(rttMs(a, b));
        this.#links.push(link);
        links.set(`${a.name}>${b.name}`, link);
      }
    }

    for (const [i, spec] of specs.entries()) {
      const backends: Backend[] = [];
      for (let k = 1; k <= perRegion; k++) {
        const id = `${spec.name}-${k}`;
        const server = await startSampleBackend({ name: id, latency: spec.latency, errorRate: spec.errorRate });
        const b: Backend = { id, region: spec.name, port: server.port, latency: spec.latency, errorRate: spec.errorRate, server, slowLatency: undefined };
        backends.push(b);
        this.#backends.set(id, b);
      }
      const peers = nearest(spec, specs)
        .filter((p) => p !== spec)
        .map((p) => ({ region: p.name, port: (links.get(`${spec.name}>${p.name}`) as WanLink).port }));
      this.#filesDir ??= await mkdtemp(join(tmpdir(), 'meridian-demo-'));
      const backendsFile = join(this.#filesDir, `${spec.name}.yaml`);
      await writeFile(backendsFile, backendsFileText(spec.name, backends));
      const configInput = regionConfigInput({
        region: spec,
        address: addresses[i] as string,
        ports: { web: webPorts[i] as number, peer: 0 },
        policy,
        backendsFile,
        peers,
        rateLimitPerSecond: Math.max(50, 2 * this.#baseRate),
      });
      const region: Region = {
        spec,
        configInput,
        backendsFile,
        backends,
        meridian: undefined as unknown as Meridian,
        address: addresses[i] as string,
        webPort: 0,
        peerPort: 0,
        web: new WindowStats(),
        endpoints: new Map(),
        peerIn: 0,
        failoverOut: new Map(),
      };
      const meridian = new Meridian(toConfig(configInput), {
        logger: this.log.child({ region: spec.name }),
        adminToken: this.token,
        onAccess: (r) => this.#record(region, r),
      });
      Object.assign(region, { meridian });
      await meridian.start();
      const ports = meridian.ports();
      Object.assign(region, { webPort: ports['web'], peerPort: ports['peer'] });
      // Later reloads keep the ports bound now.
      region.configInput = { ...configInput, listeners: (configInput['listeners'] as Record<string, unknown>[]).map((l) => ({ ...l, port: ports[l['name'] as string] })) };
      this.#regions.push(region);
    }
    for (const a of this.#regions) {
      for (const b of this.#regions) if (a !== b) (links.get(`${a.spec.name}>${b.spec.name}`) as WanLink).target = b.peerPort;
    }

    await this.#startDns(this.#regions.map((r) => ({ spec: r.spec, address: r.address, webPort: r.webPort })));

    this.#metrics.setSource(() => this.#target.clusters());
    this.#admin = createAdminServer({
      target: this.#target,
      metrics: this.#metrics,
      token: this.token,
      address: '127.0.0.1',
      port: dashboardPort,
      logger: this.log,
      routes: dashboardRoutes({ control: this, ...(this.#o.reportsDir === undefined ? {} : { reportsDir: this.#o.reportsDir }) }),
    });
    this.#port = (await this.#admin.listen()).port;

    if (this.#o.load !== false) {
      // Each geography's clients resolve the hostname through the steering (as their resolver
      // would, with their subnet), and again every TTL: a region taken down loses its clients.
      this.#clients = GEOS.map((g, i) => ({ geo: g.name, weight: g.weight, ip: geoSubnet(i).ip, host: '127.0.0.1', port: 0 }));
      for (const g of GEOS) this.#geoStats.set(g.name, new WindowStats());
      this.#resolve();
      this.#resolver = setInterval(() => this.#resolve(), DNS_TTL_S * 1000);
      this.#load = new LoadGenerator({
        clients: this.#clients,
        rate: this.#baseRate,
        onResult: (r) => this.#geoStats.get(r.geo)?.add(r.ms, r.status === 0 || r.status >= 500),
      });
      this.#load.start();
    }
    this.#lastTick = Date.now();
    this.#ticker = setInterval(() => this.#tick(), this.#intervalMs);
  }

  #geoRegion = new Map<string, string>();

  /** The DNS responder, on `dnsPort` (default 8053) or, when that is taken, a free port (said in the notes). */
  async #startDns(regions: readonly { spec: RegionSpec; address: string; webPort: number }[]): Promise<void> {
    const wanted = this.#o.dnsPort ?? 8053;
    const build = (port: number): GlobalLayer => {
      const r = validateConfig({ global: globalConfigInput(regions, port) });
      if (!r.ok || r.config.global === undefined) throw new Error(`demo global config invalid:\n${r.ok ? 'no global block' : r.errors.join('\n')}`);
      return new GlobalLayer(r.config.global, { log: this.log.child({ layer: 'global' }) });
    };
    try {
      this.#global = build(wanted);
      await this.#global.start();
    } catch (e) {
      if (wanted === 0) throw e;
      await this.#global?.close();
      this.#global = build(0);
      await this.#global.start();
      this.notes.push(`port ${wanted} (the DNS responder) is in use: using ${this.#global.ports().dns} instead`);
    }
  }

  /** Point every geography's clients at the region the DNS steering answers for them now. */
  #resolve(): void {
    const byName = new Map(this.#regions.map((r) => [r.spec.name, r]));
    for (const c of this.#clients) {
      const name = this.#global?.decide(HOSTNAME, c.ip)?.decision.region ?? (nearest(GEOS.find((g) => g.name === c.geo) as { lat: number; lon: number }, this.#regions.map((r) => r.spec))[0] as RegionSpec).name;
      const r = byName.get(name);
      if (!r) continue;
      c.host = r.address;
      c.port = r.webPort;
      this.#geoRegion.set(c.geo, name);
    }
  }

  /** Stop the load, the Meridians, the links and the backends; nothing is left listening. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#ticker);
    clearInterval(this.#resolver);
    clearTimeout(this.#spikeTimer);
    await this.#load?.stop();
    await this.#admin?.close();
    await this.#global?.close();
    await Promise.all(this.#regions.map((r) => r.meridian.drainAndStop(0)));
    await Promise.all(this.#links.map((l) => l.close()));
    await Promise.all([...this.#backends.values()].map((b) => b.server?.close()));
    if (this.#filesDir !== undefined) await rm(this.#filesDir, { recursive: true, force: true });
    this.#subscribers.clear();
  }

  // ---- DemoControl ------------------------------------------------------------------

  snapshot(): DemoSnapshot | undefined {
    return this.#history.at(-1);
  }

  history(): readonly DemoSnapshot[] {
    return this.#history;
  }

  record(text: string): void {
    this.#recorded.push({ t: Date.now(), source: 'admin API', text });
  }

  subscribe(fn: (s: DemoSnapshot) => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  async killBackend(id: string): Promise<ControlResult> {
    const b = this.#backends.get(id);
    if (!b) return noBackend(id);
    if (!b.server) return { ok: false, status: 409, error: `backend ${id} is already down` };
    const s = b.server;
    b.server = undefined;
    await s.close();
    this.log.warn({ backend: id }, 'demo: backend killed');
    return { ok: true, message: `backend ${id} killed: port ${b.port} refuses connections` };
  }

  async reviveBackend(id: string): Promise<ControlResult> {
    const b = this.#backends.get(id);
    if (!b) return noBackend(id);
    if (b.server) return { ok: false, status: 409, error: `backend ${id} is already running` };
    try {
      b.server = await startSampleBackend({ name: id, port: b.port, latency: b.slowLatency ?? b.latency, errorRate: b.errorRate });
    } catch (e) {
      return { ok: false, status: 409, error: `backend ${id} cannot listen on port ${b.port} again: ${(e as Error).message}` };
    }
    this.log.warn({ backend: id }, 'demo: backend revived');
    return { ok: true, message: `backend ${id} revived on port ${b.port}: health checks bring it back, then slow start ramps its weight` };
  }

  slowBackend(id: string, latency: string | null): ControlResult {
    const b = this.#backends.get(id);
    if (!b) return noBackend(id);
    let spec: string | undefined;
    try {
      spec = latency === null ? undefined : formatLatency(parseLatency(latency));
    } catch (e) {
      return { ok: false, status: 400, error: `latency: ${(e as Error).message}` };
    }
    b.slowLatency = spec;
    b.server?.setLatency(spec ?? b.latency);
    return { ok: true, message: spec === undefined ? `backend ${id} back to its own latency (${b.latency})` : `backend ${id} now answers after ${spec}` };
  }

  async setRegion(name: string, up: boolean): Promise<ControlResult> {
    const r = this.#regions.find((x) => x.spec.name === name);
    if (!r) return { ok: false, status: 404, error: `no region "${name}" (regions: ${this.#regions.map((x) => x.spec.name).join(', ')})` };
    for (const b of r.backends) {
      if (up) await this.reviveBackend(b.id);
      else await this.killBackend(b.id);
    }
    // DNS steers new lookups away (down) or lets them back (up: the override is cleared).
    this.#global?.setRegionOverride(name, up ? undefined : 'down');
    this.#resolve();
    return {
      ok: true,
      message: up
        ? `region ${name} up: its backends run again, and DNS answers with it again`
        : `region ${name} down: every backend killed, DNS steers its clients to the next region, and its Meridian fails over what still arrives`,
    };
  }

  spike(factor: number, seconds: number): ControlResult {
    if (!this.#load) return { ok: false, status: 409, error: 'the demo runs without a load generator (--no-load)' };
    clearTimeout(this.#spikeTimer);
    this.#load.rate = this.#baseRate * factor;
    this.#spikeUntil = Date.now() + seconds * 1000;
    this.#spikeTimer = setTimeout(() => {
      this.#spikeUntil = null;
      if (this.#load) this.#load.rate = this.#baseRate;
    }, seconds * 1000);
    return { ok: true, message: `load x${factor} (${this.#load.rate} req/s) for ${seconds} s` };
  }

  setRate(rate: number): ControlResult {
    if (!this.#load) return { ok: false, status: 409, error: 'the demo runs without a load generator (--no-load)' };
    this.#baseRate = rate;
    if (this.#spikeUntil === null) this.#load.rate = rate;
    return { ok: true, message: `load ${rate} req/s` };
  }

  async setPolicy(policy: string, region: string | undefined): Promise<ControlResult> {
    const targets = region === undefined ? this.#regions : this.#regions.filter((r) => r.spec.name === region);
    if (targets.length === 0) return { ok: false, status: 404, error: `no region "${region}"` };
    for (const r of targets) {
      const next = withPolicy(r.configInput, policy);
      const result = await r.meridian.reload(toConfig(next));
      if (!result.ok) return { ok: false, status: 422, error: `${r.spec.name}: ${result.errors.join('; ')}` };
      r.configInput = next;
    }
    return { ok: true, message: `policy ${policy} in ${region ?? 'every region'}` };
  }

  // ---- the admin target: every region's cluster as `app@<region>` ----------------------

  readonly #target: AdminTarget = {
    clusters: (): ClusterState[] => this.#regions.flatMap((r) => r.meridian.clusters().map((c) => ({ ...c, name: `${c.name}@${r.spec.name}` }))),
    ready: () => this.#regions.every((r) => r.meridian.ready()),
    drain: (cluster, endpoint, draining): ChangeResult => {
      const r = this.#regionOfCluster(cluster);
      const result = r ? r.meridian.drain(CLUSTER, endpoint, draining) : 'no_cluster';
      if (result === 'ok') this.record(`${endpoint} in ${cluster} ${draining ? 'draining' : 'undrained'}`);
      return result;
    },
    setWeight: (cluster, endpoint, weight): ChangeResult => {
      const r = this.#regionOfCluster(cluster);
      const result = r ? r.meridian.setWeight(CLUSTER, endpoint, weight) : 'no_cluster';
      if (result === 'ok') this.record(`${endpoint} in ${cluster}: weight ${weight}`);
      return result;
    },
    reload: (): Promise<ReloadResult> => Promise.resolve({ ok: false, errors: ['the demo has no config file: change the policy with POST /api/demo/policy'] }),
    acceptDiscovery: (cluster): AcceptResult => {
      const r = this.#regionOfCluster(cluster);
      const result = r ? r.meridian.acceptDiscovery(CLUSTER) : 'no_cluster';
      if (result === 'ok') this.record(`${cluster}: the pending discovery change accepted`);
      return result;
    },
  };

  #regionOfCluster(cluster: string): Region | undefined {
    return this.#regions.find((r) => cluster === `${CLUSTER}@${r.spec.name}`);
  }

  // ---- numbers ---------------------------------------------------------------------

  #record(region: Region, r: ExchangeRecord): void {
    this.#metrics.observeRequest({ listener: `${region.spec.name}/${r.listener}`, cluster: `${r.cluster}@${region.spec.name}`, endpoint: r.endpoint, code: r.status }, r.totalMs / 1000);
    // Health checks of other regions' Meridians (peer listener) and the DNS layer's region
    // probes (web listener) are probes, not traffic.
    if (r.path === HEALTH_PATH) return;
    const failed = r.status >= 500;
    if (r.listener === 'peer') region.peerIn++;
    else {
      const w = region.web;
      w.add(r.totalMs, failed);
      if (r.attempts > 1) w.retries += r.attempts - 1;
      if (r.reason === 'circuit_open') w.shed++;
      else if (r.reason === 'rate_limited') w.rateLimited++;
      if (r.endpoint.startsWith('via-')) {
        const to = r.endpoint.slice(4);
        region.failoverOut.set(to, (region.failoverOut.get(to) ?? 0) + 1);
      }
    }
    if (r.endpoint !== '') {
      let e = region.endpoints.get(r.endpoint);
      if (!e) region.endpoints.set(r.endpoint, (e = new WindowStats()));
      e.add(r.upstreamMs, failed);
    }
  }

  /** Probe replies counted at the last tick, per Meridian: the panel shows a rate. */
  readonly #probeReplies = new WeakMap<object, number>();

  /** The adaptive policies' state for a region's card: nothing for the other policies. */
  #adaptive(m: { balancerStats(): { readonly stats: BalancerStats }[] }, per: number, round: (x: number) => number): { adaptive?: AdaptiveSnapshot } {
    const all = m.balancerStats().map((b) => b.stats);
    if (all.length === 0) return {};
    const sum = (f: (s: BalancerStats) => number | undefined): number => all.reduce((a, st) => a + (f(st) ?? 0), 0);
    if (all.some((st) => st.poolSize !== undefined)) {
      const replies = sum((st) => st.probeReplies);
      const before = this.#probeReplies.get(m) ?? replies;
      this.#probeReplies.set(m, replies);
      return { adaptive: { probeRepliesPerS: round((replies - before) * per), poolSize: sum((st) => st.poolSize) } };
    }
    const n = Math.max(1, sum((st) => st.samples));
    return {
      adaptive: {
        fallback: all.some((st) => st.fallback === true),
        driftEvents: sum((st) => st.driftEvents),
        maeMs: round(sum((st) => (st.maeMs ?? 0) * (st.samples ?? 0)) / n),
        baselineMaeMs: round(sum((st) => (st.baselineMaeMs ?? 0) * (st.samples ?? 0)) / n),
      },
    };
  }

  #tick(): void {
    const now = Date.now();
    const intervalMs = Math.max(1, now - this.#lastTick);
    this.#lastTick = now;
    const per = 1000 / intervalMs;
    const round = (x: number): number => Math.round(x * 100) / 100;
    const flows: FlowSnapshot[] = [];
    const dnsStatus = new Map((this.#global?.status().regions ?? []).map((r) => [r.name, r.healthy]));
    const regions = this.#regions.map((r): RegionSnapshot => {
      const c = r.meridian.clusters()[0] as ClusterState;
      // Its own backends first, then the failover peers (discovered endpoints come after the configured ones).
      const own = (e: { readonly id: string }): number => (e.id.startsWith('via-') ? 1 : 0);
      const endpoints = [...c.endpoints].sort((x, y) => own(x) - own(y)).map((e): EndpointSnapshot => {
        const w = (r.endpoints.get(e.id) ?? new WindowStats()).take(intervalMs);
        const b = this.#backends.get(e.id);
        const remote = e.id.startsWith('via-');
        return {
          id: e.id,
          address: e.address,
          remote,
          ...(remote ? { toRegion: e.id.slice(4) } : {}),
          status: e.status,
          weight: e.weight,
          effectiveWeight: round(e.effectiveWeight),
          active: e.active,
          latencyEwmaMs: round(e.latencyEwmaMs),
          rps: w.rps,
          p50Ms: w.p50Ms,
          p99Ms: w.p99Ms,
          errorRate: w.errorRate,
          ...(b ? { alive: b.server !== undefined, latency: b.slowLatency ?? b.latency, slowed: b.slowLatency !== undefined } : {}),
          ...(e.discovered === true && c.discovery !== undefined ? { source: c.discovery.source } : {}),
        };
      });
      for (const [to, n] of r.failoverOut) if (n > 0) flows.push({ kind: 'failover', from: r.spec.name, to, rps: round(n * per) });
      const failoverOut = [...r.failoverOut.values()].reduce((a, b) => a + b, 0);
      r.failoverOut.clear();
      const peerIn = r.peerIn;
      r.peerIn = 0;
      const w = r.web.take(intervalMs);
      return {
        name: r.spec.name,
        node: `meridian-${r.spec.name}`,
        address: r.address,
        dnsUp: dnsStatus.get(r.spec.name) ?? true,
        up: r.backends.some((b) => b.server !== undefined),
        policy: c.policy,
        cluster: `${CLUSTER}@${r.spec.name}`,
        listenerPort: r.webPort,
        adminPort: r.meridian.adminPort,
        rps: w.rps,
        p50Ms: w.p50Ms,
        p99Ms: w.p99Ms,
        errorRate: w.errorRate,
        retries: w.retries,
        shed: w.shed,
        rateLimited: w.rateLimited,
        peerInRps: round(peerIn * per),
        failoverOutRps: round(failoverOut * per),
        inPanic: c.inPanic,
        ...(c.overload === undefined ? {} : { concurrency: { limit: c.overload.limit, queued: c.overload.queued } }),
        endpoints,
        localities: (c.localities ?? []).map((l) => ({ region: l.region ?? '', priority: l.priority, remote: l.remote, hosts: l.hosts, healthy: l.healthy, share: round(l.share) })),
        ...this.#adaptive(r.meridian, per, round),
      };
    });
    const geos = [...this.#geoStats].map(([name, s]): GeoSnapshot => {
      const w = s.take(intervalMs);
      const region = this.#geoRegion.get(name) ?? '';
      if (w.rps > 0) flows.push({ kind: 'client', from: name, to: region, rps: w.rps });
      return { name, region, rps: w.rps, p50Ms: w.p50Ms, p99Ms: w.p99Ms, errorRate: w.errorRate };
    });
    const state = {
      t: now,
      intervalMs,
      regions,
      geos,
      flows,
      load: {
        running: this.#load?.running ?? false,
        rate: this.#load?.rate ?? 0,
        baseRate: this.#load ? this.#baseRate : 0,
        spikeUntil: this.#spikeUntil,
        inFlight: this.#load?.inFlight ?? 0,
        dropped: round((this.#load?.takeDropped() ?? 0) * per),
      },
      dns: this.dns === undefined ? null : { port: this.dns.port, name: HOSTNAME },
    };
    const snapshot: DemoSnapshot = { ...state, events: [...this.#recorded.splice(0), ...changes(this.#history.at(-1), state)] };
    this.#history.push(snapshot);
    if (this.#history.length > HISTORY) this.#history = this.#history.slice(-HISTORY);
    for (const fn of this.#subscribers) fn(snapshot);
  }

  // ---- ports -------------------------------------------------------------------------

  /**
   * `wanted` if it is free; else a free one, noted for the banner (or, when the user asked
   * for that port, a PortInUseError naming it). `avoid`: ports already chosen. 0 stays 0:
   * whoever listens takes a port then (one picked now could be taken before the listen).
   */
  async #choosePort(wanted: number, explicit: boolean, what: string, avoid: readonly number[] = [], host = '127.0.0.1'): Promise<number> {
    if (wanted === 0) return 0;
    if (wanted !== 0 && !avoid.includes(wanted) && (await portFree(wanted, host)) && (host === '127.0.0.1' || (await portFree(wanted)))) return wanted;
    if (wanted !== 0 && explicit) throw new PortInUseError(wanted, what);
    let port: number;
    do port = await freePort();
    while (avoid.includes(port));
    if (wanted !== 0) this.notes.push(`port ${wanted} (${what}) is in use: using ${port} instead`);
    return port;
  }
}

function noBackend(id: string): ControlResult {
  return { ok: false, status: 404, error: `no backend "${id}"` };
}

function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
