import type { RequestLifecycle, RetryDecision, TryFailure } from '../core/request-lifecycle.js';
import type { Outcome } from '../core/types.js';

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
