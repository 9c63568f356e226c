import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/index.js';
import { parseEndpointFile } from '../../src/config/endpoint-file.js';

const withCluster = (cluster: Record<string, unknown>, root: Record<string, unknown> = {}) =>
  validateConfig({ listeners: [{ name: 'web', port: 8080, routes: [{ cluster: 'c' }] }], clusters: [{ name: 'c', ...cluster }], ...root });

const errors = (r: ReturnType<typeof validateConfig>) => (r.ok ? [] : r.errors);

describe('config: discovery', () => {
  it('a DNS source fills its defaults, and needs no endpoints', () => {
    const r = withCluster({ discovery: { dns: { name: 'api.internal', port: 8080 } } });
    assert.ok(r.ok, JSON.stringify(errors(r)));
    assert.deepEqual(r.config.clusters[0]?.discovery, {
      dns: { name: 'api.internal', type: 'A', port: 8080, refresh: 'ttl', min_ttl: 5_000, max_ttl: 300_000, timeout: 2_000 },
      on_empty: 'keep',
      min_change_interval: 5_000,
      max_removal_percent: 100,
      hold_for: 300_000,
    });
  });

  it('hold_for: a duration, or never (held until a reload)', () => {
    const hold = (v: unknown) => {
      const r = withCluster({ discovery: { file: { path: 'x.yaml' }, hold_for: v } });
      return r.ok ? r.config.clusters[0]?.discovery?.hold_for : r.errors;
    };
    assert.equal(hold('90s'), 90_000);
    assert.equal(hold('never'), Infinity);
    assert.deepEqual(hold('0s'), ['clusters[0].discovery.hold_for: expected a duration like "5m", or "never", got "0s"']);
    assert.deepEqual(hold('forever'), ['clusters[0].discovery.hold_for: expected a duration like "5m", or "never", got "forever"']);
  });

  it('says clearly what is wrong, by path', () => {
    assert.deepEqual(errors(withCluster({ discovery: { dns: { name: 'api.internal', type: 'SRV', port: 80, refresh: 'often', min_ttl: '1m', max_ttl: '10s', resolver: 'dns.internal:53' } } })), [
      'clusters[0].discovery.dns.refresh: expected "ttl" or a duration like "30s", got "often"',
      'clusters[0].discovery.dns.resolver: expected an IP address and port like "10.0.0.2:53", got "dns.internal:53"',
      'clusters[0].discovery.dns.port: not for SRV: each SRV record names its port',
      'clusters[0].discovery.dns.max_ttl: must be >= min_ttl (1m), got 10s',
    ]);
    assert.deepEqual(errors(withCluster({ discovery: { dns: { name: 'api.internal' } } })), ['clusters[0].discovery.dns.port: required for A records: the port every address listens on']);
    assert.deepEqual(errors(withCluster({ discovery: { dns: { name: 'api.internal', port: 1 }, file: { path: 'x.yaml' } } })), [
      'clusters[0].discovery: expected exactly one of dns, file; got dns and file',
    ]);
    assert.deepEqual(errors(withCluster({ discovery: { file: { path: 'x.yaml' }, on_empty: 'drop', max_removal_percent: 150 } })), [
      'clusters[0].discovery.on_empty: expected one of keep, clear; got "drop"',
      'clusters[0].discovery.max_removal_percent: must be >= 0 and <= 100, got 150',
    ]);
    assert.deepEqual(errors(withCluster({})), ['clusters[0]: needs "endpoints" or "localities" listing at least one endpoint, or "discovery" to find them']);
  });

  it('is accepted with more than one worker (the primary asks the sources for all of them)', () => {
    assert.deepEqual(errors(withCluster({ discovery: { file: { path: 'x.yaml' } } }, { workers: 2 })), []);
  });
});

describe('endpoint files', () => {
  it('reads a YAML or JSON list, ids defaulting to addresses', () => {
    const y = parseEndpointFile('- address: 10.0.0.1:80\n- { address: "10.0.0.2:80", id: b, weight: 3, locality: { region: eu, priority: 1 } }\n', 'yaml', 'f.yaml');
    assert.deepEqual(y, {
      ok: true,
      endpoints: [
        { id: '10.0.0.1:80', address: '10.0.0.1:80', weight: 1 },
        { id: 'b', address: '10.0.0.2:80', weight: 3, locality: { priority: 1, region: 'eu' } },
      ],
    });
    assert.deepEqual(parseEndpointFile('[{"address": "[::1]:80"}]', 'json', 'f.json'), { ok: true, endpoints: [{ id: '[::1]:80', address: '[::1]:80', weight: 1 }] });
    assert.deepEqual(parseEndpointFile('', 'yaml', 'f.yaml'), { ok: true, endpoints: [] });
  });

  it('refuses a broken file with every reason', () => {
    assert.deepEqual(parseEndpointFile('- address: 10.0.0.1:80\n- address: 10.0.0.1:80\n  wieght: 2\n', 'yaml', 'f.yaml'), {
      ok: false,
      error: 'f.yaml: [1].wieght: unknown key (did you mean "weight"?)\nf.yaml: [1].address: duplicate endpoint id "10.0.0.1:80" (first at [0])',
    });
    assert.equal(parseEndpointFile('[{"address": "10.0.0.1:80"', 'json', 'f.json').ok, false);
    assert.deepEqual(parseEndpointFile('{ address: 10.0.0.1:80 }', 'yaml', 'f.yaml'), { ok: false, error: 'f.yaml: (root): expected a list, got a mapping' });
  });
});
