import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseScenario, simulate } from '../../src/sim/index.js';

const doc = (seed: number) => ({
  seed,
  duration: '20s',
  warmup: '2s',
  regions: [{ name: 'us-east', servers: 5, service_time: { dist: 'lognormal', mean: '10ms', sigma: 1 }, speed: [1, 1, 1, 1, 0.5] }],
  clients: [{ name: 'na', rate: '300/s', rtt: { 'us-east': '5ms' }, spikes: [{ at: '8s', multiply: 3, for: '2s' }] }],
  lb: { timeout: '500ms', retries: 1, health_check: { interval: '1s' }, outlier_detection: { consecutive_gateway_errors: 3 } },
  policies: ['random', 'round_robin', 'least_request', 'peak_ewma', 'ring_hash', 'maglev'],
  events: [
    { at: '5s', kill: 'us-east/1' },
    { at: '12s', revive: 'us-east/1' },
    { at: '6s', slow: 'us-east/2', factor: 5, for: '4s' },
  ],
});

describe('simulator determinism', () => {
  it('the same seed gives byte-identical JSON, every policy included', () => {
    const a = JSON.stringify(simulate(parseScenario(doc(42))));
    const b = JSON.stringify(simulate(parseScenario(doc(42))));
    assert.equal(a, b);
  });

  it('another seed gives other figures', () => {
    const a = JSON.stringify(simulate(parseScenario(doc(42))).results[0]);
    const b = JSON.stringify(simulate(parseScenario(doc(43))).results[0]);
    assert.notEqual(a, b);
  });

  it('every policy sees the same arrivals (results compare pair for pair)', () => {
    const r = simulate(parseScenario(doc(7)));
    const counts = new Set(r.results.map((x) => x.requests));
    assert.equal(counts.size, 1, `arrivals differ between policies: ${[...counts].join(', ')}`);
  });
});
