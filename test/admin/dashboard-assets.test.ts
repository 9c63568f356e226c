// The dashboard's files are answered from memory: `npm run build` rewriting (or a clean deleting)
// dist/ui/ and ui/ under a running demo must not turn a page load into 500s. The files here are
// copies in a temporary directory, served by an admin server of the test's own.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dashboardAssetRoutes, type DashboardFiles } from '../../src/admin/dashboard-assets.js';
import { ProxyMetrics } from '../../src/admin/metrics.js';
import { createAdminServer, type AdminServer } from '../../src/admin/server.js';
import type { AdminTarget } from '../../src/admin/types.js';
import { get } from '../proxy/harness.js';

/** Nothing to administer: only the dashboard's routes are under test. */
const NO_CLUSTERS: AdminTarget = {
  clusters: () => [],
  ready: () => true,
  drain: () => 'no_cluster',
  setWeight: () => 'no_cluster',
  reload: () => Promise.resolve({ ok: false, errors: ['no config'] }),
};

const PATHS = ['/dashboard', '/dashboard/reports', '/dashboard/assets/dashboard.js', '/dashboard/assets/reports.js', '/dashboard/assets/dashboard.css', '/dashboard/assets/uplot.js', '/dashboard/assets/uplot.css'];

describe('dashboard assets', () => {
  let dir: string;
  let files: DashboardFiles;
  let admin: AdminServer;
  let port: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meridian-dashboard-'));
    files = { pages: join(dir, 'ui'), scripts: join(dir, 'dist', 'ui') };
    mkdirSync(files.pages, { recursive: true });
    mkdirSync(files.scripts, { recursive: true });
    for (const f of ['index.html', 'reports.html', 'dashboard.css']) copyFileSync(join('ui', f), join(files.pages, f));
    writeFileSync(join(files.scripts, 'dashboard.js'), 'export const built = 1;\n');
    writeFileSync(join(files.scripts, 'reports.js'), 'export const reports = 1;\n');
    admin = createAdminServer({ target: NO_CLUSTERS, metrics: new ProxyMetrics({ defaultMetrics: false }), address: '127.0.0.1', port: 0, routes: dashboardAssetRoutes(files) });
    port = (await admin.listen()).port;
  });
  after(async () => {
    await admin?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps answering every page and asset with the content read at start while the files are rewritten and then deleted', async () => {
    const first = new Map<string, string>();
    for (const p of PATHS) {
      const r = await get(port, p);
      assert.equal(r.status, 200, p);
      first.set(p, r.body);
    }
    assert.equal(first.get('/dashboard/assets/dashboard.js'), 'export const built = 1;\n');

    // What a build does to a running demo: a script truncated mid-write, then the directories gone.
    writeFileSync(join(files.scripts, 'dashboard.js'), '');
    assert.equal((await get(port, '/dashboard/assets/dashboard.js')).body, 'export const built = 1;\n');
    rmSync(files.scripts, { recursive: true });
    rmSync(files.pages, { recursive: true });
    for (const p of PATHS) {
      const r = await get(port, p);
      assert.equal(r.status, 200, p);
      assert.equal(r.body, first.get(p), p);
    }
  });

  it('answers 404 for a name that is not one of its assets', async () => {
    assert.equal((await get(port, '/dashboard/assets/nope.js')).status, 404);
  });

  it('answers 500 naming the build for a file that was missing at start', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'meridian-dashboard-empty-'));
    const bare = createAdminServer({ target: NO_CLUSTERS, metrics: new ProxyMetrics({ defaultMetrics: false }), address: '127.0.0.1', port: 0, routes: dashboardAssetRoutes({ pages: empty, scripts: empty }) });
    const p = (await bare.listen()).port;
    try {
      const r = await get(p, '/dashboard/assets/dashboard.js');
      assert.equal(r.status, 500);
      assert.match(r.body, /asset dashboard\.js was missing when the dashboard started .*run npm run build and restart/);
      assert.equal((await get(p, '/dashboard/assets/uplot.js')).status, 200);
    } finally {
      await bare.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
