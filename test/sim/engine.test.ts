/** Behaviour of the model: failures, health checks, retries, limits and failover end to end. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseScenario, runPolicy } from '../../src/sim/index.js';

const base = {
  seed: 9,
  duration: '40s',
  warmup: '2s',
  bucket: '1s',
  regions: [{ name: 'r', servers: 10, concurrency: 2, service_time: { dist: 'exponential', mean: '10ms' } }],
  clients: [{ name: 'c', rate: '1000/s' }],
};

describe('simulator model', () => {
  it('a killed server costs the requests it held and one per return from ejection; retries hide even those', () => {
    const events = [{ at: '10s', kill: 'r/3' }];
    const noChecks = runPolicy(parseScenario({ ...base, events }), 'round_robin');
    const checks = runPolicy(parseScenario({ ...base, events, lb: { health_check: { interval: '1s', unhealthy_threshold: 3 } } }), 'round_robin');
    const retries = runPolicy(parseScenario({ ...base, events, lb: { retries: 2, health_check: { interval: '1s' } } }), 'round_robin');
    // As in the proxy: the kill resets the 3 requests the server held; each gets the
    // keep-alive race's one resend to the same host, which is refused, and the host is
    // ejected on that first refused connect (connect-failure ejection). With no retries
    // those 3 fail, and nothing after them while active checks keep the host out.
    assert.equal(checks.failures.connect, 3);
    assert.equal(checks.failed, 3);
    // Without active checks the host comes back after 1 s, 2 s, 4 s, 8 s (at 11, 13, 17
    // and 25 s; the next, 16 s later, falls after the end): one refused request each.
    assert.equal(noChecks.failures.connect, 3 + 4);
    // A connect failure sent nothing: its retry, to another host, needs no budget.
    assert.equal(retries.failed, 0);
    assert.equal(retries.retries, 2 * 3);
    assert.equal(noChecks.servers[3]?.completed, checks.servers[3]?.completed);
  });

  it('a timeout fails slow requests and they count as failed, not completed', () => {
    const r = runPolicy(parseScenario({ ...base, regions: [{ name: 'r', servers: 4, service_time: { dist: 'constant', value: '50ms' } }], clients: [{ name: 'c', rate: '10/s' }], lb: { timeout: '20ms' } }), 'random');
    assert.equal(r.completed, 0);
    assert.equal(r.failures.timeout, r.failed);
    assert.ok(r.failed > 300);
  });

  it('the rate limit sheds what exceeds it', () => {
    const r = runPolicy(parseScenario({ ...base, lb: { rate_limit: { rate: '500/s', burst: 100 } } }), 'least_request');
    const ratio = r.shed / r.requests;
    assert.ok(Math.abs(ratio - 0.5) < 0.02, `shed ${ratio}`);
    assert.equal(r.failures.rate_limited, r.shed);
  });

  it('a region outage fails over to the next nearest region after detection and one DNS TTL', () => {
    const doc = {
      seed: 1,
      duration: '120s',
      bucket: '1s',
      regions: [
        { name: 'near', servers: 10, concurrency: 2, service_time: { dist: 'exponential', mean: '10ms' } },
        { name: 'far', servers: 10, concurrency: 2, service_time: { dist: 'exponential', mean: '10ms' } },
      ],
      clients: [{ name: 'c', rate: '500/s', rtt: { near: '10ms', far: '80ms' } }],
      lb: { connect_timeout: '1s' },
      global: { dns_ttl: '20s', health_check: { interval: '5s', unhealthy_threshold: 2 } },
      events: [{ at: '30s', region_down: 'near' }],
    };
    const r = runPolicy(parseScenario(doc), 'least_request');
    const at = (t: number) => r.timeseries.find((b) => b.t_s === t);
    assert.equal(at(20)?.regions[1], 0, 'all traffic near before the outage');
    // Detected by the second failed probe (35 s or 40 s), then clients move over 20 s.
    assert.ok((at(50)?.regions[1] ?? 0) > 0, 'moving by 50 s');
    assert.equal(at(70)?.regions[0], 0, 'all moved after detection + TTL');
    assert.ok(r.failures.unreachable > 500 && r.failures.unreachable < 500 * 30, `unreachable ${r.failures.unreachable}`);
    assert.ok((at(80)?.latency_ms.p50 ?? 0) > 80, 'far region latency includes its RTT');
  });

  it("lb.cross_region: a region whose servers all die fails over inside its load balancer (the core's priority levels), paying the inter-region RTT", () => {
    const doc = (cross: boolean) => ({
      seed: 3,
      duration: '60s',
      bucket: '1s',
      regions: [
        { name: 'near', servers: 5, concurrency: 2, service_time: { dist: 'exponential', mean: '10ms' }, rtt: { far: '60ms' } },
        { name: 'far', servers: 5, concurrency: 2, service_time: { dist: 'exponential', mean: '10ms' } },
      ],
      clients: [{ name: 'c', rate: '300/s', rtt: { near: '5ms', far: '65ms' } }],
      lb: { cross_region: cross, health_check: { interval: '1s', unhealthy_threshold: 2 } },
      // DNS never moves the clients within the run: only the load balancer can save them.
      global: { dns_ttl: '600s', health_check: { interval: '30s', unhealthy_threshold: 3 } },
      events: [0, 1, 2, 3, 4].map((i) => ({ at: '20s', kill: `near/${i}` })),
    });
    const dnsOnly = runPolicy(parseScenario(doc(false)), 'round_robin');
    const cross = runPolicy(parseScenario(doc(true)), 'round_robin');
    const at = (r: typeof cross, t: number) => r.timeseries.find((b) => b.t_s === t);
    // Before the kill nothing crosses: the local level is healthy.
    assert.ok((at(cross, 10)?.latency_ms.p99 ?? Infinity) < 60, 'local latency before the kill');
    // Without cross-region balancing every request after the kill fails (DNS is slower than the run).
    assert.ok(dnsOnly.failed > 300 * 35, `dns only: ${dnsOnly.failed} failed`);
    // With it, only the detection window fails: 2 checks x 1 s at 300/s, about 600.
    assert.ok(cross.failed < 300 * 4, `cross-region: ${cross.failed} failed`);
    assert.ok(cross.cross_region_tries > 300 * 35, `cross-region tries: ${cross.cross_region_tries}`);
    assert.equal(dnsOnly.cross_region_tries, 0);
    // Served in the far region: the client's 5 ms plus the 60 ms inter-region round trip.
    assert.ok((at(cross, 40)?.latency_ms.p50 ?? 0) > 65, `p50 at 40 s: ${at(cross, 40)?.latency_ms.p50}`);
    assert.equal(at(cross, 40)?.failed, 0);
  });

  it("regions[].capacity with lb.cross_region: only the excess over a region's rate spills to the next region (the core's waterfall)", () => {
    const r = runPolicy(
      parseScenario({
        seed: 4,
        duration: '30s',
        warmup: '5s',
        bucket: '1s',
        regions: [
          { name: 'near', servers: 10, concurrency: 2, service_time: { dist: 'exponential', mean: '10ms' }, rtt: { far: '50ms' }, capacity: { rate: '200/s' } },
          { name: 'far', servers: 10, concurrency: 2, service_time: { dist: 'exponential', mean: '10ms' } },
        ],
        clients: [{ name: 'c', rate: '300/s', rtt: { near: '5ms', far: '55ms' } }],
        lb: { cross_region: true },
      }),
      'least_request',
    );
    // 300/s arrive, 200/s stay: a third of the requests cross (binomial spread, 25 s of them).
    const share = r.cross_region_tries / r.requests;
    assert.ok(Math.abs(share - 1 / 3) < 0.02, `share that crossed: ${share.toFixed(4)} of ${r.requests}`);
    assert.equal(r.failed, 0);
  });

  it('new servers join through slow start and take a growing share', () => {
    const r = runPolicy(
      parseScenario({ ...base, lb: { slow_start: { window: '10s' } }, events: [{ at: '10s', add: 'r', servers: 10 }] }),
      'round_robin',
    );
    assert.equal(r.servers.length, 20);
    const started = (t: number, j: number) => r.timeseries.find((b) => b.t_s === t)?.servers[j] ?? 0;
    assert.ok(started(11, 15) < started(25, 15), 'share grows during the window');
    assert.ok(started(11, 15) < started(11, 5) / 2, 'a new server starts well below an old one');
  });

  it('outlier detection ejects a server that answers 5xx', () => {
    const r = runPolicy(
      parseScenario({ ...base, lb: { outlier_detection: { consecutive_5xx: 5, base_ejection_time: '30s' } }, events: [{ at: '5s', errors: 'r/2', rate: 1 }] }),
      'least_request',
    );
    assert.ok(r.failures.http_5xx >= 5 && r.failures.http_5xx < 50, `5xx ${r.failures.http_5xx}`);
  });
});
