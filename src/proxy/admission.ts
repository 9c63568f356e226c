import type { IncomingMessage } from 'node:http';
import type { HostState } from '../core/cluster.js';
import { hashRequest } from '../core/hash-key.js';
import { decideRetry } from '../core/retry-budget.js';
import type { LocalReplyCode } from './errors.js';
import { HOPS_HEADER } from './headers.js';
import type { ListenerContext } from './forward.js';
import { routable, type CompiledRoute } from './router.js';
import type { ClusterRuntime, Runtime } from './runtime.js';

export type Admission =
  | { readonly ok: true; readonly route: CompiledRoute; readonly cluster: ClusterRuntime; readonly lease: ClusterLease }
  /** `close`: the client broke a listener limit; the connection should not carry another request. */
  | { readonly ok: false; readonly code: LocalReplyCode; readonly headers?: Record<string, string>; readonly close?: boolean };

/**
 * The checks a request or an upgrade passes before any backend is chosen, in order:
 * listener limits (header count, URL length), route, rate limit, cluster, and the
 * circuit breaker's request slot — held on success, until the caller releases it.
 */
export function admit(ctx: ListenerContext, rt: Runtime, req: IncomingMessage, url: string, clientIp: string): Admission {
  if (headerFieldCount(req.rawHeaders) > ctx.limits.max_headers) return { ok: false, code: 'header_fields_too_large', close: true };
  if (url.length > ctx.limits.max_url_bytes) return { ok: false, code: 'uri_too_long', close: true };
  const route = rt.routers.get(ctx.listener)?.match(routable(req.method ?? 'GET', url, req.headers));
  if (route === undefined) return { ok: false, code: 'no_route' };
  const limiter = rt.rateLimiters.get(`${ctx.listener}/${route.index}`);
  if (limiter) {
    const taken = limiter.take(clientIp, ctx.clock.nowMs());
    if (!taken.ok) return { ok: false, code: 'rate_limited', headers: { 'retry-after': String(Math.max(1, Math.ceil(taken.retryAfterMs / 1000))) } };
  }
  const cluster = rt.clusters.get(route.config.cluster);
  if (cluster === undefined) return { ok: false, code: 'no_healthy_endpoint' };
  if (!cluster.breaker.tryAcquire('requests')) return { ok: false, code: 'circuit_open' };
  cluster.load.add(ctx.clock.nowMs());
  return { ok: true, route, cluster, lease: new ClusterLease(cluster, ctx) };
}

/**
 * What an admitted request holds of its cluster until it ends: its request slot in the
 * circuit breaker, its place among the retry budget's active requests, and any retries
 * it was granted that count against the budget and max_retries.
 */
export class ClusterLease {
  readonly #cluster: ClusterRuntime;
  readonly #ctx: ListenerContext;
  #retries = 0;
  #released = false;

  constructor(cluster: ClusterRuntime, ctx: ListenerContext) {
    this.#cluster = cluster;
    this.#ctx = ctx;
    cluster.budget.requestStarted();
  }

  /**
   * A failed try whose condition `retry_on` covers: may the request try again? The core
   * decides (decideRetry); a refusal is counted with its reason, a granted retry held
   * until the request ends.
   */
  tryRetry(tries: number, nothingSent: boolean, replayable: boolean): boolean {
    const c = this.#cluster;
    const verdict = decideRetry({ tries, attempts: c.retry.attempts, nothingSent, replayable }, c.breaker, c.budget, this.#ctx.clock.nowMs());
    if (!verdict.retry) {
      this.#ctx.hooks.retryRefused(c.name, verdict.reason);
      return false;
    }
    if (verdict.counted) this.#retries++;
    return true;
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    const c = this.#cluster;
    c.breaker.release('requests');
    c.budget.requestEnded();
    for (; this.#retries > 0; this.#retries--) {
      c.budget.retryEnded();
      c.breaker.release('retries');
    }
  }
}

/** Header fields in a request, HTTP/2 pseudo-headers (:method, :path, ...) not counted. */
export function headerFieldCount(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).charCodeAt(0) !== 58) n++;
  return n;
}

/**
 * The next endpoint for a request: by its hash key when the cluster hashes, never one of
 * `tried` while another can take it. `attempt` counts the tries so far.
 */
export function pickEndpoint(cluster: ClusterRuntime, req: IncomingMessage, url: string, clientIp: string, attempt: number, tried: ReadonlySet<HostState>): HostState | undefined {
  const hash = cluster.hashKey ? hashRequest(cluster.hashKey, { headers: req.headers, sourceIp: clientIp, path: routable(req.method ?? 'GET', url, req.headers).path }) : undefined;
  // A request that already crossed regions stays in this one, whatever its health: no loops.
  const localOnly = req.headers[HOPS_HEADER] !== undefined;
  return cluster.core.pick({ ...(hash === undefined ? {} : { hash }), attempt, exclude: tried, localOnly });
}

/** This node's name for the hops header when `host` is another region's Meridian, else undefined. */
export function viaFor(cluster: ClusterRuntime, host: HostState): string | undefined {
  return host.group?.remote === true ? cluster.node.name : undefined;
}
