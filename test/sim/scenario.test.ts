import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseScenario, parseScenarioText, ScenarioError } from '../../src/sim/index.js';
import { parseRate, parseSimDuration } from '../../src/sim/scenario.js';

const MINIMUM = `
seed: 42
duration: 120s
warmup: 10s
regions:
  - name: us-east
    servers: 10
    concurrency: 1
    service_time: { dist: exponential, mean: 10ms }
    speed: [1, 1, 1, 1, 1, 1, 1, 1, 1, 0.25]
clients:
  - name: na
    rate: 800/s
    rtt: { us-east: 0ms }
    spikes: [ { at: 60s, multiply: 10, for: 5s } ]
lb: { timeout: 1s, retries: 0 }
policies: [random, round_robin, least_request, peak_ewma]
events:
  - { at: 30s, kill: us-east/3 }
  - { at: 50s, revive: us-east/3 }
  - { at: 15s, slow: us-east/5, factor: 12, for: 30s }
`;

function problems(doc: unknown): string[] {
  try {
    parseScenario(doc);
  } catch (e) {
    if (e instanceof ScenarioError) return [...e.problems];
    throw e;
  }
  return [];
}

describe('scenario file', () => {
  it("reads the issue's minimum form", () => {
    const s = parseScenarioText(MINIMUM);
    assert.equal(s.seed, 42);
    assert.equal(s.durationMs, 120_000);
    assert.equal(s.warmupMs, 10_000);
    assert.equal(s.regions[0]?.servers.length, 10);
    assert.equal(s.regions[0]?.servers[9]?.speed, 0.25);
    assert.deepEqual(s.regions[0]?.servers[0]?.serviceTime, { dist: 'exponential', meanMs: 10 });
    assert.equal(s.clients[0]?.ratePerS, 800);
    assert.deepEqual(s.clients[0]?.spikes, [{ atMs: 60_000, multiply: 10, forMs: 5000 }]);
    assert.equal(s.lb.timeoutMs, 1000);
    assert.deepEqual(s.policies, ['random', 'round_robin', 'least_request', 'peak_ewma']);
    // Events run in time order.
    assert.deepEqual(s.events.map((e) => e.kind), ['slow', 'kill', 'revive']);
  });

  it('reads every service-time distribution of the issue', () => {
    const dists = [
      { dist: 'constant', value: '10ms' },
      { dist: 'exponential', mean: '10ms' },
      { dist: 'normal', mean: '167ms', sd: '5ms' },
      { dist: 'lognormal', mean: '10ms', sigma: 1.0 },
      { dist: 'lognormal', mean: '10ms', p99: '60ms' },
      { dist: 'bimodal', p: 0.9, a: '5ms', b: '100ms' },
      { dist: 'pareto', mean: '10ms', alpha: 2.5 },
    ];
    for (const d of dists) {
      assert.deepEqual(problems({ duration: '1s', regions: [{ name: 'r', servers: 1, service_time: d }], clients: [{ name: 'c', rate: '1/s' }] }), [], JSON.stringify(d));
    }
  });

  it('lists every problem by path', () => {
    const p = problems({
      duration: '10',
      regions: [{ name: 'r', servers: 0, service_time: { dist: 'weibull' }, rtt: { venus: '5ms' } }],
      clients: [{ name: 'c', rate: 'fast', rtt: { mars: '1ms' } }],
      lb: { cross_region: 'yes' },
      policies: ['fastest'],
      events: [{ at: '1s', kill: 'r/5' }, { at: '2s', explode: 'r/0' }],
    });
    const paths = p.map((x) => x.split(':')[0]);
    for (const path of ['duration', 'regions[0].servers', 'regions[0].service_time.dist', 'regions[0].rtt.venus', 'clients[0].rate', 'clients[0].rtt.mars', 'lb.cross_region', 'policies[0]', 'events[0].kill', 'events[1]']) {
      assert.ok(paths.includes(path), `no problem reported at ${path}: ${p.join(' | ')}`);
    }
  });

  it('reads lb.retry_on as the proxy reads retries.retry_on, with its default (connect failures only)', () => {
    const doc = { duration: '10s', regions: [{ name: 'r', servers: 1, service_time: { dist: 'constant', value: '1ms' } }], clients: [{ name: 'c', rate: '1/s' }] };
    assert.deepEqual(parseScenario(doc).lb.retryOn, ['connect_failure']);
    assert.deepEqual(parseScenario({ ...doc, lb: { retry_on: ['timeout', '503', 'gateway_error'] } }).lb.retryOn, ['timeout', 503, 'gateway_error']);
    const p = problems({ ...doc, lb: { retry_on: ['timeout', 404] } });
    assert.equal(p.length, 1);
    assert.match(p[0] as string, /^lb\.retry_on\[1\]: expected one of .* or a status 500-599; got 404/);
  });

  it('parses durations and rates with units', () => {
    assert.equal(parseSimDuration('250us'), 0.25);
    assert.equal(parseSimDuration('1.5s'), 1500);
    assert.equal(parseSimDuration('2m'), 120_000);
    assert.equal(parseSimDuration('5'), undefined);
    assert.equal(parseSimDuration('1m30s'), 90_000);
    assert.equal(parseSimDuration('1h30m'), 5_400_000);
    assert.equal(parseSimDuration('1s250us'), 1000.25);
    assert.equal(parseSimDuration('30s1m'), undefined);
    assert.equal(parseSimDuration('1s1s'), undefined);
    assert.equal(parseRate('800/s'), 800);
    assert.equal(parseRate('6000/m'), 100);
    assert.equal(parseRate(50), 50);
    assert.equal(parseRate('fast'), undefined);
  });
});
