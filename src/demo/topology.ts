/**
 * The demo's world: regions with their backends' service times, the round-trip times
 * between regions, the client geographies of the load generator, and each region's
 * Meridian config. Plain data and functions; src/demo/demo.ts starts it.
 */
import type { Config } from '../config/index.js';
import { validateConfig } from '../config/index.js';

export interface RegionSpec {
  readonly name: string;
  /** Service time of its backends (a LatencySpec string). */
  readonly latency: string;
  /** Fraction 0..1 of its backends' answers that are 500. */
  readonly errorRate: number;
  /** Where it is, for the geographies' distances (degrees). */
  readonly lat: number;
  readonly lon: number;
}

/** Up to five regions; `--regions N` takes the first N. */
export const REGIONS: readonly RegionSpec[] = [
  { name: 'us-east', latency: 'lognormal:8ms,0.5', errorRate: 0.002, lat: 39, lon: -77 },
  { name: 'eu-west', latency: 'lognormal:10ms,0.5', errorRate: 0.002, lat: 53, lon: -6 },
  { name: 'ap-south', latency: 'lognormal:12ms,0.6', errorRate: 0.004, lat: 19, lon: 73 },
  { name: 'sa-east', latency: 'lognormal:11ms,0.5', errorRate: 0.003, lat: -23, lon: -46 },
  { name: 'ap-northeast', latency: 'lognormal:9ms,0.5', errorRate: 0.002, lat: 35, lon: 139 },
];

export interface GeoSpec {
  readonly name: string;
  /** Share of the load generator's clients. */
  readonly weight: number;
  readonly lat: number;
  readonly lon: number;
}

/** Where the clients are; each sends to the nearest region that is running. */
export const GEOS: readonly GeoSpec[] = [
  { name: 'New York', weight: 3, lat: 40.7, lon: -74 },
  { name: 'Chicago', weight: 1, lat: 41.9, lon: -87.6 },
  { name: 'London', weight: 2, lat: 51.5, lon: -0.1 },
  { name: 'Frankfurt', weight: 2, lat: 50.1, lon: 8.7 },
  { name: 'Mumbai', weight: 2, lat: 19.1, lon: 72.9 },
  { name: 'Singapore', weight: 2, lat: 1.35, lon: 103.8 },
  { name: 'São Paulo', weight: 1, lat: -23.5, lon: -46.6 },
  { name: 'Tokyo', weight: 1, lat: 35.7, lon: 139.7 },
];

/** Great-circle distance in km. */
export function distanceKm(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.min(1, Math.sqrt(h)));
}

/**
 * Round-trip time between two regions, ms: light in fibre covers about 100 km per ms of
 * round trip (200,000 km/s, there and back), and real paths are about 1.5x the great
 * circle; New York to London comes out near 83 ms, as measured on the internet.
 */
export function rttMs(a: RegionSpec, b: RegionSpec): number {
  return Math.round((distanceKm(a, b) * 1.5) / 100);
}

/** The regions in order of distance from `where`. */
export function nearest(where: { lat: number; lon: number }, regions: readonly RegionSpec[]): RegionSpec[] {
  return [...regions].sort((x, y) => distanceKm(where, x) - distanceKm(where, y));
}

/**
 * The demo's DNS zone and the hostname its clients resolve; each geography's clients
 * carry a documentation-range subnet (203.0.113.0/24, RFC 5737, cut in /27s), never an
 * address anything is sent to: it only tells the steering where they are.
 */
export const ZONE = 'meridian.test';
export const HOSTNAME = `www.${ZONE}`;
export const DNS_TTL_S = 5;

export function geoSubnet(i: number): { cidr: string; ip: string } {
  return { cidr: `203.0.113.${i * 32}/27`, ip: `203.0.113.${i * 32 + 1}` };
}

/** The `global:` block: a geo-steered hostname over the regions, each answering with its listener's address. */
/**
 * The DNS steering config. With `webPort`, each region is probed through its own listener
 * (the prober's hops header makes that Meridian answer from its own backends only), so a
 * region whose backends all die leaves the DNS answers by itself.
 */
