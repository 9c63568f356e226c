/**
 * The dashboard's static files: its two pages and their scripts and styles. They are read
 * once, when the routes are made, and answered from memory: `npm run build` rewrites dist/ui/
 * while a demo runs, and a page loaded then must still get every file (it got 500s for as long
 * as the build took when they were read per request).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpError, send, type AdminRoute } from './server.js';

/** Where the files are: the pages' HTML and CSS in `pages`, their compiled scripts in `scripts`. */
export interface DashboardFiles {
  readonly pages: string;
  readonly scripts: string;
}

/** This file runs from dist/src/admin/: the compiled scripts are in dist/ui/, the HTML and CSS in ui/. */
export const BUILT_DASHBOARD_FILES: DashboardFiles = {
  pages: fileURLToPath(new URL('../../../ui/', import.meta.url)),
  scripts: fileURLToPath(new URL('../../ui/', import.meta.url)),
};

const HTML = 'text/html; charset=utf-8';
const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
/** The page loads only what it is served from here; reports open in a sandboxed frame. */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-src 'self' blob:; object-src 'none'; base-uri 'none'",
  'referrer-policy': 'no-referrer',
};

interface Loaded {
  readonly path: string;
  readonly type: string;
  /** undefined: the file could not be read at start (not built yet). */
  readonly body: Buffer | undefined;
}

function load(path: string, type: string): Loaded {
  let body: Buffer | undefined;
  try {
    body = readFileSync(path);
  } catch {
    body = undefined;
  }
  return { path, type, body };
}

/** The routes of the pages (/dashboard, /dashboard/reports) and of their assets (/dashboard/assets/NAME). */
export function dashboardAssetRoutes(files: DashboardFiles = BUILT_DASHBOARD_FILES): AdminRoute[] {
  const require = createRequire(import.meta.url);
  const assets = new Map<string, Loaded>([
    ['dashboard.js', load(join(files.scripts, 'dashboard.js'), JS)],
    ['reports.js', load(join(files.scripts, 'reports.js'), JS)],
    ['dashboard.css', load(join(files.pages, 'dashboard.css'), CSS)],
    ['uplot.js', load(require.resolve('uplot/dist/uPlot.esm.js'), JS)],
    ['uplot.css', load(require.resolve('uplot/dist/uPlot.min.css'), CSS)],
  ]);
  const missing = (what: string, f: Loaded): HttpError => new HttpError(500, `${what} was missing when the dashboard started (${f.path}): run npm run build and restart`);
  const page = (name: string): AdminRoute['get'] => {
    const f = load(join(files.pages, name), HTML);
    return ({ res }) => {
      if (f.body === undefined) throw missing(name, f);
      send(res, 200, f.body.toString('utf8'), HTML, PAGE_HEADERS);
    };
  };
  return [
    { path: ['dashboard'], get: page('index.html') },
    { path: ['dashboard', 'reports'], get: page('reports.html') },
    {
      path: ['dashboard', 'assets', ':file'],
      get: ({ res, params }) => {
        const name = params['file'] as string;
        const a = assets.get(name);
        if (!a) throw new HttpError(404, `no such asset: ${name}`);
        if (a.body === undefined) throw missing(`asset ${name}`, a);
        res.writeHead(200, { 'content-type': a.type, 'content-length': a.body.length, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
        res.end(a.body);
      },
    },
  ];
}
