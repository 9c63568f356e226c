/**
 * The simulator's agenda: a binary min-heap of events keyed on (time, sequence). The
 * sequence number is the insertion order, so two events at the same virtual time run in
 * the order they were scheduled, whatever the heap's shape: runs are deterministic.
 *
 * Keys live in parallel typed arrays (no object per comparison); payloads in a plain array.
 */
export class EventQueue<T> {
  #times = new Float64Array(1024);
  #seqs = new Float64Array(1024);
  #items: (T | undefined)[] = new Array<T | undefined>(1024);
  #size = 0;
  #nextSeq = 0;

  get size(): number {
    return this.#size;
  }

  /** Time of the earliest event; Infinity when empty. */
  peekTime(): number {
    return this.#size === 0 ? Infinity : (this.#times[0] as number);
  }

  push(timeMs: number, item: T): void {
    if (this.#size === this.#times.length) this.#grow();
    const times = this.#times;
    const seqs = this.#seqs;
    const items = this.#items;
    const seq = this.#nextSeq++;
    let i = this.#size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = times[p] as number;
      if (pt < timeMs || (pt === timeMs && (seqs[p] as number) < seq)) break;
      times[i] = pt;
      seqs[i] = seqs[p] as number;
      items[i] = items[p];
      i = p;
    }
    times[i] = timeMs;
    seqs[i] = seq;
    items[i] = item;
  }

  /** Remove and return the earliest event (its time is `peekTime()` before the call). */
  pop(): T | undefined {
    const n = this.#size;
    if (n === 0) return undefined;
    const times = this.#times;
    const seqs = this.#seqs;
    const items = this.#items;
    const top = items[0];
    const last = n - 1;
    this.#size = last;
    const t = times[last] as number;
    const s = seqs[last] as number;
    const it = items[last];
    items[last] = undefined;
    if (last === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= last) break;
      const r = l + 1;
      let c = l;
      if (r < last) {
        const lt = times[l] as number;
        const rt = times[r] as number;
        if (rt < lt || (rt === lt && (seqs[r] as number) < (seqs[l] as number))) c = r;
      }
      const ct = times[c] as number;
      if (t < ct || (t === ct && s < (seqs[c] as number))) break;
      times[i] = ct;
      seqs[i] = seqs[c] as number;
      items[i] = items[c];
      i = c;
    }
    times[i] = t;
    seqs[i] = s;
    items[i] = it;
    return top;
  }

  #grow(): void {
    const cap = this.#times.length * 2;
    const times = new Float64Array(cap);
    times.set(this.#times);
    const seqs = new Float64Array(cap);
    seqs.set(this.#seqs);
    this.#times = times;
    this.#seqs = seqs;
    this.#items.length = cap;
  }
}
