// Discovery from real DNS (dnsmasq) while a load loop runs through Meridian: endpoints
// appear, disappear and re-weight with no failed request; an outage keeps the last set.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSampleBackend, type SampleBackend } from '../../src/backend/sample-backend.js';
import type { ClusterState } from '../../src/admin/types.js';
import { config, startMeridian, until, type Running } from '../proxy/harness.js';
import { Dnsmasq, dnsmasqMissing, LoadLoop } from './helpers.js';

const skip = dnsmasqMissing();

/** Why an IPv6 loopback backend cannot run here, or false when it can. */
async function ipv6LoopbackMissing(): Promise<string | false> {
  const s = createServer();
  return new Promise((resolve) => {
    s.once('error', (e) => resolve(`cannot listen on ::1 (${(e as NodeJS.ErrnoException).code ?? e.message}): no IPv6 loopback here`));
    s.listen(0, '::1', () => s.close(() => resolve(false)));
  });
}
const skip6 = skip || (await ipv6LoopbackMissing());

/** Backends `name` on 127.0.0.N, all on one port (A records carry no port). */
async function loopbackBackends(lastOctets: readonly number[]): Promise<SampleBackend[]> {
  const first = await startSampleBackend({ name: `b${lastOctets[0]}`, host: `127.0.0.${lastOctets[0]}` });
  const rest = await Promise.all(lastOctets.slice(1).map((n) => startSampleBackend({ name: `b${n}`, host: `127.0.0.${n}`, port: first.port })));
  return [first, ...rest];
}

const cluster = (m: Running): ClusterState => m.meridian.clusters().find((c) => c.name === 'c') as ClusterState;
const ids = (m: Running): string[] => cluster(m).endpoints.map((e) => e.id).sort();

describe('discovery: DNS A records', { skip }, () => {
  let dir: string;
  let dns: Dnsmasq;
  let bs: SampleBackend[];
  let port: number;
  let m: Running;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meridian-dns-'));
    bs = await loopbackBackends([2, 3, 4]);
    port = (bs[0] as SampleBackend).port;
    dns = await Dnsmasq.start(join(dir, 'hosts'), '127.0.0.2 web.test\n127.0.0.3 web.test\n');
    m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [
          {
            name: 'c',
            slow_start: { window: '60s' },
            discovery: { dns: { name: 'web.test', type: 'A', port, resolver: dns.resolver, min_ttl: '50ms', max_ttl: '200ms', timeout: '200ms' }, min_change_interval: '0s' },
          },
        ],
      }),
    );
  });

  after(async () => {
    await m?.close();
    await dns?.close();
    await Promise.all((bs ?? []).map((b) => b.close()));
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('starts with the resolved set, then adds, removes and survives a resolver outage with no failed request', async () => {
    const a = (n: number) => `127.0.0.${n}:${port}`;
    assert.deepEqual(ids(m), [a(2), a(3)], 'Meridian starts with the first answer built in');
    const status = cluster(m).discovery;
    assert.equal(status?.source, 'dns');
    assert.equal(status?.target, `dns A web.test @${dns.resolver}`);
    assert.equal(status?.ttlSeconds, 0, "dnsmasq's local TTL is 0 (clamped to min_ttl)");
    assert.equal(status?.lastError, null);
    assert.ok(cluster(m).endpoints.every((e) => e.discovered === true));

    const load = new LoadLoop(m.port);
    try {
      await until(() => load.count('b2') > 20 && load.count('b3') > 20, 10_000, 'traffic on both resolved endpoints');
      const b3Before = cluster(m).endpoints.find((e) => e.id === a(3))?.requestsTotal ?? 0;

      // Scale out: a new A record.
      await dns.setHosts('127.0.0.2 web.test\n127.0.0.3 web.test\n127.0.0.4 web.test\n');
      await until(() => ids(m).includes(a(4)), 10_000, '127.0.0.4 to be discovered');
      assert.equal(cluster(m).endpoints.find((e) => e.id === a(4))?.status, 'slow_start', 'a discovered endpoint ramps up as one added by a reload');
      assert.ok((cluster(m).endpoints.find((e) => e.id === a(3))?.requestsTotal ?? 0) >= b3Before, 'a kept endpoint keeps its history');
      await until(() => load.count('b4') > 5, 10_000, 'traffic on the new endpoint');

      // Scale in: 127.0.0.2 leaves.
      await dns.setHosts('127.0.0.3 web.test\n127.0.0.4 web.test\n');
      await until(() => !ids(m).includes(a(2)), 10_000, '127.0.0.2 to be removed');
      // A request picked for 127.0.0.2 just before the removal may still reach it: count from
      // once every client has moved on (each sends one at a time), then check nothing more came.
      const removedAt = load.sent;
      await until(() => load.sent > removedAt + 200, 10_000, '200 requests after the removal');
      const b2Seen = (bs[0] as SampleBackend).requests;
      const sentAt = load.sent;
      await until(() => load.sent > sentAt + 200, 10_000, '200 more requests');
      assert.equal((bs[0] as SampleBackend).requests, b2Seen, 'a removed endpoint receives no new request');

      // Resolver outage: the last set stays, the failure shows.
      await dns.stop();
      await until(() => cluster(m).discovery?.lastError !== null, 10_000, 'a failed refresh');
      assert.match(cluster(m).discovery?.lastError ?? '', /^A web\.test: E[A-Z]+/);
      assert.deepEqual(ids(m), [a(3), a(4)]);
      const during = load.sent;
      await until(() => load.sent > during + 200, 10_000, '200 requests during the outage');

      // Back, with a changed answer.
      await dns.setHosts('127.0.0.2 web.test\n127.0.0.3 web.test\n127.0.0.4 web.test\n');
      await dns.run();
      await until(() => ids(m).includes(a(2)), 10_000, 'recovery to apply the new answer');
      assert.equal(cluster(m).discovery?.lastError, null);
    } finally {
      await load.stop();
    }
    assert.deepEqual(load.failures, [], 'no request failed');
  });
});

