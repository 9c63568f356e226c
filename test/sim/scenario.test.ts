import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseScenario, parseScenarioText, ScenarioError } from '../../src/sim/index.js';
import { parseRate } from '../../src/sim/scenario.js';
import { OUTLIER_DEFAULTS } from '../../src/core/outlier-detector.js';
import { coreOutlierOptions, validateConfig } from '../../src/config/index.js';

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

  it('reads lb.retry_on as the proxy reads retries.retry_on, with its default (connect failures and resets)', () => {
    const doc = { duration: '10s', regions: [{ name: 'r', servers: 1, service_time: { dist: 'constant', value: '1ms' } }], clients: [{ name: 'c', rate: '1/s' }] };
    assert.deepEqual(parseScenario(doc).lb.retryOn, ['connect_failure', 'reset']);
    assert.deepEqual(parseScenario({ ...doc, lb: { retry_on: ['timeout', '503', 'gateway_error'] } }).lb.retryOn, ['timeout', 503, 'gateway_error']);
    const p = problems({ ...doc, lb: { retry_on: ['timeout', 404] } });
    assert.equal(p.length, 1);
    assert.match(p[0] as string, /^lb\.retry_on\[1\]: expected one of .* or a status 500-599; got 404/);
  });

  it('takes compound durations as the config does (1m30s, 2s500ms)', () => {
    const s = parseScenario({ duration: '1m30s', warmup: '2s500ms', regions: [{ name: 'r', servers: 2, service_time: { dist: 'constant', value: '1ms' } }], clients: [{ name: 'c', rate: '1/s' }] });
    assert.equal(s.durationMs, 90_000);
    assert.equal(s.warmupMs, 2_500);
  });

  it('parses rates with units', () => {
    assert.equal(parseRate('800/s'), 800);
    assert.equal(parseRate('6000/m'), 100);
    assert.equal(parseRate(50), 50);
    assert.equal(parseRate('fast'), undefined);
  });

  describe('errors, worded and placed as `meridian validate` words a config', () => {
    const base = { duration: '10s', regions: [{ name: 'r', servers: 2, service_time: { dist: 'constant', value: '1ms' } }], clients: [{ name: 'c', rate: '1/s' }] };

    it('lists field, unknown-key and cross-reference problems in one go, each at its path', () => {
      assert.deepEqual(
        problems({
          ...base,
          clients: [{ name: 'c', rate: 'fast', rtt: { mars: '1ms' } }],
          lb: { retrys: 1 },
          events: [{ at: '1s', slow: 'r/1', factr: 2 }, { at: '2s', kill: 'r/2' }, { at: '3s', add: 'r', servers: 1 }, { at: '4s', kill: 'r/2' }],
        }),
        [
          'clients[0].rate: expected a rate such as 800/s (or /m, /h, /d), got "fast"',
          'lb.retrys: unknown key (did you mean "retries"?)',
          'events[0].factor: required',
          'events[0].factr: unknown key (did you mean "factor"?)',
          'clients[0].rtt.mars: no region named "mars"',
          // r/2 exists only after the add at 3s.
          'events[1].kill: r has servers 0..1 at that time',
        ],
      );
    });

    it('reads durations with the config grammar and its words: no us, no days, whole milliseconds, a unit always', () => {
      for (const bad of ['250us', '1d', '1.5ms', '10']) {
        assert.deepEqual(problems({ ...base, duration: bad }), [`duration: expected a duration like "2s", got "${bad}"`]);
      }
      const config = validateConfig({ listeners: [{ name: 'web', port: 8080, routes: [{ cluster: 'a' }] }], clusters: [{ name: 'a', endpoints: [{ address: '127.0.0.1:1' }], timeouts: { connect: '250us' } }] });
      assert.ok(!config.ok);
      assert.deepEqual(config.errors, ['clusters[0].timeouts.connect: expected a duration like "2s", got "250us"']);
    });

    it("checks outlier detection with the config's own rules", () => {
      assert.deepEqual(problems({ ...base, lb: { outlier_detection: { base_ejection_time: '1m', max_ejection_time: '1s', consecutive_5xx: -1 } } }), [
        'lb.outlier_detection.consecutive_5xx: must be >= 0, got -1',
        'lb.outlier_detection.max_ejection_time: must be >= base_ejection_time (1m), got 1s',
      ]);
    });

    it('names the service-time distributions, a lognormal no p99 fits and a speed list of the wrong length', () => {
      assert.deepEqual(
        problems({
          ...base,
          regions: [
            { name: 'r', servers: 2, service_time: { dist: 'weibull' }, speed: [1] },
            { name: 'q', servers: 1, service_time: { dist: 'lognormal', mean: '10ms', p99: '5ms' } },
          ],
          policy: 'fastest',
        }),
        [
          'regions[0].service_time.dist: expected one of constant, exponential, normal, lognormal, bimodal, pareto; got "weibull"',
          'regions[1].service_time.p99: no lognormal has mean 10 ms and p99 5 ms',
          'policy: expected one of round_robin, random, least_request, peak_ewma, ring_hash, maglev, prequal, predictive; got "fastest"',
          'regions[0].speed: expected 2 factors (one per server), got 1',
        ],
      );
    });

    it('says what an event is missing or carries twice', () => {
      assert.deepEqual(problems({ ...base, events: [{ at: '1s' }, 5, { at: '1s', kill: 'r/0', revive: 'r/0' }] }), [
        'events[0]: expected exactly one of kill, revive, slow, errors, region_down, region_up, add, remove, partition, heal; got none',
        'events[1]: expected a mapping, got 5',
        'events[2]: expected exactly one of kill, revive, slow, errors, region_down, region_up, add, remove, partition, heal; got kill and revive',
      ]);
      assert.deepEqual(problems('x'), ['(root): expected a mapping, got "x"']);
    });

    it("takes outlier detection's defaults from the one set the config and the core use", () => {
      const { successRate: _, ...defaults } = OUTLIER_DEFAULTS;
      assert.deepEqual(parseScenario({ ...base, lb: { outlier_detection: {} } }).lb.outlierDetection, defaults);
      const config = validateConfig({ listeners: [{ name: 'web', port: 8080, routes: [{ cluster: 'a' }] }], clusters: [{ name: 'a', endpoints: [{ address: '127.0.0.1:1' }], outlier_detection: {} }] });
      assert.ok(config.ok);
      assert.deepEqual(coreOutlierOptions(config.config.clusters[0]!.outlier_detection!), defaults);
      assert.equal(parseScenario({ ...base, lb: { outlier_detection: { enabled: false } } }).lb.outlierDetection, undefined);
    });
  });
});
