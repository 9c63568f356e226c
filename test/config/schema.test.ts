import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errors, valid } from './helpers.js';
import { POLICY_NAMES } from '../../src/core/types.js';
import { clusterEndpoints, POLICIES, validateConfig } from '../../src/config/index.js';

type Json = Record<string, unknown>;

/** A small valid config; each test breaks one thing. */
function base(): { listeners: Json[]; clusters: Json[]; admin?: Json } {
  return {
    listeners: [{ name: 'web', port: 8080, routes: [{ cluster: 'api' }] }],
    clusters: [{ name: 'api', endpoints: [{ address: '127.0.0.1:9001' }] }],
  };
}

function cluster0(c: { clusters: Json[] }): Json {
  const first = c.clusters[0];
  assert.ok(first);
  return first;
}

describe('defaults', () => {
  it('fills in every documented default', () => {
    const config = valid(base());
    assert.deepEqual(config.admin, { address: '127.0.0.1', port: 9901, allowed_hosts: [] });
    const l = config.listeners[0];
    assert.ok(l && l.protocol === 'http');
    assert.equal(l.address, '0.0.0.0');
    assert.deepEqual(l.routes[0], { match: {}, cluster: 'api', request_body_buffer_bytes: 65_536, upgrades: ['websocket'] });

    const c = config.clusters[0];
    assert.ok(c);
    assert.equal(c.policy, 'round_robin');
    assert.deepEqual(c.least_request, { choice_count: 2, active_request_bias: 1 });
    assert.deepEqual(c.peak_ewma, { decay: 10_000, penalty: 1_000 });
    assert.deepEqual(c.prequal, { probes: 3, pool: 16, max_age: 1_000, rif_quantile: 2 ** -0.25 });
    assert.deepEqual(c.predictive, { candidates: 3, forgetting: 0.98 });
    assert.deepEqual(c.ring_hash, { min_ring_size: 1024, max_ring_size: 8_388_608 });
    assert.deepEqual(c.maglev, { table_size: 65537 });
    assert.equal(c.panic_threshold, 50);
    assert.deepEqual(c.retries, {
      attempts: 1,
      retry_on: ['connect_failure', 'reset'],
      budget: { percent: 20, min_per_second: 3 },
      grpc_buffer_bytes: 65_536,
    });
    assert.deepEqual(c.timeouts, { connect: 1_000, request: 15_000, idle: 4_000 });
    assert.deepEqual(l.timeouts, { request_headers: 10_000, idle: 60_000 });
    assert.equal(config.workers, 1);
    assert.deepEqual(config.trusted_proxies, []);
    assert.deepEqual(config.access_log, { enabled: true, path: '-' });
    assert.equal(config.drain_timeout, 30_000);
    assert.equal(config.max_connections, 10_000);
    assert.equal(l.max_connections, undefined);
    assert.deepEqual(c.circuit_breaker, {
      max_connections: 1024,
      max_pending_requests: 1024,
      max_requests: 1024,
      max_retries: 3,
    });
    assert.deepEqual(c.connect_failure_ejection, { consecutive_failures: 1, base_ejection_time: 1_000, max_ejection_time: 30_000 });
    assert.deepEqual(c.endpoints, [{ id: '127.0.0.1:9001', address: '127.0.0.1:9001', host: '127.0.0.1', port: 9001, weight: 1 }]);
    // Absent means off for these.
    assert.equal(c.health_check, undefined);
    assert.equal(c.outlier_detection, undefined);
    assert.equal(c.slow_start, undefined);
    assert.equal(c.hash, undefined);
  });

  it('fills in the defaults inside optional blocks when the block is present', () => {
    const c = base();
    Object.assign(cluster0(c), { health_check: {}, outlier_detection: {}, slow_start: {} });
    const out = valid(c).clusters[0];
    assert.deepEqual(out?.health_check, {
      type: 'http',
      path: '/healthz',
      expected_statuses: [{ min: 200, max: 399 }],
      interval: 5_000,
      timeout: 1_000,
      jitter: 0.1,
      healthy_threshold: 2,
      unhealthy_threshold: 3,
    });
    assert.deepEqual(out?.outlier_detection, {
      enabled: true,
      consecutive_5xx: 5,
      consecutive_gateway_errors: 5,
      interval: 10_000,
      base_ejection_time: 30_000,
      max_ejection_time: 300_000,
      max_ejection_percent: 10,
    });
    assert.deepEqual(out?.slow_start, { window: 30_000, aggression: 1, min_weight_percent: 10 });
  });
});

