/**
 * The global layer of one Meridian: region health (probes and overrides), the tables
 * steering reads (CIDRs, an optional mmdb, measured RTTs), and the authoritative DNS
 * responder that turns each decision into an answer. Every decision is src/core's
 * `steer()`; this class holds the state and does the I/O around it.
 *
 * Reload keeps what was learned: region health (probe streaks, reported capacity and
 * load, overrides) carries over by region name, RTTs stay; the DNS sockets are rebound
 * only when the address or port changes (the new ones first, so a bind error leaves
 * the running layer as it was).
 */
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { CidrTable } from '../core/cidr-table.js';
import type { Clock } from '../core/clock.js';
import { formatIp, type IpAddress, parseIp } from '../core/ip.js';
import { type RateLimitAction, ResponseRateLimiter } from '../core/response-rate-limiter.js';
import { RegionHealth, type RegionHealthView, type RegionOverride } from '../core/region-health.js';
import { type Rng, SeededRng } from '../core/rng.js';
import { RttTable } from '../core/rtt-table.js';
import { type CidrLocation, type HostnamePolicy, steer, type SteeringClient, type SteeringDecision, type SteeringPolicy, type SteeringRegion } from '../core/steering.js';
import type { GlobalConfig, HostnameConfig, RegionConfig } from '../config/global-schema.js';
import { type DnsOutcome, DnsResponder, type QueryContext, type SteeredAnswer } from './dns-responder.js';
import { DnsMetrics } from './dns-metrics.js';
import { DnsServer } from './dns-server.js';
import { loadUdpBatch, type UdpBatchAddon } from '../shared/udp-batch-addon.js';
import { MmdbLocator } from './mmdb.js';
import { causeOf, type ReportError } from '../admin/error-reporter.js';
import { type ProbeResult, RegionProber } from './region-prober.js';

export interface GlobalLayerOptions {
  readonly log: Logger;
  readonly clock?: Clock;
  readonly rng?: Rng;
  /** Where the DNS counters go (Meridian passes its ProxyMetrics registry); absent = no metrics. */
  readonly registry?: Registry;
  /** Errors absorbed here (a responder exception answered SERVFAIL, a probe callback that threw); absent: dropped. */
  readonly reportError?: ReportError;
}

export interface RegionStatus extends RegionHealthView {
  readonly name: string;
  readonly location: { readonly lat: number; readonly lon: number };
  readonly addresses: readonly string[];
  /** The configured capacity at full health; `capacityRps` is the healthy share of it. */
  readonly configuredCapacityRps: number | undefined;
  /** Whether a health URL is probed (false: up unless set down by hand). */
  readonly probed: boolean;
}

export interface GlobalStatus {
  readonly zone: string;
  readonly dns: { readonly address: string; readonly port: number };
  readonly regions: readonly RegionStatus[];
  readonly hostnames: readonly { readonly name: string; readonly policy: SteeringPolicy; readonly order?: readonly string[]; readonly weights?: Readonly<Record<string, number>> }[];
  readonly mmdb: string | undefined;
  readonly rttSubnets: number;
}

/**
 * The regions as steering sees them for one health version, and the decisions that
 * depend on nothing else: geo decisions by (CIDR match, client prefix length) and
 * failover decisions, while no region spills (spillover draws at random per answer).
 * Rebuilt on the first query after the version moves, so a health change is in the
 * very next answer.
 */
interface SteeringState {
  readonly version: number;
  readonly regions: readonly SteeringRegion[];
  readonly memoize: boolean;
  /** Per hostname, per CIDR match (NO_MATCH without one), decisions indexed by client prefix length. */
  readonly memo: Map<string, Map<object, (SteeredAnswer | undefined)[]>>;
}

const NO_MATCH = {};

/** Everything derived from one config, swapped in whole on reload. */
interface Snapshot {
  readonly config: GlobalConfig;
  readonly regions: ReadonlyMap<string, RegionConfig>;
  readonly hostnames: ReadonlyMap<string, HostnamePolicy>;
  readonly cidrs: CidrTable<CidrLocation>;
  readonly responder: DnsResponder;
}

