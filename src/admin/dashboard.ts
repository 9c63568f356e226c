/**
 * The dashboard's server side: the page and its assets (built by the project, read at start
 * and served from memory, no CDN: dashboard-assets.ts), the live stream (server-sent events,
 * one snapshot a second), and the demo's controls, all as admin routes: reads are open, every control is
 * a POST and so needs the bearer token (src/admin/server.ts checks it). docs/dashboard.md
 * is the reference.
 */
import { readdir, readFile } from 'node:fs/promises';
import type http from 'node:http';
import { dashboardAssetRoutes, type DashboardFiles } from './dashboard-assets.js';
import type { DemoHello, DemoSnapshot } from './dashboard-types.js';
import { HttpError, readJsonObject, send, sendJson, type AdminRoute, type Ctx } from './server.js';

export type ControlResult = { readonly ok: true; readonly message: string } | { readonly ok: false; readonly status: 400 | 404 | 409 | 422; readonly error: string };

/** What the dashboard reads and what its controls change; the demo (src/demo/demo.ts) implements it. */
export interface DemoControl {
  readonly policies: readonly string[];
  /** The latest snapshot, or undefined before the first interval ended. */
  snapshot(): DemoSnapshot | undefined;
  /** Recent snapshots, oldest first. */
  history(): readonly DemoSnapshot[];
  /** A control answered through the admin API: the next snapshot's events carry it to the Activity panel. */
  record(text: string): void;
  /** Called with every new snapshot; returns the unsubscribe function. */
  subscribe(fn: (s: DemoSnapshot) => void): () => void;
  /** Stop a backend's process (its port refuses connections). */
  killBackend(id: string): Promise<ControlResult>;
  /** Start a killed backend again on its port. */
  reviveBackend(id: string): Promise<ControlResult>;
  /** Set a backend's injected latency (a LatencySpec string); null restores its own. */
  slowBackend(id: string, latency: string | null): ControlResult;
  /** Kill (down) or revive (up) every backend of a region. */
  setRegion(region: string, up: boolean): Promise<ControlResult>;
  /** Multiply the load by `factor` for `seconds`. */
  spike(factor: number, seconds: number): ControlResult;
  setRate(rate: number): ControlResult;
  /** Reload the cluster of `region` (every region when undefined) with `policy`. */
  setPolicy(policy: string, region: string | undefined): Promise<ControlResult>;
}

export interface DashboardOptions {
  readonly control: DemoControl;
  /** Where `meridian simulate --html` reports are listed from; undefined: only files opened in the browser. */
  readonly reportsDir?: string;
  /** Where the page's files are read from (once, at start); the built tree's by default. */
  readonly files?: DashboardFiles;
}

const HTML = 'text/html; charset=utf-8';
const REPORT_NAME = /^[\w.-]+\.html$/;

