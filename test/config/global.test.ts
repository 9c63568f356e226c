// The `global:` block: defaults, every cross-field rule, and a DNS-only config.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { errors, valid } from './helpers.js';
import { parseConfigText } from '../../src/config/index.js';
import { REUSE_PORT } from '../../src/config/index.js';
import { loadUdpBatch } from '../../src/shared/udp-batch-addon.js';

type Json = Record<string, unknown>;

function globalBlock(over: Json = {}): Json {
  return {
    dns: { zone: 'meridian.test', port: 0 },
    regions: [
      { name: 'us-east', location: { lat: 39, lon: -77.5 }, addresses: ['127.0.0.11'] },
      { name: 'eu-west', location: { lat: 53.3, lon: -6.3 }, addresses: ['127.0.0.12', '::1'] },
    ],
    hostnames: [{ name: 'www.meridian.test' }],
    ...over,
  };
}

describe('global config', () => {
  it('a config with only `global` is valid; defaults are filled in', () => {
    const c = valid({ global: globalBlock() });
    assert.deepEqual(c.listeners, []);
    assert.deepEqual(c.clusters, []);
    const g = c.global;
    assert.ok(g);
    assert.deepEqual(g.dns, {
      address: '127.0.0.1',
      port: 0,
      zone: 'meridian.test',
      ttl: 30_000,
      ns: ['ns1.meridian.test'],
      ns_addresses: {},
      soa: { mname: 'ns1.meridian.test', rname: 'hostmaster.meridian.test', serial: 1, refresh: 3_600_000, retry: 600_000, expire: 604_800_000, minimum: 30_000 },
      tcp_idle_timeout: 10_000,
      max_tcp_connections: 1000,
      udp_sockets: 1,
      udp_engine: 'auto',
    });
    assert.deepEqual(g.hostnames, [{ name: 'www.meridian.test', policy: 'geo' }]);
    assert.deepEqual(g.geo, { cidrs: [] });
    assert.deepEqual(g.latency, { decay: 60_000, max_age: 600_000, max_subnets: 100_000 });
  });

  it('udp_sockets above 1 with udp_engine dgram is refused on a Node without dgram reusePort', { skip: REUSE_PORT ? 'this Node has reusePort' : false }, () => {
    assert.deepEqual(errors({ global: globalBlock({ dns: { zone: 'meridian.test', port: 0, udp_sockets: 2, udp_engine: 'dgram' } }) }), [
      `global.dns.udp_sockets: above 1 needs the batch engine (udp_engine: dgram) or dgram reusePort (Node 22.12 or 23.1 and later); this is Node ${process.versions.node}`,
    ]);
  });

  it('udp_sockets above 1 is taken on any Node when the batch engine loads', { skip: 'addon' in loadUdpBatch() ? false : 'the udp-batch addon is not built' }, () => {
    assert.equal(valid({ global: globalBlock({ dns: { zone: 'meridian.test', port: 0, udp_sockets: 4 } }) }).global?.dns.udp_sockets, 4);
  });

  it('udp_engine: one of auto, batch, dgram; batch is refused, naming the field and why, when the addon cannot load', () => {
    assert.deepEqual(errors({ global: globalBlock({ dns: { zone: 'meridian.test', port: 0, udp_engine: 'fast' } }) }).length, 1);
    assert.match(errors({ global: globalBlock({ dns: { zone: 'meridian.test', port: 0, udp_engine: 'fast' } }) })[0] as string, /^global\.dns\.udp_engine: /);
    const saved = process.env['MERIDIAN_UDP_BATCH_ADDON'];
    process.env['MERIDIAN_UDP_BATCH_ADDON'] = '/nonexistent/udp_batch.node';
    try {
      assert.deepEqual(errors({ global: globalBlock({ dns: { zone: 'meridian.test', port: 0, udp_engine: 'batch' } }) }), [
        'global.dns.udp_engine: batch needs the native udp-batch addon: /nonexistent/udp_batch.node did not load (Cannot find module \'/nonexistent/udp_batch.node\'); npm run build makes it when a C compiler is present',
      ]);
    } finally {
      if (saved === undefined) delete process.env['MERIDIAN_UDP_BATCH_ADDON'];
      else process.env['MERIDIAN_UDP_BATCH_ADDON'] = saved;
    }
  });

  it('dns.rrl: off when absent; defaults filled; bad values refused with their paths', () => {
    const on = valid({ global: globalBlock({ dns: { zone: 'meridian.test', port: 0, rrl: { responses_per_second: 100 } } }) }).global!;
    assert.deepEqual(on.dns.rrl, { responses_per_second: 100, window: 15_000, slip: 2, ipv4_prefix_length: 24, ipv6_prefix_length: 56, max_prefixes: 100_000 });
    assert.deepEqual(
      errors({ global: globalBlock({ dns: { zone: 'meridian.test', port: 0, rrl: { responses_per_second: 0, slip: 11, ipv4_prefix_length: 33, burst: 5 } } }) }),
      [
        'global.dns.rrl.responses_per_second: must be > 0 and <= 1000000, got 0',
        'global.dns.rrl.slip: must be between 0 and 10, got 11',
        'global.dns.rrl.ipv4_prefix_length: must be between 8 and 32, got 33',
        'global.dns.rrl.burst: unknown key',
      ],
    );
  });

  it('lowercases names and drops trailing dots; fills region health defaults', () => {
    const g = valid({
      global: globalBlock({
        dns: { zone: 'Meridian.Test.', port: 0, ns: ['NS1.Meridian.Test', 'ns.other.example'], ns_addresses: { 'ns1.meridian.test.': ['127.0.0.1'] } },
        hostnames: [{ name: 'WWW.meridian.test.' }],
        regions: [{ name: 'us-east', location: { lat: 39, lon: -77.5 }, addresses: ['127.0.0.11'], health: { url: 'http://127.0.0.11:9901/readyz' } }],
      }),
    }).global!;
    assert.equal(g.dns.zone, 'meridian.test');
    assert.deepEqual(g.dns.ns, ['ns1.meridian.test', 'ns.other.example']);
    assert.deepEqual(g.dns.ns_addresses, { 'ns1.meridian.test': ['127.0.0.1'] });
    assert.equal(g.hostnames[0]?.name, 'www.meridian.test');
    assert.deepEqual(g.regions[0]?.health, { url: 'http://127.0.0.11:9901/readyz', interval: 2000, timeout: 1000, jitter: 0.1, healthy_threshold: 2, unhealthy_threshold: 3 });
  });

  it('still needs listeners without `global`, and clusters with listeners', () => {
    assert.deepEqual(errors({}), ['listeners: must not be empty (or configure "global" for a DNS-only Meridian)']);
    assert.deepEqual(errors({ listeners: [{ name: 'w', port: 1, routes: [{ cluster: 'c' }] }] }), ['clusters: must not be empty']);
  });

  it('refuses duplicate regions and unknown region references, with their paths', () => {
    const e = errors({
      global: globalBlock({
        regions: [
          { name: 'us-east', location: { lat: 39, lon: -77.5 }, addresses: ['127.0.0.11'] },
          { name: 'us-east', location: { lat: 39, lon: -77.5 }, addresses: ['127.0.0.12'] },
        ],
        geo: { cidrs: [{ cidr: '10.0.0.0/8', region: 'eu-wset' }] },
        hostnames: [
          { name: 'a.meridian.test', policy: 'failover', order: ['us-east', 'us-esat'] },
          { name: 'b.meridian.test', policy: 'weighted', weights: { 'ap-south': 2 } },
        ],
      }),
    });
    assert.deepEqual(e, [
      'global.regions[1].name: duplicate region name "us-east" (first at regions[0])',
      'global.hostnames[0].order[1]: unknown region "us-esat" (did you mean "us-east"?)',
      'global.hostnames[1].weights["ap-south"]: unknown region "ap-south" (defined: us-east)',
      'global.geo.cidrs[0].region: unknown region "eu-wset" (defined: us-east)',
    ]);
  });

  it('refuses hostnames outside the zone, duplicates, and policy keys that do not fit', () => {
    const e = errors({
      global: globalBlock({
        hostnames: [
          { name: 'www.example.com' },
          { name: 'meridian.test.evil.com' },
          { name: 'api.meridian.test', policy: 'failover' },
          { name: 'API.meridian.test', policy: 'geo', weights: { 'us-east': 1 } },
          { name: 'x.meridian.test', policy: 'geo', order: ['us-east'] },
        ],
      }),
    });
    assert.deepEqual(e, [
      'global.hostnames[0].name: "www.example.com" is outside the zone "meridian.test" this responder serves',
      'global.hostnames[1].name: "meridian.test.evil.com" is outside the zone "meridian.test" this responder serves',
      'global.hostnames[2].order: required for the failover policy: the regions, most preferred first',
      'global.hostnames[3].name: duplicate hostname "api.meridian.test" (first at hostnames[2])',
      'global.hostnames[3].weights: only for the weighted policy (this hostname\'s policy is "geo")',
      'global.hostnames[4].order: only for the failover policy (this hostname\'s policy is "geo")',
    ]);
    // The zone apex itself may carry steered addresses.
    valid({ global: globalBlock({ hostnames: [{ name: 'meridian.test' }] }) });
  });

  it('refuses bad CIDRs, lat/lon out of range, bad addresses and bad TTLs', () => {
    const e = errors({
      global: globalBlock({
        dns: { zone: 'meridian.test', ttl: '1500ms' },
        regions: [{ name: 'us-east', location: { lat: -91, lon: 180.5 }, addresses: ['127.0.0.256', '10.0.0.0/8'], capacity_rps: -1 }],
        geo: {
          cidrs: [
            { cidr: '10.1.2.3/16', location: { lat: 0, lon: 0 } },
            { cidr: '10.0.0.0/33', location: { lat: 0, lon: 0 } },
            { cidr: 'banana', location: { lat: 0, lon: 0 } },
            { cidr: '2001:db8::/32', location: { lat: 0, lon: 0 } },
            { cidr: '2001:db8::/32', location: { lat: 0, lon: 0 } },
            { cidr: '192.0.2.0/24' },
          ],
        },
      }),
    });
    assert.deepEqual(e, [
      'global.dns.ttl: must be whole seconds (DNS TTLs are), got 1500ms',
      'global.regions[0].location.lat: must be >= -90 and <= 90, got -91',
      'global.regions[0].location.lon: must be >= -180 and <= 180, got 180.5',
      'global.regions[0].addresses[0]: expected an IPv4 or IPv6 address, got "127.0.0.256"',
      'global.regions[0].addresses[1]: expected an IPv4 or IPv6 address, got "10.0.0.0/8"',
      'global.regions[0].capacity_rps: must be > 0, got -1',
      'global.geo.cidrs[0].cidr: expected a CIDR like "10.0.0.0/8": has bits set past /16: did you mean 10.1.0.0/16?',
      'global.geo.cidrs[1].cidr: expected a CIDR like "10.0.0.0/8": prefix length must be 0-32, got "33"',
      'global.geo.cidrs[2].cidr: expected a CIDR like "10.0.0.0/8": not an IP address: "banana"',
      'global.geo.cidrs[5]: expected exactly one of location, region; got none',
      'global.geo.cidrs[4].cidr: duplicate CIDR (first at geo.cidrs[3])',
    ]);
  });

  it('checks region health timing and unknown keys with a suggestion', () => {
    const e = errors({
      global: globalBlock({
        regions: [{ name: 'us-east', location: { lat: 0, lon: 0 }, addresses: ['127.0.0.1'], health: { url: 'ftp://x', interval: '1s', timeout: '1s', unhealthy_treshold: 2 } }],
      }),
    });
    assert.deepEqual(e, [
      'global.regions[0].health.url: expected an http:// or https:// URL, got "ftp://x"',
      'global.regions[0].health.unhealthy_treshold: unknown key (did you mean "unhealthy_threshold"?)',
      'global.regions[0].health.timeout: must be shorter than interval (1s), got 1s',
    ]);
  });
});

describe('docs/global.md', () => {
  it('its YAML config example is valid', () => {
    const blocks = [...readFileSync('docs/global.md', 'utf8').matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    assert.equal(blocks.length, 1);
    const r = parseConfigText(blocks[0]!, { filename: 'docs/global.md' });
    assert.ok(r.ok, JSON.stringify(r));
  });
});
