import type { Clock } from '../core/clock.js';
import { RequestLifecycle, type LifecycleCluster, type RetryDecision, type TryFailure } from '../core/request-lifecycle.js';
import type { Rng } from '../core/rng.js';
import type { Outcome } from '../core/types.js';

/** The simulated load balancer is the HTTP proxy: a request slot, pooled upstream connections. */
const SIM_TRIES = { slot: 'requests', pooled: true } as const;

/** A simulated request's lifecycle at a region's load balancer, not yet admitted: a GET, as the proxy sees one. */
export function simLifecycle(lb: LifecycleCluster, clock: Clock, rng: Rng): RequestLifecycle {
  return new RequestLifecycle(lb, clock, rng, SIM_TRIES);
}

/** The simulator's failures as the lifecycle names them (a black-holed connect is a connect failure too). */
const SIM_FAILURE = {
  connect: 'connect_refused',
  reset: 'reset',
  timeout: 'per_try_timeout',
  protocol: 'protocol',
} as const satisfies Record<NonNullable<Outcome['error']>, TryFailure>;

/**
 * A simulated try's outcome reaches the load balancer: reported to the cluster and
 * decided by the request's lifecycle, as the proxy's try-outcome.ts does with what undici
 * reports. Simulated requests are GETs without a body: always replayable. The caller
 * handles the request's own deadline first, as the proxy's request timer does.
 */
export function simTryEnded(lc: RequestLifecycle, outcome: Outcome): RetryDecision {
  lc.endTry(outcome);
  return outcome.error !== undefined ? lc.shouldRetryFailure(SIM_FAILURE[outcome.error], true) : lc.shouldRetryStatus(outcome.status ?? 200, true);
}