export function dashboardRoutes(o: DashboardOptions): AdminRoute[] {
  const { control } = o;
  const answer = (ctx: Ctx, r: ControlResult): void => {
    if (!r.ok) throw new HttpError(r.status, r.error);
    control.record(r.message);
    sendJson(ctx.res, 200, { ok: true, message: r.message });
  };
  const id = (ctx: Ctx, key: string): string => ctx.params[key] as string;

  return [
    { path: [''], get: ({ res }) => redirect(res, '/dashboard') },
    { path: ['favicon.ico'], get: ({ res }) => void res.writeHead(204).end() },
    ...dashboardAssetRoutes(o.files),
    {
      path: ['api', 'demo', 'state'],
      get: ({ res }) => {
        const s = control.snapshot();
        if (!s) throw new HttpError(503, 'no snapshot yet: the first interval has not ended');
        sendJson(res, 200, s);
      },
    },
    { path: ['api', 'demo', 'events'], get: ({ req, res }) => stream(req, res, control) },
    {
      path: ['api', 'demo', 'reports'],
      get: async ({ res }) => {
        if (o.reportsDir === undefined) return sendJson(res, 200, { dir: null, reports: [] });
        const names = await readdir(o.reportsDir).catch(() => [] as string[]);
        sendJson(res, 200, { dir: o.reportsDir, reports: names.filter((n) => REPORT_NAME.test(n)).sort() });
      },
    },
    {
      path: ['api', 'demo', 'reports', ':file'],
      get: async ({ res, params }) => {
        const name = params['file'] as string;
        if (o.reportsDir === undefined || !REPORT_NAME.test(name)) throw new HttpError(404, `no such report: ${name}`);
        const text = await readFile(`${o.reportsDir}/${name}`, 'utf8').catch(() => undefined);
        if (text === undefined) throw new HttpError(404, `no such report: ${name}`);
        // A report runs its own scripts, but in a sandbox of its own origin: nothing of the admin API is reachable.
        send(res, 200, text, HTML, { 'content-security-policy': 'sandbox allow-scripts' });
      },
    },
    {
      path: ['api', 'demo', 'backends', ':backend', 'kill'],
      post: async (ctx) => {
        await readJsonObject(ctx.req, []);
        answer(ctx, await control.killBackend(id(ctx, 'backend')));
      },
    },
    {
      path: ['api', 'demo', 'backends', ':backend', 'revive'],
      post: async (ctx) => {
        await readJsonObject(ctx.req, []);
        answer(ctx, await control.reviveBackend(id(ctx, 'backend')));
      },
    },
    {
      path: ['api', 'demo', 'backends', ':backend', 'slow'],
      post: async (ctx) => {
        const body = await readJsonObject(ctx.req, ['latency']);
        const latency = body['latency'] === undefined ? 'exp:250ms' : body['latency'];
        if (latency !== null && typeof latency !== 'string') throw new HttpError(400, 'latency: expected a latency like "250ms", "exp:250ms", or null to restore', { field: 'latency' });
        answer(ctx, control.slowBackend(id(ctx, 'backend'), latency));
      },
    },
    ...(['down', 'up'] as const).map(
      (way): AdminRoute => ({
        path: ['api', 'demo', 'regions', ':region', way],
        post: async (ctx) => {
          await readJsonObject(ctx.req, []);
          answer(ctx, await control.setRegion(id(ctx, 'region'), way === 'up'));
        },
      }),
    ),
    {
      path: ['api', 'demo', 'spike'],
      post: async (ctx) => {
        const body = await readJsonObject(ctx.req, ['factor', 'seconds']);
        const factor = body['factor'] ?? 10;
        const seconds = body['seconds'] ?? 30;
        if (typeof factor !== 'number' || !(factor >= 1 && factor <= 100)) throw new HttpError(400, `factor: expected a number from 1 to 100, got ${JSON.stringify(factor)}`, { field: 'factor' });
        if (typeof seconds !== 'number' || !(seconds > 0 && seconds <= 600)) throw new HttpError(400, `seconds: expected a number from 1 to 600, got ${JSON.stringify(seconds)}`, { field: 'seconds' });
        answer(ctx, control.spike(factor, seconds));
      },
    },
    {
      path: ['api', 'demo', 'rate'],
      post: async (ctx) => {
        const body = await readJsonObject(ctx.req, ['rate']);
        const rate = body['rate'];
        if (typeof rate !== 'number' || !(rate >= 0 && rate <= 5000)) throw new HttpError(400, `rate: expected requests per second from 0 to 5000, got ${JSON.stringify(rate)}`, { field: 'rate' });
        answer(ctx, control.setRate(rate));
      },
    },
    {
      path: ['api', 'demo', 'policy'],
      post: async (ctx) => {
        const body = await readJsonObject(ctx.req, ['policy', 'region']);
        const { policy, region } = body;
        if (typeof policy !== 'string' || !control.policies.includes(policy)) {
          throw new HttpError(400, `policy: expected one of ${control.policies.join(', ')}, got ${JSON.stringify(policy)}`, { field: 'policy' });
        }
        if (region !== undefined && typeof region !== 'string') throw new HttpError(400, 'region: expected a region name', { field: 'region' });
        answer(ctx, await control.setPolicy(policy, region));
      },
    },
  ];
}

/**
 * Server-sent events: first `hello` (the history, so charts start full), then a
 * `snapshot` event per interval. A comment line every 15 s keeps idle proxies from
 * closing the stream; the client's EventSource reconnects on its own.
 */
function stream(req: http.IncomingMessage, res: http.ServerResponse, control: DemoControl): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', connection: 'keep-alive' });
  if (req.method === 'HEAD') return void res.end();
  res.socket?.setNoDelay(true);
  const hello: DemoHello = { history: control.history(), policies: control.policies };
  res.write(`retry: 1000\nevent: hello\ndata: ${JSON.stringify(hello)}\n\n`);
  const unsubscribe = control.subscribe((s) => res.write(`event: snapshot\ndata: ${JSON.stringify(s)}\n\n`));
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  res.on('close', () => {
    unsubscribe();
    clearInterval(keepAlive);
  });
}

function redirect(res: http.ServerResponse, location: string): void {
  res.writeHead(302, { location, 'content-length': 0 });
  res.end();
}
