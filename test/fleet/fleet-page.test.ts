// The fleet page (GET /fleet on any node's admin port) in a real browser: Debian's chromium
// driven by playwright-core (never a downloaded browser), two Meridians over a real Redis.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { SampleBackend } from '../../src/backend/sample-backend.js';
import type { Meridian } from '../../src/node/meridian.js';
import { backends, simpleConfig, startMeridian, until } from '../proxy/harness.js';
import { NO_REDIS, RedisServer } from './redis-server.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = NO_REDIS ?? (existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install -y chromium): the browser test cannot run`);
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

describe('the fleet page in chromium', { skip, timeout: 90_000 }, () => {
  let redis: RedisServer;
  let bs: SampleBackend[];
  let nodes: Meridian[] = [];
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  const errors: string[] = [];

  before(async () => {
    redis = await RedisServer.start();
    bs = await backends(1);
    const sync = (node: string) => ({ sync: { redis: redis.url, node, region: 'lab', key_prefix: `page-${process.pid}`, heartbeat_interval: '200ms', reconnect: { min: '50ms', max: '200ms' } } });
    nodes = await Promise.all(['p1', 'p2'].map(async (n) => (await startMeridian(simpleConfig(bs, {}, sync(n)))).meridian));
    profile = mkdtempSync(join(tmpdir(), 'meridian-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => errors.push(e.message));
  });

  after(async () => {
    await context?.close();
    await Promise.all(nodes.map((m) => m.close()));
    await Promise.all((bs ?? []).map((b) => b.close()));
    await redis?.kill();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('lists the live nodes with region and version, this node in bold, and shows Redis going down', async () => {
    await page.goto(`http://127.0.0.1:${nodes[0]!.adminPort}/fleet`);
    const names = () => page.locator('#nodes tbody tr td:first-child').allInnerTexts();
    await until(async () => (await names()).sort().join() === 'p1,p2', 10_000, 'both nodes on the page');
    assert.deepEqual(await page.locator('#nodes tbody tr td:nth-child(2)').allInnerTexts(), ['lab', 'lab']);
    assert.deepEqual(await page.locator('#nodes tbody tr td:nth-child(3)').allInnerTexts(), ['0.1.0', '0.1.0']);
    assert.deepEqual(await page.locator('#nodes td.self').allInnerTexts(), ['p1']);
    assert.match(await page.locator('#summary').innerText(), /this node: p1 \(lab\) · Redis up · 2 live nodes/);
    await redis.kill();
    await until(async () => /Redis down/.test(await page.locator('#summary').innerText()), 10_000, 'the page to show Redis down');
    assert.deepEqual(errors, []);
  });
});
