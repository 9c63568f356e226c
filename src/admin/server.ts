/**
 * The admin HTTP server: Prometheus metrics, liveness and readiness probes, and a small
 * JSON API to inspect clusters, drain endpoints, override weights and reload the config.
 * docs/admin.md is its reference.
 *
 * Reads are open (the server listens on loopback by default) to clients that name it in
 * `Host` (allowed-hosts.ts: a DNS-rebinding page is answered 403); every call that changes
 * state needs `Authorization: Bearer <token>`, and with no token configured those calls
 * are refused outright rather than left open. Nothing a client sends can crash it: every
 * failure becomes a status code and, under /api/, a JSON body `{ "error": ... }`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostAllowed } from './allowed-hosts.js';
import type { MetricsText } from './metrics.js';
import type { AdminTarget, ChangeResult, GlobalAdmin } from './types.js';

/** The largest request body read (413 above). Admin bodies are a few bytes of JSON. */
export const MAX_BODY_BYTES = 64 * 1024;
/**
 * After a 413, up to this much more of the body is read and thrown away, so the client
 * (still sending) receives the answer instead of a reset connection; past it, the
 * connection is cut.
 */
const DISCARD_LIMIT_BYTES = 1024 * 1024;
/** The largest accepted weight, as in the config (`clusters[].endpoints[].weight`). */
export const MAX_WEIGHT = 10_000;

export interface AdminLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface AdminServerOptions {
  readonly target: AdminTarget;
  readonly metrics: MetricsText;
  /** Bearer token for state-changing calls; absent or '' refuses them all (403). */
  readonly token?: string;
  readonly address: string;
  /** 0 picks a free port; listen() reports it. */
  readonly port: number;
  readonly logger?: AdminLogger;
  /**
   * Names (or `*.suffix` patterns, lowercase) answered in `Host` besides the address the
   * server listens on and, on loopback, localhost (see allowed-hosts.ts).
   */
  readonly allowedHosts?: readonly string[];
  /**
   * More routes, matched after the built-in ones (the dashboard and the demo's controls,
   * src/admin/dashboard.ts). Their POST handlers need the bearer token like every other.
   */
  readonly routes?: readonly AdminRoute[];
}

export interface AdminServer {
  /** Bind; rejects with a message naming the address when it cannot (e.g. the port is taken). */
  listen(): Promise<{ address: string; port: number }>;
  /** Stop listening and close every connection. */
  close(): Promise<void>;
  readonly server: http.Server;
}

/** A failure with the status, message and headers to answer with. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Readonly<Record<string, unknown>> = {},
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

export interface Ctx {
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** Who made the call, for the log: the peer address and its user agent. */
  readonly who: { readonly remote: string; readonly userAgent: string | undefined };
}

type Handler = (ctx: Ctx) => Promise<void> | void;

/** One admin route; extra ones come in through `AdminServerOptions.routes`. */
export interface AdminRoute {
  /** Path segments; `:name` binds the (URL-decoded) segment to `params.name`. */
  readonly path: readonly string[];
  /** Read-only; HEAD is answered too. */
  readonly get?: Handler;
  /** Changes state: needs the bearer token. */
  readonly post?: Handler;
}

