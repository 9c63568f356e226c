import type { Rng } from './rng.js';
import type { Balancer, Host, PickContext } from './types.js';
import { WeightedSampler } from './weighted-sampler.js';

/** Weighted random: each pick independent, probability proportional to weight. */
export class RandomBalancer implements Balancer {
  readonly policy = 'random' as const;
  readonly #rng: Rng;
  #hosts: readonly Host[] = [];
  #sampler = new WeightedSampler([]);

  constructor(rng: Rng) {
    this.#rng = rng;
  }

  update(hosts: readonly Host[], weights: readonly number[]): void {
    const sampler = new WeightedSampler(weights);
    this.#hosts = [...hosts];
    this.#sampler = sampler;
  }

  pick(_ctx: PickContext): Host | undefined {
    if (this.#hosts.length === 0) return undefined;
    return this.#hosts[this.#sampler.sample(this.#rng)];
  }
}