describe('error messages', () => {
  it('names the exact path of a bad duration, with the exact message', () => {
    const c = base();
    c.clusters.push({ name: 'db', endpoints: [{ address: 'db:5432' }], health_check: { interval: 'fast' } });
    assert.deepEqual(errors(c), ['clusters[1].health_check.interval: expected a duration like "2s", got "fast"']);
  });

  it('shows a non-string duration unquoted', () => {
    const c = base();
    Object.assign(cluster0(c), { timeouts: { connect: 5 } });
    assert.deepEqual(errors(c), ['clusters[0].timeouts.connect: expected a duration like "2s", got 5']);
  });

  it('lists the allowed values of an enum', () => {
    const c = base();
    cluster0(c)['policy'] = 'fastest';
    assert.deepEqual(errors(c), [
      'clusters[0].policy: expected one of round_robin, random, least_request, peak_ewma, ring_hash, maglev, prequal, predictive; got "fastest"',
    ]);
  });

  it('reports an unknown key at its own path, suggesting the likely key', () => {
    const c = base();
    cluster0(c)['helth_check'] = { interval: '5s' };
    c.admin = { prot: 1 };
    assert.deepEqual(errors(c), [
      'admin.prot: unknown key (did you mean "port"?)',
      'clusters[0].helth_check: unknown key (did you mean "health_check"?)',
    ]);
  });

  it('reports an unknown key with no look-alike plainly', () => {
    const c = base() as Json;
    c['frobnicate'] = true;
    assert.deepEqual(errors(c), ['frobnicate: unknown key']);
  });

  it('says "required" for a missing key and names the type for a wrong one', () => {
    assert.deepEqual(errors({ listeners: [{ name: 'web', routes: [{ cluster: 'api' }] }], clusters: 'api' }), [
      'listeners[0].port: required',
      'clusters: expected a list, got "api"',
    ]);
  });

  it('reports every mistake at once, with the cross-reference check still running', () => {
    const c = {
      listeners: [
        { name: 'web', port: 70000, routes: [{ cluster: 'apii' }] },
        { name: 'db', protocol: 'udp', port: 5432, cluster: 'db' },
      ],
      clusters: [
        {
          name: 'api',
          policy: 'maglev',
          maglev: { table_size: 1000 },
          endpoints: [{ address: '127.0.0.1:9001', weight: 0 }, { address: 'nope' }],
          health_check: { interval: '1s', timeout: '2s', jitter: 0.1 },
          retries: { retry_on: ['reset', 404] },
        },
      ],
    };
    const got = errors(c);
    const expected = [
      'listeners[0].port: must be between 0 and 65535, got 70000',
      'listeners[1].protocol: expected one of http, https, tcp; got "udp"',
      'clusters[0].maglev.table_size: must be a prime number (e.g. 65537), got 1000',
      'clusters[0].endpoints[0].weight: must be between 1 and 10000, got 0',
      'clusters[0].endpoints[1].address: expected "host:port" (IPv6 as "[::1]:port"), got "nope"',
      'clusters[0].health_check.jitter: expected a percentage from "0%" to "100%", got 0.1',
      'clusters[0].retries.retry_on[1]: expected one of connect_failure, reset, timeout, 5xx, gateway_error, cancelled, deadline_exceeded, resource_exhausted, internal, unavailable or a status 500-599; got 404',
      'listeners[0].routes[0].cluster: unknown cluster "apii" (did you mean "api"?)',
      'listeners[1].cluster: unknown cluster "db" (defined: api)',
    ];
    for (const e of expected) assert.ok(got.includes(e), `missing: ${e}\ngot:\n${got.join('\n')}`);
    assert.equal(got.length, expected.length, got.join('\n'));
  });
});

