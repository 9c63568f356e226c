// workers: 2 — one primary, two serving processes, as a user would run it.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { startSampleBackend, type SampleBackend } from '../../src/backend/sample-backend.js';
import { get, until } from '../proxy/harness.js';
import { udpQuery } from '../global/helpers.js';
import { children, startWorkers } from './workers-harness.js';

/**
 * Whether a new child has exec'd node (its environment is a cluster worker's). Between fork
 * and exec the primary waits, in libuv's spawn, for the exec: a child stopped there would
 * hold the primary itself still (its event loop blocked in that read), which is no state a
 * real worker can be in.
 */
function execed(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').includes('NODE_UNIQUE_ID=');
  } catch {
    return false; // gone, or not readable yet
  }
}

/** A two-worker Meridian with a reload token and one cluster `c` on `backendPort`. */
function reloadable(backendPort: number): string {
  return JSON.stringify({
    workers: 2,
    admin: { port: 0, token: 'reload-token' },
    access_log: { enabled: false },
    listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
    clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${backendPort}` }] }],
  });
}

describe('workers', () => {
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup) await c();
  });

  it('serves from N workers, aggregates their state and metrics, restarts a dead one, drains all on SIGTERM', async () => {
    const bs: SampleBackend[] = await Promise.all([startSampleBackend({ name: 'x' }), startSampleBackend({ name: 'y' })]);
    // An endpoint that counts the health checks it receives.
    let probes = 0;
    const probed = createServer((req, res) => {
      if (req.url === '/healthz') probes++;
      res.end('ok');
    });
    await new Promise<void>((r) => probed.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise<void>((r) => probed.close(() => r())));
    const probedPort = (probed.address() as { port: number }).port;
    cleanup.push(() => Promise.all(bs.map((b) => b.close())));
    const file = join(mkdtempSync(join(tmpdir(), 'meridian-workers-')), 'm.json');
    writeFileSync(
      file,
      JSON.stringify({
        workers: 2,
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [
          { name: 'c', endpoints: bs.map((b) => ({ address: `127.0.0.1:${b.port}`, id: b.name })) },
          { name: 'probed', endpoints: [{ address: `127.0.0.1:${probedPort}`, id: 'p' }], health_check: { path: '/healthz', interval: '100ms', timeout: '80ms', jitter: '0%' } },
        ],
        global: {
          dns: { address: '127.0.0.1', port: 0, zone: 'w.test' },
          regions: [{ name: 'r1', location: { lat: 0, lon: 0 }, addresses: ['127.0.0.21'] }],
          hostnames: [{ name: 'www.w.test', policy: 'geo' }],
        },
      }),
    );
    const { child, exited, admin, web: port } = await startWorkers(file, cleanup);
    assert.equal(children(child.pid!).length, 2);

    for (let i = 0; i < 20; i++) assert.equal((await get(port, '/', { agent: false })).status, 200);
    // Worker state reaches the primary every half second.
    await until(
      async () => {
        const c = JSON.parse((await get(admin, '/api/clusters')).body) as { clusters: { endpoints: { requestsTotal: number }[] }[] };
        return c.clusters[0]!.endpoints.reduce((n, e) => n + e.requestsTotal, 0) === 20;
      },
      5000,
      'the primary to count 20 requests across workers',
    );
    // The DNS responder runs once, in the primary.
    const dnsPort = (JSON.parse((await get(admin, '/api/global')).body) as { dns: { port: number } }).dns.port;
    const dns = await udpQuery(dnsPort, { questions: [{ type: 'A', name: 'www.w.test' }] });
    assert.deepEqual((dns.answers ?? []).map((a) => a.data), ['127.0.0.21']);
    // Active health checks run once, in the primary, and both workers apply the results:
    // the endpoint sees as many probes as one worker counts checks (two probers would double it).
    const checksCounted = async () =>
      parsePrometheusTextFormat((await get(admin, '/metrics')).body)
        .find((f) => f.name === 'meridian_health_checks_total')
        ?.metrics.filter((m) => m.labels?.cluster === 'probed')
        .reduce((n, m) => n + Number(m.value), 0) ?? 0;
    await until(async () => (await checksCounted()) >= 20, 10_000, '20 health checks counted');
    const counted = await checksCounted();
    assert.ok(probes - counted >= 0 && probes - counted <= 3, `${probes} probes received, ${counted} checks counted`);
    const families = parsePrometheusTextFormat((await get(admin, '/metrics')).body);
    assert.ok(families.some((f) => f.name === 'meridian_dns_queries_total'), 'the primary adds the DNS counters to the workers\' metrics');
    const total = families.find((f) => f.name === 'meridian_requests_total')!.metrics.reduce((n, s) => n + Number(s.value), 0);
    assert.equal(total, 20);

    const [victim] = children(child.pid!);
    process.kill(victim!, 'SIGKILL');
    await until(() => children(child.pid!).length === 2 && !children(child.pid!).includes(victim!), 10_000, 'a replacement worker');
    for (let i = 0; i < 10; i++) assert.equal((await get(port, '/', { agent: false })).status, 200);

    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    await assert.rejects(get(port, '/', { agent: false }), /ECONNREFUSED/);
  });

  it('a reload settles when a worker exits in the middle of it, or does not answer in time; a later reload works', { timeout: 90_000 }, async () => {
    const b = await startSampleBackend({ name: 'r' });
    cleanup.push(() => b.close());
    const file = join(mkdtempSync(join(tmpdir(), 'meridian-workers-reload-')), 'm.json');
    writeFileSync(file, reloadable(b.port));
    const { child, output, exited, admin } = await startWorkers(file, cleanup);
    const reload = async () => {
      const r = await get(admin, '/api/reload', { method: 'POST', headers: { authorization: 'Bearer reload-token' }, timeoutMs: 60_000 });
      return { status: r.status, body: JSON.parse(r.body) as { ok: boolean; errors?: string[] } };
    };
    const reloadsLogged = () => output().split('\n').filter((l) => l.includes('config reloaded')).length;

    // A worker that exits after the reload was sent to it, before answering.
    const [stuck, other] = children(child.pid!) as [number, number];
    process.kill(stuck, 'SIGSTOP');
    const first = reload();
    await until(() => reloadsLogged() === 1, 10_000, 'the other worker to apply the reload');
    process.kill(stuck, 'SIGKILL');
    const failed = await first;
    assert.equal(failed.status, 422);
    assert.equal(failed.body.ok, false);
    assert.equal(failed.body.errors?.length, 1);
    assert.match(failed.body.errors![0]!, /^worker \d+ exited \(SIGKILL\) before it answered the reload; the worker that replaces it reads the config file as it is then$/);
    await until(() => children(child.pid!).length === 2 && !children(child.pid!).includes(stuck), 10_000, 'a replacement worker');
    await until(async () => (await get(admin, '/readyz')).status === 200, 10_000, 'the replacement to listen');
    // The survivor is at its second config version, the replacement at its first reload.
    const after = await reload();
    assert.equal(after.status, 200);
    assert.match(JSON.stringify(after.body), /^\{"ok":true,"summary":"version [23]: 1 listener, 1 cluster"\}$/);

    // A worker that never answers: the reload fails at its deadline, naming it.
    process.kill(other, 'SIGSTOP');
    const late = await reload();
    process.kill(other, 'SIGCONT');
    assert.equal(late.status, 422);
    assert.deepEqual(late.body.errors?.map((e) => e.replace(/\d+/, 'N')), ['worker N did not answer the reload within 10 s']);
    assert.equal((await reload()).status, 200);

    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  it('a reload made while a worker is starting is not waited on, and that worker starts with the new config', { timeout: 90_000 }, async () => {
    const [a, b] = await Promise.all([startSampleBackend({ name: 'before' }), startSampleBackend({ name: 'after' })]);
    cleanup.push(() => Promise.all([a.close(), b.close()]));
    const file = join(mkdtempSync(join(tmpdir(), 'meridian-workers-starting-')), 'm.json');
    writeFileSync(file, reloadable(a.port));
    const { child, exited, admin, web } = await startWorkers(file, cleanup);

    // Kill a worker and hold its replacement still as soon as it runs, before it can listen for messages.
    const before = children(child.pid!);
    process.kill(before[0]!, 'SIGKILL');
    let starting: number | undefined;
    for (const deadline = Date.now() + 10_000; starting === undefined && Date.now() < deadline; await new Promise((r) => setTimeout(r, 1))) {
      starting = children(child.pid!).find((p) => !before.includes(p) && execed(p));
    }
    assert.ok(starting !== undefined, 'a replacement worker');
    process.kill(starting, 'SIGSTOP');
    // Should the test fail while it is stopped, the primary's SIGKILL would orphan it, stopped.
    const held = starting;
    cleanup.push(() => {
      try {
        process.kill(held, 'SIGKILL');
      } catch {
        // already gone
      }
    });
    writeFileSync(file, reloadable(b.port));
    const r = await get(admin, '/api/reload', { method: 'POST', headers: { authorization: 'Bearer reload-token' }, timeoutMs: 60_000 });
    // Answered by the worker that listens; the one still starting was not sent it, so nothing waits out the deadline.
    assert.equal(r.status, 200, r.body);
    process.kill(starting, 'SIGCONT');
    await until(async () => (await get(admin, '/readyz')).status === 200, 15_000, 'the replacement to listen');
    // Both workers run the new config: every fresh connection, whichever worker takes it, reaches the new backend.
    await until(async () => {
      const answers = await Promise.all(Array.from({ length: 20 }, () => get(web, '/', { agent: false })));
      return answers.every((x) => x.headers['x-backend'] === 'after');
    }, 15_000, 'every worker on the new config');
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });
});
