import { FAILURE_OUTCOME, type RequestLifecycle, type RetryDecision, type TryFailure } from '../core/request-lifecycle.js';
import type { RetryRefusal } from '../core/retry-budget.js';
import { UpstreamError } from './errors.js';

/** Where the proxy counts retries and refusals (the forwarder's hooks; the TCP path counts none). */
export interface RetryHooks {
  retry(event: { readonly cluster: string; readonly reason: string }): void;
  retryRefused(cluster: string, reason: RetryRefusal): void;
}

const CONNECT_TIMEOUT_CODES = new Set(['ETIMEDOUT']);

/**
 * The lifecycle's name for a failed try, from the proxy's classified error. The proxy's
 * own timers make the timeouts: a per-try timeout is an `UpstreamError('timeout')`, a
 * connect timeout a `connect_failure` whose cause or message says so.
 */
export function tryFailureOf(e: UpstreamError): TryFailure {
  switch (e.code) {
    case 'connect_failure': {
      const cause = (e.cause as NodeJS.ErrnoException | undefined)?.code;
      return (cause !== undefined && CONNECT_TIMEOUT_CODES.has(cause)) || /connect timeout/i.test(e.message) ? 'connect_timeout' : 'connect_refused';
    }
    // Verification failed or our certificate was refused: nothing reached the upstream, as with a refused connect.
    case 'upstream_tls':
      return 'connect_refused';
    case 'upstream_reset':
      return 'reset';
    case 'upstream_protocol_error':
      return 'protocol';
    case 'timeout':
      return 'per_try_timeout';
  }
}

/**
 * A try failed before any of its answer went to the client: report it to the cluster
 * (through the lifecycle) and ask whether to go again. `bodyReplayable`: the request
 * body, if any, can still be sent whole. Counts the retry or the refusal.
 */
export function tryFailed(lc: RequestLifecycle, hooks: RetryHooks | undefined, cluster: string, e: UpstreamError, latencyMs: number, bodyReplayable: boolean): RetryDecision {
  const failure = tryFailureOf(e);
  lc.endTry({ error: FAILURE_OUTCOME[failure], latencyMs });
  const d = lc.shouldRetryFailure(failure, bodyReplayable);
  counted(d, hooks, cluster, e.code);
  return d;
}

/**
 * An answer's head arrived: retry it if its status is one `retry_on` lists. A retried
 * answer ends its try here; any other goes on to the client and ends when it is complete.
 */
export function tryAnswered(lc: RequestLifecycle, hooks: RetryHooks | undefined, cluster: string, status: number, latencyMs: number, bodyReplayable: boolean): RetryDecision {
  const d = lc.shouldRetryStatus(status, bodyReplayable);
  if (d === 'retry') lc.endTry({ status, latencyMs });
  counted(d, hooks, cluster, String(status));
  return d;
}

/**
 * A gRPC answer with no message ended, none of it sent on yet: retry it if `retry_on`
 * lists its grpc-status. `bodyReplayable`: the request body was held whole.
 */
export function tryGrpcAnswered(lc: RequestLifecycle, hooks: RetryHooks | undefined, cluster: string, status: number, grpcStatus: number, latencyMs: number, bodyReplayable: boolean): RetryDecision {
  const d = lc.shouldRetryGrpcStatus(grpcStatus, bodyReplayable);
  if (d === 'retry') lc.endTry({ status, latencyMs });
  counted(d, hooks, cluster, `grpc_status_${grpcStatus}`);
  return d;
}

function counted(d: RetryDecision, hooks: RetryHooks | undefined, cluster: string, reason: string): void {
  if (hooks === undefined || d === 'not_covered') return;
  if (d === 'retry') hooks.retry({ cluster, reason });
  else if (d === 'resend') hooks.retry({ cluster, reason: 'keepalive_race' });
  else hooks.retryRefused(cluster, d);
}
