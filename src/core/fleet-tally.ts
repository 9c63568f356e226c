/** One node's running count of what it admitted under a shared limit, as stored in Redis. */
export interface NodeCount {
  readonly node: string;
  /** Changes each time the node starts: a count that went back to zero is a new run, not a negative delta. */
  readonly boot: string;
  readonly count: number;
}

/**
 * Turns the fleet's running counts (each node's total admitted, read at each sync) into
 * what the other nodes admitted since the last read, so this node can debit its own
 * bucket by it. Counts are cumulative rather than deltas so a lost or repeated sync
 * neither loses nor double-counts anything.
 */
export class FleetTally {
  readonly #self: string;
  readonly #seen = new Map<string, { boot: string; count: number }>();
  #baseline = true;

  constructor(self: string) {
    this.#self = self;
  }

  /**
   * The next read of the counts: returns what the others admitted since the previous one.
   * The first read after `rebase()` only records where everyone stands (returns 0): after
   * an outage the others' counts hold what they admitted alone, already past.
   */
  observe(counts: readonly NodeCount[]): number {
    let delta = 0;
    for (const c of counts) {
      if (c.node === this.#self) continue;
      const before = this.#seen.get(c.node);
      if (!this.#baseline) {
        if (before === undefined || before.boot !== c.boot) delta += c.count;
        else if (c.count > before.count) delta += c.count - before.count;
      }
      this.#seen.set(c.node, { boot: c.boot, count: c.count });
    }
    this.#baseline = false;
    return delta;
  }

  /** Forget the baseline: the next read is a resync, not a delta. */
  rebase(): void {
    this.#baseline = true;
  }
}

/**
 * The most a `consistency: local` limit of `ratePerSecond` with `burst` can admit over
 * `windowMs` on `nodes` nodes syncing every `syncIntervalMs`: the limit itself, plus what
 * the other nodes can admit before this one hears of it. A node's admission reaches the
 * others at most two sync intervals later (its own next sync, then theirs), and in any
 * window a node admits at most its burst plus the refill.
 */
export function localOverAdmissionBound(ratePerSecond: number, burst: number, nodes: number, syncIntervalMs: number, windowMs: number): number {
  return (ratePerSecond * windowMs) / 1000 + burst + (nodes - 1) * (burst + (2 * ratePerSecond * syncIntervalMs) / 1000);
}
