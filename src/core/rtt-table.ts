import type { Clock } from './clock.js';
import { formatNetwork, type IpAddress, networkOf, parseIp } from './ip.js';

/** Client subnets RTTs are kept by: a /24 per IPv4 network, a /48 per IPv6 site. */
export const RTT_SUBNET_BITS = { 4: 24, 6: 48 } as const;

/** The subnet key of a client address (`203.0.113.0/24`, `2001:db8:1::/48`); undefined if not an IP. */
export function rttSubnetOf(ip: string | IpAddress): string | undefined {
  const addr = typeof ip === 'string' ? parseIp(ip) : ip;
  return addr === undefined ? undefined : formatNetwork(networkOf(addr, RTT_SUBNET_BITS[addr.family]));
}

export interface RttTableOptions {
  /** Time constant of the average: a sample arriving tau after the last has weight 1 - 1/e. Default 60 s. */
  readonly tauMs?: number;
  /** Measurements older than this are forgotten (the region may have changed). Default 10 min. */
  readonly maxAgeMs?: number;
  /** Subnets kept at most; the least recently measured goes first. Default 100,000. */
  readonly maxSubnets?: number;
}

interface Estimate {
  rttMs: number;
  stampMs: number;
  samples: number;
}

/**
 * Measured round-trip times per (client subnet, region), each a time-weighted moving
 * average: a new sample x moves the estimate by alpha = 1 - exp(-elapsed / tau) toward
 * x, with alpha at least MIN_ALPHA, so a burst of samples still counts and one arriving
 * after a long silence nearly replaces the old figure. Unlike LatencyEwma (peak EWMA for
 * endpoint picks) it neither jumps to peaks nor decays toward zero when idle: an old
 * fast figure must not make a region look faster than it is. Old estimates expire instead.
 *
 * Bounded: at most `maxSubnets` subnets (reports come from an API, so a flood of fake
 * subnets must not grow memory without limit).
 */
export class RttTable {
  static readonly MIN_ALPHA = 0.1;
  readonly #clock: Clock;
  readonly #tauMs: number;
  readonly #maxAgeMs: number;
  readonly #maxSubnets: number;
  /** Insertion order = least recently measured first. */
  readonly #bySubnet = new Map<string, Map<string, Estimate>>();

  constructor(clock: Clock, opts: RttTableOptions = {}) {
    this.#clock = clock;
    this.#tauMs = opts.tauMs ?? 60_000;
    this.#maxAgeMs = opts.maxAgeMs ?? 600_000;
    this.#maxSubnets = opts.maxSubnets ?? 100_000;
    if (!(this.#tauMs > 0 && this.#maxAgeMs > 0 && this.#maxSubnets >= 1)) throw new RangeError('tau, max age and max subnets must be positive');
  }

  get subnets(): number {
    return this.#bySubnet.size;
  }

  /** Record an RTT from a client address (or a subnet key) to a region; false when the address is not an IP or the RTT not a finite number >= 0. */
  report(client: string, region: string, rttMs: number): boolean {
    const subnet = client.includes('/') ? client : rttSubnetOf(client);
    if (subnet === undefined || !(rttMs >= 0 && Number.isFinite(rttMs))) return false;
    const now = this.#clock.nowMs();
    let regions = this.#bySubnet.get(subnet);
    if (regions === undefined) {
      regions = new Map();
    } else {
      this.#bySubnet.delete(subnet); // re-inserted below: most recently measured last
    }
    this.#bySubnet.set(subnet, regions);
    const e = regions.get(region);
    if (e === undefined || now - e.stampMs > this.#maxAgeMs) {
      regions.set(region, { rttMs, stampMs: now, samples: 1 });
    } else {
      const alpha = Math.max(RttTable.MIN_ALPHA, 1 - Math.exp(-Math.max(0, now - e.stampMs) / this.#tauMs));
      e.rttMs += alpha * (rttMs - e.rttMs);
      e.stampMs = now;
      e.samples++;
    }
    while (this.#bySubnet.size > this.#maxSubnets) {
      const oldest = this.#bySubnet.keys().next().value as string;
      this.#bySubnet.delete(oldest);
    }
    return true;
  }

  /** Current (unexpired) estimates for a subnet key, by region. */
  estimates(subnet: string): Map<string, number> {
    const out = new Map<string, number>();
    const regions = this.#bySubnet.get(subnet);
    if (regions === undefined) return out;
    const now = this.#clock.nowMs();
    for (const [region, e] of regions) {
      if (now - e.stampMs <= this.#maxAgeMs) out.set(region, e.rttMs);
      else regions.delete(region);
    }
    if (regions.size === 0) this.#bySubnet.delete(subnet);
    return out;
  }
}
