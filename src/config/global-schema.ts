/**
 * The `global:` block: regions, how clients are located, which policy steers each
 * hostname, and the authoritative DNS responder that hands out the answers.
 * docs/config.md and docs/global.md document every key; keep them in step.
 *
 * Parsed values follow schema.ts's conventions: durations in ms, DNS names lowercased
 * without a trailing dot, defaults filled in.
 */
import { z } from 'zod';
import { parseCidr, parseIp } from '../core/ip.js';
import { STEERING_POLICIES } from '../core/steering.js';
import { describeValue, didYouMean } from './describe.js';
import { formatDuration } from './duration.js';
import { loadUdpBatch } from '../shared/udp-batch-addon.js';
import { ALWAYS, REUSE_PORT, bindAddress, type Ctx, decimal, duration, exactlyOne, fail, healthThresholds, integer, name, percentString } from './fields.js';

// ---- field types -----------------------------------------------------------------

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?$/;

/** A DNS name (`www.example.com`, a trailing dot allowed) → lowercase, no trailing dot. */
export function dnsName() {
  return z.string().transform((s, ctx): string => {
    const n = s.toLowerCase().replace(/\.$/, '');
    if (n.length === 0 || n.length > 253 || !n.split('.').every((l) => LABEL.test(l))) {
      fail(ctx, `expected a DNS name like "www.example.com", got ${describeValue(s)}`);
      return z.NEVER;
    }
    return n;
  });
}

/** An IPv4 or IPv6 address (an A or AAAA answer). */
function ipAddress() {
  return z.string().superRefine((s, ctx) => {
    if (parseIp(s) === undefined || s.includes('/')) fail(ctx, `expected an IPv4 or IPv6 address, got ${describeValue(s)}`);
  });
}

/** A CIDR block with no host bits set (`10.1.0.0/16`, `2001:db8::/32`). */
function cidrBlock() {
  return z.string().superRefine((s, ctx) => {
    const r = parseCidr(s);
    if (typeof r === 'string') fail(ctx, `expected a CIDR like "10.0.0.0/8": ${r}`);
  });
}

const geoPoint = z.strictObject({
  lat: decimal(-90, 90),
  lon: decimal(-180, 180),
});

/** A TTL: a duration in whole seconds, 0 allowed (do not cache), at most 2^31-1 s by RFC 2181 (our duration cap is lower). */
function ttl() {
  return duration({ allowZero: true }).superRefine((ms, ctx) => {
    if (ms % 1000 !== 0) fail(ctx, `must be whole seconds (DNS TTLs are), got ${formatDuration(ms)}`);
  });
}

function httpUrl() {
  return z.string().superRefine((s, ctx) => {
    let ok: boolean;
    try {
      const u = new URL(s);
      ok = u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      ok = false;
    }
    if (!ok) fail(ctx, `expected an http:// or https:// URL, got ${describeValue(s)}`);
  });
}

// ---- blocks ----------------------------------------------------------------------

const regionHealthSchema = z
  .strictObject({
    /** GET this; 2xx = up. A JSON body may report `healthy_fraction` (or `healthy`/`total`) and `load_rps`. */
    url: httpUrl(),
    interval: duration().prefault('2s'),
    timeout: duration().prefault('1s'),
    jitter: percentString().prefault('10%'),
    ...healthThresholds(),
  })
  .superRefine((h, ctx) => {
    if (h.timeout >= h.interval) fail(ctx, `must be shorter than interval (${formatDuration(h.interval)}), got ${formatDuration(h.timeout)}`, ['timeout']);
  });

const regionSchema = z.strictObject({
  name: name(),
  location: geoPoint,
  /** A and AAAA answers for this region. */
  addresses: z.array(ipAddress()).min(1),
  /** Requests per second the region takes at full health; above it, answers spill over. Absent = no limit. */
  capacity_rps: decimal(0, Infinity, { exclusiveMin: true }).optional(),
  /** Absent: the region is always up (unless set down by hand). */
  health: regionHealthSchema.optional(),
});

const soaSchema = z.strictObject({
  /** Primary name server; default the first of `ns`. */
  mname: dnsName().optional(),
  /** The zone administrator's mailbox as a DNS name; default `hostmaster.<zone>`. */
  rname: dnsName().optional(),
  serial: integer(0, 4_294_967_295).default(1),
  refresh: ttl().prefault('1h'),
  retry: ttl().prefault('10m'),
  expire: ttl().prefault('168h'),
  /** Negative-caching TTL (RFC 2308): how long NXDOMAIN and NODATA may be cached. */
  minimum: ttl().prefault('30s'),
});

