import type { IncomingMessage } from 'node:http';
import { routable } from './router.js';
import type { Runtime } from './runtime.js';

/**
 * A `consistency: strong` global limit is decided by a Redis call, and admission is
 * synchronous: so the decision is made first, here, before the request reaches
 * forward(), and admission reads it (`RouteRateLimiter.take`). Undefined when the
 * listener has no such limit, so other requests pay nothing.
 *
 * The route is found as admission finds it, from the request as received (the target's
 * normalisation runs later, once, in forward()). A request whose route comes out
 * different there (a malformed target, which is refused anyway) finds no decision and
 * is held to this node's bucket.
 */
export function decideStrongLimit(rt: Runtime, listener: string, encrypted: boolean, req: IncomingMessage): Promise<void> | undefined {
  if (!rt.strongLimits.has(listener)) return undefined;
  const raw = req.url ?? '/';
  const url = raw.startsWith('/') ? raw : originForm(raw);
  const route = rt.routers.get(listener)?.match(routable(req.method ?? 'GET', url, req.headers));
  if (route === undefined) return undefined;
  const limiter = rt.rateLimiters.get(route.key);
  if (limiter === undefined || !limiter.strong) return undefined;
  return limiter.decide(req, rt.trusted.forwarded(req.socket.remoteAddress, req.headers, encrypted).clientIp);
}

/** `http://host/p?q` → `/p?q`: the absolute form a proxy-style request may send. */
function originForm(raw: string): string {
  try {
    const u = new URL(raw);
    return u.pathname + u.search;
  } catch {
    return raw;
  }
}
