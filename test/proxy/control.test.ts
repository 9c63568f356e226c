import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { backends, closeAll, config, get, simpleConfig, startMeridian, until } from './harness.js';

const share = (records: { endpoint: string }[], id: string) => records.filter((r) => r.endpoint === id).length;

describe('health, overload and control', () => {
  const cleanup: { close(): Promise<void> }[] = [];
  after(() => closeAll(cleanup));

  it('active health checks evict an unhealthy backend and bring it back', async () => {
    const bs = await backends(3);
    // Under CPU load a probe of a healthy backend can time out. Two things keep that from
    // deciding the outcome: panic is off, so b1 takes no traffic while unhealthy even if
    // b0 and b2 were marked unhealthy too; and the timeout is long next to any stall a
    // loaded machine gives a loopback request, and three failures in a row are needed.
    const m = await startMeridian(
      simpleConfig(bs, {
        panic_threshold: 0,
        health_check: { path: '/healthz', interval: '500ms', timeout: '450ms', healthy_threshold: 2, unhealthy_threshold: 3, jitter: '0%' },
      }),
    );
    cleanup.push(m, ...bs);
    const status = () => m.meridian.clusters()[0]!.endpoints.find((e) => e.id === 'b1')!.status;
    const transitions = async (to: string) =>
      Number(new RegExp(`meridian_health_transitions_total\\{cluster="c",endpoint="b1",to="${to}",source="active"\\} (\\d+)`).exec(await m.meridian.metrics.metricsText())?.[1] ?? 0);
    bs[1]!.setHealthy(false);
    await until(() => status() === 'unhealthy', 20_000, 'b1 to be marked unhealthy');
    assert.equal(await transitions('unhealthy'), 1);
    m.records.length = 0;
    for (let i = 0; i < 30; i++) assert.equal((await get(m.port)).status, 200);
    assert.equal(share(m.records, 'b1'), 0, 'no traffic to the unhealthy backend');
    bs[1]!.setHealthy(true);
    await until(() => status() === 'healthy', 20_000, 'b1 to recover');
    // Read as the verdict flips: one transition each way, whatever the probes do later.
    assert.deepEqual([await transitions('unhealthy'), await transitions('healthy')], [1, 1]);
    m.records.length = 0;
    // Round robin over three healthy backends reaches b1 within three requests.
    for (let i = 0; i < 3; i++) await get(m.port);
    assert.equal(share(m.records, 'b1'), 1, 'traffic returns');
  });

  it('outlier detection ejects a backend that fails real traffic', async () => {
    const bs = await backends(4);
    const m = await startMeridian(simpleConfig(bs, { outlier_detection: { consecutive_5xx: 3, max_ejection_percent: 50, base_ejection_time: '30s' }, retries: { attempts: 0 } }));
    cleanup.push(m, ...bs);
    bs[2]!.setErrorRate(1);
    for (let i = 0; i < 40; i++) await get(m.port);
    const b2 = m.meridian.clusters()[0]!.endpoints.find((e) => e.id === 'b2')!;
    assert.equal(b2.status, 'ejected');
    m.records.length = 0;
    for (let i = 0; i < 30; i++) assert.equal((await get(m.port)).status, 200);
    assert.equal(share(m.records, 'b2'), 0);
    assert.match(await m.meridian.metrics.metricsText(), /meridian_ejections_total\{cluster="c",endpoint="b2",reason="consecutive_5xx"\} 1/);
  });

  it('rate limits answer 429 with Retry-After, per route or per client', async () => {
    const bs = await backends(1);
    const ep = [{ address: `127.0.0.1:${bs[0]!.port}` }];
    const m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [
          {
            name: 'web',
            address: '127.0.0.1',
            port: 0,
            routes: [
              { match: { path: { prefix: '/limited' } }, cluster: 'c', rate_limit: { requests_per_second: 0.5, burst: 2 } },
              { match: { path: { prefix: '/per-ip' } }, cluster: 'c', rate_limit: { requests_per_second: 0.5, burst: 1, per: 'client_ip' } },
              { cluster: 'c' },
            ],
          },
        ],
        clusters: [{ name: 'c', endpoints: ep }],
      }),
    );
    cleanup.push(m, ...bs);
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await get(m.port, '/limited')).status);
    assert.deepEqual(codes, [200, 200, 429]);
    const limited = await get(m.port, '/limited');
    assert.equal(limited.headers['retry-after'], '2');
    assert.equal((await get(m.port, '/other')).status, 200, 'other routes are not limited');
    assert.deepEqual([(await get(m.port, '/per-ip')).status, (await get(m.port, '/per-ip')).status], [200, 429]);

    // A reload that leaves a route as it was keeps its buckets (still empty: 429); one that
    // changes the limit starts afresh. Moving the route to another index does not matter.
    const routes = (limit: number) => [
      { cluster: 'c', match: { path: { prefix: '/new' } } },
      { match: { path: { prefix: '/limited' } }, cluster: 'c', rate_limit: { requests_per_second: 0.5, burst: 2 } },
      { match: { path: { prefix: '/per-ip' } }, cluster: 'c', rate_limit: { requests_per_second: 0.5, burst: limit, per: 'client_ip' } },
      { cluster: 'c' },
    ];
    const reloaded = (limit: number) =>
      config({ admin: { port: 0 }, access_log: { enabled: false }, listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: routes(limit) }], clusters: [{ name: 'c', endpoints: ep }] });
    assert.equal((await m.meridian.reload(reloaded(1))).ok, true);
    assert.equal((await get(m.port, '/limited')).status, 429, 'the unchanged route kept its empty bucket');
    assert.equal((await get(m.port, '/per-ip')).status, 429, 'and the per-client one');
    assert.equal((await m.meridian.reload(reloaded(3))).ok, true);
    assert.equal((await get(m.port, '/per-ip')).status, 200, 'a changed limit starts with a full bucket');
  });

  it("activeChecks 'external' (a worker): no probes of its own; results and verdicts from the primary drive routing", async () => {
    const bs = await backends(2);
    const m = await startMeridian(simpleConfig(bs, { health_check: { path: '/healthz', interval: '50ms', timeout: '40ms', unhealthy_threshold: 2, healthy_threshold: 1 } }), { activeChecks: 'external' });
    cleanup.push(m, ...bs);
    const status = (id: string) => m.meridian.clusters()[0]?.endpoints.find((e) => e.id === id)?.status;
    // A verdict the primary reached (a restarted worker catching up): taken at once.
    m.meridian.assumeHealth([{ cluster: 'c', endpoint: 'b1', healthy: false }]);
    assert.equal(status('b1'), 'unhealthy');
    for (let i = 0; i < 4; i++) assert.equal((await get(m.port, '/', { agent: false })).headers['x-backend'], 'b0');
    // Check results the primary sends: one pass (healthy_threshold 1) brings b1 back...
    assert.equal(m.meridian.applyCheck('c', 'b1', true), true);
    assert.equal(status('b1'), 'healthy');
    // ...two failures (unhealthy_threshold 2) take b0 out.
    m.meridian.applyCheck('c', 'b0', false, 'timeout');
    assert.equal(status('b0'), 'healthy');
    m.meridian.applyCheck('c', 'b0', false, 'timeout');
    assert.equal(status('b0'), 'unhealthy');
    assert.equal((await get(m.port, '/', { agent: false })).headers['x-backend'], 'b1');
    assert.equal(m.meridian.applyCheck('c', 'nope', true), false);
    assert.match(await m.meridian.metrics.metricsText(), /^meridian_health_checks_total\{cluster="c",endpoint="b0",result="timeout"\} 2$/m);
  });

  it('circuit breaker limits answer 503 at once', async () => {
    const bs = await backends(1);
    const m = await startMeridian(simpleConfig(bs, { circuit_breaker: { max_requests: 2 } }));
    cleanup.push(m, ...bs);
    const slow = [get(m.port, '/slow?ms=300'), get(m.port, '/slow?ms=300')];
    await until(() => m.meridian.inFlight === 2, 2000, 'two requests in flight');
    const third = await get(m.port, '/');
    assert.equal(third.status, 503);
    assert.equal(third.headers['x-meridian-reason'], 'circuit_open');
    assert.deepEqual((await Promise.all(slow)).map((r) => r.status), [200, 200]);
    assert.equal((await get(m.port, '/')).status, 200);
  });

  it('max_connections queues requests for a connection; max_pending_requests bounds the queue', async () => {
    const bs = await backends(1);
    const m = await startMeridian(simpleConfig(bs, { circuit_breaker: { max_connections: 1, max_pending_requests: 1 } }));
    cleanup.push(m, ...bs);
    const first = get(m.port, '/slow?ms=300');
    await until(() => m.meridian.clusters()[0]!.endpoints[0]!.poolOpen === 1, 2000, 'the one connection');
    const second = get(m.port, '/slow?ms=10');
    await until(() => m.meridian.inFlight === 2, 2000, 'the second request to queue');
    const third = await get(m.port, '/');
    assert.equal(third.status, 503);
    assert.equal(third.headers['x-meridian-reason'], 'circuit_open');
    assert.deepEqual([(await first).status, (await second).status], [200, 200]);
    assert.equal(bs[0]!.connections, 1, 'both requests shared the single connection');
  });

  it('no healthy endpoint is 503', async () => {
    const bs = await backends(1);
    const m = await startMeridian(simpleConfig(bs));
    cleanup.push(m, ...bs);
    m.meridian.drain('c', 'b0', true);
    const r = await get(m.port);
    assert.equal(r.status, 503);
    assert.equal(r.headers['x-meridian-reason'], 'no_healthy_endpoint');
  });

  it('reloads under steady load without a failed request; an invalid reload is refused', async () => {
    const bs = await backends(4);
    const dir = mkdtempSync(join(tmpdir(), 'meridian-reload-'));
    const file = join(dir, 'meridian.json');
    const cfgFor = (ids: number[]) => ({
      admin: { port: 0 },
      access_log: { enabled: false },
      listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
      clusters: [{ name: 'c', endpoints: ids.map((i) => ({ address: `127.0.0.1:${bs[i]!.port}`, id: `b${i}` })) }],
    });
    writeFileSync(file, JSON.stringify(cfgFor([0, 1])));
    const m = await startMeridian(config(cfgFor([0, 1])), { configPath: file });
    cleanup.push(m, ...bs);
    let stop = false;
    const failures: string[] = [];
    let done = 0;
    const load = Array.from({ length: 8 }, async () => {
      while (!stop) {
        try {
          const r = await get(m.port, '/slow?ms=5');
          if (r.status !== 200) failures.push(`${r.status} ${r.body}`);
        } catch (e) {
          failures.push(String(e));
        }
        done++;
      }
    });
    const sets = [[0, 1, 2], [1, 2, 3], [3], [0, 1, 2, 3]];
    for (const ids of sets) {
      await until(() => done > 20, 5000, 'traffic');
      done = 0;
      writeFileSync(file, JSON.stringify(cfgFor(ids)));
      const r = await m.meridian.reload();
      assert.equal(r.ok, true, JSON.stringify(r));
    }
    writeFileSync(file, 'clusters: [ { name: c, policy: fastest } ]');
    const bad = await m.meridian.reload();
    assert.equal(bad.ok, false);
    await until(() => done > 20, 5000, 'traffic after the refused reload');
    stop = true;
    await Promise.all(load);
    assert.deepEqual(failures, []);
    assert.deepEqual(m.meridian.clusters()[0]!.endpoints.map((e) => e.id), ['b0', 'b1', 'b2', 'b3']);
    const text = await m.meridian.metrics.metricsText();
    assert.match(text, /meridian_config_reloads_total\{result="success"\} 4/);
    assert.match(text, /meridian_config_reloads_total\{result="failure"\} 1/);
  });

  it('drains: requests in flight finish, new connections are refused, then it stops', async () => {
    const bs = await backends(1);
    const m = await startMeridian(simpleConfig(bs));
    cleanup.push(...bs);
    const inflight = [get(m.port, '/slow?ms=300', { agent: false }), get(m.port, '/slow?ms=300', { agent: false })];
    await until(() => m.meridian.inFlight === 2, 2000, 'requests in flight');
    const drained = m.meridian.drainAndStop(5000);
    assert.equal(m.meridian.ready(), false);
    await assert.rejects(get(m.port, '/', { agent: false }), /ECONNREFUSED/);
    assert.deepEqual((await Promise.all(inflight)).map((r) => r.status), [200, 200]);
    await drained;
    assert.equal(m.meridian.inFlight, 0);
  });

  it('serves /metrics that a Prometheus parser reads, with counts that match the traffic', async () => {
    const bs = await backends(2);
    const m = await startMeridian(simpleConfig(bs));
    cleanup.push(m, ...bs);
    for (let i = 0; i < 10; i++) await get(m.port);
    await get(m.port, '/status/503');
    const text = (await get(m.meridian.adminPort, '/metrics')).body;
    const families = parsePrometheusTextFormat(text);
    const requests = families.find((f) => f.name === 'meridian_requests_total')!;
    const total = (code: string) => requests.metrics.filter((s) => s.labels?.['code'] === code).reduce((n, s) => n + Number(s.value), 0);
    assert.equal(total('200'), 10);
    assert.equal(total('503'), 1);
    const status = families.find((f) => f.name === 'meridian_endpoint_status')!;
    assert.equal(status.metrics.filter((s) => s.labels?.['status'] === 'healthy' && s.value === '1').length, 2);
  });

  it('admin API: token-protected drain and weight change the traffic', async () => {
    const bs = await backends(2);
    const m = await startMeridian(simpleConfig(bs), { adminToken: 's3cret' });
    cleanup.push(m, ...bs);
    const admin = m.meridian.adminPort;
    const denied = await get(admin, '/api/clusters/c/endpoints/b0/drain', { method: 'POST' });
    assert.equal(denied.status, 401);
    const auth = { authorization: 'Bearer s3cret', 'content-type': 'application/json' };
    assert.equal((await get(admin, '/api/clusters/c/endpoints/b0/drain', { method: 'POST', headers: auth })).status, 200);
    m.records.length = 0;
    for (let i = 0; i < 10; i++) await get(m.port);
    assert.equal(share(m.records, 'b0'), 0);
    await get(admin, '/api/clusters/c/endpoints/b0/drain', { method: 'POST', headers: auth, body: '{"draining":false}' });
    assert.equal((await get(admin, '/api/clusters/c/endpoints/b0/weight', { method: 'POST', headers: auth, body: '{"weight":3}' })).status, 200);
    m.records.length = 0;
    for (let i = 0; i < 40; i++) await get(m.port);
    assert.equal(share(m.records, 'b0'), 30);
    const clusters = JSON.parse((await get(admin, '/api/clusters')).body) as { clusters: { endpoints: { id: string; weight: number }[] }[] };
    assert.equal(clusters.clusters[0]!.endpoints.find((e) => e.id === 'b0')!.weight, 3);
  });

  it('admin API: answers the names in admin.allowed_hosts and refuses other names with 403', async () => {
    const bs = await backends(1);
    const m = await startMeridian(simpleConfig(bs, {}, { admin: { port: 0, allowed_hosts: ['lb.internal'] } }));
    cleanup.push(m, ...bs);
    const admin = m.meridian.adminPort;
    assert.equal((await get(admin, '/metrics', { headers: { host: `lb.internal:${admin}` } })).status, 200);
    assert.equal((await get(admin, '/metrics', { headers: { host: `other.internal:${admin}` } })).status, 403);
    assert.equal((await get(admin, '/metrics')).status, 200, 'the address it listens on');
  });
});
