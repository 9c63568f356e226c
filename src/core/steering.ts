/**
 * Global steering: which region answers a client's DNS query for a hostname. Pure: the
 * caller passes a snapshot of every region's health, capacity and load, the CIDR table,
 * the RTT table and an Rng, and gets a decision that says why, for logs and tests.
 *
 * Every policy first orders the candidate regions by preference (healthy or not), then:
 * 1. the first healthy region in that order is chosen; unhealthy ones before it are
 *    `skipped` (reason `failover` when the policy's own first choice was skipped);
 * 2. spillover: while the chosen region reports load above its healthy capacity, the
 *    excess fraction (load - capacity) / load of answers moves on to the next healthy
 *    region in the order (one Rng draw per overloaded region; reason `spillover`);
 * 3. fail open: with no healthy candidate at all, the policy's first preference is
 *    answered anyway (reason `fail_open`): an answer that may work beats none, and the
 *    health checks may be what is broken.
 */
import type { CidrTable } from './cidr-table.js';
import { type GeoPoint, nearestRegions } from './geo.js';
import type { IpAddress } from './ip.js';
import { excessFraction } from './region-health.js';
import type { Rng } from './rng.js';
import { RTT_SUBNET_BITS, rttSubnetOf, type RttTable } from './rtt-table.js';

export const STEERING_POLICIES = ['geo', 'latency', 'weighted', 'failover'] as const;
export type SteeringPolicy = (typeof STEERING_POLICIES)[number];

/** One region as steering sees it at the moment of a decision. */
export interface SteeringRegion {
  readonly name: string;
  readonly location: GeoPoint;
  readonly healthy: boolean;
  /** Healthy capacity in requests per second; undefined = unbounded (never spills). */
  readonly capacityRps?: number | undefined;
  /** Reported load in requests per second; undefined = unknown (never spills). */
  readonly loadRps?: number | undefined;
  /** The share of answers to pass on, when the caller tracks it (RegionHealth.spillFraction); else computed from capacity and load. */
  readonly spillFraction?: number | undefined;
}

/** A hostname's policy. */
export interface HostnamePolicy {
  readonly policy: SteeringPolicy;
  /** failover: the regions in order of preference (only these are candidates). */
  readonly order?: readonly string[];
  /** weighted: relative weights by region name; absent regions weigh 1, 0 = never (unless failing open). */
  readonly weights?: Readonly<Record<string, number>>;
}

/** Where a CIDR entry puts its clients: a location, and optionally a region to prefer outright. */
export interface CidrLocation {
  readonly location: GeoPoint;
  readonly region?: string | undefined;
}

/** What is known of the client. */
export interface SteeringClient {
  /** The client's address, or the network address of its subnet (EDNS Client Subnet). */
  readonly ip?: IpAddress | undefined;
  /** Significant bits of `ip`: the ECS source prefix, or 32/128 for a full address. */
  readonly prefixLength?: number | undefined;
  /** A location found outside the core (an mmdb lookup); used when the CIDR table has no match. */
  readonly externalLocation?: GeoPoint | undefined;
}

export interface SteeringTables {
  /** Every configured region, in config order (ties and fail-open fall back to it). */
  readonly regions: readonly SteeringRegion[];
  readonly cidrs?: CidrTable<CidrLocation> | undefined;
  readonly rtt?: RttTable | undefined;
}

export type SteeringReason =
  /** geo: the nearest healthy region. */
  | 'nearest'
  /** geo with no known client location: the first healthy region in config order. */
  | 'default'
  /** latency: the healthy region with the lowest measured RTT from the client's subnet. */
  | 'lowest_rtt'
  /** weighted: a weighted random draw over healthy regions. */
  | 'weighted'
  /** failover: the first region of `order`, healthy. */
  | 'primary'
  /** The policy's first choice was unhealthy; the next healthy one in its order answers. */
  | 'failover'
  /** The choice was over capacity and this answer went to the next healthy region. */
  | 'spillover'
  /** No candidate is healthy: the policy's first preference answers anyway. */
  | 'fail_open';

