/**
 * Events per second over a sliding window, in fixed buckets: O(1) per event, memory
 * bounded by the bucket count, time from the caller (no timer). A region reports its
 * load with it, so the global layer can spill only the excess over its capacity.
 */
export class RateWindow {
  readonly windowMs: number;
  readonly #bucketMs: number;
  readonly #counts: Float64Array;
  /** Index (in bucket units since time 0) of the newest bucket written. */
  #head = 0;
  #started = false;
  #startMs = 0;

  constructor(windowMs = 10_000, buckets = 10) {
    if (!(windowMs > 0) || !Number.isInteger(buckets) || buckets < 1) throw new RangeError(`bad rate window: ${windowMs} ms in ${buckets} buckets`);
    this.windowMs = windowMs;
    this.#bucketMs = windowMs / buckets;
    this.#counts = new Float64Array(buckets);
  }

  add(nowMs: number, n = 1): void {
    if (!this.#started) {
      this.#started = true;
      this.#startMs = nowMs;
      this.#head = Math.floor(nowMs / this.#bucketMs);
    }
    this.#advance(nowMs);
    const i = this.#head % this.#counts.length;
    this.#counts[i] = (this.#counts[i] as number) + n;
  }

  /**
   * Events per second over the window ending now: the finished buckets plus the current
   * one so far, divided by the time they cover (less while the window is young), so a
   * steady rate reads the same at any point of a bucket.
   */
  rate(nowMs: number): number {
    if (!this.#started) return 0;
    this.#advance(nowMs);
    let sum = 0;
    for (const c of this.#counts) sum += c;
    const covered = (this.#counts.length - 1) * this.#bucketMs + (nowMs - this.#head * this.#bucketMs);
    const spanMs = Math.max(1, Math.min(covered, nowMs - this.#startMs));
    return (sum * 1000) / spanMs;
  }

  /** Zero the buckets that fell out of the window since the last call. */
  #advance(nowMs: number): void {
    const now = Math.floor(nowMs / this.#bucketMs);
    const n = this.#counts.length;
    if (now <= this.#head) return;
    const stale = Math.min(n, now - this.#head);
    for (let k = 1; k <= stale; k++) this.#counts[(this.#head + k) % n] = 0;
    this.#head = now;
  }
}
