/**
 * Asking DNS for a cluster's endpoints (`discovery.dns`), with node:dns's Resolver:
 * A/AAAA records become `ip:port` endpoints, SRV records endpoints at each target's
 * addresses (resolved with the same resolver, so a private resolver's names work).
 *
 * TTLs: A and AAAA answers carry theirs. Node's resolveSrv does not return an SRV
 * record's TTL, so an SRV answer's TTL is the smallest TTL of its targets' A/AAAA records
 * (in practice the same zone's TTL; bounded by min_ttl/max_ttl like any other).
 */
import { Resolver } from 'node:dns/promises';
import type { DiscoveryConfig } from '../config/index.js';
import { addressEndpoints, srvEndpoints, type Answer, type SrvTarget } from '../core/discovery.js';

export type DnsDiscoveryConfig = NonNullable<DiscoveryConfig['dns']>;

/** One answer, and its TTL in seconds when it has one. */
export interface DnsAnswer {
  readonly answer: Answer;
  readonly ttlS: number | undefined;
}

/** The name exists with no records of the type, or does not exist: an empty answer, not a failure. */
const EMPTY_CODES = new Set(['ENODATA', 'ENOTFOUND']);

function isEmpty(e: unknown): boolean {
  return EMPTY_CODES.has((e as NodeJS.ErrnoException).code ?? '');
}

function describe(e: unknown, name: string, type: string): string {
  const err = e as NodeJS.ErrnoException;
  return `${type} ${name}: ${err.code ?? err.message}`;
}

export class DnsSource {
  readonly #c: DnsDiscoveryConfig;
  readonly #resolver: Resolver;

  constructor(c: DnsDiscoveryConfig) {
    this.#c = c;
    this.#resolver = new Resolver({ timeout: c.timeout, tries: 2 });
    if (c.resolver !== undefined) this.#resolver.setServers([c.resolver]);
  }

  get description(): string {
    return `dns ${this.#c.type} ${this.#c.name}${this.#c.resolver === undefined ? '' : ` @${this.#c.resolver}`}`;
  }

  /** Stop every query in flight (they fail with ECANCELLED). */
  cancel(): void {
    this.#resolver.cancel();
  }

  async resolve(): Promise<DnsAnswer> {
    const c = this.#c;
    try {
      if (c.type === 'SRV') return await this.#srv();
      const records = c.type === 'A' ? await this.#resolver.resolve4(c.name, { ttl: true }) : await this.#resolver.resolve6(c.name, { ttl: true });
      return { answer: { ok: true, endpoints: addressEndpoints(records.map((r) => r.address), c.port ?? 0) }, ttlS: minTtl(records) };
    } catch (e) {
      if (isEmpty(e)) return { answer: { ok: true, endpoints: [] }, ttlS: undefined };
      return { answer: { ok: false, error: describe(e, c.name, c.type) }, ttlS: undefined };
    }
  }

  async #srv(): Promise<DnsAnswer> {
    const records = await this.#resolver.resolveSrv(this.#c.name);
    const targets = new Map<string, Promise<{ address: string; ttl: number }[]>>();
    for (const r of records) if (!targets.has(r.name)) targets.set(r.name, this.#addresses(r.name));
    // A target that fails (not merely empty) fails the whole answer: applying the rest would
    // look like a scale-in of that target's endpoints.
    // All awaited together: awaiting them one by one left the others' failures unhandled
    // once the first failed (an unhandledRejection per target when a resolver goes away).
    const resolved = new Map(await Promise.all([...targets].map(async ([name, p]) => [name, await p] as const)));
    const withAddresses: SrvTarget[] = records.map((r) => ({ priority: r.priority, weight: r.weight, port: r.port, addresses: (resolved.get(r.name) ?? []).map((a) => a.address) }));
    return { answer: { ok: true, endpoints: srvEndpoints(withAddresses) }, ttlS: minTtl([...resolved.values()].flat()) };
  }

  /** A target's IPv4 addresses, else its IPv6 ones; none when it has neither. */
  async #addresses(name: string): Promise<{ address: string; ttl: number }[]> {
    try {
      return await this.#resolver.resolve4(name, { ttl: true });
    } catch (e) {
      if (!isEmpty(e)) throw new Error(describe(e, name, 'A'), { cause: e });
    }
    try {
      return await this.#resolver.resolve6(name, { ttl: true });
    } catch (e) {
      if (isEmpty(e)) return [];
      throw new Error(describe(e, name, 'AAAA'), { cause: e });
    }
  }
}

function minTtl(records: readonly { readonly ttl: number }[]): number | undefined {
  let min: number | undefined;
  for (const r of records) if (min === undefined || r.ttl < min) min = r.ttl;
  return min;
}