export interface SteeringDecision {
  readonly policy: SteeringPolicy;
  readonly region: string;
  readonly reason: SteeringReason;
  /** Every candidate in the policy's order of preference, healthy or not. */
  readonly order: readonly string[];
  /** Unhealthy regions passed over before the choice (before any spillover). */
  readonly skipped: readonly string[];
  /** Over-capacity regions this answer spilled from, in order; empty when it did not spill. */
  readonly spilledFrom: readonly string[];
  /** geo (and latency without measurements): the client location used, and where it came from. */
  readonly location?: GeoPoint | undefined;
  readonly locationSource: 'cidr' | 'external' | 'none';
  /** latency: the chosen region's RTT estimate for the client's subnet, when measured. */
  readonly rttMs?: number | undefined;
  /** latency with no measurement for the client's subnet: ordered by geo instead. */
  readonly fallback?: 'geo' | undefined;
  /** Leading bits of the client address this answer depends on (the RFC 7871 scope); 0 = any client. */
  readonly scopePrefixLength: number;
}

interface Preference {
  readonly order: SteeringRegion[];
  readonly reason: SteeringReason;
  readonly location?: GeoPoint | undefined;
  readonly locationSource: SteeringDecision['locationSource'];
  readonly rtt?: ReadonlyMap<string, number>;
  readonly fallback?: 'geo';
  readonly scopePrefixLength: number;
}

/** Decide which region answers. Throws only when there is no candidate region at all (a config bug). */
export function steer(host: HostnamePolicy, client: SteeringClient, tables: SteeringTables, rng: Rng): SteeringDecision {
  const candidates = candidatesOf(host, tables.regions);
  if (candidates.length === 0) throw new RangeError(`no candidate region for a ${host.policy} hostname`);
  const pref = preference(host, client, tables, candidates, rng);
  const order = pref.order;
  const healthy = order.filter((r) => r.healthy);
  const base = {
    policy: host.policy,
    order: order.map((r) => r.name),
    location: pref.location,
    locationSource: pref.locationSource,
    fallback: pref.fallback,
    scopePrefixLength: pref.scopePrefixLength,
  };
  if (healthy.length === 0) {
    const first = order[0] as SteeringRegion;
    return { ...base, region: first.name, reason: 'fail_open', skipped: order.map((r) => r.name), spilledFrom: [], rttMs: pref.rtt?.get(first.name) };
  }
  const chosenIndex = order.indexOf(healthy[0] as SteeringRegion);
  const skipped = order.slice(0, chosenIndex).map((r) => r.name);
  let i = 0;
  const spilledFrom: string[] = [];
  while (i < healthy.length - 1) {
    const r = healthy[i] as SteeringRegion;
    const f = r.spillFraction ?? excessFraction(r.capacityRps, r.loadRps);
    if (!(f > 0) || rng.next() >= f) break;
    spilledFrom.push(r.name);
    i++;
  }
  const region = (healthy[i] as SteeringRegion).name;
  const reason: SteeringReason = spilledFrom.length > 0 ? 'spillover' : skipped.length > 0 ? 'failover' : pref.reason;
  return { ...base, region, reason, skipped, spilledFrom, rttMs: pref.rtt?.get(region) };
}

function candidatesOf(host: HostnamePolicy, regions: readonly SteeringRegion[]): SteeringRegion[] {
  if (host.policy !== 'failover' || host.order === undefined) return [...regions];
  const byName = new Map(regions.map((r) => [r.name, r]));
  return host.order.map((n) => byName.get(n)).filter((r): r is SteeringRegion => r !== undefined);
}

function preference(host: HostnamePolicy, client: SteeringClient, tables: SteeringTables, candidates: SteeringRegion[], rng: Rng): Preference {
  switch (host.policy) {
    case 'geo':
      return geoPreference(client, tables, candidates);
    case 'latency':
      return latencyPreference(client, tables, candidates);
    case 'weighted':
      return { order: weightedOrder(candidates, host.weights ?? {}, rng), reason: 'weighted', locationSource: 'none', scopePrefixLength: 0 };
    case 'failover':
      return { order: candidates, reason: 'primary', locationSource: 'none', scopePrefixLength: 0 };
  }
}