export function globalConfigInput(regions: readonly { spec: RegionSpec; address: string; webPort?: number }[], dnsPort: number): Record<string, unknown> {
  return {
    dns: { address: '127.0.0.1', port: dnsPort, zone: ZONE, ttl: `${DNS_TTL_S}s`, ns_addresses: { [`ns1.${ZONE}`]: ['127.0.0.1'] } },
    regions: regions.map((r) => ({
      name: r.spec.name,
      location: { lat: r.spec.lat, lon: r.spec.lon },
      addresses: [r.address],
      ...(r.webPort === undefined ? {} : { health: { url: `http://${r.address}:${r.webPort}/healthz`, interval: '1s', timeout: '500ms', unhealthy_threshold: 2, healthy_threshold: 2 } }),
    })),
    geo: { cidrs: GEOS.map((g, i) => ({ cidr: geoSubnet(i).cidr, location: { lat: g.lat, lon: g.lon } })) },
    hostnames: [{ name: HOSTNAME, policy: 'geo' }],
  };
}

export interface RegionPorts {
  /** Clients' listener. */
  readonly web: number;
  /** Where other regions' Meridians send their failover traffic. */
  readonly peer: number;
}

export interface RegionConfigInput {
  readonly region: RegionSpec;
  /** Its clients' listener address (127.0.0.1, or a loopback alias of its own such as 127.0.0.11). */
  readonly address: string;
  readonly ports: RegionPorts;
  readonly policy: string;
  /** Where its own backends are listed (backendsFileText): the cluster finds them there by discovery, as from a file a deploy tool writes. */
  readonly backendsFile: string;
  /** The other regions, nearest first, each reached through a WAN link on `port`. */
  readonly peers: readonly { readonly region: string; readonly port: number }[];
  /** Client requests per second each region may take before answering 429. */
  readonly rateLimitPerSecond: number;
}

/** A region's backends file (discovery.file): each backend at the region's priority-0 locality. */
export function backendsFileText(region: string, backends: readonly { readonly id: string; readonly port: number }[]): string {
  return backends.map((b) => `- { id: ${b.id}, address: "127.0.0.1:${b.port}", locality: { region: ${region}, priority: 0 } }\n`).join('');
}

/** The cluster every region serves. */
export const CLUSTER = 'app';

/** The input object of a region's Meridian config (kept, so a policy change can rebuild it). */
export function regionConfigInput(c: RegionConfigInput): Record<string, unknown> {
  const cluster = {
    name: CLUSTER,
    policy: c.policy,
    // The hash policies need a key: the load generator sends x-user.
    hash: { key: { header: 'x-user' } },
    health_check: { path: '/healthz', interval: '500ms', timeout: '300ms', jitter: '10%', healthy_threshold: 2, unhealthy_threshold: 2 },
    outlier_detection: { consecutive_5xx: 5, consecutive_gateway_errors: 3, interval: '5s', base_ejection_time: '5s', max_ejection_percent: 50 },
    slow_start: { window: '10s', min_weight_percent: 10 },
    retries: { attempts: 2, retry_on: ['connect_failure', 'reset', 'gateway_error'], budget: { percent: 20, min_per_second: 10 } },
    timeouts: { connect: '500ms', request: '5s' },
    circuit_breaker: { max_requests: 400, max_pending_requests: 200 },
    // One region alone has no failover peers (and a config's localities list none empty).
    ...(c.peers.length === 0 ? {} : { localities: c.peers.map((p, i) => ({ region: p.region, priority: i + 1, remote: true, endpoints: [{ id: `via-${p.region}`, address: `127.0.0.1:${p.port}` }] })) }),
    // Its own backends, at priority 0, from a watched file: edit it and the dashboard follows.
    discovery: { file: { path: c.backendsFile }, min_change_interval: '1s' },
  };
  const route = { cluster: CLUSTER, rate_limit: { requests_per_second: c.rateLimitPerSecond } };
  return {
    node: { name: `meridian-${c.region.name}`, region: c.region.name },
    admin: { address: '127.0.0.1', port: 0 },
    access_log: { enabled: false },
    drain_timeout: '1s',
    listeners: [
      { name: 'web', address: c.address, port: c.ports.web, routes: [route] },
      { name: 'peer', address: '127.0.0.1', port: c.ports.peer, routes: [{ cluster: CLUSTER }] },
    ],
    clusters: [cluster],
  };
}

/** A validated config, or throw with every error (a bug in the demo if it happens). */
export function toConfig(input: Record<string, unknown>): Config {
  const r = validateConfig(input);
  if (!r.ok) throw new Error(`demo config invalid:\n${r.errors.join('\n')}`);
  return r.config;
}

/** `input` with the cluster's policy replaced. */
export function withPolicy(input: Record<string, unknown>, policy: string): Record<string, unknown> {
  const clusters = (input['clusters'] as Record<string, unknown>[]).map((c) => ({ ...c, policy }));
  return { ...input, clusters };
}