export class GlobalLayer {
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #rng: Rng;
  readonly #reportError: ReportError;
  #snap: Snapshot;
  #health = new Map<string, RegionHealth>();
  #probers: RegionProber[] = [];
  #rtt: RttTable;
  #mmdb: MmdbLocator | undefined;
  #server: DnsServer | undefined;
  #started = false;
  /** Bumped on anything steering reads from region health: a probe result, an override, a reload. */
  #version = 0;
  #rrl: ResponseRateLimiter | undefined;
  #lastRemote = '';
  #lastRemoteIp: IpAddress | undefined;
  #steering: SteeringState | undefined;
  readonly #dnsMetrics: DnsMetrics | undefined;
  readonly #transitions: Counter<'region' | 'healthy'> | undefined;

  constructor(config: GlobalConfig, opts: GlobalLayerOptions) {
    this.#log = opts.log;
    this.#clock = opts.clock ?? { nowMs: () => performance.now() };
    this.#rng = opts.rng ?? new SeededRng(randomInt(2 ** 31));
    this.#reportError = opts.reportError ?? (() => {});
    this.#rtt = new RttTable(this.#clock, rttOptions(config));
    this.#health = healthFor(config, undefined);
    this.#snap = this.#build(config);
    this.#rrl = rateLimiterFor(config, undefined, this.#clock);
    const r = opts.registry;
    if (r !== undefined) {
      this.#dnsMetrics = DnsMetrics.for(r);
      this.#transitions = counter(r, 'meridian_region_health_transitions_total', 'Times a region became healthy ("true") or unhealthy ("false"), by probes or by hand.', ['region', 'healthy'] as const);
    }
  }

  get config(): GlobalConfig {
    return this.#snap.config;
  }

  /** Bind the DNS responder, open the mmdb, start the probes. */
  async start(): Promise<void> {
    const config = this.#snap.config;
    if (config.geo.mmdb !== undefined) this.#mmdb = await MmdbLocator.open(config.geo.mmdb);
    this.#server = this.#newServer(config);
    await this.#server.listen();
    this.#log.info({ address: config.dns.address, port: this.#server.port, zone: config.dns.zone, udpSockets: this.#server.udpSockets, udpEngine: this.#server.udpEngine }, 'dns responder listening (udp and tcp)');
    this.#started = true;
    this.#startProbers();
  }

