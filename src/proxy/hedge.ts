import { HedgePolicy } from '../core/hedging.js';
import { coreHedgeOptions, type RouteConfig } from '../config/index.js';

/** What the forwarder reports of hedges (the metrics' hooks). */
export type HedgeEvent = 'started' | 'won' | 'cancelled';

/**
 * One HedgePolicy per route (its delay's latency samples and its budget are the route's),
 * kept with the route's config object: a reload that builds new routes starts new
 * policies, as it starts new rate limiters for changed routes.
 */
const policies = new WeakMap<RouteConfig, HedgePolicy>();

/** The route's hedging, made on its first request; undefined when the route has no `hedge:`. */
export function hedgingFor(route: RouteConfig): HedgePolicy | undefined {
  if (route.hedge === undefined) return undefined;
  let p = policies.get(route);
  if (p === undefined) {
    p = new HedgePolicy(coreHedgeOptions(route.hedge));
    policies.set(route, p);
  }
  return p;
}
