/**
 * Earliest-deadline-first weighted scheduler, as in Envoy's `EdfScheduler`: each item
 * is due 1/weight after it was last picked; the earliest due goes next (ties in insertion
 * order). O(log n) per pick with a binary heap. Used by least_request for unequal
 * weights and by round_robin when there are too many distinct weights for its exact
 * smooth algorithm.
 */
export class EdfScheduler<T> {
  #items: T[] = [];
  #deadlines: number[] = [];
  #orders: number[] = [];
  #heap: number[] = [];
  #nowDeadline = 0;
  #order = 0;

  /** Add an item due at 1/weight from the scheduler's current time. */
  add(item: T, weight: number): void {
    const slot = this.#items.length;
    this.#items.push(item);
    this.#deadlines.push(this.#nowDeadline + 1 / weight);
    this.#orders.push(this.#order++);
    this.#heap.push(slot);
    this.#siftUp(this.#heap.length - 1);
  }

  get size(): number {
    return this.#heap.length;
  }

  /**
   * Pick the earliest-due item and re-schedule it with the weight `reweight` returns
   * (called with the item, so weights may depend on live state such as active requests).
   */
  pickAndReschedule(reweight: (item: T) => number): T | undefined {
    const heap = this.#heap;
    if (heap.length === 0) return undefined;
    const slot = heap[0] as number;
    const item = this.#items[slot] as T;
    const deadline = this.#deadlines[slot] as number;
    this.#nowDeadline = deadline;
    this.#deadlines[slot] = deadline + 1 / reweight(item);
    this.#orders[slot] = this.#order++;
    this.#siftDown(0);
    return item;
  }

  #less(a: number, b: number): boolean {
    const da = this.#deadlines[a] as number;
    const db = this.#deadlines[b] as number;
    return da < db || (da === db && (this.#orders[a] as number) < (this.#orders[b] as number));
  }

  #siftUp(i: number): void {
    const heap = this.#heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(heap[i] as number, heap[parent] as number)) break;
      [heap[i], heap[parent]] = [heap[parent] as number, heap[i] as number];
      i = parent;
    }
  }

  #siftDown(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < n && this.#less(heap[l] as number, heap[best] as number)) best = l;
      if (r < n && this.#less(heap[r] as number, heap[best] as number)) best = r;
      if (best === i) return;
      [heap[i], heap[best]] = [heap[best] as number, heap[i] as number];
      i = best;
    }
  }
}
