import { EdfScheduler } from './edf-scheduler.js';
import type { Balancer, Host, PickContext } from './types.js';

/** Above this many distinct weights the exact smooth algorithm costs more than EDF's O(log n). */
export const MAX_EXACT_WEIGHT_GROUPS = 32;

interface WeightGroup {
  readonly weight: number;
  /** Indices into the host list, ascending. */
  readonly members: readonly number[];
  /** nginx's `current_weight` of every member not yet picked in this cycle. */
  current: number;
  /** Next member to pick: the lowest-index member with the highest current weight. */
  next: number;
}

interface Table {
  readonly hosts: readonly Host[];
  readonly groups: WeightGroup[];
  readonly total: number;
  readonly weights: readonly number[];
  readonly edf: EdfScheduler<number> | undefined;
}

/**
 * nginx's smooth weighted round robin (ngx_http_upstream_get_peer): every pick adds
 * each peer's weight to its `current`, takes the peer with the highest `current`
 * (lowest index on ties) and subtracts the total from it. Weights 5,1,1 give
 * a a b a c a a, as nginx documents.
 *
 * nginx's loop is O(n) per pick. Peers of equal weight always differ in `current` by
 * whole multiples of the total and are picked in index order, so one `current` per
 * distinct weight reproduces nginx's exact order in O(distinct weights) per pick: O(1)
 * for the usual all-equal cluster. Past MAX_EXACT_WEIGHT_GROUPS distinct weights (say,
 * many hosts mid slow-start) it switches to Envoy's EDF schedule: O(log n), equally
 * smooth, not nginx's exact order.
 */
export class RoundRobinBalancer implements Balancer {
  readonly policy = 'round_robin' as const;
  #table: Table = { hosts: [], groups: [], total: 0, weights: [], edf: undefined };

  update(hosts: readonly Host[], weights: readonly number[]): void {
    const byWeight = new Map<number, number[]>();
    hosts.forEach((_, i) => {
      const w = weights[i] as number;
      const members = byWeight.get(w);
      if (members) members.push(i);
      else byWeight.set(w, [i]);
    });
    const total = weights.reduce((a, b) => a + b, 0);
    if (byWeight.size > MAX_EXACT_WEIGHT_GROUPS) {
      const edf = new EdfScheduler<number>();
      weights.forEach((w, i) => edf.add(i, w));
      this.#table = { hosts: [...hosts], groups: [], total, weights: [...weights], edf };
      return;
    }
    const groups = [...byWeight].map(([weight, members]) => ({ weight, members, current: 0, next: 0 }));
    this.#table = { hosts: [...hosts], groups, total, weights: [...weights], edf: undefined };
  }

  pick(_ctx: PickContext): Host | undefined {
    const t = this.#table;
    if (t.edf) {
      const i = t.edf.pickAndReschedule((j) => t.weights[j] as number);
      return i === undefined ? undefined : t.hosts[i];
    }
    let best: WeightGroup | undefined;
    let bestIndex = 0;
    for (const g of t.groups) {
      g.current += g.weight;
      const index = g.members[g.next] as number;
      if (best === undefined || g.current > best.current || (g.current === best.current && index < bestIndex)) {
        best = g;
        bestIndex = index;
      }
    }
    if (best === undefined) return undefined;
    // The picked member drops by the total; the group's `current` tracks the members
    // still unpicked this cycle, so it drops only when the cycle through the group ends.
    if (++best.next === best.members.length) {
      best.next = 0;
      best.current -= t.total;
    }
    return t.hosts[bestIndex];
  }
}

