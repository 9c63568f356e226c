// examples/global.yaml as a user runs it: `meridian start` with three regions, their
// backends and the DNS responder in one process. DNS steers each client subnet to its
// region; a region whose backends are drained forwards to the next region at L7 and is
// taken out of DNS by its probes, and both come back when it recovers.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { after, describe, it } from 'node:test';
import { get, until } from '../proxy/harness.js';
import { ecs, udpQuery } from './helpers.js';

const TOKEN = 'example-test-token';
const ADMIN = 9901;
const DNS = 5353;

async function answer(subnet: string): Promise<string[]> {
  const r = await udpQuery(DNS, { questions: [{ type: 'A', name: 'www.meridian.test' }], additionals: ecs(subnet, 24) });
  return (r.answers ?? []).map((a) => String(a.data));
}

function post(path: string, body: unknown): Promise<{ status: number; body: string }> {
  return get(ADMIN, path, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body), agent: false });
}

/** GET from a region's listener (its own loopback address, port 8080): the answering backend and the body. */
function fromRegion(address: string, path: string): Promise<{ backend: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port: 8080, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ backend: String(res.headers['x-backend']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function regionHealthy(name: string): Promise<boolean | undefined> {
  const status = JSON.parse((await get(ADMIN, '/api/global', { agent: false })).body) as { regions: { name: string; healthy: boolean }[] };
  return status.regions.find((r) => r.name === name)?.healthy;
}

describe('examples/global.yaml', () => {
  // As its header says: the fleet certificates first.
  execFileSync('sh', ['scripts/make-fleet-certs.sh']);
  const child = spawn(process.execPath, ['dist/src/cli/bin.js', 'start', '-c', 'examples/global.yaml'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MERIDIAN_ADMIN_TOKEN: TOKEN, MERIDIAN_LOG_LEVEL: 'warn' },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  after(async () => {
    child.kill('SIGTERM');
    await exited;
  });

  it('steers each client subnet to its nearest region, and each region serves from its own backends', async () => {
    await until(() => /sample backend ap-south-2/.test(out) || child.exitCode !== null, 15_000, 'the banner');
    assert.match(out, /meridian is running/, out);
    await until(async () => (await regionHealthy('ap-south')) === true, 10_000, 'regions probed');
    assert.deepEqual(await answer('127.0.0.0'), ['127.0.0.11']);
    assert.deepEqual(await answer('127.0.1.0'), ['127.0.0.12']);
    assert.deepEqual(await answer('127.0.2.0'), ['127.0.0.13']);
    for (const [address, region] of [
      ['127.0.0.11', 'us-east'],
      ['127.0.0.12', 'eu-west'],
      ['127.0.0.13', 'ap-south'],
    ] as const) {
      const r = (await fromRegion(address, '/')).backend;
      assert.match(r, new RegExp(`^${region}-\\d$`));
    }
  });

  it('each region reports its healthy capacity and load, and the global layer reads them', async () => {
    for (let i = 0; i < 20; i++) await fromRegion('127.0.0.11', '/');
    const report = JSON.parse((await get(ADMIN, '/api/region?cluster=us-east', { agent: false })).body) as { healthy: number; total: number; healthy_fraction: number; load_rps: number };
    assert.deepEqual([report.healthy, report.total, report.healthy_fraction], [2, 2, 1], 'its two backends; the other regions\' load balancers do not count');
    assert.ok(report.load_rps > 0, `load ${report.load_rps}`);
    await until(
      async () => {
        const g = JSON.parse((await get(ADMIN, '/api/global', { agent: false })).body) as { regions: { name: string; loadRps?: number }[] };
        return (g.regions.find((r) => r.name === 'us-east')?.loadRps ?? 0) > 0;
      },
      10_000,
      "the global layer's probe to read us-east's load",
    );
  });

  it('a region with its backends drained forwards to the next region and leaves DNS; it returns when they do', async () => {
    for (const e of ['eu-west-1', 'eu-west-2']) assert.equal((await post(`/api/clusters/eu-west/endpoints/${e}/drain`, { draining: true })).status, 200);
    const echo = await fromRegion('127.0.0.12', '/echo');
    const crossed = { backend: echo.backend, hops: (JSON.parse(echo.body) as { headers: Record<string, string> }).headers['x-meridian-hops'] };
    assert.match(crossed.backend, /^us-east-\d$/, 'eu-west forwarded to its priority-1 locality, us-east');
    assert.equal(crossed.hops, 'meridian-example');
    await until(async () => (await regionHealthy('eu-west')) === false, 10_000, 'eu-west probed down');
    assert.deepEqual(await answer('127.0.1.0'), ['127.0.0.11'], 'London clients: next nearest region');

    for (const e of ['eu-west-1', 'eu-west-2']) await post(`/api/clusters/eu-west/endpoints/${e}/drain`, { draining: false });
    await until(async () => (await regionHealthy('eu-west')) === true, 10_000, 'eu-west probed up');
    assert.deepEqual(await answer('127.0.1.0'), ['127.0.0.12']);
  });

  it('an operator can take a region out of DNS by hand through the admin API', async () => {
    assert.equal((await post('/api/global/regions/ap-south', { override: 'down' })).status, 200);
    assert.deepEqual(await answer('127.0.2.0'), ['127.0.0.12'], 'Bangalore clients: next nearest is eu-west');
    const decided = JSON.parse((await get(ADMIN, '/api/global/decide?host=www.meridian.test&client=127.0.2.7', { agent: false })).body) as { decision: { reason: string; region: string } };
    assert.equal(decided.decision.region, 'eu-west');
    assert.equal((await post('/api/global/regions/ap-south', { override: 'sideways' })).status, 400);
    assert.equal((await post('/api/global/regions/mars', { override: 'down' })).status, 404);
    assert.equal((await post('/api/global/regions/ap-south', { override: null })).status, 200);
    assert.deepEqual(await answer('127.0.2.0'), ['127.0.0.13']);
  });

  it("a region's fleet port (8443) serves only the fleet: a caller without a fleet certificate gets no answer", async () => {
    const call = (withCert: boolean) =>
      new Promise<string>((resolve) => {
        const certs = 'examples/certs';
        const req = httpsRequest(
          {
            host: '127.0.0.12',
            port: 8443,
            path: '/',
            servername: 'meridian-eu-west',
            ca: readFileSync(`${certs}/fleet-ca.crt`),
            ...(withCert ? { cert: readFileSync(`${certs}/us-east.crt`), key: readFileSync(`${certs}/us-east.key`) } : {}),
            agent: false,
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(`${res.statusCode} ${String(res.headers['x-backend'])}`));
          },
        );
        req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
        req.end();
      });
    assert.doesNotMatch(await call(false), /^\d{3}/);
    assert.match(await call(true), /^200 eu-west-\d$/);
  });
});
