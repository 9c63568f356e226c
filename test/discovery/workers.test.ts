// Discovery with workers: 2, through a real `meridian start`: the primary reads the file for
// both workers, which start with its set, follow each change at the same version, and serve
// only what the primary's shared health checks (which probe discovered endpoints too) pass;
// a removal the primary holds is held for all, and accepted through its admin API for all.
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ClusterState } from '../../src/admin/types.js';
import { startSampleBackend, type SampleBackend } from '../../src/backend/sample-backend.js';
import { get, until } from '../proxy/harness.js';
import { children, startWorkers } from '../cli/workers-harness.js';

const yamlList = (bs: readonly SampleBackend[]) => bs.map((b) => `- address: 127.0.0.1:${b.port}\n  id: ${b.name}\n`).join('');

describe('discovery with workers: 2', () => {
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('the primary reads the source for both workers: they start with its set and follow each change at the same version', { timeout: 90_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meridian-disc-workers-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const bs = await Promise.all([0, 1, 2].map((i) => startSampleBackend({ name: `b${i}` })));
    cleanup.push(() => Promise.all(bs.map((b) => b.close())));
    const [b0, b1, b2] = bs as [SampleBackend, SampleBackend, SampleBackend];
    b2.setHealthy(false);
    const list = join(dir, 'endpoints.yaml');
    await writeFile(list, yamlList([b0]));
    const file = join(dir, 'm.json');
    const meridianConfig = (path: string) =>
      JSON.stringify({
        workers: 2,
        admin: { port: 0, token: 'disc-token' },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [
          {
            name: 'c',
            discovery: { file: { path }, min_change_interval: '0s', max_removal_percent: 50, hold_for: 'never' },
            // A minute between checks: only the probe a new endpoint gets at once finds b2 failing in time.
            health_check: { interval: '60s', timeout: '1s', jitter: '0%', unhealthy_threshold: 1 },
          },
        ],
      });
    await writeFile(file, meridianConfig(list));
    const { child, exited, admin, web: port } = await startWorkers(file, cleanup);
    assert.equal(children(child.pid!).length, 2);
    const state = async (): Promise<ClusterState> => (JSON.parse((await get(admin, '/api/clusters')).body) as { clusters: ClusterState[] }).clusters[0] as ClusterState;
    /** Where `n` requests, each on a new connection (so the workers take turns), were answered from. */
    const served = async (n: number): Promise<string[]> => {
      const from = new Set<string>();
      for (let i = 0; i < n; i++) {
        const r = await get(port, '/', { agent: false });
        assert.equal(r.status, 200);
        from.add(String(r.headers['x-backend']));
      }
      return [...from].sort();
    };

    // Both workers listened with the file's set already in their cluster (no 503 in between).
    assert.deepEqual(await served(10), ['b0']);
    const first = await state();
    assert.equal(first.discovery?.source, 'file');
    assert.deepEqual(first.discovery?.relayed, { version: 1, workersBehind: 0 });
    assert.deepEqual(first.endpoints.map((e) => [e.id, e.discovered]), [['b0', true]]);

    // An atomic rewrite that removes b0 (all of the set): held by the primary, for every worker,
    // until accepted through the admin API; then sent to both workers as version 2.
    await writeFile(`${list}.tmp`, yamlList([b1, b2]));
    await rename(`${list}.tmp`, list);
    await until(async () => /^held: it would remove 1 of 1 endpoints/.test((await state()).discovery?.pending ?? ''), 10_000, 'the removal to be held');
    assert.deepEqual(await served(10), ['b0']);
    const accepted = await get(admin, '/api/clusters/c/discovery/accept', { method: 'POST', headers: { authorization: 'Bearer disc-token' } });
    assert.equal(accepted.status, 200, accepted.body);
    await until(
      async () => {
        const s = await state();
        return s.discovery?.relayed?.version === 2 && s.discovery.relayed.workersBehind === 0 && s.endpoints.find((e) => e.id === 'b2')?.status === 'unhealthy';
      },
      15_000,
      'both workers on version 2, with b2 found unhealthy by the primary\'s checks',
    );
    assert.deepEqual((await state()).endpoints.map((e) => e.id).sort(), ['b1', 'b2']);
    // Every worker: b0 gone, b2 out by the shared check; only b1 answers.
    assert.deepEqual(await served(20), ['b1']);

    // The primary's discovery counters are in the pool's metrics.
    const metrics = (await get(admin, '/metrics')).body;
    assert.match(metrics, /meridian_discovery_changes_total\{cluster="c",result="applied"\} 2/);
    assert.match(metrics, /meridian_discovery_changes_total\{cluster="c",result="held"\} [1-9]/);

    // A worker that dies is replaced by one that starts with the set in force (version 3).
    await writeFile(list, yamlList([b1]));
    await until(async () => (await state()).discovery?.relayed?.version === 3 && (await state()).discovery?.relayed?.workersBehind === 0, 15_000, 'both workers on version 3');
    const [victim] = children(child.pid!);
    process.kill(victim!, 'SIGKILL');
    await until(() => children(child.pid!).length === 2 && !children(child.pid!).includes(victim!), 10_000, 'a replacement worker');
    // Ready: both workers (the replacement too) listen and have reported their state.
    await until(async () => (await get(admin, '/readyz')).status === 200, 15_000, 'the replacement to be ready');
    assert.equal((await state()).discovery?.relayed?.workersBehind, 0, 'the replacement started with version 3');
    assert.deepEqual(await served(20), ['b1']);

    // A reload that points the cluster at another file: the primary reads it first, and both workers build with it.
    const other = join(dir, 'other.yaml');
    await writeFile(other, yamlList([b0, b1]));
    await writeFile(file, meridianConfig(other));
    const reload = await get(admin, '/api/reload', { method: 'POST', headers: { authorization: 'Bearer disc-token' }, timeoutMs: 30_000 });
    assert.equal(reload.status, 200, reload.body);
    const reloaded = await state();
    assert.equal(reloaded.discovery?.target, `file ${other}`);
    await until(async () => (await state()).discovery?.relayed?.workersBehind === 0, 10_000, 'both workers to report the reload\'s set');
    assert.deepEqual((await state()).endpoints.map((e) => e.id).sort(), ['b0', 'b1']);
    assert.deepEqual(await served(20), ['b0', 'b1']);
    // The old file is no longer followed.
    await writeFile(list, yamlList([b2]));
    await writeFile(other, yamlList([b0]));
    await until(async () => (await state()).endpoints.map((e) => e.id).join() === 'b0', 10_000, 'the new file to be followed');
    assert.equal((await state()).discovery?.relayed?.workersBehind, 0);

    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });
});
