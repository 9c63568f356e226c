// Active health checking over real sockets: a real core Cluster, real sample backends on
// 127.0.0.1. Timing is never asserted: tests wait for conditions with a generous deadline.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { startSampleBackend, type SampleBackend } from '../../src/backend/sample-backend.js';
import type { HealthCheckConfig } from '../../src/config/schema.js';
import { Cluster, type ClusterEvent, type HostState } from '../../src/core/cluster.js';
import { nextCheckDelayMs } from '../../src/core/health.js';
import { SeededRng, type Rng } from '../../src/core/rng.js';
import type { Endpoint } from '../../src/core/types.js';
import { ActiveHealthChecker, isExpectedStatus, type CheckResult } from '../../src/health/active-checker.js';
import { clusterCheckTarget } from '../../src/node/cluster-check-target.js';

const HEALTHY = 2;
const UNHEALTHY = 3;

/**
 * Short intervals, but a generous timeout: the schema wants timeout < interval, yet on a
 * loaded machine a 15 ms timeout fails healthy probes. The checker never overlaps probes
 * of one host whatever the two values, so tests may break that rule; only the timeout
 * tests use a short one, against a backend that is slow on purpose.
 */
function checkConfig(overrides: Partial<HealthCheckConfig> = {}): HealthCheckConfig {
  return {
    type: 'http',
    path: '/healthz',
    expected_statuses: [{ min: 200, max: 399 }],
    interval: 20,
    timeout: 2000,
    jitter: 0.1,
    healthy_threshold: HEALTHY,
    unhealthy_threshold: UNHEALTHY,
    ...overrides,
  };
}

function makeCluster(addresses: readonly string[]): { cluster: Cluster; events: ClusterEvent[] } {
  const cluster = new Cluster('api', endpointsOf(addresses), {
    policy: 'round_robin',
    clock: { nowMs: () => performance.now() },
    rng: new SeededRng(1),
    activeChecks: { healthyThreshold: HEALTHY, unhealthyThreshold: UNHEALTHY },
  });
  const events: ClusterEvent[] = [];
  cluster.onEvent((e) => events.push(e));
  return { cluster, events };
}

function endpointsOf(addresses: readonly string[]) {
  return addresses.map((address) => ({ id: address, address, weight: 1 }));
}

const addr = (b: SampleBackend): string => `127.0.0.1:${b.port}`;