describe('cross-field checks', () => {
  it('refuses duplicate listener and cluster names, pointing at the repeat', () => {
    const c = base();
    c.listeners.push({ name: 'web', port: 8081, routes: [{ cluster: 'api' }] });
    c.clusters.push({ name: 'api', endpoints: [{ address: '127.0.0.1:9002' }] });
    assert.deepEqual(errors(c), [
      'listeners[1].name: duplicate listener name "web" (first at listeners[0])',
      'clusters[1].name: duplicate cluster name "api" (first at clusters[0])',
    ]);
  });

  it('refuses two listeners on one address and port, but not on port 0', () => {
    const c = base();
    c.listeners.push({ name: 'web2', port: 8080, routes: [{ cluster: 'api' }] });
    assert.deepEqual(errors(c), ['listeners[1].port: duplicate listen address "0.0.0.0 port 8080" (first at listeners[0])']);
    const d = base();
    d.listeners = [
      { name: 'a', port: 0, routes: [{ cluster: 'api' }] },
      { name: 'b', port: 0, routes: [{ cluster: 'api' }] },
    ];
    valid(d);
  });

  it('requires routes on http listeners and a cluster on tcp ones, and not the other', () => {
    const c = base();
    c.listeners = [
      { name: 'h', port: 1, cluster: 'api' },
      { name: 'h2', port: 2, routes: [] },
      { name: 't', port: 3, protocol: 'tcp', routes: [{ cluster: 'api' }] },
    ];
    assert.deepEqual(errors(c), [
      'listeners[0].routes: required for http listeners',
      'listeners[0].cluster: only for tcp listeners; an http listener picks clusters in its routes',
      'listeners[1].routes: an http listener needs at least one route',
      'listeners[2].cluster: required for tcp listeners',
      'listeners[2].routes: only for http listeners; a tcp listener forwards to its "cluster"',
    ]);
  });

  it('gives tcp listeners their cluster in a typed output', () => {
    const c = base();
    c.listeners.push({ name: 'pg', protocol: 'tcp', port: 5432, cluster: 'api' });
    const l = valid(c).listeners[1];
    assert.ok(l && l.protocol === 'tcp');
    assert.equal(l.cluster, 'api');
  });

  it('checks maglev table_size is prime', () => {
    for (const [size, ok] of [[65537, true], [65536, false], [5_000_011, true], [1, false], [2, true], [9, false]] as const) {
      const c = base();
      Object.assign(cluster0(c), { policy: 'maglev', maglev: { table_size: size } });
      assert.equal(validateConfig(c).ok, ok, String(size));
    }
  });

  it('checks the maglev table has room for every endpoint', () => {
    const c = base();
    Object.assign(cluster0(c), {
      policy: 'maglev',
      maglev: { table_size: 3 },
      endpoints: [1, 2, 3, 4].map((i) => ({ address: `10.0.0.${i}:80` })),
    });
    assert.deepEqual(errors(c), ['clusters[0].maglev.table_size: must be >= the number of endpoints (4), got 3']);
  });

  it('wants endpoints or localities, not both, not neither', () => {
    const both = base();
    cluster0(both)['localities'] = [{ region: 'eu', endpoints: [{ address: '10.0.0.1:80' }] }];
    assert.deepEqual(errors(both), [
      'clusters[0].localities: has both "endpoints" and "localities"; use one (put every endpoint in a locality)',
    ]);
    const neither = base();
    delete cluster0(neither)['endpoints'];
    assert.deepEqual(errors(neither), ['clusters[0]: needs "endpoints" or "localities" listing at least one endpoint, or "discovery" to find them']);
    const empty = base();
    cluster0(empty)['endpoints'] = [];
    assert.deepEqual(errors(empty), ['clusters[0].endpoints: must list at least one endpoint']);
  });

  it('wants endpoint ids unique within a cluster, across localities too', () => {
    const c = base();
    delete cluster0(c)['endpoints'];
    cluster0(c)['localities'] = [
      { region: 'eu', endpoints: [{ address: '10.0.0.1:80', id: 'a' }, { address: '10.0.0.2:80' }] },
      { region: 'us', priority: 1, endpoints: [{ address: '10.0.0.3:80', id: 'a' }, { address: '10.0.0.2:80' }] },
    ];
    assert.deepEqual(errors(c), [
      'clusters[0].localities[1].endpoints[0].id: duplicate endpoint id "a" (first at localities[0].endpoints[0])',
      'clusters[0].localities[1].endpoints[1].address: duplicate endpoint id "10.0.0.2:80" (first at localities[0].endpoints[1]); an endpoint\'s id defaults to its address, set "id" to tell them apart',
    ]);
  });

  it('flattens localities for clusterEndpoints', () => {
    const c = base();
    delete cluster0(c)['endpoints'];
    cluster0(c)['localities'] = [
      { region: 'eu', endpoints: [{ address: '10.0.0.1:80' }] },
      { region: 'us', zone: 'us-east-1a', endpoints: [{ address: '[::1]:80' }] },
    ];
    const out = valid(c).clusters[0];
    assert.ok(out);
    assert.deepEqual(clusterEndpoints(out).map((e) => [e.host, e.port]), [['10.0.0.1', 80], ['::1', 80]]);
  });

  it('wants health check timeout shorter than interval', () => {
    const c = base();
    cluster0(c)['health_check'] = { interval: '1s', timeout: '1s' };
    assert.deepEqual(errors(c), ['clusters[0].health_check.timeout: must be shorter than interval (1s), got 1s']);
  });

  it('wants min_ring_size <= max_ring_size and base <= max ejection time', () => {
    const c = base();
    Object.assign(cluster0(c), {
      ring_hash: { min_ring_size: 4096, max_ring_size: 1024 },
      outlier_detection: { base_ejection_time: '1m', max_ejection_time: '30s' },
    });
    assert.deepEqual(errors(c), [
      'clusters[0].ring_hash.min_ring_size: must be <= max_ring_size (1024), got 4096',
      'clusters[0].outlier_detection.max_ejection_time: must be >= base_ejection_time (1m), got 30s',
    ]);
  });

  it('refuses a connect-failure ejection whose cap is below its base', () => {
    const c = base();
    Object.assign(cluster0(c), { connect_failure_ejection: { base_ejection_time: '10s', max_ejection_time: '5s' } });
    assert.deepEqual(errors(c), ['clusters[0].connect_failure_ejection.max_ejection_time: must be >= base_ejection_time (10s), got 5s']);
  });
});

