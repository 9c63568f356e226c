// The dashboard in a real browser: Debian's chromium driven by playwright-core (never a
// downloaded browser), against a real demo on loopback. Kill a backend from the page, see it
// turn unhealthy and its traffic go to the others; revive it from the keyboard, see it come
// back through slow start. Saves test-artifacts/dashboard.png (and a narrow-window shot).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startSampleBackend } from '../../src/backend/sample-backend.js';
import { Demo } from '../../src/demo/demo.js';
import { until } from '../proxy/harness.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install -y chromium): the browser test cannot run`;
/** Flags that keep the browser off the network and quiet. */
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

const VICTIM = 'us-east-1';
const OTHERS = ['us-east-2', 'us-east-3', 'us-east-4'];

describe('dashboard in chromium', { skip }, () => {
  let demo: Demo;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  const errors: string[] = [];

  before(async () => {
    demo = new Demo({ port: 0, webPortBase: 0, dnsPort: 0, rate: 40, logger: pino({ level: 'silent' }) });
    await demo.start();
    profile = mkdtempSync(join(tmpdir(), 'meridian-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 800 } });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => errors.push(e.message));
  });

  after(async () => {
    await context?.close();
    await demo?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  const cell = (id: string, key: 'state' | 'rps'): Promise<string> => page.locator(`tr[data-endpoint="${id}"] td`).nth(key === 'state' ? 1 : 5).innerText();
  const rps = async (id: string): Promise<number> => Number(await cell(id, 'rps'));
  const status = (id: string): Promise<string | null> => page.locator(`tr[data-endpoint="${id}"] .state`).getAttribute('data-status');

  it('shows live numbers, kills a backend and revives it through slow start', async () => {
    await page.goto(demo.dashboardUrl);
    await page.locator('#conn[data-state="live"]').waitFor({ timeout: 10_000 });

    // The numbers move: the region cards' text changes from one snapshot to the next, with traffic on them.
    const cards = page.locator('#regions');
    const first = await cards.innerText();
    await until(async () => (await cards.innerText()) !== first && Number(await page.locator('[data-region="us-east"] dd').first().innerText()) > 0, 10_000, 'the region numbers to move');
    await until(async () => (await rps(VICTIM)) > 0, 10_000, `${VICTIM} to take traffic`);
    assert.equal(await status(VICTIM), 'healthy');

    // Not hovered, the legends show the latest values, not uPlot's `--`.
    const legend = (chart: string): Promise<string[]> => page.locator(`#${chart} .u-legend .u-series .u-value`).allInnerTexts();
    await until(async () => /^\d+\.\d$/.test((await legend('chart-rps'))[1] ?? ''), 10_000, 'the requests legend to show a number');
    assert.equal((await legend('chart-rps'))[0], 'latest');
    assert.ok((await legend('chart-lat')).slice(1).every((v) => v !== '--'), `latency legend: ${(await legend('chart-lat')).join(' ')}`);
    // Backends in small multiples: each region's chart holds its own four backends, not all twelve.
    assert.deepEqual(await page.locator('#backend-charts figure[data-region="eu-west"] .chart-rps-backends .u-legend .u-label').allInnerTexts(), ['time', 'eu-west-1', 'eu-west-2', 'eu-west-3', 'eu-west-4']);
    // p99 (solid line) and p50 (dashed) of one region: one colour, different swatches.
    const swatch = (n: number): Promise<string | null> => page.locator('#chart-lat .u-legend .u-series .u-marker').nth(n).getAttribute('style');
    assert.match(String(await swatch(1)), /solid/, 'us-east p99: a filled swatch');
    assert.match(String(await swatch(2)), /dashed.*transparent/, 'us-east p50: a hollow dashed one');

    // Kill it (a click): health checks take it out, its traffic goes to zero, the others take it.
    await page.getByRole('button', { name: `Kill ${VICTIM}`, exact: true }).click();
    await until(async () => (await status(VICTIM)) === 'unhealthy', 15_000, `${VICTIM} to turn unhealthy`);
    await until(async () => (await rps(VICTIM)) === 0, 10_000, `${VICTIM}'s traffic to reach zero`);
    await until(async () => (await Promise.all(OTHERS.map(rps))).reduce((a, b) => a + b, 0) > 0, 10_000, 'the other backends to take the traffic');
    assert.match(await cell(VICTIM, 'state'), /killed/);
    // The Activity panel: the click as the server recorded it, and what health checks made of it.
    const activity = page.locator('#log');
    await until(async () => /admin API backend us-east-1 killed/.test(await activity.innerText()) && /health us-east: us-east-1 [a-z ]+ → unhealthy/.test(await activity.innerText()), 5000, 'the kill and the health change in Activity');
    // A kill through the admin API from outside the page (the banner's curl) shows there too.
    const outside = await fetch(`http://127.0.0.1:${demo.port}/api/demo/backends/eu-west-3/kill`, { method: 'POST', headers: { authorization: `Bearer ${demo.token}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(outside.status, 200);
    await until(async () => /admin API backend eu-west-3 killed/.test(await activity.innerText()), 5000, 'the outside kill in Activity');
    assert.equal((await fetch(`http://127.0.0.1:${demo.port}/api/demo/backends/eu-west-3/revive`, { method: 'POST', headers: { authorization: `Bearer ${demo.token}` } })).status, 200);
    const region = demo.snapshot()?.regions.find((r) => r.name === 'us-east');
    assert.equal(region?.errorRate ?? 1, 0, 'no client saw an error once it was out');

    // Revive it from the keyboard: focus the button, press Enter. It comes back through slow start.
    const revive = page.getByRole('button', { name: `Revive ${VICTIM}`, exact: true });
    await revive.focus();
    await page.keyboard.press('Enter');
    await until(async () => (await status(VICTIM)) === 'slow_start', 30_000, `${VICTIM} to come back in slow start`);
    const weight = await page.locator(`tr[data-endpoint="${VICTIM}"] td`).nth(2).innerText();
    const [effective, configured] = weight.split('/').map((x) => Number(x.trim()));
    assert.ok((effective as number) < (configured as number), `slow start ramps the weight: ${weight}`);
    await until(async () => (await rps(VICTIM)) > 0, 15_000, `${VICTIM} to take traffic again`);

    mkdirSync('test-artifacts', { recursive: true });
    await page.screenshot({ path: 'test-artifacts/dashboard.png', fullPage: true });
    assert.deepEqual(errors, [], 'no script errors on the page');
  });

  it('marks endpoints found by discovery, and follows the watched file: a backend added gets a row, one removed loses it', async () => {
    // The demo's regions list their own backends in a watched file; the failover peers are configured.
    const badge = (id: string) => page.locator(`tr[data-endpoint="${id}"] td:first-child .badge`);
    assert.equal(await badge(VICTIM).innerText(), 'file');
    assert.equal(await badge(VICTIM).getAttribute('title'), "listed in the cluster's watched endpoint file");
    assert.equal(await badge('via-eu-west').count(), 0, 'a configured endpoint has no badge');

    const extra = await startSampleBackend({ name: 'us-east-9' });
    try {
      const file = demo.regions().find((r) => r.name === 'us-east')?.backendsFile as string;
      const before = await readFile(file, 'utf8');
      await writeFile(file, `${before}- { id: us-east-9, address: "127.0.0.1:${extra.port}", locality: { region: us-east, priority: 0 } }\n`);
      const row = page.locator('tr[data-endpoint="us-east-9"]');
      await row.waitFor({ state: 'visible', timeout: 15_000 });
      assert.equal(await badge('us-east-9').innerText(), 'file');
      await until(async () => (await rps('us-east-9')) > 0, 15_000, 'the discovered backend to take traffic');
      // Drain works on any endpoint; kill and slow only on the demo's own backend processes.
      assert.deepEqual(await row.locator('button').allInnerTexts(), ['Drain']);

      await writeFile(file, before);
      await row.waitFor({ state: 'hidden', timeout: 15_000 });
      assert.equal(await page.locator('tr[data-endpoint="us-east-1"]').isVisible(), true);
    } finally {
      await extra.close();
    }
    assert.deepEqual(errors, [], 'no script errors on the page');
  });

  it('fits a narrow window without sideways scrolling', async () => {
    await page.setViewportSize({ width: 420, height: 900 });
    await until(async () => (await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth')) <= 1, 5000, 'the page to fit 420 px');
    // Every endpoint's buttons inside the window (the actions column stays at the right while the numbers scroll).
    const outside = await page.evaluate<string[]>(`[...document.querySelectorAll('#tables td.actions button')].filter((b) => { const r = b.getBoundingClientRect(); return r.left < 0 || r.right > document.documentElement.clientWidth; }).map((b) => b.getAttribute('aria-label'))`);
    assert.deepEqual(outside, [], 'buttons outside the 420 px window');
    // The topology scrolls sideways and says so; its drawing is not cut at the bottom.
    await until(async () => !(await page.locator('#topology-hint').isHidden()), 5000, 'the topology hint');
    assert.match(await page.locator('#topology-hint').innerText(), /sideways.*all 3 regions/);
    assert.ok(await page.evaluate<boolean>(`(() => { const t = document.getElementById('topology'); return t.scrollWidth > t.clientWidth && t.scrollHeight <= t.clientHeight + 1; })()`), 'the topology scrolls sideways only');
    const boxes = await page.evaluate<number>(`(() => { const svg = document.querySelector('#topology svg'); const vb = svg.viewBox.baseVal; return Math.max(...[...svg.querySelectorAll('.backend rect')].map((r) => r.y.baseVal.value + r.height.baseVal.value)) - vb.height; })()`);
    assert.ok(boxes < 0, `the backend boxes end inside the drawing (${boxes} below its bottom)`);
    await page.screenshot({ path: 'test-artifacts/dashboard-narrow.png', fullPage: true });
  });
});
