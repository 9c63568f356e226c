import type { Rng } from './rng.js';

/**
 * Draws indices with probability proportional to weight: O(1) when all weights are
 * equal (the common case), O(log n) by binary search over prefix sums otherwise.
 * Immutable once built, so a balancer can swap a new one in whole.
 */
export class WeightedSampler {
  readonly size: number;
  readonly uniform: boolean;
  readonly #prefix: Float64Array;
  readonly #total: number;

  constructor(weights: readonly number[]) {
    this.size = weights.length;
    this.#prefix = new Float64Array(weights.length);
    let total = 0;
    let uniform = true;
    for (let i = 0; i < weights.length; i++) {
      const w = weights[i] as number;
      if (!(w > 0)) throw new RangeError(`weight must be > 0, got ${w} at ${i}`);
      if (w !== weights[0]) uniform = false;
      total += w;
      this.#prefix[i] = total;
    }
    this.#total = total;
    this.uniform = uniform;
  }

  sample(rng: Rng): number {
    if (this.uniform) return Math.floor(rng.next() * this.size);
    const target = rng.next() * this.#total;
    const prefix = this.#prefix;
    let lo = 0;
    let hi = this.size - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((prefix[mid] as number) > target) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /**
   * A second index different from `first` (size >= 2), drawn by weight. Rejection
   * sampling: cheap unless `first` holds nearly all the weight, so it gives up after a
   * few tries and takes the neighbour.
   */
  sampleOther(rng: Rng, first: number): number {
    if (this.uniform) {
      const j = Math.floor(rng.next() * (this.size - 1));
      return j >= first ? j + 1 : j;
    }
    for (let tries = 0; tries < 8; tries++) {
      const j = this.sample(rng);
      if (j !== first) return j;
    }
    return (first + 1) % this.size;
  }
}