describe('field conversions', () => {
  it('converts route matches into tagged unions', () => {
    const c = base();
    c.listeners = [
      {
        name: 'web',
        port: 80,
        routes: [
          {
            match: {
              host: 'API.example.com',
              path: { regex: '^/v[0-9]+/' },
              methods: ['GET'],
              headers: [{ name: 'X-Canary', exact: '1' }, { name: 'x-debug', present: false }],
            },
            cluster: 'api',
            timeout: '250ms',
          },
        ],
      },
    ];
    const l = valid(c).listeners[0];
    assert.ok(l && l.protocol === 'http');
    assert.deepEqual(l.routes[0], {
      match: {
        host: ['api.example.com'],
        path: { kind: 'regex', value: '^/v[0-9]+/' },
        methods: ['GET'],
        headers: [
          { name: 'x-canary', kind: 'exact', value: '1' },
          { name: 'x-debug', kind: 'present', present: false },
        ],
      },
      cluster: 'api',
      timeout: 250,
      request_body_buffer_bytes: 65_536,
      upgrades: ['websocket'],
    });
  });

  it('takes request_body_buffer_bytes as a whole number of bytes, 0 (off) to 16 MiB', () => {
    const c = base();
    c.listeners = [
      {
        name: 'web',
        port: 80,
        routes: [
          { cluster: 'api', request_body_buffer_bytes: 0 },
          { cluster: 'api', request_body_buffer_bytes: 16_777_216 },
          { cluster: 'api', request_body_buffer_bytes: 16_777_217 },
          { cluster: 'api', request_body_buffer_bytes: -1 },
          { cluster: 'api', request_body_buffer_bytes: '64KiB' },
        ],
      },
    ];
    assert.deepEqual(errors(c), [
      'listeners[0].routes[2].request_body_buffer_bytes: must be between 0 and 16777216, got 16777217',
      'listeners[0].routes[3].request_body_buffer_bytes: must be between 0 and 16777216, got -1',
      'listeners[0].routes[4].request_body_buffer_bytes: expected a number, got "64KiB"',
    ]);
  });

  it('names a regex that does not compile, and wants exactly one path condition', () => {
    const c = base();
    c.listeners = [
      {
        name: 'web',
        port: 80,
        routes: [
          { match: { path: { regex: '([a-z' } }, cluster: 'api' },
          { match: { path: {} }, cluster: 'api' },
          { match: { host: '*.', headers: [{ name: 'x', exact: 'a', present: true }] }, cluster: 'api' },
        ],
      },
    ];
    const got = errors(c);
    assert.match(got[0] ?? '', /^listeners\[0\]\.routes\[0\]\.match\.path\.regex: does not compile: Invalid regular expression: \/\(\[a-z\//);
    assert.deepEqual(got.slice(1), [
      'listeners[0].routes[1].match.path: expected exactly one of exact, prefix, regex; got none',
      'listeners[0].routes[2].match.host: expected a host like "api.example.com" or "*.example.com", got "*."',
      'listeners[0].routes[2].match.headers[0]: expected exactly one of exact, regex, present; got exact and present',
    ]);
  });

  it('converts hash keys, statuses, jitter and retry conditions', () => {
    const c = base();
    Object.assign(cluster0(c), {
      policy: 'ring_hash',
      hash: { key: { header: 'X-User-Id' }, bounded_load: 1.25 },
      health_check: { expected_statuses: [204, '200-299', '3xx'], jitter: '0%' },
      retries: { retry_on: ['5xx', 503, '504'] },
    });
    const out = valid(c).clusters[0];
    assert.deepEqual(out?.hash, { key: { kind: 'header', name: 'x-user-id' }, bounded_load: 1.25 });
    assert.deepEqual(out?.health_check?.expected_statuses, [{ min: 204, max: 204 }, { min: 200, max: 299 }, { min: 300, max: 399 }]);
    assert.equal(out?.health_check?.jitter, 0);
    assert.deepEqual(out?.retries.retry_on, ['5xx', 503, 504]);
  });

  it('wants bounded_load above 1 and exactly one hash key source', () => {
    const c = base();
    Object.assign(cluster0(c), { hash: { key: { source_ip: true, path: true }, bounded_load: 1 } });
    assert.deepEqual(errors(c), [
      'clusters[0].hash.key: expected exactly one of header, cookie, source_ip, path; got source_ip and path',
      'clusters[0].hash.bounded_load: must be > 1, got 1',
    ]);
  });

  it('refuses zero and over-long durations where they make no sense', () => {
    const c = base();
    Object.assign(cluster0(c), { timeouts: { connect: '0s', request: '600h', idle: '0s' } });
    assert.deepEqual(errors(c), [
      'clusters[0].timeouts.connect: must be longer than 0s',
      'clusters[0].timeouts.request: must be at most 596h, got "600h"',
      'clusters[0].timeouts.idle: must be longer than 0s',
    ]);
  });

  it('checks trusted proxies, workers and rate limits', () => {
    const c = base() as Record<string, unknown>;
    Object.assign(c, { trusted_proxies: ['10.0.0.0/8', '::1', '192.168.1.1/33', 'proxy.local'], workers: 0 });
    const listener = (c['listeners'] as Record<string, unknown>[])[0]!;
    const route = (listener['routes'] as Record<string, unknown>[])[0]!;
    Object.assign(route, { rate_limit: { requests_per_second: 0, per: 'user' } });
    assert.deepEqual(errors(c), [
      'workers: must be between 1 and 256, got 0',
      'trusted_proxies[2]: expected an IP address or CIDR like "10.0.0.0/8", got "192.168.1.1/33"',
      'trusted_proxies[3]: expected an IP address or CIDR like "10.0.0.0/8", got "proxy.local"',
      'listeners[0].routes[0].rate_limit.requests_per_second: must be > 0, got 0',
      'listeners[0].routes[0].rate_limit.per: expected one of route, client_ip; got "user"',
    ]);
  });

  it('refuses whole-number fields given fractions', () => {
    const c = base();
    Object.assign(cluster0(c), { least_request: { choice_count: 2.5 } });
    assert.deepEqual(errors(c), ['clusters[0].least_request.choice_count: expected a whole number, got 2.5']);
  });

  it('names the prequal and predictive fields out of range', () => {
    const c = base();
    Object.assign(cluster0(c), { policy: 'prequal', prequal: { probes: 0, rif_quantile: 0 }, predictive: { forgetting: 1.5 } });
    assert.deepEqual(errors(c), [
      'clusters[0].prequal.probes: must be between 1 and 16, got 0',
      'clusters[0].prequal.rif_quantile: must be > 0 and <= 1, got 0',
      'clusters[0].predictive.forgetting: must be > 0 and <= 1, got 1.5',
    ]);
  });

  it('accepts IPv6 endpoints only in brackets, and ports 1..65535', () => {
    for (const [address, ok] of [
      ['[::1]:80', true],
      ['[2001:db8::1]:65535', true],
      ['backend.internal:8080', true],
      ['::1:80', false],
      ['[nope]:80', false],
      ['127.0.0.1:0', false],
      ['127.0.0.1:65536', false],
    ] as const) {
      const c = base();
      cluster0(c)['endpoints'] = [{ address }];
      assert.equal(validateConfig(c).ok, ok, address);
    }
  });
});

describe('bind addresses', () => {
  it('are IP literals or localhost: a name that resolves nowhere ("on") would pass here and fail at start', () => {
    for (const [address, ok] of [
      ['127.0.0.1', true],
      ['0.0.0.0', true],
      ['::', true],
      ['::1', true],
      ['localhost', true],
      ['on', false],
      ['admin.internal', false],
      ['[::1]', false],
      ['127.0.0.1:9901', false],
    ] as const) {
      const c = { ...base(), admin: { address } };
      assert.equal(validateConfig(c).ok, ok, address);
    }
    assert.deepEqual(errors({ ...base(), admin: { address: 'on' } }), ['admin.address: expected an IP address (e.g. 127.0.0.1, 0.0.0.0, ::1) or "localhost", got "on"']);
    const l = base();
    Object.assign(l.listeners[0] as Json, { address: 'web.internal' });
    assert.deepEqual(errors(l), ['listeners[0].address: expected an IP address (e.g. 127.0.0.1, 0.0.0.0, ::1) or "localhost", got "web.internal"']);
  });

  it('refuses the admin API, a sample backend or the DNS responder on a port a listener takes', () => {
    const admin = { ...base(), admin: { port: 8080 } };
    assert.deepEqual(errors(admin), ['listeners[0].port: listen address "0.0.0.0 port 8080" overlaps "127.0.0.1 port 8080" at admin: a wildcard address takes the port on every address']);
    const sample = { ...base(), sample_backends: [{ name: 's', port: 8080 }] };
    assert.deepEqual(errors(sample), ['sample_backends[0].port: listen address "127.0.0.1 port 8080" overlaps "0.0.0.0 port 8080" at listeners[0]: a wildcard address takes the port on every address']);
    const dns = {
      ...base(),
      listeners: [{ name: 'web', address: '127.0.0.1', port: 5353, routes: [{ cluster: 'api' }] }],
      global: { dns: { port: 5353, zone: 'm.test' }, regions: [{ name: 'r', location: { lat: 0, lon: 0 }, addresses: ['127.0.0.2'] }], hostnames: [{ name: 'www.m.test', policy: 'geo' }] },
    };
    assert.deepEqual(errors(dns), ['global.dns.port: duplicate listen address "127.0.0.1 port 5353" (first at listeners[0])']);
  });

  it('lets the same port be bound on two different addresses, and on :: only once', () => {
    const two = base();
    two.listeners = [
      { name: 'a', address: '127.0.0.1', port: 8080, routes: [{ cluster: 'api' }] },
      { name: 'b', address: '127.0.0.2', port: 8080, routes: [{ cluster: 'api' }] },
      { name: 'c', address: '::1', port: 8080, routes: [{ cluster: 'api' }] },
    ];
    valid(two);
    two.listeners.push({ name: 'd', address: '::', port: 8080, routes: [{ cluster: 'api' }] });
    assert.deepEqual(errors(two), ['listeners[3].port: listen address ":: port 8080" overlaps "127.0.0.1 port 8080" at listeners[0]: a wildcard address takes the port on every address']);
  });
});

describe('policies', () => {
  it('are the ones src/core implements', () => {
    assert.deepEqual([...POLICIES].sort(), [...POLICY_NAMES].sort());
  });
});

describe('paths', () => {
  it('refuses spaces and control characters in a path', () => {
    const r = validateConfig({
      listeners: [{ name: 'l', port: 0, routes: [{ cluster: 'c' }] }],
      clusters: [{ name: 'c', endpoints: [{ address: '127.0.0.1:1' }], health_check: { path: '/health z' } }],
    });
    assert.equal(r.ok, false);
    assert.deepEqual(r.ok ? [] : r.errors, ['clusters[0].health_check.path: must not contain spaces or control characters (percent-encode them), got "/health z"']);
  });
});
