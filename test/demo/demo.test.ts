// The demo and its control API, in process: real backends, Meridians, WAN links, load and
// the control admin server on 127.0.0.1 with ephemeral ports; every control over HTTP with
// the bearer token; nothing left listening after stop().
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { DemoSnapshot, RegionSnapshot } from '../../src/admin/dashboard-types.js';
import { Demo, PortInUseError } from '../../src/demo/demo.js';
import { get, until } from '../proxy/harness.js';

function post(port: number, path: string, body: unknown, token?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body);
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...(token ? { authorization: `Bearer ${token}` } : {}) } }, (res) => {
      let data = '';
      res.on('data', (d: Buffer) => (data += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(data || '{}') as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(text);
  });
}

/** GET from a region's listener, on its own address (127.0.0.11, ... where the system has them). */
function getAt(host: string, port: number, path = '/'): Promise<{ status: number; backend: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, backend: String(res.headers['x-backend']) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('meridian demo (in process)', () => {
  let demo: Demo;
  let reports: string;
  const region = (name: string): RegionSnapshot => demo.snapshot()?.regions.find((r) => r.name === name) as RegionSnapshot;
  const endpoint = (r: string, id: string) => region(r).endpoints.find((e) => e.id === id);
  /** Every event in the recent snapshots (the Activity panel's feed). */
  const events = () => demo.history().flatMap((s) => s.events);
  const call = (path: string, body: unknown = {}) => post(demo.port, path, body, demo.token);

  before(async () => {
    reports = mkdtempSync(join(tmpdir(), 'meridian-reports-'));
    writeFileSync(join(reports, 'spike.html'), '<!doctype html><title>report</title><p>simulated</p>');
    demo = new Demo({ port: 0, webPortBase: 0, dnsPort: 0, rate: 30, intervalMs: 250, reportsDir: reports, logger: pino({ level: 'silent' }) });
    await demo.start();
  });
  after(() => demo?.stop());

  it('runs three regions of four backends, each with the other regions as failover localities, all healthy and taking traffic', async () => {
    await until(() => demo.snapshot()?.regions.length === 3 && (demo.snapshot()?.regions ?? []).every((r) => r.rps > 0 && r.endpoints.every((e) => e.status === 'healthy')), 10_000, 'every region healthy with traffic');
    const s = demo.snapshot() as DemoSnapshot;
    assert.deepEqual(s.regions.map((r) => r.name), ['us-east', 'eu-west', 'ap-south']);
    for (const r of s.regions) {
      assert.equal(r.endpoints.filter((e) => !e.remote).length, 4);
      // A region's own backends come from its watched file (discovery), the failover peers from its config.
      assert.deepEqual(r.endpoints.map((e) => [e.remote, e.source]), r.endpoints.map((e) => (e.remote ? [true, undefined] : [false, 'file'])));
      assert.deepEqual(r.localities.map((l) => [l.priority, l.remote]), [[0, false], [1, true], [2, true]]);
      assert.equal(r.localities[0]?.share, 1, 'a healthy region keeps its own traffic');
    }
    assert.ok(s.flows.some((f) => f.kind === 'client' && f.to === 'us-east'));
    assert.ok(s.geos.length >= 6);
    // A region's listener answers like any Meridian.
    const reply = await getAt(region('eu-west').address, region('eu-west').listenerPort);
    assert.equal(reply.status, 200);
    assert.match(reply.backend, /^eu-west-\d$/);
  });

  it('serves the page, its assets (uPlot from node_modules, no CDN) and the live stream', async () => {
    const page = await get(demo.port, '/dashboard');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
    assert.doesNotMatch(page.body, /https?:\/\//, 'the page loads nothing from elsewhere');
    for (const a of ['uplot.js', 'uplot.css', 'dashboard.js', 'dashboard.css', 'reports.js']) assert.equal((await get(demo.port, `/dashboard/assets/${a}`)).status, 200, a);
    assert.equal((await get(demo.port, '/dashboard/assets/nope.js')).status, 404);
    assert.equal((await get(demo.port, '/dashboard/reports')).status, 200);
    // DNS rebinding: a page under another name that now resolves to loopback reads nothing.
    for (const path of ['/dashboard', '/dashboard/assets/dashboard.js', '/api/clusters', '/metrics']) {
      const foreign = await get(demo.port, path, { headers: { host: `rebind.example:${demo.port}` } });
      assert.equal(foreign.status, 403, path);
      assert.match(foreign.body, /DNS-rebinding protection/);
    }
    const write = await get(demo.port, '/api/reload', { method: 'POST', headers: { host: 'rebind.example', authorization: `Bearer ${demo.token}` } });
    assert.equal(write.status, 403);

    const events = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: demo.port, path: '/api/demo/events', agent: false }, (res) => {
        assert.match(String(res.headers['content-type']), /text\/event-stream/);
        let text = '';
        res.on('data', (d: Buffer) => {
          text += d.toString();
          if (/event: snapshot\ndata: /.test(text)) {
            req.destroy();
            resolve(text);
          }
        });
      });
      req.on('error', reject);
      req.end();
    });
    assert.match(events, /^retry: 1000\nevent: hello\ndata: \{"history":\[/);
    const snap = JSON.parse(/event: snapshot\ndata: (.*)\n/.exec(events)?.[1] ?? '{}') as DemoSnapshot;
    assert.equal(snap.regions.length, 3);
  });

  it('refuses controls without the token, and names what does not exist', async () => {
    assert.equal((await post(demo.port, '/api/demo/backends/us-east-1/kill', {})).status, 401);
    assert.equal((await post(demo.port, '/api/demo/backends/us-east-1/kill', {}, 'wrong')).status, 401);
    const missing = await call('/api/demo/backends/nope-9/kill');
    assert.equal(missing.status, 404);
    assert.match(String(missing.json['error']), /nope-9/);
    assert.equal((await call('/api/demo/regions/mars/down')).status, 404);
    assert.equal((await call('/api/demo/policy', { policy: 'fastest' })).status, 400);
    assert.equal((await call('/api/demo/spike', { factor: 0 })).status, 400);
    assert.equal((await call('/api/demo/backends/us-east-1/slow', { latency: 'soon' })).status, 400);
    assert.equal(endpoint('us-east', 'us-east-1')?.alive, true, 'nothing changed');
  });

  it('kill and revive a backend: out of rotation, then back', async () => {
    assert.equal((await call('/api/demo/backends/eu-west-2/kill')).status, 200);
    assert.equal((await call('/api/demo/backends/eu-west-2/kill')).status, 409, 'already down');
    await until(() => endpoint('eu-west', 'eu-west-2')?.status === 'unhealthy' && endpoint('eu-west', 'eu-west-2')?.rps === 0, 10_000, 'eu-west-2 unhealthy, no traffic');
    assert.equal(endpoint('eu-west', 'eu-west-2')?.alive, false);
    // The Activity panel's feed: the kill as the admin API answered it, then what health checks made of it.
    await until(() => events().some((e) => e.source === 'admin API' && /^backend eu-west-2 killed/.test(e.text)) && events().some((e) => e.source === 'health' && /^eu-west: eu-west-2 [a-z ]+ → unhealthy$/.test(e.text)), 5000, 'the kill and the health change in the snapshots\' events');
    assert.equal((await call('/api/demo/backends/eu-west-2/revive')).status, 200);
    await until(() => ['slow_start', 'healthy'].includes(endpoint('eu-west', 'eu-west-2')?.status ?? ''), 20_000, 'eu-west-2 back');
  });

  it("a region whose backends all die leaves DNS by its probes alone, and returns when they do", async () => {
    const ids = ['ap-south-1', 'ap-south-2', 'ap-south-3', 'ap-south-4'];
    for (const id of ids) assert.equal((await call(`/api/demo/backends/${id}/kill`)).status, 200);
    // No override: the DNS layer's probe of ap-south's listener (answered from its own
    // backends only, by the hops header) fails while ap-south's Meridian fails over.
    await until(() => region('ap-south').dnsUp === false, 15_000, 'ap-south out of DNS');
    await until(() => events().some((e) => e.source === 'DNS' && e.text === 'ap-south out of DNS answers'), 5000, 'the DNS change in the events');
    for (const id of ids) assert.equal((await call(`/api/demo/backends/${id}/revive`)).status, 200);
    await until(() => region('ap-south').dnsUp === true, 30_000, 'ap-south back in DNS');
  });

  it('slow a backend, then restore it', async () => {
    const r = await call('/api/demo/backends/ap-south-3/slow', { latency: '200ms' });
    assert.equal(r.status, 200);
    await until(() => endpoint('ap-south', 'ap-south-3')?.slowed === true, 5000, 'the slowed flag');
    assert.equal(endpoint('ap-south', 'ap-south-3')?.latency, '200ms');
    assert.equal((await call('/api/demo/backends/ap-south-3/slow', { latency: null })).status, 200);
    await until(() => endpoint('ap-south', 'ap-south-3')?.slowed === false, 5000, 'the latency restored');
  });

  it('region down: DNS steers its clients away and its Meridian fails over what still arrives; up: both come back', async () => {
    const newYork = () => demo.snapshot()?.geos.find((g) => g.name === 'New York');
    assert.equal(newYork()?.region, 'us-east');
    assert.equal((await call('/api/demo/regions/us-east/down')).status, 200);
    await until(() => !region('us-east').up && !region('us-east').dnsUp && region('us-east').localities[0]?.share === 0, 15_000, 'us-east down');
    await until(() => newYork()?.region !== 'us-east' && (newYork()?.rps ?? 0) > 0, 10_000, 'New York steered elsewhere');
    // A client that still holds us-east's address (an old DNS answer) is served through failover.
    const crossed = await getAt(region('us-east').address, region('us-east').listenerPort);
    assert.equal(crossed.status, 200);
    assert.doesNotMatch(crossed.backend, /^us-east/, 'answered by another region');
    await until(() => (demo.snapshot()?.flows ?? []).some((f) => f.kind === 'failover' && f.from === 'us-east'), 5000, 'the failover flow');
    assert.equal((await call('/api/demo/regions/us-east/up')).status, 200);
    await until(() => region('us-east').up && region('us-east').dnsUp && region('us-east').localities[0]?.share === 1 && newYork()?.region === 'us-east', 30_000, 'us-east serving its own clients again');
  });

  it('changes the policy of one region by a reload, keeping the others', async () => {
    assert.equal((await call('/api/demo/policy', { policy: 'peak_ewma', region: 'eu-west' })).status, 200);
    await until(() => region('eu-west').policy === 'peak_ewma', 5000, 'the new policy');
    assert.equal(region('us-east').policy, 'least_request');
    assert.equal((await getAt(region('eu-west').address, region('eu-west').listenerPort)).status, 200);
  });

  it('drains an endpoint through the admin API of all regions, and undrains it', async () => {
    const clusters = JSON.parse((await get(demo.port, '/api/clusters')).body) as { clusters: { name: string }[] };
    assert.deepEqual(clusters.clusters.map((c) => c.name), ['app@us-east', 'app@eu-west', 'app@ap-south']);
    assert.equal((await call('/api/clusters/app@ap-south/endpoints/ap-south-1/drain', { draining: true })).status, 200);
    await until(() => endpoint('ap-south', 'ap-south-1')?.status === 'draining', 5000, 'draining');
    await until(() => events().some((e) => e.source === 'admin API' && e.text === 'ap-south-1 in app@ap-south draining'), 5000, 'the drain in the events');
    assert.equal((await call('/api/clusters/app@ap-south/endpoints/ap-south-1/drain', { draining: false })).status, 200);
    await until(() => endpoint('ap-south', 'ap-south-1')?.status !== 'draining', 5000, 'undrained');
    const metrics = await get(demo.port, '/metrics');
    assert.match(metrics.body, /cluster="app@ap-south"/);
  });

  it('spikes the load 10x, then returns to the base rate', async () => {
    const r = await call('/api/demo/spike', { factor: 10, seconds: 1 });
    assert.equal(r.status, 200);
    await until(() => demo.snapshot()?.load.rate === 300 && demo.snapshot()?.load.spikeUntil !== null, 5000, 'the spike');
    await until(() => demo.snapshot()?.load.rate === 30 && demo.snapshot()?.load.spikeUntil === null, 10_000, 'the base rate again');
  });

  it('answers DNS for the demo hostname by the client subnet (dig, when installed)', { skip: existsSync('/usr/bin/dig') ? false : 'dig is missing (apt-get install dnsutils)' }, async () => {
    const dns = demo.dns as { port: number; dig: string };
    const dig = (subnet: string): Promise<string> =>
      new Promise((resolve, reject) =>
        execFile('dig', ['@127.0.0.1', '-p', String(dns.port), 'www.meridian.test', `+subnet=${subnet}`, '+short', '+time=2', '+tries=1'], (err, out) => (err ? reject(err) : resolve(out.trim()))),
      );
    assert.equal(await dig('203.0.113.64/27'), region('eu-west').address, 'London is steered to eu-west');
    assert.equal(await dig('203.0.113.0/27'), region('us-east').address, 'New York to us-east');
    assert.match(dns.dig, /^dig @127\.0\.0\.1 -p \d+ www\.meridian\.test \+subnet=203\.0\.113\.64\/27/);
  });

  it('lists and serves simulator reports from its folder, sandboxed', async () => {
    const list = JSON.parse((await get(demo.port, '/api/demo/reports')).body) as { reports: string[] };
    assert.deepEqual(list.reports, ['spike.html']);
    const report = await get(demo.port, '/api/demo/reports/spike.html');
    assert.equal(report.status, 200);
    assert.match(String(report.headers['content-security-policy']), /^sandbox/);
    assert.equal((await get(demo.port, '/api/demo/reports/..%2Fetc.html')).status, 404);
  });
});

