import type { Host } from './types.js';

/**
 * Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam, 2018): no host
 * may take more than c times its fair share of the requests in flight. A host is full
 * when, counting the request being placed, it would exceed
 *   ceil(c * (totalActive + 1) * weight / totalWeight).
 * Since the capacities add up to at least c * (totalActive + 1) > totalActive, some host
 * always has room, so a walk along the ring or table always ends.
 */
export function boundedCapacity(factor: number, totalActive: number, weight: number, totalWeight: number): number {
  return Math.ceil((factor * (totalActive + 1) * weight) / totalWeight);
}

/**
 * The sum of `active` over a balancer's current hosts, kept up to date from the
 * balancer's onStart/onEnd hooks so a pick need not add it up.
 */
export class ActiveTotal {
  #members = new Set<Host>();
  #total = 0;

  reset(hosts: readonly Host[]): void {
    this.#members = new Set(hosts);
    this.#total = hosts.reduce((sum, h) => sum + h.active, 0);
  }

  get value(): number {
    return this.#total;
  }

  started(host: Host): void {
    if (this.#members.has(host)) this.#total++;
  }

  ended(host: Host): void {
    if (this.#members.has(host)) this.#total = Math.max(0, this.#total - 1);
  }
}