  /** Apply a new `global` config; throws (leaving the running one in force) if it cannot be applied. */
  async reload(config: GlobalConfig): Promise<void> {
    const old = this.#snap.config;
    const mmdb = config.geo.mmdb === undefined ? undefined : config.geo.mmdb === old.geo.mmdb && this.#mmdb ? this.#mmdb : await MmdbLocator.open(config.geo.mmdb);
    let server = this.#server;
    const rebind = this.#started && (config.dns.address !== old.dns.address || config.dns.port !== old.dns.port);
    if (rebind) {
      server = this.#newServer(config);
      await server.listen();
    }
    // Nothing below can fail: swap in the new state.
    const oldServer = this.#server;
    this.#mmdb = mmdb;
    this.#health = healthFor(config, this.#health);
    if (!sameRtt(config, old)) this.#rtt = new RttTable(this.#clock, rttOptions(config));
    this.#snap = this.#build(config);
    this.#rrl = rateLimiterFor(config, sameRrl(config, old) ? this.#rrl : undefined, this.#clock);
    this.#version++;
    if (rebind && oldServer !== server) {
      this.#server = server;
      await oldServer?.close();
      this.#log.info({ address: config.dns.address, port: server?.port }, 'dns responder moved');
    }
    this.#server?.setLimits(config.dns.tcp_idle_timeout, config.dns.max_tcp_connections);
    if (this.#started) this.#startProbers();
  }

  async close(): Promise<void> {
    this.#started = false;
    for (const p of this.#probers) p.stop();
    this.#probers = [];
    await this.#server?.close();
    this.#server = undefined;
  }

  /** Bound ports: `{ dns }` (UDP and TCP share it). */
  ports(): { dns: number } {
    return { dns: this.#server?.port ?? 0 };
  }

  status(): GlobalStatus {
    const c = this.#snap.config;
    return {
      zone: c.dns.zone,
      dns: { address: c.dns.address, port: this.#server?.port ?? 0 },
      regions: c.regions.map((r) => ({
        name: r.name,
        location: r.location,
        addresses: r.addresses,
        configuredCapacityRps: r.capacity_rps,
        probed: r.health !== undefined,
        ...(this.#health.get(r.name) as RegionHealth).view(),
      })),
      hostnames: c.hostnames.map((h) => ({ name: h.name, policy: h.policy, ...(h.order ? { order: h.order } : {}), ...(h.weights ? { weights: h.weights } : {}) })),
      mmdb: this.#mmdb?.path,
      rttSubnets: this.#rtt.subnets,
    };
  }

  /** Force a region down or up by hand, or clear (undefined); false when there is no such region. */
  setRegionOverride(name: string, override: RegionOverride | undefined): boolean {
    const h = this.#health.get(name);
    if (h === undefined) return false;
    if (h.setOverride(override)) this.#transition(name, h.healthy, 'override');
    this.#version++;
    this.#log.info({ region: name, override: override ?? null }, 'region override');
    return true;
  }

  /** Record an RTT measured from a client (address or subnet) to a region; false when either is unknown or the figure is bad. */
  reportRtt(clientIp: string, region: string, ms: number): boolean {
    if (!this.#snap.regions.has(region)) return false;
    return this.#rtt.report(clientIp, region, ms);
  }

  /** What would be answered for `hostname` to a client at `clientIp` (the admin API and tests ask). */
  decide(hostname: string, clientIp?: string): SteeredAnswer | undefined {
    const name = hostname.toLowerCase().replace(/\.$/, '');
    if (!this.#snap.hostnames.has(name)) return undefined;
    const ip = clientIp === undefined ? undefined : parseIp(clientIp);
    return this.#steer(name, { ip, prefixLength: ip === undefined ? 0 : ip.bytes.length * 8 });
  }

  // ---- internals -------------------------------------------------------------------

  #build(config: GlobalConfig): Snapshot {
    const regions = new Map(config.regions.map((r) => [r.name, r]));
    const hostnames = new Map(config.hostnames.map((h) => [h.name, policyOf(h)]));
    const cidrs = new CidrTable<CidrLocation>(
      config.geo.cidrs.map((c) => ({
        cidr: c.cidr,
        value: c.region !== undefined ? { location: (regions.get(c.region) as RegionConfig).location, region: c.region } : { location: c.location as { lat: number; lon: number } },
      })),
    );
    const responder = new DnsResponder(config.dns, hostnames.keys(), (name, client) => this.#steer(name, client), (err, ctx) =>
      this.#reportError('dns_responder', causeOf(err), err, { transport: ctx.transport, client: ctx.remoteAddress }),
    );
    return { config, regions, hostnames, cidrs, responder };
  }

  #steeringState(): SteeringState {
    const current = this.#steering;
    if (current !== undefined && current.version === this.#version) return current;
    const regions: SteeringRegion[] = this.#snap.config.regions.map((r) => {
      const h = this.#health.get(r.name) as RegionHealth;
      return { name: r.name, location: r.location, healthy: h.healthy, capacityRps: h.capacityRps, loadRps: h.loadRps, spillFraction: h.spillFraction };
    });
    const memoize = regions.every((r) => !(r.spillFraction !== undefined && r.spillFraction > 0));
    this.#steering = { version: this.#version, regions, memoize, memo: new Map() };
    return this.#steering;
  }

  #steer(name: string, client: SteeringClient): SteeredAnswer {
    const snap = this.#snap;
    const host = snap.hostnames.get(name) as HostnamePolicy;
    const state = this.#steeringState();
    const memoizable = state.memoize && (host.policy === 'failover' || host.policy === 'geo');
    let match: object | undefined;
    let slots: (SteeredAnswer | undefined)[] | undefined;
    let slot = 0;
    if (host.policy === 'geo' || host.policy === 'latency') {
      match = client.ip === undefined ? undefined : snap.cidrs.lookup(client.ip);
      if (match === undefined && this.#mmdb !== undefined && client.ip !== undefined) {
        return this.#decide(host, { ...client, externalLocation: this.#mmdb.locate(formatIp(client.ip)) }, state);
      }
    }
    if (memoizable) {
      let byMatch = state.memo.get(name);
      if (byMatch === undefined) state.memo.set(name, (byMatch = new Map()));
      const k = match ?? NO_MATCH;
      slots = byMatch.get(k);
      if (slots === undefined) byMatch.set(k, (slots = []));
      // A geo answer holds for the client's prefix (its scope); a failover one for everyone.
      slot = host.policy === 'geo' && client.ip !== undefined ? (client.prefixLength ?? client.ip.bytes.length * 8) : 0;
      const hit = slots[slot];
      if (hit !== undefined) return hit;
    }
    const answer = this.#decide(host, client, state);
    if (slots !== undefined) slots[slot] = answer;
    return answer;
  }

  #decide(host: HostnamePolicy, client: SteeringClient, state: SteeringState): SteeredAnswer {
    const snap = this.#snap;
    const decision: SteeringDecision = steer(host, client, { regions: state.regions, cidrs: snap.cidrs, rtt: this.#rtt }, this.#rng);
    const addresses = (snap.regions.get(decision.region) as RegionConfig).addresses;
    return { decision, addresses };
  }

  #newServer(config: GlobalConfig): DnsServer {
    return new DnsServer({
      address: config.dns.address,
      port: config.dns.port,
      idleTimeoutMs: config.dns.tcp_idle_timeout,
      maxConnections: config.dns.max_tcp_connections,
      udpSockets: config.dns.udp_sockets,
      udpBatch: udpBatchFor(config.dns.udp_engine, this.#log),
      log: this.#log,
      respond: (msg, ctx) => this.#snap.responder.respond(msg, ctx),
      rateLimit: (remoteAddress) => this.#rateLimit(remoteAddress),
      onOutcome: (o, ctx) => this.#count(o, ctx),
      onError: (component, err) => this.#reportError(component, causeOf(err), err),
    });
  }

  #rateLimit(remoteAddress: string): RateLimitAction {
    const rrl = this.#rrl;
    if (rrl === undefined) return 'answer';
    if (remoteAddress !== this.#lastRemote) {
      this.#lastRemote = remoteAddress;
      this.#lastRemoteIp = parseIp(remoteAddress);
    }
    const ip = this.#lastRemoteIp;
    if (ip === undefined) return 'answer';
    const action = rrl.check(ip);
    if (action !== 'answer') this.#dnsMetrics?.rateLimited(action);
    return action;
  }

  #count(o: DnsOutcome, ctx: QueryContext): void {
    this.#dnsMetrics?.query(ctx.transport, o.rcode);
    if (o.decision !== undefined) {
      this.#dnsMetrics?.decision(o.name ?? '', o.decision.region, o.decision.reason);
      if (o.decision.reason === 'fail_open') this.#log.warn({ hostname: o.name, region: o.decision.region }, 'no healthy region: failing open');
    }
  }

  #startProbers(): void {
    for (const p of this.#probers) p.stop();
    this.#probers = [];
    for (const r of this.#snap.config.regions) {
      if (r.health === undefined) continue;
      const check = r.health;
      const prober = new RegionProber(r.name, check, this.#rng, (res) => this.#onProbe(r.name, res), (err) =>
        this.#reportError('region_probe', causeOf(err), err, { region: r.name }),
      );
      prober.start();
      this.#probers.push(prober);
    }
  }

  #onProbe(region: string, res: ProbeResult): void {
    const h = this.#health.get(region);
    if (h === undefined) return;
    // Any result may move capacity, load or spill, not only a transition.
    this.#version++;
    if (h.recordProbe(res)) this.#transition(region, h.healthy, 'probe', res);
  }

  #transition(region: string, healthy: boolean, by: 'probe' | 'override', res?: ProbeResult): void {
    this.#transitions?.inc({ region, healthy: String(healthy) });
    const fields = { region, healthy, by, ...(res?.reason ? { reason: res.reason } : {}), ...(res?.status ? { status: res.status } : {}) };
    if (healthy) this.#log.info(fields, 'region healthy');
    else this.#log.warn(fields, 'region unhealthy');
  }
}