/** Response rate limiting (BIND/Knot RRL) of UDP answers per client prefix. */
const rrlSchema = z.strictObject({
  /** UDP answers per second to one client prefix; past it they are dropped or slipped. */
  responses_per_second: decimal(0, 1_000_000, { exclusiveMin: true }),
  /** How long a flood is remembered: the debt a prefix can run up is rate x window (BIND's default 15 s). */
  window: duration({ allowZero: true }).prefault('15s'),
  /** Every slip-th limited answer goes out empty with TC=1 (the client retries over TCP); 0 = drop all, 1 = truncate all. */
  slip: integer(0, 10).default(2),
  ipv4_prefix_length: integer(8, 32).default(24),
  ipv6_prefix_length: integer(16, 128).default(56),
  /** Client prefixes tracked at most; past it the longest-held is forgotten. */
  max_prefixes: integer(1, 10_000_000).default(100_000),
});

const dnsSchema = z.strictObject({
  address: bindAddress().default('127.0.0.1'),
  port: integer(0, 65535).default(53),
  /** The zone this responder is authoritative for. */
  zone: dnsName(),
  ttl: ttl().prefault('30s'),
  /** NS names of the zone; default `ns1.<zone>`. */
  ns: z.array(dnsName()).min(1).optional(),
  /** Addresses served for NS names inside the zone (glue), e.g. `{ ns1.meridian.test: [127.0.0.1] }`. */
  ns_addresses: z.record(z.string(), z.array(ipAddress()).min(1)).default({}),
  soa: soaSchema.prefault({}),
  /** A TCP connection with no query for this long is closed. */
  tcp_idle_timeout: duration().prefault('10s'),
  /** TCP connections open at once; past it new ones are closed at once. */
  max_tcp_connections: integer(1).default(1000),
  /**
   * UDP sockets bound to the port (SO_REUSEPORT), each with its own receive queue. The
   * batch engine steers clients to them by source /24 (/56); dgram leaves it to the
   * kernel's hash of address and port, and needs dgram's `reusePort` above 1 (Node
   * 22.12 / 23.1 and later).
   */
  udp_sockets: integer(1, 64).default(1),
  /**
   * What reads and writes UDP: `batch` the native addon (recvmmsg/sendmmsg, prefix
   * steering; docs/dns-batching.md), `dgram` Node's, `auto` batch when the addon loads.
   */
  udp_engine: z.enum(['auto', 'batch', 'dgram']).default('auto'),
  /** Absent: no rate limiting (as BIND and Knot by default). */
  rrl: rrlSchema.optional(),
}).superRefine((d, ctx) => {
  const load = d.udp_engine === 'dgram' ? undefined : loadUdpBatch();
  if (d.udp_engine === 'batch' && load !== undefined && 'reason' in load) fail(ctx, `batch needs the native udp-batch addon: ${load.reason}`, ['udp_engine']);
  const batch = load !== undefined && 'addon' in load;
  if (d.udp_sockets > 1 && !batch && !REUSE_PORT) {
    fail(ctx, `above 1 needs the batch engine (udp_engine: ${d.udp_engine}${load !== undefined && 'reason' in load ? `; ${load.reason}` : ''}) or dgram reusePort (Node 22.12 or 23.1 and later); this is Node ${process.versions.node}`, ['udp_sockets']);
  }
});

const cidrEntrySchema = z
  .strictObject({
    cidr: cidrBlock(),
    location: geoPoint.optional(),
    /** Send these clients to this region first (then the rest by distance from it). */
    region: z.string().optional(),
  })
  .superRefine(exactlyOne(['location', 'region']));

const geoSchema = z.strictObject({
  cidrs: z.array(cidrEntrySchema).default([]),
  /** A MaxMind DB (GeoLite2-City or compatible) consulted when no CIDR matches. */
  mmdb: z.string().min(1).optional(),
});

const latencySchema = z.strictObject({
  /** Time constant of the RTT moving average. */
  decay: duration().prefault('60s'),
  /** RTTs older than this are forgotten; a subnet with none left is steered by geo. */
  max_age: duration().prefault('10m'),
  /** Client subnets whose RTTs are kept at most. */
  max_subnets: integer(1).default(100_000),
});

const hostnameSchema = z.strictObject({
  name: dnsName(),
  policy: z.enum(STEERING_POLICIES).default('geo'),
  /** failover: the regions, most preferred first. */
  order: z.array(z.string()).min(1).optional(),
  /** weighted: relative weight per region name (default 1 each; 0 = never while another is up). */
  weights: z.record(z.string(), decimal(0)).optional(),
});

export const globalSchema = z
  .strictObject({
    dns: dnsSchema,
    regions: z.array(regionSchema).min(1),
    geo: geoSchema.prefault({}),
    latency: latencySchema.prefault({}),
    hostnames: z.array(hostnameSchema).min(1),
  })
  .superRefine(checkGlobal, ALWAYS)
  .transform((g) => {
    const ns = g.dns.ns ?? [`ns1.${g.dns.zone}`];
    const soa = { ...g.dns.soa, mname: g.dns.soa.mname ?? (ns[0] as string), rname: g.dns.soa.rname ?? `hostmaster.${g.dns.zone}` };
    const nsAddresses = Object.fromEntries(Object.entries(g.dns.ns_addresses).map(([k, v]) => [k.toLowerCase().replace(/\.$/, ''), v]));
    return { ...g, dns: { ...g.dns, ns, soa, ns_addresses: nsAddresses } };
  });

