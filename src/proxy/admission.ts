import type { IncomingMessage } from 'node:http';
import { randomInt } from 'node:crypto';
import type { HostState } from '../core/cluster.js';
import { hashRequest } from '../core/hash-key.js';
import type { Clock } from '../core/clock.js';
import type { HttpListenerConfig } from '../config/index.js';
import { RequestLifecycle, type EntryVerdict, type LifecycleCluster } from '../core/request-lifecycle.js';
import { priorityOf } from '../core/priority.js';
import { requestClass } from '../core/request-class.js';
import { SeededRng, type Rng } from '../core/rng.js';
import type { LocalReplyCode } from './errors.js';
import { HOPS_HEADER } from '../shared/hops.js';
import { routable, type CompiledRoute } from './router.js';
import type { ClusterRuntime, Runtime } from './runtime.js';

export type Admission =
  /** `queued`: over the cluster's adaptive concurrency limit, waiting: `awaitSlot` says when it goes on. */
  | { readonly ok: true; readonly route: CompiledRoute; readonly cluster: ClusterRuntime; readonly lifecycle: RequestLifecycle; readonly queued?: boolean }
  /** `close`: the client broke a listener limit; the connection should not carry another request. */
  | { readonly ok: false; readonly code: LocalReplyCode; readonly headers?: Record<string, string>; readonly close?: boolean };

/**
 * What admission reads of the listener a request came in on: the part of forward.ts's
 * ListenerContext it needs, declared here so admission does not import the forwarder
 * that calls it.
 */
export interface AdmissionContext {
  readonly listener: string;
  readonly limits: HttpListenerConfig['limits'];
  readonly clock: Clock;
}

/** The retry backoff's jitter: the proxy's own stream, seeded per process like the balancers' choices. */
const jitter = new SeededRng(randomInt(2 ** 31));

/** HTTP tries hold a request slot; pooled connections make a reset possibly the keep-alive race. */
const HTTP_TRIES = { slot: 'requests', pooled: true } as const;

/** An overloaded cluster's refusal: come back in a second (the limit is recomputed every 100 ms). */
export const OVERLOADED_HEADERS: Readonly<Record<string, string>> = { 'retry-after': '1' };

/** RFC 9110 §9.2.2, plus requests carrying an Idempotency-Key (as Go's transport does). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/**
 * The checks a request or an upgrade passes before any backend is chosen, in order:
 * listener limits (header count, URL length), route, rate limit, cluster, then the
 * request's lifecycle at that cluster (the circuit breaker's request slot, the retry
 * budget), held on success until the caller ends it. Rate limits stay here, before the
 * lifecycle: they are per route and per client, decided before a cluster is known.
 *
 * `gated`: the request passes the cluster's adaptive concurrency first (plain HTTP
 * requests; not upgrades, whose tunnels would hold a slot for their whole life and teach
 * the limit nothing of the service's latency). It may then be refused (`overloaded`) or
 * queued (`queued: true`: the caller waits with `awaitSlot`).
 */