const NO_LOG: AdminLogger = { info() {}, warn() {} };
const COMMON_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' } as const;
const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json';

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export function createAdminServer(opts: AdminServerOptions): AdminServer {
  const { target, metrics } = opts;
  const log = opts.logger ?? NO_LOG;
  // Both sides hashed: equal-length buffers for timingSafeEqual, and the token's length stays secret.
  const tokenDigest = opts.token ? sha256(opts.token) : undefined;
  const allowedHosts = opts.allowedHosts ?? [];

  const routes: readonly AdminRoute[] = [
    {
      path: ['metrics'],
      get: async ({ res }) => {
        let text: string;
        try {
          text = await metrics.metricsText();
        } catch (err) {
          throw new HttpError(500, `metrics collection failed: ${errorMessage(err)}`);
        }
        send(res, 200, text, metrics.contentType);
      },
    },
    { path: ['healthz'], get: ({ res }) => send(res, 200, 'ok', TEXT) },
    {
      path: ['readyz'],
      get: ({ res }) => (target.ready() ? send(res, 200, 'ready', TEXT) : send(res, 503, 'not ready', TEXT)),
    },
    { path: ['api', 'clusters'], get: ({ res }) => sendJson(res, 200, { clusters: target.clusters() }) },
    {
      path: ['api', 'clusters', ':cluster', 'endpoints', ':endpoint', 'drain'],
      post: async (ctx) => {
        const body = await readJsonObject(ctx.req, ['draining']);
        const draining = body.draining ?? true;
        if (typeof draining !== 'boolean') throw badField('draining', 'expected true or false', body.draining);
        const { cluster, endpoint } = ctx.params as { cluster: string; endpoint: string };
        const result = target.drain(cluster, endpoint, draining);
        answerChange(ctx, result, 'drain', { cluster, endpoint, draining }, draining ? 'endpoint drained' : 'endpoint undrained');
      },
    },
    {
      path: ['api', 'clusters', ':cluster', 'discovery', 'accept'],
      post: async (ctx) => {
        await readJsonObject(ctx.req, []);
        const { cluster } = ctx.params as { cluster: string };
        const result = target.acceptDiscovery?.(cluster) ?? 'no_discovery';
        if (result === 'no_cluster') throw new HttpError(404, `no cluster "${cluster}"`);
        if (result === 'no_discovery') throw new HttpError(404, `cluster "${cluster}" has no discovery source`);
        if (result === 'nothing_pending') throw new HttpError(409, `cluster "${cluster}" has no discovery change waiting`);
        log.info({ admin: 'discovery_accept', ...ctx.who, cluster }, 'admin: pending discovery change accepted');
        sendJson(ctx.res, 200, { ok: true, cluster });
      },
    },
    {
      path: ['api', 'clusters', ':cluster', 'endpoints', ':endpoint', 'weight'],
      post: async (ctx) => {
        const body = await readJsonObject(ctx.req, ['weight']);
        if (!('weight' in body)) {
          throw new HttpError(400, `weight: required: an integer 1-${MAX_WEIGHT}, or null to restore the configured weight`, { field: 'weight' });
        }
        const weight = body.weight;
        if (weight !== null && !(typeof weight === 'number' && Number.isInteger(weight) && weight >= 1 && weight <= MAX_WEIGHT)) {
          throw badField('weight', `expected an integer 1-${MAX_WEIGHT}, or null to restore the configured weight`, weight);
        }
        const { cluster, endpoint } = ctx.params as { cluster: string; endpoint: string };
        const result = target.setWeight(cluster, endpoint, weight);
        answerChange(ctx, result, 'weight', { cluster, endpoint, weight }, weight === null ? 'endpoint weight restored' : 'endpoint weight set');
      },
    },
    {
      // What a region reports to the global layer's probes: the healthy share of its own
      // endpoints (not other regions' load balancers, not drained ones) and its load.
      path: ['api', 'region'],
      get: ({ res, query }) => {
        const all = target.clusters();
        const wanted = query.get('cluster')?.split(',').filter((n) => n !== '');
        const missing = wanted?.filter((n) => !all.some((c) => c.name === n)) ?? [];
        if (missing.length > 0) throw new HttpError(404, `no cluster ${missing.map((n) => `"${n}"`).join(', ')}`);
        const picked = wanted === undefined ? all : all.filter((c) => wanted.includes(c.name));
        const own = picked.flatMap((c) => c.endpoints.filter((e) => e.remote !== true && e.status !== 'draining'));
        const healthy = own.filter((e) => e.status === 'healthy' || e.status === 'slow_start').length;
        const loadRps = picked.reduce((n, c) => n + (c.loadRps ?? 0), 0);
        const body = { healthy, total: own.length, healthy_fraction: own.length === 0 ? 0 : healthy / own.length, load_rps: Math.round(loadRps * 100) / 100 };
        sendJson(res, target.ready() && healthy > 0 ? 200 : 503, body);
      },
    },
    { path: ['api', 'global'], get: ({ res }) => sendJson(res, 200, globalLayer().status()) },
    {
      path: ['api', 'global', 'decide'],
      get: ({ res, query }) => {
        const host = query.get('host');
        if (host === null || host === '') throw new HttpError(400, 'host: required, e.g. ?host=www.example.com&client=192.0.2.1', { field: 'host' });
        const answer = globalLayer().decide(host, query.get('client') ?? undefined);
        if (answer === undefined) throw new HttpError(404, `no hostname "${host}" in the global layer`);
        sendJson(res, 200, answer);
      },
    },
    {
      path: ['api', 'global', 'regions', ':region'],
      post: async (ctx) => {
        const body = await readJsonObject(ctx.req, ['override']);
        const override = body.override;
        if (override !== 'up' && override !== 'down' && override !== null) throw badField('override', 'expected "up", "down", or null to follow the probes again', override);
        const { region } = ctx.params as { region: string };
        if (!globalLayer().setRegionOverride(region, override ?? undefined)) throw new HttpError(404, `no region "${region}"`);
        log.info({ admin: 'region_override', ...ctx.who, region, override }, 'admin: region override');
        sendJson(ctx.res, 200, { ok: true, region, override });
      },
    },
    {
      path: ['api', 'global', 'rtt'],
      post: async (ctx) => {
        const body = await readJsonObject(ctx.req, ['client', 'region', 'rtt_ms']);
        const { client, region, rtt_ms: rtt } = body;
        if (typeof client !== 'string') throw badField('client', 'expected a client IP address or subnet', client);
        if (typeof region !== 'string') throw badField('region', 'expected a region name', region);
        if (typeof rtt !== 'number' || !(rtt >= 0) || !Number.isFinite(rtt)) throw badField('rtt_ms', 'expected a number of milliseconds >= 0', rtt);
        if (!globalLayer().reportRtt(client, region, rtt)) throw new HttpError(422, `not recorded: unknown region "${region}" or a client that is not an IP address`);
        sendJson(ctx.res, 200, { ok: true, client, region, rtt_ms: rtt });
      },
    },
    {
      path: ['api', 'reload'],
      post: async (ctx) => {
        await readJsonObject(ctx.req, []);
        const result = await target.reload();
        if (result.ok) {
          log.info({ admin: 'reload', ...ctx.who, summary: result.summary }, 'admin: config reloaded');
          sendJson(ctx.res, 200, { ok: true, summary: result.summary });
        } else {
          log.warn({ admin: 'reload', ...ctx.who, errors: result.errors }, 'admin: config reload refused, the running config stays');
          sendJson(ctx.res, 422, { ok: false, errors: result.errors });
        }
      },
    },
    ...(opts.routes ?? []),
  ];

  function globalLayer(): GlobalAdmin {
    const g = target.global?.();
    if (g === undefined) throw new HttpError(404, 'no global layer: this Meridian has no `global:` in its config');
    return g;
  }

  /** Answer a change to one endpoint, and log who made it when it took effect. */
  function answerChange(
    ctx: Ctx,
    result: ChangeResult,
    action: string,
    change: { cluster: string; endpoint: string } & Record<string, unknown>,
    what: string,
  ): void {
    if (result === 'no_cluster') throw new HttpError(404, `no cluster "${change.cluster}"`);
    if (result === 'no_endpoint') throw new HttpError(404, `cluster "${change.cluster}" has no endpoint "${change.endpoint}"`);
    log.info({ admin: action, ...ctx.who, ...change }, `admin: ${what}`);
    sendJson(ctx.res, 200, { ok: true, ...change });
  }

  function authorize(ctx: Ctx): void {
    if (tokenDigest === undefined) {
      throw new HttpError(403, 'state-changing admin calls are disabled: set admin.token in the config or the MERIDIAN_ADMIN_TOKEN environment variable');
    }
    const m = /^Bearer +(.+)$/i.exec(ctx.req.headers.authorization ?? '');
    if (!m) {
      log.warn({ admin: 'unauthorized', ...ctx.who, method: ctx.req.method, url: ctx.req.url }, 'admin: call without a bearer token');
      throw new HttpError(401, 'missing bearer token: send "Authorization: Bearer <token>"', {}, { 'www-authenticate': 'Bearer realm="meridian-admin"' });
    }
    if (!timingSafeEqual(sha256((m[1] as string).trim()), tokenDigest)) {
      log.warn({ admin: 'unauthorized', ...ctx.who, method: ctx.req.method, url: ctx.req.url }, 'admin: call with a wrong bearer token');
      throw new HttpError(401, 'invalid bearer token', {}, { 'www-authenticate': 'Bearer realm="meridian-admin", error="invalid_token"' });
    }
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q === -1 ? url : url.slice(0, q);
    const api = pathname === '/api' || pathname.startsWith('/api/');
    const method = req.method ?? 'GET';
    try {
      // Before anything else, reads included: a rebinding page must learn nothing.
      const hosts = req.headersDistinct['host'];
      if (hosts !== undefined && hosts.length > 1) throw new HttpError(400, 'more than one Host header');
      if (!hostAllowed(req.headers.host, req.socket.localAddress, allowedHosts)) {
        throw new HttpError(403, `Host ${JSON.stringify(req.headers.host)} is not allowed: the admin API answers to the address it listens on, localhost on loopback, and the names in admin.allowed_hosts (DNS-rebinding protection)`);
      }
      const raw = pathname.split('/').slice(1);
      let segments: string[];
      try {
        segments = raw.map((s) => decodeURIComponent(s));
      } catch {
        throw new HttpError(400, `malformed percent-encoding in path ${JSON.stringify(pathname)}`);
      }
      const match = matchRoute(routes, segments);
      if (!match) throw new HttpError(404, `no such admin endpoint: ${method} ${pathname}`);
      const { route, params } = match;
      const handler = method === 'GET' || method === 'HEAD' ? route.get : method === 'POST' ? route.post : undefined;
      if (!handler) {
        const allow = [...(route.get ? ['GET', 'HEAD'] : []), ...(route.post ? ['POST'] : [])].join(', ');
        throw new HttpError(405, `${method} is not allowed on ${pathname}; allowed: ${allow}`, {}, { allow });
      }
      const ctx: Ctx = { req, res, params, query: new URLSearchParams(q === -1 ? '' : url.slice(q + 1)), who: { remote: peer(req), userAgent: req.headers['user-agent'] } };
      if (method === 'POST') authorize(ctx);
      await handler(ctx);
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const e = err instanceof HttpError ? err : new HttpError(500, `internal error: ${errorMessage(err)}`);
      if (e.status >= 500) log.warn({ admin: 'error', method, url, err: e.message }, 'admin: request failed');
      if (api) sendJson(res, e.status, { error: e.message, ...e.extra }, e.headers);
      else send(res, e.status, e.message, TEXT, e.headers);
    }
  }

  const server = http.createServer((req, res) => {
    void handle(req, res);
  });
  // Slow or stuck clients may not hold admin connections for long.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  return {
    server,
    listen() {
      return new Promise((resolve, reject) => {
        const onError = (err: NodeJS.ErrnoException): void => {
          const where = opts.address.includes(':') ? `[${opts.address}]:${opts.port}` : `${opts.address}:${opts.port}`;
          const why = err.code === 'EADDRINUSE' ? 'the address is already in use' : err.code === 'EADDRNOTAVAIL' ? 'no such local address' : err.message;
          reject(new Error(`admin: cannot listen on ${where}: ${why}`, { cause: err }));
        };
        server.once('error', onError);
        server.listen(opts.port, opts.address, () => {
          server.off('error', onError);
          server.on('error', (err) => log.warn({ admin: 'error', err: err.message }, 'admin: server error'));
          const a = server.address() as AddressInfo;
          resolve({ address: a.address, port: a.port });
        });
      });
    },
    close() {
      return new Promise((resolve, reject) => {
        if (!server.listening) {
          resolve();
          return;
        }
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}

function matchRoute(routes: readonly AdminRoute[], segments: readonly string[]): { route: AdminRoute; params: Record<string, string> } | undefined {
  outer: for (const route of routes) {
    if (route.path.length !== segments.length) continue;
    const params: Record<string, string> = {};
    for (let i = 0; i < segments.length; i++) {
      const p = route.path[i] as string;
      const s = segments[i] as string;
      if (p.startsWith(':')) params[p.slice(1)] = s;
      else if (p !== s) continue outer;
    }
    return { route, params };
  }
  return undefined;
}

/**
 * The body as a JSON object holding only `allowed` keys; an empty body is `{}`. The
 * Content-Type is not checked: `curl -d` sends form encoding by default.
 */
export async function readJsonObject(req: http.IncomingMessage, allowed: readonly string[]): Promise<Record<string, unknown>> {
  const text = (await readBody(req)).toString('utf8').trim();
  if (text === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `body: not valid JSON: ${errorMessage(err)}`, { field: 'body' });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badField('body', 'expected a JSON object', value);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      const expected = allowed.length === 0 ? 'this call takes no fields' : `expected ${allowed.map((k) => `"${k}"`).join(', ')}`;
      throw new HttpError(400, `${key}: unknown field (${expected})`, { field: key });
    }
  }
  return value as Record<string, unknown>;
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooLarge = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      let discarded = 0;
      req.on('data', (chunk: Buffer) => {
        discarded += chunk.length;
        if (discarded > DISCARD_LIMIT_BYTES) req.socket.destroy();
      });
      req.resume();
      reject(new HttpError(413, `request body larger than ${MAX_BODY_BYTES} bytes`));
    };
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge();
      else chunks.push(chunk);
    };
    const onEnd = (): void => resolve(Buffer.concat(chunks));
    if (Number(req.headers['content-length']) > MAX_BODY_BYTES) {
      tooLarge();
      return;
    }
    req.on('data', onData);
    req.on('end', onEnd);
    // A client gone mid-body: settle (the answer goes nowhere) rather than hang.
    req.on('close', () => reject(new HttpError(400, 'request body incomplete: the client went away')));
  });
}

export function badField(field: string, expected: string, got: unknown): HttpError {
  return new HttpError(400, `${field}: ${expected}, got ${describeValue(got)}`, { field });
}

function describeValue(v: unknown): string {
  const s = v === undefined ? 'nothing' : JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function peer(req: http.IncomingMessage): string {
  const { remoteAddress, remotePort } = req.socket;
  return remoteAddress?.includes(':') ? `[${remoteAddress}]:${remotePort}` : `${remoteAddress}:${remotePort}`;
}

export function send(res: http.ServerResponse, status: number, body: string, contentType: string, headers: Readonly<Record<string, string>> = {}): void {
  res.writeHead(status, { ...COMMON_HEADERS, ...headers, 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function sendJson(res: http.ServerResponse, status: number, value: unknown, headers: Readonly<Record<string, string>> = {}): void {
  send(res, status, `${JSON.stringify(value)}\n`, JSON_TYPE, headers);
}
