/** One node's own judgement of a cluster: the endpoints it has ejected or its checks fail. */
export interface HealthReport {
  readonly node: string;
  readonly bad: readonly string[];
}

export interface FleetHealthRule {
  /**
   * Nodes that must judge an endpoint bad for the fleet to take it out: a number, or
   * `majority` of the nodes reporting on the cluster. A node whose own network is bad sees
   * every backend fail; with a quorum above one its reports alone eject nothing elsewhere.
   */
  readonly quorum: number | 'majority';
  /** The outlier cap, applied to the whole fleet's verdicts: this node's own ejections plus the fleet's. */
  readonly maxEjectionPercent: number;
}

/**
 * Which endpoints of a cluster this node takes out on the fleet's word, given every live
 * node's report (this node's included: it votes too), this node's own bad set (already
 * out here, and counted against the cap), and the cluster's endpoints. Endpoints with the
 * most votes go first; ties by id, so every node with the same reports reaches the same
 * answer. The cap is the outlier detector's: one endpoint may always be out, more only
 * while within `maxEjectionPercent`.
 */
export function fleetEjections(reports: readonly HealthReport[], localBad: ReadonlySet<string>, endpoints: readonly string[], rule: FleetHealthRule): Set<string> {
  const need = rule.quorum === 'majority' ? Math.floor(reports.length / 2) + 1 : rule.quorum;
  const votes = new Map<string, number>();
  const known = new Set(endpoints);
  for (const r of reports) for (const id of new Set(r.bad)) if (known.has(id)) votes.set(id, (votes.get(id) ?? 0) + 1);
  const candidates = [...votes]
    .filter(([id, n]) => n >= need && !localBad.has(id))
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  let out = endpoints.filter((id) => localBad.has(id)).length;
  const chosen = new Set<string>();
  for (const [id] of candidates) {
    if (out > 0 && (100 * (out + 1)) / endpoints.length > rule.maxEjectionPercent) break;
    chosen.add(id);
    out++;
  }
  return chosen;
}