export function admit(ctx: AdmissionContext, rt: Runtime, req: IncomingMessage, url: string, clientIp: string, gated = false): Admission {
  if (headerFieldCount(req.rawHeaders) > ctx.limits.max_headers) return { ok: false, code: 'header_fields_too_large', close: true };
  if (url.length > ctx.limits.max_url_bytes) return { ok: false, code: 'uri_too_long', close: true };
  const target = routable(req.method ?? 'GET', url, req.headers);
  const route = rt.routers.get(ctx.listener)?.match(target);
  if (route === undefined) return { ok: false, code: 'no_route' };
  const limiter = rt.rateLimiters.get(route.key);
  if (limiter) {
    const taken = limiter.take(clientIp, ctx.clock.nowMs(), req);
    if ('unavailable' in taken) return { ok: false, code: 'rate_limit_unavailable' };
    if (!taken.ok) return { ok: false, code: 'rate_limited', headers: { 'retry-after': String(Math.max(1, Math.ceil(taken.retryAfterMs / 1000))) } };
  }
  const cluster = rt.clusters.get(route.config.cluster);
  if (cluster === undefined) return { ok: false, code: 'no_healthy_endpoint' };
  const lc = httpLifecycle(cluster, ctx.clock, jitter, req);
  lc.retryRules = route.retry;
  let verdict: EntryVerdict;
  if (gated && cluster.overload !== undefined) {
    const header = cluster.config.adaptive_concurrency?.priority_header;
    const named = header === undefined ? undefined : req.headers[header];
    lc.priority = priorityOf(typeof named === 'string' ? named : undefined, route.config.priority ?? 'default');
    verdict = lc.enter();
  } else {
    verdict = lc.admit() ? 'admitted' : 'circuit_open';
  }
  if (verdict === 'overloaded') return { ok: false, code: 'overloaded', headers: OVERLOADED_HEADERS };
  if (verdict === 'circuit_open') return { ok: false, code: 'circuit_open' };
  // A queued request counts in the cluster's load once it is let in (awaitSlot).
  if (verdict === 'admitted') cluster.load.add(ctx.clock.nowMs());
  lc.hash = cluster.hashKey ? hashRequest(cluster.hashKey, { headers: req.headers, sourceIp: clientIp, path: target.path }) : undefined;
  if (cluster.core.policy === 'predictive') lc.requestClass = requestClass(route.index, bodyBytesOf(req.headers));
  return verdict === 'queued' ? { ok: true, route, cluster, lifecycle: lc, queued: true } : { ok: true, route, cluster, lifecycle: lc };
}

/**
 * A queued request waits for its cluster's gate: `then` is called once, with `admitted`
 * or the local reply it gets. The gate decides; this arms the timer that lets it refuse
 * waiters whose time is up. A request that ends while queued (its client gone) leaves the
 * queue in `lifecycle.end()` and is never called back.
 */
export function awaitSlot(lc: RequestLifecycle, cluster: ClusterRuntime, clock: Clock, then: (v: Exclude<EntryVerdict, 'queued'>) => void): void {
  const gate = cluster.overload as NonNullable<ClusterRuntime['overload']>;
  const timer = setTimeout(() => gate.expire(clock.nowMs()), Math.max(0, Math.ceil(lc.queueDeadlineMs - clock.nowMs())));
  // A waiter that left keeps no process alive for its timer (at most the queue's interval).
  timer.unref();
  lc.onGate = (v) => {
    clearTimeout(timer);
    if (v === 'admitted') cluster.load.add(clock.nowMs());
    then(v);
  };
}

/** An HTTP request's lifecycle at `cluster`, not yet admitted: what the request itself says of how it may be retried. */
export function httpLifecycle(cluster: LifecycleCluster, clock: Clock, rng: Rng, req: Pick<IncomingMessage, 'method' | 'headers'>): RequestLifecycle {
  const lc = new RequestLifecycle(cluster, clock, rng, HTTP_TRIES);
  // A request that already crossed regions stays in this one, whatever its health: no loops.
  lc.localOnly = req.headers[HOPS_HEADER] !== undefined;
  lc.idempotent = IDEMPOTENT.has(req.method ?? 'GET') || req.headers['idempotency-key'] !== undefined;
  return lc;
}

/** The request body's size for its class: 0 for none, -1 when it comes chunked (length unknown). */
function bodyBytesOf(headers: IncomingMessage['headers']): number {
  if (headers['transfer-encoding'] !== undefined) return -1;
  const length = headers['content-length'];
  return length === undefined ? 0 : Number(length) || 0;
}

/** Header fields in a request, HTTP/2 pseudo-headers (:method, :path, ...) not counted. */
export function headerFieldCount(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).charCodeAt(0) !== 58) n++;
  return n;
}

/** This node's name for the hops header when `host` is another region's Meridian, else undefined. */
export function viaFor(cluster: ClusterRuntime, host: HostState): string | undefined {
  return host.group?.remote === true ? cluster.node.name : undefined;
}