describe('meridian demo: ports and stop', () => {
  it('stop() leaves nothing listening', async () => {
    const demo = new Demo({ port: 0, webPortBase: 0, dnsPort: 0, rate: 10, regions: 2, backends: 2, intervalMs: 200, logger: pino({ level: 'silent' }) });
    await demo.start();
    await until(() => (demo.snapshot()?.regions ?? []).some((r) => r.rps > 0), 10_000, 'traffic');
    const ports = [demo.port, ...demo.regions().map((r) => r.adminPort)];
    const web = demo.regions().map((r) => [r.address, r.webPort] as const);
    await demo.stop();
    for (const port of ports) await assert.rejects(get(port, '/', { agent: false }), /ECONNREFUSED/, `port ${port}`);
    for (const [host, port] of web) await assert.rejects(getAt(host, port), /ECONNREFUSED/, `${host}:${port}`);
  });

  it('an explicit dashboard port that is taken fails, naming it; a taken default is replaced and said', async () => {
    const holder = new Demo({ port: 0, webPortBase: 0, dnsPort: 0, regions: 1, backends: 1, load: false, logger: pino({ level: 'silent' }) });
    await holder.start();
    try {
      const clash = new Demo({ port: holder.port, portExplicit: true, webPortBase: 0, dnsPort: 0, regions: 1, backends: 1, load: false, logger: pino({ level: 'silent' }) });
      await assert.rejects(clash.start(), (e: Error) => e instanceof PortInUseError && e.message.includes(`port ${holder.port}`));
      const moved = new Demo({ port: holder.port, webPortBase: 0, dnsPort: 0, regions: 1, backends: 1, load: false, logger: pino({ level: 'silent' }) });
      await moved.start();
      assert.notEqual(moved.port, holder.port);
      assert.match(moved.notes.join('\n'), new RegExp(`port ${holder.port} \\(the dashboard\\) is in use: using ${moved.port} instead`));
      await moved.stop();
    } finally {
      await holder.stop();
    }
  });
});
