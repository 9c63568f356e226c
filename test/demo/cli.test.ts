// `meridian demo` as a real process: the banner, a request through a region, Ctrl-C (SIGINT)
// stops every process and socket it started; usage and taken-port errors exit 2.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { get, until } from '../proxy/harness.js';

function status(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

function run(args: string[]) {
  const child = spawn(process.execPath, ['dist/src/cli/bin.js', 'demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, out: () => out, exit };
}

describe('meridian demo (process)', () => {
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup) await c();
  });

  it('prints one block (dashboard, curl, dns, stop), serves, and Ctrl-C leaves nothing listening', async () => {
    const p = run(['--port', '0', '--rate', '10', '--regions', '2', '--backends', '2']);
    cleanup.push(() => p.child.kill('SIGKILL'));
    await until(() => /stop: +Ctrl-C/.test(p.out()), 15_000, 'the banner');
    const text = p.out();
    const dashboard = /dashboard: +http:\/\/127\.0\.0\.1:(\d+)\/dashboard#token=([0-9a-f]+)/.exec(text);
    assert.ok(dashboard, text);
    const curl = /curl: +curl -i http:\/\/(127\.0\.0\.\d+):(\d+)\//.exec(text);
    assert.ok(curl, text);
    assert.match(text, /dns: +dig @127\.0\.0\.1 -p \d+ www\.meridian\.test/);
    const dashboardPort = Number(dashboard[1]);
    const [host, webPort] = [curl[1] as string, Number(curl[2])];
    assert.equal(await status(host, webPort), 200);
    assert.equal((await get(dashboardPort, '/dashboard', { agent: false })).status, 200);
    const state = JSON.parse((await get(dashboardPort, '/api/clusters', { agent: false })).body) as { clusters: unknown[] };
    assert.equal(state.clusters.length, 2);
    p.child.kill('SIGINT');
    assert.equal(await p.exit, 0);
    await assert.rejects(get(dashboardPort, '/', { agent: false }), /ECONNREFUSED/);
    await assert.rejects(status(host, webPort), /ECONNREFUSED/);
  });

  it('a taken --port exits 2 naming the port; a bad option exits 2 with the usage line', async () => {
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    cleanup.push(() => holder.close());
    const port = (holder.address() as { port: number }).port;
    const p = run(['--port', String(port), '--no-load']);
    assert.equal(await p.exit, 2);
    assert.match(p.out(), new RegExp(`meridian demo: port ${port} \\(the dashboard\\) is already in use`));
    const bad = run(['--policy', 'fastest']);
    assert.equal(await bad.exit, 2);
    assert.match(bad.out(), /--policy must be one of round_robin/);
    assert.match(bad.out(), /usage: meridian demo/);
  });
});