function policyOf(h: HostnameConfig): HostnamePolicy {
  return { policy: h.policy, ...(h.order ? { order: h.order } : {}), ...(h.weights ? { weights: h.weights } : {}) };
}

function healthFor(config: GlobalConfig, previous: ReadonlyMap<string, RegionHealth> | undefined): Map<string, RegionHealth> {
  return new Map(
    config.regions.map((r) => [
      r.name,
      RegionHealth.from(previous?.get(r.name), {
        unhealthyThreshold: r.health?.unhealthy_threshold,
        healthyThreshold: r.health?.healthy_threshold,
        capacityRps: r.capacity_rps,
      }),
    ]),
  );
}

function rttOptions(c: GlobalConfig): { tauMs: number; maxAgeMs: number; maxSubnets: number } {
  return { tauMs: c.latency.decay, maxAgeMs: c.latency.max_age, maxSubnets: c.latency.max_subnets };
}

/** The limiter for `config` (none without dns.rrl); `keep` (same options) carries its prefixes over. */
function rateLimiterFor(config: GlobalConfig, keep: ResponseRateLimiter | undefined, clock: Clock): ResponseRateLimiter | undefined {
  const r = config.dns.rrl;
  if (r === undefined) return undefined;
  if (keep !== undefined) return keep;
  return new ResponseRateLimiter(
    { responsesPerSecond: r.responses_per_second, windowMs: r.window, slip: r.slip, ipv4PrefixLength: r.ipv4_prefix_length, ipv6PrefixLength: r.ipv6_prefix_length, maxPrefixes: r.max_prefixes },
    clock,
  );
}

