// A backend killed with SIGKILL under concurrent load: with the default config and with
// examples/quickstart.yaml's, no client sees anything but a 200.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { closeAll, config, get, startMeridian, type Running } from './harness.js';

/** A backend in a process of its own, so that it can die as a real one does: kill -9. */
const BACKEND = `
const http = require('node:http');
const name = process.argv[1];
const server = http.createServer((req, res) => res.end(name));
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;

interface ChildBackend {
  readonly name: string;
  readonly port: number;
  readonly child: ChildProcess;
}

async function childBackend(name: string): Promise<ChildBackend> {
  const child = spawn(process.execPath, ['-e', BACKEND, name], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return { name, port: Number(line.toString().trim()), child };
}

async function kill9(b: ChildBackend): Promise<void> {
  if (b.child.exitCode !== null || b.child.signalCode !== null) return;
  const exited = once(b.child, 'exit');
  b.child.kill('SIGKILL');
  await exited;
}

const LOOPS = 16;
const TOTAL = 3000;
const KILL_AT = 600;

/**
 * LOOPS concurrent clients send TOTAL requests in all, one after another each; the one
 * that starts request KILL_AT kills `victim` first. Returns the count of each status
 * (0: no answer at all).
 */
async function loadWithKill(m: Running, victim: ChildBackend, request: (i: number) => { path: string; headers?: Record<string, string> }): Promise<Record<number, number>> {
  const statuses: Record<number, number> = {};
  let started = 0;
  let killed: Promise<void> | undefined;
  const loop = async () => {
    while (started < TOTAL) {
      const i = started++;
      if (i === KILL_AT) killed = kill9(victim);
      const { path, headers } = request(i);
      const status = await get(m.port, path, { headers: headers ?? {} }).then(
        (r) => r.status,
        () => 0,
      );
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: LOOPS }, loop));
  await killed;
  return statuses;
}

function metric(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

describe('a backend killed under load', () => {
  const cleanup: { close(): Promise<void> }[] = [];
  const children: ChildBackend[] = [];
  after(async () => {
    await Promise.all(children.map(kill9));
    await closeAll(cleanup);
  });

  it('default config, one of two backends killed: every request answered 200', { timeout: 60_000 }, async () => {
    const bs = [await childBackend('b0'), await childBackend('b1')];
    children.push(...bs);
    const m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [{ name: 'c', endpoints: bs.map((b) => ({ address: `127.0.0.1:${b.port}`, id: b.name })) }],
      }),
    );
    cleanup.push(m);
    const statuses = await loadWithKill(m, bs[1]!, () => ({ path: '/' }));
    assert.deepEqual(statuses, { 200: TOTAL });
    assert.ok(m.records.some((r) => r.endpoint === 'b1'), 'b1 served before it was killed');
    const text = await m.meridian.metrics.metricsText();
    assert.ok(metric(text, 'meridian_ejections_total', 'cluster="c",endpoint="b1",reason="connect_failure"') >= 1, 'b1 ejected for refusing connections');
    assert.doesNotMatch(text, /^meridian_retries_refused_total\{/m, 'no retry refused');
  });

  it("examples/quickstart.yaml's settings, one of three backends killed under load on both its routes: every request answered 200", { timeout: 60_000 }, async () => {
    const bs = [await childBackend('backend-1'), await childBackend('backend-2'), await childBackend('backend-3')];
    children.push(...bs);
    const quickstart = parse(readFileSync(fileURLToPath(new URL('../../../examples/quickstart.yaml', import.meta.url)), 'utf8')) as {
      admin: Record<string, unknown>;
      listeners: Record<string, unknown>[];
      clusters: { endpoints: { address: string; id: string }[] }[];
    };
    // Its settings as shipped; only the ports are ours, and the access log stays quiet.
    quickstart.admin.port = 0;
    quickstart.listeners[0]!.port = 0;
    for (const c of quickstart.clusters) {
      for (const e of c.endpoints) e.address = `127.0.0.1:${bs.find((b) => b.name === e.id)!.port}`;
    }
    const m = await startMeridian(config({ ...quickstart, access_log: { enabled: false } }));
    cleanup.push(m);
    const statuses = await loadWithKill(m, bs[1]!, (i) => (i % 2 === 0 ? { path: '/' } : { path: '/sticky/x', headers: { 'x-user': `user-${i % 64}` } }));
    assert.deepEqual(statuses, { 200: TOTAL });
    const text = await m.meridian.metrics.metricsText();
    for (const cluster of ['web', 'sticky']) {
      assert.ok(m.records.some((r) => r.cluster === cluster && r.endpoint === 'backend-2'), `backend-2 served ${cluster} before it was killed`);
      assert.ok(metric(text, 'meridian_ejections_total', `cluster="${cluster}",endpoint="backend-2",reason="connect_failure"`) >= 1, `backend-2 ejected from ${cluster}`);
    }
    // web has active checks: backend-2 stays out until they pass again, so once is all.
    assert.equal(metric(text, 'meridian_ejections_total', 'cluster="web",endpoint="backend-2",reason="connect_failure"'), 1);
    assert.doesNotMatch(text, /^meridian_retries_refused_total\{/m, 'no retry refused');
  });
});
