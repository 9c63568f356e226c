// `meridian start` and `meridian quickstart` as real processes: signals, exit codes, ports.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startSampleBackend, type SampleBackend } from '../../src/backend/sample-backend.js';
import { freePort, get, until } from '../proxy/harness.js';

function run(args: string[]): { child: ChildProcess; out: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, ['dist/src/cli/bin.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, out: () => out, exit };
}

const portFrom = (text: string, label: RegExp) => Number(label.exec(text)?.[1]);

describe('processes', () => {
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup) await c();
  });

  it('meridian start: serves, reloads on SIGHUP, drains on SIGTERM with a request in flight, exits 0', async () => {
    const bs: SampleBackend[] = await Promise.all([startSampleBackend({ name: 'one' }), startSampleBackend({ name: 'two' })]);
    cleanup.push(() => Promise.all(bs.map((b) => b.close())));
    const dir = mkdtempSync(join(tmpdir(), 'meridian-start-'));
    const file = join(dir, 'm.json');
    const cfg = (b: SampleBackend) =>
      JSON.stringify({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${b.port}` }] }],
      });
    writeFileSync(file, cfg(bs[0]!));
    const p = run(['start', '-c', file]);
    cleanup.push(() => p.child.kill('SIGKILL'));
    await until(() => /listener web: http/.test(p.out()), 10_000, 'the banner');
    const port = portFrom(p.out(), /listener web: http:\/\/127\.0\.0\.1:(\d+)/);
    assert.equal((await get(port, '/', { agent: false })).body.trim(), 'one');
    writeFileSync(file, cfg(bs[1]!));
    p.child.kill('SIGHUP');
    await until(async () => (await get(port, '/', { agent: false })).body.trim() === 'two', 5000, 'the reload');
    const slow = get(port, '/slow?ms=400', { agent: false });
    await until(() => bs[1]!.requests >= 2, 2000, 'the slow request to reach the backend');
    p.child.kill('SIGTERM');
    assert.equal((await slow).status, 200);
    assert.equal(await p.exit, 0);
    await assert.rejects(get(port, '/', { agent: false }), /ECONNREFUSED/);
  });

  it('meridian start: runs the sample_backends of its config, and stops them with itself', async () => {
    const [a, b] = [await freePort(), await freePort()];
    const dir = mkdtempSync(join(tmpdir(), 'meridian-samples-'));
    const file = join(dir, 'm.json');
    writeFileSync(
      file,
      JSON.stringify({
        admin: { port: 0 },
        access_log: { enabled: false },
        sample_backends: [
          { name: 'alpha', port: a },
          { name: 'beta', port: b, latency: '1ms' },
        ],
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${a}` }, { address: `127.0.0.1:${b}` }] }],
      }),
    );
    const p = run(['start', '-c', file]);
    cleanup.push(() => p.child.kill('SIGKILL'));
    await until(() => /sample backend beta/.test(p.out()), 10_000, 'the banner');
    const port = portFrom(p.out(), /listener web: http:\/\/127\.0\.0\.1:(\d+)/);
    const names = new Set<string>();
    for (let i = 0; i < 4; i++) names.add(String((await get(port, '/', { agent: false })).headers['x-backend']));
    assert.deepEqual([...names].sort(), ['alpha', 'beta']);
    p.child.kill('SIGTERM');
    assert.equal(await p.exit, 0);
    for (const q of [a, b]) await assert.rejects(get(q, '/', { agent: false }), /ECONNREFUSED/);

    // A sample backend whose port is taken: a clear message naming it, exit 2.
    const busy = await startSampleBackend({ name: 'squatter' });
    cleanup.push(() => busy.close());
    writeFileSync(
      file,
      JSON.stringify({
        admin: { port: 0 },
        sample_backends: [{ name: 'alpha', port: busy.port }],
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${busy.port}` }] }],
      }),
    );
    const taken = run(['start', '-c', file]);
    assert.equal(await taken.exit, 2);
    assert.match(taken.out(), new RegExp(`sample backend alpha: port ${busy.port} on 127\\.0\\.0\\.1 is already in use`));
  });

  it('meridian start: an unreadable config exits 2, an invalid one 1', async () => {
    assert.equal(await run(['start', '-c', '/nonexistent.yaml']).exit, 2);
    assert.equal(await run(['start', '-c', 'examples/bad.yaml']).exit, 1);
  });

  it('meridian quickstart: balanced answers from its sample backends; Ctrl-C leaves nothing listening', async () => {
    const [lp, ap, p1, p2, p3] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const dir = mkdtempSync(join(tmpdir(), 'meridian-qs-'));
    const file = join(dir, 'qs.yaml');
    writeFileSync(
      file,
      [
        `admin: { address: 127.0.0.1, port: ${ap} }`,
        'access_log: { enabled: false }',
        `listeners: [ { name: web, address: 127.0.0.1, port: ${lp}, routes: [ { cluster: web } ] } ]`,
        'clusters:',
        '  - name: web',
        `    endpoints: [ { address: "127.0.0.1:${p1}", id: a }, { address: "127.0.0.1:${p2}", id: b }, { address: "127.0.0.1:${p3}", id: c } ]`,
      ].join('\n'),
    );
    const p = run(['quickstart', '-c', file]);
    cleanup.push(() => p.child.kill('SIGKILL'));
    await until(() => /stop:\s+Ctrl-C/.test(p.out()), 10_000, 'the banner');
    assert.match(p.out(), new RegExp(`curl http://127\\.0\\.0\\.1:${lp}/`));
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push((await get(lp, '/', { agent: false })).body.trim());
    assert.deepEqual(answers.sort(), ['a', 'b', 'c']);
    p.child.kill('SIGINT');
    assert.equal(await p.exit, 0);
    for (const port of [lp, ap, p1, p2, p3]) await assert.rejects(get(port, '/', { agent: false }), /ECONNREFUSED/, `port ${port} still open`);
  });
});