async function waitFor(cond: () => boolean, what: string, deadlineMs = 5000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Results with the host's verdict right after each was recorded. */
interface Seen {
  readonly result: CheckResult;
  readonly healthyAfter: boolean;
}

/** Verdicts the cluster took, each with the host's verdict right after. */
function recorder(cluster: Cluster): { seen: Seen[]; onResult: (r: CheckResult) => void; of: (h: HostState) => Seen[] } {
  const seen: Seen[] = [];
  return {
    seen,
    onResult: (r) => seen.push({ result: r, healthyAfter: cluster.host(r.endpoint.id)?.health.activeHealthy ?? true }),
    of: (h) => seen.filter((s) => s.result.endpoint.id === h.endpoint.id),
  };
}

/** A checker over `cluster`'s hosts, its verdicts recorded in the cluster, then passed to `onResult`. */
function clusterChecker(cluster: Cluster, check: HealthCheckConfig, options: { rng?: Rng; onResult?: (r: CheckResult) => void; onError?: (err: unknown) => void } = {}): ActiveHealthChecker {
  const { onResult, ...rest } = options;
  return new ActiveHealthChecker(clusterCheckTarget(cluster, onResult), check, rest);
}

/** Length of the run of results equal to `ok` that ends at index `i`. */
function runEndingAt(list: readonly Seen[], i: number, ok: boolean): number {
  let n = 0;
  while (i - n >= 0 && list[i - n]?.result.ok === ok) n++;
  return n;
}

const healthChanges = (events: readonly ClusterEvent[]) =>
  events.flatMap((e) => (e.type === 'health_changed' ? [{ id: e.host.endpoint.id, healthy: e.healthy }] : []));

describe('ActiveHealthChecker over sample backends', () => {
  it('keeps a healthy cluster healthy: every probe passes, no transitions', async () => {
    const backends = await Promise.all([1, 2, 3].map((i) => startSampleBackend({ name: `b${i}` })));
    const { cluster, events } = makeCluster(backends.map(addr));
    const rec = recorder(cluster);
    const checker = clusterChecker(cluster, checkConfig(), { rng: new SeededRng(1), onResult: rec.onResult });
    try {
      checker.start();
      await waitFor(() => cluster.hosts.every((h) => rec.of(h).length >= 5), '5 results per host');
      assert.ok(rec.seen.every((s) => s.result.ok && s.result.status === 200 && s.result.reason === undefined));
      assert.deepEqual(healthChanges(events), []);
      assert.ok(cluster.hosts.every((h) => h.health.activeHealthy));
      assert.ok(backends.every((b) => b.requests === 0), 'health checks are not counted as requests');
    } finally {
      checker.stop();
      await Promise.all(backends.map((b) => b.close()));
    }
  });

  it('marks a host unhealthy after exactly unhealthy_threshold failures (503), healthy again after healthy_threshold passes', async () => {
    const [sick, well] = await Promise.all([startSampleBackend({ name: 'sick' }), startSampleBackend({ name: 'well' })]);
    const { cluster, events } = makeCluster([addr(sick), addr(well)]);
    const host = cluster.hosts[0] as HostState;
    const rec = recorder(cluster);
    const checker = clusterChecker(cluster, checkConfig(), { rng: new SeededRng(2), onResult: rec.onResult });
    try {
      checker.start();
      await waitFor(() => rec.of(host).length >= 2, 'a few passing checks');
      sick.setHealthy(false);
      await waitFor(() => !host.health.activeHealthy, 'the host to be marked unhealthy');
      const down = rec.of(host);
      const flip = down.findIndex((s) => !s.healthyAfter);
      assert.equal(runEndingAt(down, flip, false), UNHEALTHY, 'the failure that flipped it was the third in a row');
      assert.ok(down.slice(0, flip).every((s) => s.healthyAfter), 'healthy until then');
      const failure = down[flip]?.result;
      assert.equal(failure?.reason, 'bad_status');
      assert.equal(failure?.status, 503);

      sick.setHealthy(true);
      await waitFor(() => host.health.activeHealthy, 'the host to come back');
      const up = rec.of(host);
      const back = up.findIndex((s, i) => i > flip && s.healthyAfter);
      assert.equal(runEndingAt(up, back, true), HEALTHY, 'the pass that restored it was the second in a row');
      assert.ok(up.slice(flip, back).every((s) => !s.healthyAfter));

      assert.deepEqual(healthChanges(events), [
        { id: addr(sick), healthy: false },
        { id: addr(sick), healthy: true },
      ]);
    } finally {
      checker.stop();
      await Promise.all([sick.close(), well.close()]);
    }
  });

  it('marks a closed backend (refused) unhealthy, and leaves the others alone', async () => {
    const [gone, well] = await Promise.all([startSampleBackend({ name: 'gone' }), startSampleBackend({ name: 'well' })]);
    const { cluster, events } = makeCluster([addr(gone), addr(well)]);
    const [goneHost, wellHost] = cluster.hosts as [HostState, HostState];
    const rec = recorder(cluster);
    const checker = clusterChecker(cluster, checkConfig(), { rng: new SeededRng(3), onResult: rec.onResult });
    try {
      checker.start();
      await waitFor(() => rec.of(goneHost).length >= 1, 'a first check');
      await gone.close();
      await waitFor(() => !goneHost.health.activeHealthy, 'the closed backend to be marked unhealthy');
      assert.equal(rec.of(goneHost).at(-1)?.result.reason, 'refused');
      assert.ok(wellHost.health.activeHealthy);
      assert.deepEqual(healthChanges(events), [{ id: addr(gone), healthy: false }]);
    } finally {
      checker.stop();
      await Promise.all([gone.close(), well.close()]);
    }
  });

  it('marks a backend whose health path hangs past the timeout unhealthy (timeout)', async () => {
    const slow = await startSampleBackend({ name: 'slow' });
    const { cluster } = makeCluster([addr(slow)]);
    const host = cluster.hosts[0] as HostState;
    const rec = recorder(cluster);
    const check = checkConfig({ path: '/healthz?delay=500', timeout: 100, interval: 150 });
    const checker = clusterChecker(cluster, check, { rng: new SeededRng(4), onResult: rec.onResult });
    try {
      checker.start();
      await waitFor(() => !host.health.activeHealthy, 'the slow backend to be marked unhealthy');
      assert.ok(rec.of(host).every((s) => !s.result.ok && s.result.reason === 'timeout'));
      assert.equal(rec.of(host).findIndex((s) => !s.healthyAfter), UNHEALTHY - 1, 'unhealthy at the third timeout');
    } finally {
      checker.stop();
      await slow.close();
    }
  });

  it('tcp checks: pass when the port accepts, fail (refused) when nothing listens', async () => {
    const up = await startSampleBackend({ name: 'up', healthPath: '/elsewhere' });
    up.setHealthy(false); // irrelevant to a TCP check
    const { cluster, events } = makeCluster([addr(up), `127.0.0.1:${await closedPort()}`]);
    const [upHost, downHost] = cluster.hosts as [HostState, HostState];
    const rec = recorder(cluster);
    const checker = clusterChecker(cluster, checkConfig({ type: 'tcp' }), { rng: new SeededRng(5), onResult: rec.onResult });
    try {
      checker.start();
      await waitFor(() => !downHost.health.activeHealthy && rec.of(upHost).length >= UNHEALTHY, 'the closed port to be marked unhealthy');
      assert.ok(rec.of(upHost).every((s) => s.result.ok && s.result.status === undefined));
      assert.ok(rec.of(downHost).every((s) => s.result.reason === 'refused'));
      assert.ok(upHost.health.activeHealthy);
      assert.deepEqual(healthChanges(events), [{ id: downHost.endpoint.id, healthy: false }]);
      assert.equal(up.requests, 0);
    } finally {
      checker.stop();
      await up.close();
    }
  });

  it('follows membership: new hosts get probed, removed ones stop', async () => {
    const [a, b] = await Promise.all([startSampleBackend({ name: 'a' }), startSampleBackend({ name: 'b' })]);
    const { cluster } = makeCluster([addr(a)]);
    const hostA = cluster.hosts[0] as HostState;
    const rec = recorder(cluster);
    const checker = clusterChecker(cluster, checkConfig(), { rng: new SeededRng(6), onResult: rec.onResult });
    try {
      checker.start();
      await waitFor(() => rec.of(hostA).length >= 1, 'a first check of a');
      cluster.setEndpoints(endpointsOf([addr(b)]));
      const hostB = cluster.hosts[0] as HostState;
      const resultsOfA = rec.of(hostA).length;
      await waitFor(() => rec.of(hostB).length >= 3, 'b to be probed');
      assert.equal(rec.of(hostA).length, resultsOfA, 'no results for a removed host');
    } finally {
      checker.stop();
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('probe() classifies failures and records nothing', async () => {
    const b = await startSampleBackend({ name: 'p' });
    const { cluster, events } = makeCluster([addr(b), 'not-an-address', `127.0.0.1:${await closedPort()}`]);
    const [host, bad, closed] = cluster.hosts as [HostState, HostState, HostState];
    const probe = (overrides: Partial<HealthCheckConfig>, h = host) => clusterChecker(cluster, checkConfig(overrides)).probe(h.endpoint);
    try {
      assert.deepEqual(pick(await probe({})), { ok: true, status: 200 });
      assert.deepEqual(pick(await probe({ path: '/status/418' })), { ok: false, reason: 'bad_status', status: 418 });
      assert.deepEqual(pick(await probe({ path: '/status/204', expected_statuses: [{ min: 200, max: 200 }] })), { ok: false, reason: 'bad_status', status: 204 });
      assert.deepEqual(pick(await probe({ path: '/status/503', expected_statuses: [{ min: 500, max: 599 }] })), { ok: true, status: 503 });
      assert.deepEqual(pick(await probe({ path: '/reset' })), { ok: false, reason: 'reset' });
      assert.deepEqual(pick(await probe({ path: '/reset-mid' })), { ok: false, reason: 'reset', status: 200 });
      assert.deepEqual(pick(await probe({ path: '/healthz?delay=500', timeout: 20 })), { ok: false, reason: 'timeout' });
      assert.deepEqual(pick(await probe({}, closed)), { ok: false, reason: 'refused' });
      assert.deepEqual(pick(await probe({}, bad)), { ok: false, reason: 'error' });
      assert.deepEqual(pick(await probe({ path: '/health check' })), { ok: false, reason: 'error' }, 'a path http.request refuses');
      const echo = await probe({ path: '/echo', expected_statuses: [{ min: 200, max: 200 }] });
      assert.equal(echo.ok, true);
      assert.deepEqual(healthChanges(events), []);
      assert.ok(cluster.hosts.every((h) => h.health.activeHealthy), 'probe() alone changes no verdict');
    } finally {
      await b.close();
    }
  });

  it('sends the documented request: GET path, Host = address, User-Agent, Connection: close', async () => {
    const b = await startSampleBackend({ name: 'h' });
    const { cluster } = makeCluster([addr(b)]);
    let seen: { method?: string; url?: string; headers: Record<string, string | string[] | undefined> } | undefined;
    b.server.prependListener('request', (req) => (seen = { method: req.method, url: req.url, headers: req.headers }));
    try {
      await clusterChecker(cluster, checkConfig({ path: '/healthz?x=1' })).probe((cluster.hosts[0] as HostState).endpoint);
      assert.equal(seen?.method, 'GET');
      assert.equal(seen?.url, '/healthz?x=1');
      assert.equal(seen?.headers.host, addr(b));
      assert.equal(seen?.headers['user-agent'], 'meridian-health-check');
      assert.equal(seen?.headers.connection, 'close');
    } finally {
      await b.close();
    }
  });

  it('a callback that throws is reported to onError, never an unhandled rejection, and probing carries on', async () => {
    const b = await startSampleBackend({ name: 't' });
    const { cluster } = makeCluster([addr(b)]);
    const rejections: unknown[] = [];
    const onRejection = (r: unknown) => rejections.push(r);
    process.on('unhandledRejection', onRejection);
    const errors: unknown[] = [];
    let results = 0;
    const checker = clusterChecker(cluster, checkConfig(), {
      rng: new SeededRng(3),
      onResult: () => {
        results++;
        throw new TypeError(`callback ${results} broke`);
      },
      onError: (err) => errors.push(err),
    });
    try {
      checker.start();
      await waitFor(() => errors.length >= 5, 'five results, each callback throwing');
      // A rejection surfaces after the microtasks of the round that made it: one more round.
      const seen = results;
      await waitFor(() => results > seen, 'another round');
      assert.deepEqual(rejections, []);
      assert.ok(errors.every((e) => e instanceof TypeError));
      assert.equal(checker.pendingTimers, 2, 'the host still has its next probe scheduled (and membership its timer)');
    } finally {
      checker.stop();
      process.off('unhandledRejection', onRejection);
      await b.close();
    }
  });

  it('stop() clears every timer and aborts probes in flight; nothing is left open; idempotent', async () => {
    const backends = await Promise.all([1, 2].map((i) => startSampleBackend({ name: `s${i}` })));
    const { cluster } = makeCluster(backends.map(addr));
    const results: CheckResult[] = [];
    // /hang never answers and the timeout is 2 s: the probes stay in flight until stop().
    const checker = clusterChecker(cluster, checkConfig({ path: '/hang' }), { rng: new SeededRng(7), onResult: (r) => results.push(r) });
    try {
      // Sockets of earlier tests may still be closing: start from none.
      await waitFor(() => openHandles().sockets === 0, 'earlier sockets to close');
      const baseline = openHandles();
      checker.start();
      await waitFor(() => checker.inFlight === 2, 'both probes in flight');
      await waitFor(() => openHandles().sockets === 4, 'probe connections to open (client and server side)');
      checker.stop();
      assert.equal(checker.inFlight, 0);
      assert.equal(checker.pendingTimers, 0);
      checker.stop();
      await waitFor(() => openHandles().sockets === 0, 'probe sockets to close');
      await waitFor(() => openHandles().timeouts <= baseline.timeouts, 'timers to clear');
      assert.deepEqual(results, [], 'aborted probes record nothing');
    } finally {
      checker.stop();
      await Promise.all(backends.map((b) => b.close()));
    }
  });

  it('its timers are unref()ed: a running checker between probes holds no handle', async () => {
    const b = await startSampleBackend({ name: 'u' });
    const { cluster } = makeCluster([addr(b)]);
    let results = 0;
    const checker = clusterChecker(cluster, checkConfig({ interval: 60_000 }), { onResult: () => results++ });
    try {
      await waitFor(() => openHandles().sockets === 0, 'earlier sockets to close');
      const baseline = openHandles();
      checker.start();
      await waitFor(() => results === 1, 'the first probe');
      await waitFor(() => openHandles().sockets === 0, 'the probe socket to close');
      assert.equal(checker.pendingTimers, 2, 'the host timer and the membership timer');
      assert.ok(openHandles().timeouts <= baseline.timeouts, 'both unref()ed');
    } finally {
      checker.stop();
      await b.close();
    }
  });
});

describe('ActiveHealthChecker over a plain list of endpoints (no cluster)', () => {
  /** A target whose list the test changes, recording every verdict. */
  function listTarget(initial: Endpoint[]) {
    const target = { list: initial, verdicts: [] as CheckResult[], endpoints: () => target.list, record: (r: CheckResult) => void target.verdicts.push(r) };
    return target;
  }
  const count = (verdicts: readonly CheckResult[], id: string): number => verdicts.filter((v) => v.endpoint.id === id).length;

  it('probes the listed endpoints and hands every verdict to the target; a removed one stops, and its probe in flight is dropped', async () => {
    const up = await startSampleBackend({ name: 'up' });
    const down = `127.0.0.1:${await closedPort()}`;
    // Holds every probe unanswered until told: its probe is in flight when it is removed.
    const held: http.ServerResponse[] = [];
    let heldClosed = 0;
    const hang = http.createServer((_req, res) => held.push(res));
    hang.on('connection', (s) => s.on('close', () => heldClosed++));
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const hangAddress = `127.0.0.1:${(hang.address() as net.AddressInfo).port}`;
    const target = listTarget([...endpointsOf([addr(up), down]), { id: 'hang', address: hangAddress, weight: 1 }]);
    const checker = new ActiveHealthChecker(target, checkConfig(), { rng: new SeededRng(8) });
    try {
      checker.start();
      await waitFor(() => count(target.verdicts, addr(up)) >= 1 && count(target.verdicts, down) >= 1 && held.length === 1, 'verdicts for two, the third probe held');
      assert.ok(target.verdicts.filter((v) => v.endpoint.id === addr(up)).every((v) => v.ok && v.status === 200));
      assert.ok(target.verdicts.filter((v) => v.endpoint.id === down).every((v) => !v.ok && v.reason === 'refused'));
      target.list = endpointsOf([addr(up)]);
      checker.membershipChanged();
      const [downSeen, upSeen] = [count(target.verdicts, down), count(target.verdicts, addr(up))];
      held[0]!.end('ok');
      // The server sees the probe's connection close in a later turn than the checker took (and dropped) its verdict.
      await waitFor(() => heldClosed === 1, 'the held probe to end');
      await waitFor(() => count(target.verdicts, addr(up)) >= upSeen + 2, 'more verdicts for the one left');
      assert.equal(count(target.verdicts, 'hang'), 0, 'the probe in flight at its removal was dropped');
      assert.equal(count(target.verdicts, down), downSeen, 'no verdict for a removed endpoint');
      assert.equal(held.length, 1, 'a removed endpoint is not probed again');
    } finally {
      checker.stop();
      hang.closeAllConnections();
      await Promise.all([up.close(), new Promise((r) => hang.close(r))]);
    }
  });

  it('follows a change of an endpoint under the same id: once it is remote, its probes carry the hops header', async () => {
    const b = await startSampleBackend({ name: 'r' });
    const hops: (string | undefined)[] = [];
    b.server.prependListener('request', (req) => hops.push(req.headers['x-meridian-hops'] as string | undefined));
    const target = listTarget(endpointsOf([addr(b)]));
    const checker = new ActiveHealthChecker(target, checkConfig(), { rng: new SeededRng(9) });
    try {
      checker.start();
      await waitFor(() => target.verdicts.length >= 2, 'two local probes');
      target.list = [{ id: addr(b), address: addr(b), weight: 1, locality: { remote: true } }];
      checker.membershipChanged();
      const before = hops.length;
      await waitFor(() => hops.length >= before + 3, 'probes after the change');
      assert.ok(hops.slice(0, 2).every((h) => h === undefined), 'a local endpoint is probed without it');
      // The probe in flight at the change may be the last local one; every later one carries it.
      assert.deepEqual(hops.slice(before + 1), hops.slice(before + 1).map(() => 'health-check'));
    } finally {
      checker.stop();
      await b.close();
    }
  });
});

/** Ref'd handles now: TCP sockets, and timers (unref()ed ones are not listed). */
function openHandles(): { sockets: number; timeouts: number } {
  const info = process.getActiveResourcesInfo();
  return { sockets: info.filter((r) => r === 'TCPSocketWrap').length, timeouts: info.filter((r) => r === 'Timeout').length };
}

function pick(r: CheckResult): Omit<CheckResult, 'endpoint' | 'latencyMs'> {
  const { endpoint: _endpoint, latencyMs: _latency, ...rest } = r;
  return rest;
}

describe('health check helpers (pure)', () => {
  it('jitter keeps every delay in [interval x (1 - jitter), interval x (1 + jitter)) and spans it', () => {
    const rng = new SeededRng(11);
    const delays = Array.from({ length: 10_000 }, () => nextCheckDelayMs(1000, 0.1, rng));
    assert.ok(delays.every((d) => d >= 900 && d < 1100));
    // 10,000 uniform draws: the extremes land within 1 ms of the ends (P(miss) = (1 - 1/200)^10000 ≈ 2e-22).
    assert.ok(Math.min(...delays) < 901 && Math.max(...delays) > 1099);
    const mean = delays.reduce((a, d) => a + d, 0) / delays.length;
    assert.ok(Math.abs(mean - 1000) < 5, `mean ${mean}`); // sd of the mean: 57.7 / 100 = 0.58 ms
  });

  it('jitter ends: u = -1 gives interval x (1 - jitter), no jitter gives the interval, never below 1 ms', () => {
    const fixed = (u: number): Rng => ({ next: () => u });
    assert.equal(nextCheckDelayMs(1000, 0.1, fixed(0)), 900);
    assert.equal(nextCheckDelayMs(1000, 0.1, fixed(0.5)), 1000);
    assert.ok(nextCheckDelayMs(1000, 0.1, fixed(1 - 2 ** -32)) < 1100);
    assert.equal(nextCheckDelayMs(1000, 0, new SeededRng(1)), 1000);
    assert.equal(nextCheckDelayMs(1000, 1, fixed(0)), 1);
  });

  it('matches statuses against inclusive ranges', () => {
    const ranges = [
      { min: 200, max: 299 },
      { min: 404, max: 404 },
    ];
    assert.ok(isExpectedStatus(200, ranges) && isExpectedStatus(299, ranges) && isExpectedStatus(404, ranges));
    assert.ok(!isExpectedStatus(300, ranges) && !isExpectedStatus(403, ranges) && !isExpectedStatus(503, ranges));
  });
});
