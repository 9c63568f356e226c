import type { Clock } from './clock.js';
import type { Rng } from './rng.js';
import type { Balancer, Host, PickContext } from './types.js';
import { WeightedSampler } from './weighted-sampler.js';

export interface PeakEwmaOptions {
  /**
   * Cost assumed for a host with no latency sample yet once it has a request in flight
   * (Finagle's penalty): an idle new host costs 0 and is tried at once, but it is not
   * flooded before its first response says how fast it is. Default 1000 ms.
   */
  readonly penaltyMs?: number;
}

/**
 * Finagle's / Linkerd's peak-EWMA balancer: power of two choices (candidates drawn by
 * weight) on cost = latency EWMA x (active + 1). The EWMA itself lives on the host
 * (`LatencyEwma`, time constant tau) and is fed by the cluster on every response.
 */
export class PeakEwmaBalancer implements Balancer {
  readonly policy = 'peak_ewma' as const;
  readonly #rng: Rng;
  readonly #clock: Clock;
  readonly #penaltyMs: number;
  #hosts: readonly Host[] = [];
  #sampler = new WeightedSampler([]);

  constructor(rng: Rng, clock: Clock, options: PeakEwmaOptions = {}) {
    this.#rng = rng;
    this.#clock = clock;
    this.#penaltyMs = options.penaltyMs ?? 1000;
  }

  update(hosts: readonly Host[], weights: readonly number[]): void {
    const sampler = new WeightedSampler(weights);
    this.#hosts = [...hosts];
    this.#sampler = sampler;
  }

  pick(_ctx: PickContext): Host | undefined {
    const hosts = this.#hosts;
    if (hosts.length <= 1) return hosts[0];
    const a = this.#sampler.sample(this.#rng);
    const b = this.#sampler.sampleOther(this.#rng, a);
    const now = this.#clock.nowMs();
    const ha = hosts[a] as Host;
    const hb = hosts[b] as Host;
    return this.cost(hb, now) < this.cost(ha, now) ? hb : ha;
  }

  cost(host: Host, nowMs: number): number {
    if (host.latency.samples === 0) return host.active === 0 ? 0 : this.#penaltyMs * (host.active + 1);
    return host.latency.valueAt(nowMs) * (host.active + 1);
  }
}
