/**
 * Hash disruption of one membership change: the share of a fixed sample of keys whose
 * endpoint differs before and after. Measured on a cluster of its own, built with the same
 * policy and the region's endpoints, rather than on the run's: sampling the live cluster
 * would spend the capacity tokens of capped localities and count spills, changing the run
 * it measures. With every host healthy and no bounded load, this is exactly the table the
 * live cluster picks from, so it isolates what the change itself does to key placement.
 */
import { ManualClock } from '../core/clock.js';
import { Cluster } from '../core/cluster.js';
import { fmix32 } from '../core/hash.js';
import { SeededRng } from '../core/rng.js';
import type { Endpoint, PolicyName } from '../core/types.js';

/** Keys sampled per change: the share is within about +-0.6 points (2 standard errors at 10%). */
export const SAMPLED_KEYS = 10_000;

export interface KeyMoves {
  /** Share of sampled keys whose endpoint changed. */
  readonly moved: number;
  /**
   * Share of sampled keys that moved although both their old and their new endpoint are
   * in both sets: movement a perfectly consistent hash would not cause.
   */
  readonly movedBetweenKept: number;
}

export function keyMoves(policy: PolicyName, before: readonly Endpoint[], after: readonly Endpoint[]): KeyMoves {
  const strip = (eps: readonly Endpoint[]): Endpoint[] => eps.map((ep) => ({ id: ep.id, address: ep.address, weight: ep.weight }));
  const cluster = new Cluster('keys', strip(before), { policy, clock: new ManualClock(0), rng: new SeededRng(1) });
  const was = picks(cluster);
  cluster.setEndpoints(strip(after));
  const now = picks(cluster);
  const beforeIds = new Set(before.map((ep) => ep.id));
  const afterIds = new Set(after.map((ep) => ep.id));
  const kept = (id: string | undefined): boolean => id !== undefined && beforeIds.has(id) && afterIds.has(id);
  let moved = 0;
  let needless = 0;
  for (let i = 0; i < SAMPLED_KEYS; i++) {
    const a = was[i];
    const b = now[i];
    if (a === b) continue;
    moved++;
    if (kept(a) && kept(b)) needless++;
  }
  return { moved: moved / SAMPLED_KEYS, movedBetweenKept: needless / SAMPLED_KEYS };
}

function picks(cluster: Cluster): (string | undefined)[] {
  const out: (string | undefined)[] = [];
  for (let i = 0; i < SAMPLED_KEYS; i++) out.push(cluster.pick({ hash: fmix32(i + 1) })?.endpoint.id);
  return out;
}
