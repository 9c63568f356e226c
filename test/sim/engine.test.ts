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
  it('a killed server fails requests until active health checks take it out; retries hide it', () => {
    const events = [{ at: '10s', kill: 'r/3' }];
    const noChecks = runPolicy(parseScenario({ ...base, events }), 'round_robin');
    const checks = runPolicy(parseScenario({ ...base, events, lb: { health_check: { interval: '1s', unhealthy_threshold: 3 } } }), 'round_robin');
    const retries = runPolicy(parseScenario({ ...base, events, lb: { retries: 2, health_check: { interval: '1s' } } }), 'round_robin');
    // Without checks round robin keeps sending 1/10 of 1000/s to the dead server for 30 s.
    assert.ok(noChecks.failures.connect > 2500, `no checks: ${noChecks.failures.connect}`);
    // With checks every 1 s and 3 failures needed, about 3 s of that: ~300 failures.
    assert.ok(checks.failures.connect > 100 && checks.failures.connect < 500, `checks: ${checks.failures.connect}`);
    // A few still fail: the kill resets requests in bursts, and the retry budget (20% of
    // requests in flight, or 3/s) refuses part of a burst, by design.
    assert.ok(retries.failed < checks.failed / 5, `retries: ${retries.failed} failed vs ${checks.failed} without`);
    assert.ok(retries.retries > 100);
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
