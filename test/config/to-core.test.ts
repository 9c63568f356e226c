import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, SeededRng } from '../../src/core/index.js';
import { buildCluster, coreClusterOptions, coreEndpoints, coreHashKey, loadConfigFile, parseConfigText, type Config } from '../../src/config/index.js';

async function example(): Promise<Config> {
  const r = await loadConfigFile('examples/meridian.yaml', { env: {} });
  if (!r.ok) throw new Error(`example did not load: ${JSON.stringify(r)}`);
  return r.config;
}

describe('config -> core', () => {
  it('builds a working core Cluster for every cluster of the example config', async () => {
    const config = await example();
    for (const c of config.clusters) {
      const cluster = buildCluster(c, new ManualClock(), new SeededRng(1));
      assert.equal(cluster.policy, c.policy);
      assert.equal(cluster.hosts.length, coreEndpoints(c).length);
      assert.ok(cluster.pick({ hash: 12345 }), `${c.name} picks a host`);
    }
  });

  it('carries weights, durations and thresholds into the core options', async () => {
    const api = (await example()).clusters.find((c) => c.name === 'api')!;
    const o = coreClusterOptions(api, new ManualClock(), new SeededRng(1));
    assert.equal(o.policy, 'round_robin');
    assert.deepEqual(o.slowStart, { windowMs: 30_000, aggression: 1, minWeightPercent: 10 });
    assert.equal(o.outlierDetection?.consecutiveGatewayErrors, 3);
    assert.equal(o.outlierDetection?.baseEjectionMs, 30_000);
    assert.deepEqual(o.activeChecks, { healthyThreshold: 2, unhealthyThreshold: 3 });
    // Weights 1, 1, 2 in nginx's smooth order. Currents after adding weights, per round:
    // [1,1,2] -> api-3; [2,2,0] -> api-1; [-1,3,2] -> api-2; [0,0,4] -> api-3; then it repeats.
    const cluster = buildCluster(api, new ManualClock(), new SeededRng(1));
    assert.deepEqual(Array.from({ length: 8 }, () => cluster.pick()!.endpoint.id), ['api-3', 'api-1', 'api-2', 'api-3', 'api-3', 'api-1', 'api-2', 'api-3']);
  });

  it('maps the hash key and bounded load of a hash cluster', async () => {
    const sessions = (await example()).clusters.find((c) => c.name === 'sessions')!;
    assert.deepEqual(coreHashKey(sessions.hash!.key!), { header: 'x-user-id' });
    assert.equal(coreClusterOptions(sessions, new ManualClock(), new SeededRng(1)).boundedLoad, 1.25);
  });

  it('keeps localities on the endpoints', () => {
    const r = parseConfigText(
      [
        'listeners: [{ name: l, port: 0, routes: [{ cluster: c }] }]',
        'clusters:',
        '  - name: c',
        '    localities:',
        '      - { region: eu, zone: eu-1a, priority: 1, endpoints: [{ address: "127.0.0.1:1" }] }',
        '      - { region: us, priority: 2, weight: 3, max_requests_per_second: 50, max_in_flight: 9, remote: true, endpoints: [{ address: "127.0.0.1:2" }] }',
      ].join('\n'),
      { filename: 'inline.yaml' },
    );
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(coreEndpoints(r.config.clusters[0]!), [
      { id: '127.0.0.1:1', address: '127.0.0.1:1', weight: 1, locality: { region: 'eu', zone: 'eu-1a', priority: 1, remote: false } },
      { id: '127.0.0.1:2', address: '127.0.0.1:2', weight: 1, locality: { region: 'us', priority: 2, weight: 3, maxRequestsPerSecond: 50, maxInFlight: 9, remote: true } },
    ]);
  });

  it('turns connect-failure ejection on by default, and off at 0 consecutive failures', () => {
    const options = (extra: string) => {
      const r = parseConfigText(`listeners: [{ name: l, port: 0, routes: [{ cluster: c }] }]\nclusters: [{ name: c, endpoints: [{ address: "127.0.0.1:1" }]${extra} }]`, { filename: 'inline.yaml' });
      assert.ok(r.ok, JSON.stringify(r));
      return coreClusterOptions(r.config.clusters[0]!, new ManualClock(), new SeededRng(1)).connectFailureEjection;
    };
    assert.deepEqual(options(''), { consecutiveFailures: 1, baseEjectionMs: 1_000, maxEjectionMs: 30_000 });
    assert.equal(options(', connect_failure_ejection: { consecutive_failures: 0 }')?.consecutiveFailures, 0);
  });

  it('leaves outlier detection off when disabled', () => {
    const r = parseConfigText(
      'listeners: [{ name: l, port: 0, routes: [{ cluster: c }] }]\nclusters: [{ name: c, endpoints: [{ address: "127.0.0.1:1" }], outlier_detection: { enabled: false } }]',
      { filename: 'inline.yaml' },
    );
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(coreClusterOptions(r.config.clusters[0]!, new ManualClock(), new SeededRng(1)).outlierDetection, undefined);
  });
});
