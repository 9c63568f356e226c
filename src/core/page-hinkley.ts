export interface PageHinkleyOptions {
  /** Drift tolerated per sample, in the input's units: smaller finds smaller changes, and more false ones. */
  readonly delta: number;
  /** The alarm level of the cumulative excess. */
  readonly lambda: number;
  /** Samples before the detector may alarm (its mean needs a few). Default 30. */
  readonly minSamples?: number;
}

/**
 * The Page-Hinkley test for an increase in the mean of a stream (Page 1954; as in
 * scikit-multiflow and river): the cumulative sum of (x - running mean - delta), and an
 * alarm when it rises more than lambda above its lowest point. O(1) time and memory per
 * sample, no window to keep; reset after an alarm to look for the next change.
 */
export class PageHinkley {
  readonly #delta: number;
  readonly #lambda: number;
  readonly #minSamples: number;
  #n = 0;
  #mean = 0;
  #sum = 0;
  #min = 0;

  constructor(options: PageHinkleyOptions) {
    if (!(options.lambda > 0)) throw new RangeError(`lambda must be > 0, got ${options.lambda}`);
    this.#delta = options.delta;
    this.#lambda = options.lambda;
    this.#minSamples = options.minSamples ?? 30;
  }

  /** Feed one sample; true when it completes an increase (the detector then starts over). */
  add(x: number): boolean {
    this.#n++;
    this.#mean += (x - this.#mean) / this.#n;
    this.#sum += x - this.#mean - this.#delta;
    if (this.#sum < this.#min) this.#min = this.#sum;
    if (this.#n >= this.#minSamples && this.#sum - this.#min > this.#lambda) {
      this.reset();
      return true;
    }
    return false;
  }

  reset(): void {
    this.#n = 0;
    this.#mean = 0;
    this.#sum = 0;
    this.#min = 0;
  }
}
