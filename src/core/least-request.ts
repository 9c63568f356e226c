import { EdfScheduler } from './edf-scheduler.js';
import type { Rng } from './rng.js';
import type { Balancer, Host, PickContext } from './types.js';

export interface LeastRequestOptions {
  /** Hosts sampled per pick when weights are equal (Envoy's choice_count). Default 2. */
  readonly choiceCount?: number;
  /** Exponent of the active-request bias for unequal weights. Default 1.0. */
  readonly activeRequestBias?: number;
}

/**
 * Envoy's least_request.
 * - Equal weights: power of two choices. Sample `choiceCount` distinct hosts at random
 *   and take the one with the fewest active requests (Mitzenmacher: the maximum load
 *   drops from Θ(log n / log log n) for random to Θ(log log n)).
 * - Unequal weights: an EDF schedule in which a host re-enters with effective weight
 *   weight / (active + 1)^bias, computed when it is picked, so idle hosts get shares
 *   proportional to weight and busy ones fewer. bias 0 is plain weighted round robin.
 */
export class LeastRequestBalancer implements Balancer {
  readonly policy = 'least_request' as const;
  readonly #rng: Rng;
  readonly #choiceCount: number;
  readonly #bias: number;
  #hosts: readonly Host[] = [];
  #weights: readonly number[] = [];
  #edf: EdfScheduler<number> | undefined;

  constructor(rng: Rng, options: LeastRequestOptions = {}) {
    this.#rng = rng;
    this.#choiceCount = options.choiceCount ?? 2;
    this.#bias = options.activeRequestBias ?? 1.0;
    if (!(this.#choiceCount >= 2)) throw new RangeError(`choiceCount must be >= 2, got ${this.#choiceCount}`);
  }

  update(hosts: readonly Host[], weights: readonly number[]): void {
    const equal = weights.every((w) => w === weights[0]);
    let edf: EdfScheduler<number> | undefined;
    if (!equal) {
      edf = new EdfScheduler<number>();
      hosts.forEach((h, i) => edf?.add(i, this.#effectiveWeight(h, weights[i] as number)));
    }
    this.#hosts = [...hosts];
    this.#weights = [...weights];
    this.#edf = edf;
  }

  pick(_ctx: PickContext): Host | undefined {
    const hosts = this.#hosts;
    const n = hosts.length;
    if (n <= 1) return hosts[0];
    if (this.#edf) {
      const i = this.#edf.pickAndReschedule((j) => this.#effectiveWeight(hosts[j] as Host, this.#weights[j] as number));
      return i === undefined ? undefined : hosts[i];
    }
    if (this.#choiceCount === 2) {
      // The hot path: two distinct indices without allocating.
      const a = Math.floor(this.#rng.next() * n);
      let b = Math.floor(this.#rng.next() * (n - 1));
      if (b >= a) b++;
      const ha = hosts[a] as Host;
      const hb = hosts[b] as Host;
      return hb.active < ha.active ? hb : ha;
    }
    let best: Host | undefined;
    for (let k = 0; k < this.#choiceCount; k++) {
      const h = hosts[Math.floor(this.#rng.next() * n)] as Host;
      if (best === undefined || h.active < best.active) best = h;
    }
    return best;
  }

  #effectiveWeight(host: Host, weight: number): number {
    return this.#bias === 0 ? weight : weight / Math.pow(host.active + 1, this.#bias);
  }
}