function clientScope(client: SteeringClient): number {
  if (client.ip === undefined) return 0;
  return client.prefixLength ?? client.ip.bytes.length * 8;
}

/** The client's location: the CIDR table first (the operator's word), then an external lookup. */
export function locateClient(client: SteeringClient, cidrs: CidrTable<CidrLocation> | undefined): { location?: GeoPoint; region?: string | undefined; source: SteeringDecision['locationSource'] } {
  const match = client.ip === undefined ? undefined : cidrs?.lookup(client.ip);
  if (match !== undefined) return { location: match.value.location, region: match.value.region, source: 'cidr' };
  if (client.externalLocation !== undefined) return { location: client.externalLocation, source: 'external' };
  return { source: 'none' };
}

function geoPreference(client: SteeringClient, tables: SteeringTables, candidates: SteeringRegion[]): Preference {
  const found = locateClient(client, tables.cidrs);
  // The answer depends on the client's address whether or not it matched: another address might.
  const scopePrefixLength = clientScope(client);
  if (found.location === undefined) return { order: candidates, reason: 'default', locationSource: 'none', scopePrefixLength };
  let order = nearestRegions(found.location, candidates);
  // A CIDR entry that names a region puts that region first, then the rest by distance.
  const named = found.region === undefined ? -1 : order.findIndex((r) => r.name === found.region);
  if (named > 0) order = [order[named] as SteeringRegion, ...order.slice(0, named), ...order.slice(named + 1)];
  return { order, reason: 'nearest', location: found.location, locationSource: found.source, scopePrefixLength };
}

function latencyPreference(client: SteeringClient, tables: SteeringTables, candidates: SteeringRegion[]): Preference {
  const subnet = client.ip === undefined ? undefined : rttSubnetOf(client.ip);
  const rtt = subnet === undefined || tables.rtt === undefined ? new Map<string, number>() : tables.rtt.estimates(subnet);
  const geo = geoPreference(client, tables, candidates);
  const measured = geo.order.filter((r) => rtt.has(r.name));
  if (measured.length === 0) return { ...geo, fallback: 'geo' };
  // Measured regions by RTT (ties: geo order); unmeasured ones after them, in geo order.
  const byRtt = measured.map((r, i) => ({ r, i, ms: rtt.get(r.name) as number })).sort((a, b) => a.ms - b.ms || a.i - b.i).map((x) => x.r);
  const unmeasured = geo.order.filter((r) => !rtt.has(r.name));
  const family = client.ip?.family ?? 4;
  return {
    order: [...byRtt, ...unmeasured],
    reason: 'lowest_rtt',
    location: geo.location,
    locationSource: geo.locationSource,
    rtt,
    scopePrefixLength: Math.min(clientScope(client), RTT_SUBNET_BITS[family]),
  };
}

/**
 * A weighted random order without replacement: draw one healthy region with probability
 * weight / (sum of weights left), then the next from the rest, and so on; so the first is
 * the weighted choice and the following ones are where spillover goes. Unhealthy and
 * zero-weight regions follow in config order. With no healthy region, the draw is over
 * all of them (failing open still respects weights).
 */
function weightedOrder(candidates: SteeringRegion[], weights: Readonly<Record<string, number>>, rng: Rng): SteeringRegion[] {
  const weightOf = (r: SteeringRegion): number => Math.max(0, weights[r.name] ?? 1);
  const anyHealthy = candidates.some((r) => r.healthy && weightOf(r) > 0);
  const pool = candidates.filter((r) => weightOf(r) > 0 && (r.healthy || !anyHealthy));
  const rest = candidates.filter((r) => !pool.includes(r));
  const out: SteeringRegion[] = [];
  let total = pool.reduce((s, r) => s + weightOf(r), 0);
  while (pool.length > 0) {
    let x = rng.next() * total;
    let k = 0;
    for (; k < pool.length - 1; k++) {
      x -= weightOf(pool[k] as SteeringRegion);
      if (x < 0) break;
    }
    const [r] = pool.splice(k, 1) as [SteeringRegion];
    total -= weightOf(r);
    out.push(r);
  }
  return [...out, ...rest];
}