function sameRrl(a: GlobalConfig, b: GlobalConfig): boolean {
  return JSON.stringify(a.dns.rrl) === JSON.stringify(b.dns.rrl);
}

function sameRtt(a: GlobalConfig, b: GlobalConfig): boolean {
  return a.latency.decay === b.latency.decay && a.latency.max_age === b.latency.max_age && a.latency.max_subnets === b.latency.max_subnets;
}

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Counter) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

/**
 * The addon for `dns.udp_engine`, or undefined for Node's dgram: `auto` falls back to
 * dgram with one log line saying why (config validation refused `batch` without it).
 */
export function udpBatchFor(engine: 'auto' | 'batch' | 'dgram', log: Logger, load = loadUdpBatch): UdpBatchAddon | undefined {
  if (engine === 'dgram') return undefined;
  const r = load();
  if ('addon' in r) return r.addon;
  if (engine === 'batch') throw new Error(`dns.udp_engine: batch needs the native udp-batch addon: ${r.reason}`);
  log.warn({ reason: r.reason }, 'dns udp engine: Node dgram (the native batch engine is unavailable)');
  return undefined;
}

/**
 * Bring `current` in line with `config`: start a layer when `global` appears, reload it
 * when it changes, close it when it goes. Meridian calls this on start and on reload.
 */
export async function syncGlobalLayer(current: GlobalLayer | undefined, config: GlobalConfig | undefined, opts: GlobalLayerOptions): Promise<GlobalLayer | undefined> {
  if (config === undefined) {
    await current?.close();
    return undefined;
  }
  if (current !== undefined) {
    await current.reload(config);
    return current;
  }
  const layer = new GlobalLayer(config, opts);
  await layer.start();
  return layer;
}
