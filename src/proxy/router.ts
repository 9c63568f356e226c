import type { IncomingHttpHeaders } from 'node:http';
import { coreRetryRules, type HeaderMatch, type PathMatch, type RouteConfig } from '../config/index.js';
import type { RetryRules } from '../core/request-lifecycle.js';
import { hostHeaderOf } from './headers.js';

/** The parts of a request routing looks at. */
export interface RoutableRequest {
  /** Host without port, lowercase. */
  readonly host: string;
  /** Path without the query string. */
  readonly path: string;
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
}

/** A route's key in the runtime's per-route maps (rate limiters): its listener and its place there. */
export function routeKey(listener: string, index: number): string {
  return `${listener}/${index}`;
}

export interface CompiledRoute {
  readonly index: number;
  /** `listener/index`: the route's key in the runtime's per-route maps (rate limiters), made once rather than per request. */
  readonly key: string;
  readonly config: RouteConfig;
  /** The route's own `retries`, compiled; undefined: the cluster's apply. */
  readonly retry: RetryRules | undefined;
  matches(req: RoutableRequest): boolean;
}

/**
 * Routes compiled once per config version: regexes built, host patterns split into exact
 * and suffix sets. First match wins, as in the config's order.
 */
export class Router {
  readonly routes: readonly CompiledRoute[];

  constructor(routes: readonly RouteConfig[], listener = '') {
    this.routes = routes.map((config, index) => ({ index, key: routeKey(listener, index), config, retry: config.retries === undefined ? undefined : coreRetryRules(config.retries), matches: compileMatch(config) }));
  }

  match(req: RoutableRequest): CompiledRoute | undefined {
    for (const r of this.routes) if (r.matches(req)) return r;
    return undefined;
  }
}

type Predicate = (req: RoutableRequest) => boolean;

function compileMatch(route: RouteConfig): Predicate {
  const m = route.match;
  const checks: Predicate[] = [];
  if (m.host) checks.push(hostPredicate(m.host));
  if (m.path) checks.push(pathPredicate(m.path));
  if (m.methods) {
    const methods = new Set<string>(m.methods);
    checks.push((r) => methods.has(r.method));
  }
  for (const h of m.headers ?? []) checks.push(headerPredicate(h));
  if (checks.length === 0) return () => true;
  return (r) => {
    for (const c of checks) if (!c(r)) return false;
    return true;
  };
}

function hostPredicate(patterns: readonly string[]): Predicate {
  const exact = new Set(patterns.filter((p) => !p.startsWith('*.')));
  // "*.example.com" matches "a.example.com" and "a.b.example.com", not "example.com".
  const suffixes = patterns.filter((p) => p.startsWith('*.')).map((p) => p.slice(1));
  return (r) => exact.has(r.host) || suffixes.some((s) => r.host.length > s.length && r.host.endsWith(s));
}

function pathPredicate(p: PathMatch): Predicate {
  switch (p.kind) {
    case 'exact':
      return (r) => r.path === p.value;
    case 'prefix':
      return (r) => r.path.startsWith(p.value);
    case 'regex': {
      const re = new RegExp(p.value);
      return (r) => re.test(r.path);
    }
  }
}

function headerPredicate(h: HeaderMatch): Predicate {
  const get = (r: RoutableRequest): string | undefined => {
    const v = r.headers[h.name];
    return Array.isArray(v) ? v.join(', ') : v;
  };
  switch (h.kind) {
    case 'present':
      return (r) => (get(r) !== undefined) === h.present;
    case 'exact':
      return (r) => get(r) === h.value;
    case 'regex': {
      const re = new RegExp(h.value);
      return (r) => {
        const v = get(r);
        return v !== undefined && re.test(v);
      };
    }
  }
}

/** Split a request target into path and query; strip the port from Host. */
export function routable(method: string, url: string, headers: IncomingHttpHeaders): RoutableRequest {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  return { host: hostOnly(hostHeaderOf(headers) ?? ''), path, method, headers };
}

export function hostOnly(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return (end === -1 ? host : host.slice(0, end + 1)).toLowerCase();
  }
  const colon = host.indexOf(':');
  return (colon === -1 ? host : host.slice(0, colon)).toLowerCase();
}
