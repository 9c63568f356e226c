import type { IncomingMessage } from 'node:http';
import type { LocalReplyCode } from './errors.js';
import type { ListenerContext } from './forward.js';
import { routable, type CompiledRoute } from './router.js';
import type { ClusterRuntime, Runtime } from './runtime.js';

export type Admission =
  | { readonly ok: true; readonly route: CompiledRoute; readonly cluster: ClusterRuntime }
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
  return { ok: true, route, cluster };
}

/** Header fields in a request, HTTP/2 pseudo-headers (:method, :path, ...) not counted. */
export function headerFieldCount(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).charCodeAt(0) !== 58) n++;
  return n;
}