export type GlobalConfig = z.output<typeof globalSchema>;
export type RegionConfig = GlobalConfig['regions'][number];
export type RegionHealthCheckConfig = NonNullable<RegionConfig['health']>;
export type HostnameConfig = GlobalConfig['hostnames'][number];
export type DnsConfig = GlobalConfig['dns'];

// ---- cross-field checks ------------------------------------------------------------

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const lower = (v: unknown): string | undefined => str(v)?.toLowerCase().replace(/\.$/, '');

function inZone(n: string, zone: string): boolean {
  return n === zone || n.endsWith(`.${zone}`);
}

/**
 * Region names unique and every reference to one resolvable; hostnames unique, inside
 * the zone, with the keys their policy reads (and not others); CIDRs not repeated.
 */
function checkGlobal(value: unknown, ctx: Ctx): void {
  const g = obj(value);
  if (!g) return;
  const regions = list(g['regions']).map(obj);
  const seen = new Map<string, number>();
  regions.forEach((r, i) => {
    const n = str(r?.['name']);
    if (n === undefined) return;
    const first = seen.get(n);
    if (first !== undefined) fail(ctx, `duplicate region name ${describeValue(n)} (first at regions[${first}])`, ['regions', i, 'name']);
    else seen.set(n, i);
  });
  const names = new Set(seen.keys());
  const checkRef = (ref: unknown, path: (string | number)[]): void => {
    const n = str(ref);
    if (n === undefined || names.size === 0 || names.has(n)) return;
    fail(ctx, `unknown region ${describeValue(n)}${didYouMean(n, names) || ` (defined: ${[...names].join(', ')})`}`, path);
  };

  const dns = obj(g['dns']);
  const zone = lower(dns?.['zone']);
  if (zone !== undefined) {
    Object.keys(obj(dns?.['ns_addresses']) ?? {}).forEach((k) => {
      const nsNames = dns?.['ns'] === undefined ? [`ns1.${zone}`] : list(dns['ns']).map(lower);
      if (!nsNames.includes(lower(k))) fail(ctx, `${describeValue(k)} is not one of the NS names (${nsNames.join(', ')})`, ['dns', 'ns_addresses', k]);
    });
  }

  const hostSeen = new Map<string, number>();
  list(g['hostnames']).forEach((h, i) => {
    const host = obj(h);
    if (!host) return;
    const n = lower(host['name']);
    if (n !== undefined) {
      if (zone !== undefined && !inZone(n, zone)) fail(ctx, `${describeValue(n)} is outside the zone ${describeValue(zone)} this responder serves`, ['hostnames', i, 'name']);
      const first = hostSeen.get(n);
      if (first !== undefined) fail(ctx, `duplicate hostname ${describeValue(n)} (first at hostnames[${first}])`, ['hostnames', i, 'name']);
      else hostSeen.set(n, i);
    }
    const policy = host['policy'] ?? 'geo';
    if (policy === 'failover' && host['order'] === undefined) fail(ctx, 'required for the failover policy: the regions, most preferred first', ['hostnames', i, 'order']);
    if (policy !== 'failover' && host['order'] !== undefined) fail(ctx, `only for the failover policy (this hostname's policy is ${describeValue(policy)})`, ['hostnames', i, 'order']);
    if (policy !== 'weighted' && host['weights'] !== undefined) fail(ctx, `only for the weighted policy (this hostname's policy is ${describeValue(policy)})`, ['hostnames', i, 'weights']);
    const orderSeen = new Set<string>();
    list(host['order']).forEach((r, j) => {
      checkRef(r, ['hostnames', i, 'order', j]);
      const rn = str(r);
      if (rn !== undefined && orderSeen.has(rn)) fail(ctx, `region ${describeValue(rn)} is listed twice`, ['hostnames', i, 'order', j]);
      if (rn !== undefined) orderSeen.add(rn);
    });
    Object.keys(obj(host['weights']) ?? {}).forEach((r) => checkRef(r, ['hostnames', i, 'weights', r]));
  });

  const cidrSeen = new Map<string, number>();
  list(obj(g['geo'])?.['cidrs']).forEach((c, i) => {
    const entry = obj(c);
    checkRef(entry?.['region'], ['geo', 'cidrs', i, 'region']);
    const parsed = parseCidr(str(entry?.['cidr']) ?? '');
    if (typeof parsed === 'string') return;
    const key = `${Array.from(parsed.bytes).join('.')}/${parsed.prefixLength}/${parsed.family}`;
    const first = cidrSeen.get(key);
    if (first !== undefined) fail(ctx, `duplicate CIDR (first at geo.cidrs[${first}])`, ['geo', 'cidrs', i, 'cidr']);
    else cidrSeen.set(key, i);
  });
}
