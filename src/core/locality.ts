/**
 * Locality-aware load distribution: which share of a cluster's traffic each priority level
 * and each locality (region/zone) inside it should take, from host health alone.
 *
 * The semantics are Envoy's, so operators can reason with its documentation:
 * - priority levels: a level's "health" is its healthy fraction times the overprovisioning
 *   factor (default 1.4), capped at 100%; traffic fills the levels in order, so a level
 *   keeps all of it until more than 1 - 1/1.4 (about 29%) of its hosts are down, then sheds
 *   the shortfall gradually to the next level; when the levels' health sums to less than
 *   100%, the loads are normalised so the healthy capacity that exists takes everything;
 * - panic is per level: a level whose healthy fraction is below the panic threshold
 *   balances its share over all its hosts, healthy or not;
 * - zone-aware routing inside a level: a caller's own zone takes traffic in proportion to
 *   the capacity it has there; only the shortfall crosses zones, to zones with spare capacity;
 * - locality weights: a locality's share is its weight times its health (as above).
 */

export const DEFAULT_OVERPROVISIONING_FACTOR = 1.4;

/** A level's health in percent: healthy/total x factor, capped at 100. */
export function levelHealth(healthy: number, total: number, overprovisioningFactor = DEFAULT_OVERPROVISIONING_FACTOR): number {
  if (total <= 0) return 0;
  return Math.min(100, (100 * overprovisioningFactor * healthy) / total);
}

/**
 * Each level's share of traffic, in percent (summing to 100), from the levels' health in
 * priority order (Envoy's "priority load" with normalised total availability). With no
 * health anywhere, everything goes to the first level (whose panic then spreads it).
 */
export function priorityLoads(health: readonly number[]): number[] {
  const loads = health.map(() => 0);
  if (health.length === 0) return loads;
  const total = Math.min(
    100,
    health.reduce((a, h) => a + h, 0),
  );
  if (total <= 0) {
    loads[0] = 100;
    return loads;
  }
  let remaining = 100;
  for (let i = 0; i < health.length && remaining > 0; i++) {
    const share = Math.min(remaining, ((health[i] as number) * 100) / total);
    loads[i] = share;
    remaining -= share;
  }
  // Floating-point crumbs go to the first level that takes traffic.
  if (remaining > 1e-9) {
    const first = loads.findIndex((l) => l > 0);
    loads[first === -1 ? 0 : first] = (loads[first === -1 ? 0 : first] as number) + remaining;
  }
  return loads;
}

/**
 * Zone-aware shares inside one level (Envoy's zone-aware routing).
 *
 * `upstream`: each zone's share of the level's healthy capacity; `callers`: each zone's
 * share of the callers (the load balancer fleet). Fractions 0..1, each map summing to 1.
 * Returns each zone's share of the traffic that callers in `localZone` send: all to the
 * local zone while it has at least its callers' share of capacity; otherwise the local
 * zone takes what its capacity covers and the rest goes to the zones with capacity to
 * spare (upstream share above callers share), in proportion to that spare.
 */
export function zoneAwareShares(localZone: string, upstream: ReadonlyMap<string, number>, callers: ReadonlyMap<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const z of upstream.keys()) out.set(z, 0);
  const localUp = upstream.get(localZone) ?? 0;
  const localCallers = callers.get(localZone) ?? 0;
  if (localUp > 0 && localUp >= localCallers) {
    out.set(localZone, 1);
    return out;
  }
  const localShare = localCallers > 0 ? localUp / localCallers : 0;
  if (localShare > 0) out.set(localZone, localShare);
  const rest = 1 - localShare;
  // Zones with capacity to spare take the rest in proportion to the spare; if none has
  // any (callers everywhere outnumber capacity), in proportion to capacity.
  let spareTotal = 0;
  let upTotal = 0;
  for (const [z, up] of upstream) {
    if (z === localZone) continue;
    spareTotal += Math.max(0, up - (callers.get(z) ?? 0));
    upTotal += up;
  }
  for (const [z, up] of upstream) {
    if (z === localZone) continue;
    const spare = Math.max(0, up - (callers.get(z) ?? 0));
    if (spareTotal > 0) out.set(z, (rest * spare) / spareTotal);
    else if (upTotal > 0) out.set(z, (rest * up) / upTotal);
  }
  if (spareTotal <= 0 && upTotal <= 0 && localUp > 0) out.set(localZone, 1);
  return out;
}