describe('discovery: DNS SRV records', { skip }, () => {
  let dir: string;
  let dns: Dnsmasq;
  let bs: SampleBackend[];
  let m: Running;
  const records = ['b2.test,127.0.0.2', 'b3.test,127.0.0.3', 'b4.test,127.0.0.4'];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meridian-srv-'));
    bs = await Promise.all([2, 3, 4].map((n) => startSampleBackend({ name: `b${n}`, host: `127.0.0.${n}` })));
    const [b2, b3, b4] = bs as [SampleBackend, SampleBackend, SampleBackend];
    dns = await Dnsmasq.start(join(dir, 'hosts'), '', {
      srv: [`_http._tcp.web.test,b2.test,${b2.port},10,1`, `_http._tcp.web.test,b3.test,${b3.port},10,3`, `_http._tcp.web.test,b4.test,${b4.port},20,1`],
      records,
    });
    m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [
          {
            name: 'c',
            discovery: { dns: { name: '_http._tcp.web.test', type: 'SRV', resolver: dns.resolver, min_ttl: '50ms', max_ttl: '200ms', timeout: '200ms' }, min_change_interval: '0s' },
          },
        ],
      }),
    );
  });

  after(async () => {
    await m?.close();
    await dns?.close();
    await Promise.all((bs ?? []).map((b) => b.close()));
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('maps SRV priority to priority levels and weight to weight, and follows re-weighting with no failed request', async () => {
    const [b2, b3, b4] = bs as [SampleBackend, SampleBackend, SampleBackend];
    const view = () => new Map(cluster(m).endpoints.map((e) => [e.id, { weight: e.weight, priority: e.priority }]));
    assert.deepEqual(view(), new Map([
      [`127.0.0.2:${b2.port}`, { weight: 1, priority: 10 }],
      [`127.0.0.3:${b3.port}`, { weight: 3, priority: 10 }],
      [`127.0.0.4:${b4.port}`, { weight: 1, priority: 20 }],
    ]));
    const load = new LoadLoop(m.port);
    try {
      await until(() => load.count('b2') + load.count('b3') > 400, 10_000, '400 answers');
      assert.equal(load.count('b4'), 0, 'the priority-20 level takes nothing while priority 10 is healthy');
      // Weights 1:3 (share of b3: 0.75; 400+ answers put it well within 0.6..0.9).
      const share3 = load.count('b3') / (load.count('b2') + load.count('b3'));
      assert.ok(share3 > 0.6 && share3 < 0.9, `b3 share ${share3}`);

      // Re-weight and promote b4: dnsmasq reads SRV records only at start, so restart it.
      await dns.restart({
        srv: [`_http._tcp.web.test,b2.test,${b2.port},10,5`, `_http._tcp.web.test,b3.test,${b3.port},10,5`, `_http._tcp.web.test,b4.test,${b4.port},10,5`],
        records,
      });
      await until(() => view().get(`127.0.0.4:${b4.port}`)?.priority === 10, 10_000, 'the new SRV answer');
      assert.deepEqual([...view().values()].map((v) => v.weight), [5, 5, 5]);
      await until(() => load.count('b4') > 20, 10_000, 'traffic on the promoted endpoint');
    } finally {
      await load.stop();
    }
    assert.deepEqual(load.failures, [], 'no request failed');
  });
});

describe('discovery: DNS AAAA records', { skip: skip6 }, () => {
  let dir: string;
  let dns: Dnsmasq;
  let b: SampleBackend;
  let m: Running;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meridian-aaaa-'));
    b = await startSampleBackend({ name: 'b6', host: '::1' });
    // An AAAA record only: an A answer for the name would not be asked for.
    dns = await Dnsmasq.start(join(dir, 'hosts'), '::1 web6.test\n');
    m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [
          {
            name: 'c',
            discovery: { dns: { name: 'web6.test', type: 'AAAA', port: b.port, resolver: dns.resolver, min_ttl: '50ms', max_ttl: '200ms', timeout: '200ms' }, min_change_interval: '0s' },
          },
        ],
      }),
    );
  });

  after(async () => {
    await m?.close();
    await dns?.close();
    await b?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('makes the AAAA address an endpoint [::1]:PORT and proxies to it', async () => {
    assert.deepEqual(ids(m), [`[::1]:${b.port}`]);
    assert.equal(cluster(m).discovery?.target, `dns AAAA web6.test @${dns.resolver}`);
    assert.equal(cluster(m).discovery?.lastError, null);
    const load = new LoadLoop(m.port, 2);
    try {
      await until(() => load.count('b6') >= 50, 10_000, '50 answers from the ::1 backend');
    } finally {
      await load.stop();
    }
    assert.deepEqual(load.failures, [], 'no request failed');
    assert.equal(b.requests, load.count('b6'), 'every request reached the backend on ::1');
  });
});
