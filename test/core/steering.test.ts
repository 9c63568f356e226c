// Every steering policy, with its health, spillover and fail-open rules.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CidrTable,
  type CidrLocation,
  type HostnamePolicy,
  ManualClock,
  parseIp,
  RttTable,
  SeededRng,
  steer,
  type SteeringClient,
  type SteeringRegion,
  type SteeringTables,
} from '../../src/core/index.js';

const US = { lat: 39.0, lon: -77.5 };
const EU = { lat: 53.3, lon: -6.3 };
const AP = { lat: 1.35, lon: 103.8 };

function regions(over: Record<string, Partial<SteeringRegion>> = {}): SteeringRegion[] {
  return [
    { name: 'us-east', location: US, healthy: true, ...over['us-east'] },
    { name: 'eu-west', location: EU, healthy: true, ...over['eu-west'] },
    { name: 'ap-southeast', location: AP, healthy: true, ...over['ap-southeast'] },
  ];
}

const cidrs = new CidrTable<CidrLocation>([
  { cidr: '10.1.0.0/16', value: { location: { lat: 40.7, lon: -74.0 } } }, // New York
  { cidr: '10.2.0.0/16', value: { location: { lat: 48.9, lon: 2.35 } } }, // Paris
  { cidr: '10.3.0.0/16', value: { location: { lat: 35.7, lon: 139.7 } } }, // Tokyo
  { cidr: '10.4.0.0/16', value: { location: { lat: 40.7, lon: -74.0 }, region: 'ap-southeast' } }, // pinned
  { cidr: '2001:db8:e::/48', value: { location: { lat: 48.9, lon: 2.35 } } },
]);

function client(ip: string, prefixLength?: number): SteeringClient {
  return { ip: parseIp(ip), prefixLength };
}

const GEO: HostnamePolicy = { policy: 'geo' };

describe('geo', () => {
  it('answers with the nearest region to the client location from the CIDR table', () => {
    const t: SteeringTables = { regions: regions(), cidrs };
    const rng = new SeededRng(1);
    assert.equal(steer(GEO, client('10.1.0.9'), t, rng).region, 'us-east');
    assert.equal(steer(GEO, client('10.2.0.9'), t, rng).region, 'eu-west');
    assert.equal(steer(GEO, client('10.3.0.9'), t, rng).region, 'ap-southeast');
    assert.equal(steer(GEO, client('2001:db8:e::1'), t, rng).region, 'eu-west');
    const d = steer(GEO, client('10.2.5.0', 24), t, rng);
    assert.deepEqual(
      { reason: d.reason, order: d.order, source: d.locationSource, scope: d.scopePrefixLength, skipped: d.skipped },
      { reason: 'nearest', order: ['eu-west', 'us-east', 'ap-southeast'], source: 'cidr', scope: 24, skipped: [] },
    );
  });

  it('a CIDR entry naming a region puts that region first', () => {
    const d = steer(GEO, client('10.4.0.1'), { regions: regions(), cidrs }, new SeededRng(1));
    assert.equal(d.region, 'ap-southeast');
    assert.deepEqual(d.order, ['ap-southeast', 'us-east', 'eu-west']);
  });

  it('uses an external (mmdb) location when the CIDR table has no match, and config order with none', () => {
    const t: SteeringTables = { regions: regions(), cidrs };
    const ext = steer(GEO, { ...client('192.0.2.1'), externalLocation: { lat: 1.3, lon: 103.8 } }, t, new SeededRng(1));
    assert.equal(ext.region, 'ap-southeast');
    assert.equal(ext.locationSource, 'external');
    const cidrWins = steer(GEO, { ...client('10.1.0.1'), externalLocation: { lat: 1.3, lon: 103.8 } }, t, new SeededRng(1));
    assert.equal(cidrWins.region, 'us-east');
    const none = steer(GEO, client('192.0.2.1'), t, new SeededRng(1));
    assert.deepEqual([none.region, none.reason, none.locationSource], ['us-east', 'default', 'none']);
  });

  it('skips an unhealthy nearest region: the next nearest answers, reason failover', () => {
    const t: SteeringTables = { regions: regions({ 'eu-west': { healthy: false } }), cidrs };
    const d = steer(GEO, client('10.2.0.1'), t, new SeededRng(1));
    assert.deepEqual([d.region, d.reason, d.skipped], ['us-east', 'failover', ['eu-west']]);
  });
});

describe('latency', () => {
  const LAT: HostnamePolicy = { policy: 'latency' };
  it('answers with the lowest measured RTT for the client subnet', () => {
    const clock = new ManualClock(0);
    const rtt = new RttTable(clock);
    rtt.report('10.2.0.7', 'eu-west', 80);
    rtt.report('10.2.0.8', 'us-east', 30);
    const t: SteeringTables = { regions: regions(), cidrs, rtt };
    const d = steer(LAT, client('10.2.0.1'), t, new SeededRng(1));
    // Paris is nearer eu-west, but the measurements say us-east is faster from this /24.
    assert.deepEqual([d.region, d.reason, d.rttMs, d.order], ['us-east', 'lowest_rtt', 30, ['us-east', 'eu-west', 'ap-southeast']]);
    assert.equal(d.scopePrefixLength, 24, 'the answer holds for the /24 the RTT is kept by');
    // Another /24 of the same CIDR entry has no measurement: geo.
    const g = steer(LAT, client('10.2.1.1'), t, new SeededRng(1));
    assert.deepEqual([g.region, g.reason, g.fallback], ['eu-west', 'nearest', 'geo']);
  });

  it('skips an unhealthy fastest region and falls back to geo when measurements expire', () => {
    const clock = new ManualClock(0);
    const rtt = new RttTable(clock, { maxAgeMs: 1000 });
    rtt.report('10.2.0.7', 'us-east', 30);
    rtt.report('10.2.0.7', 'ap-southeast', 200);
    const down = steer(LAT, client('10.2.0.1'), { regions: regions({ 'us-east': { healthy: false } }), cidrs, rtt }, new SeededRng(1));
    assert.deepEqual([down.region, down.reason, down.skipped], ['ap-southeast', 'failover', ['us-east']]);
    clock.advance(1001);
    const later = steer(LAT, client('10.2.0.1'), { regions: regions(), cidrs, rtt }, new SeededRng(1));
    assert.deepEqual([later.region, later.fallback], ['eu-west', 'geo']);
  });
});

describe('weighted', () => {
  it('draws regions in proportion to their weights (100,000 draws, seed 7)', () => {
    // Weights 3:1:0 -> expected shares 75% / 25% / 0%; tolerance 1 point (the standard
    // deviation of a share over 100,000 draws is about 0.14 points).
    const host: HostnamePolicy = { policy: 'weighted', weights: { 'us-east': 3, 'eu-west': 1, 'ap-southeast': 0 } };
    const rng = new SeededRng(7);
    const t: SteeringTables = { regions: regions() };
    const counts = new Map<string, number>();
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const d = steer(host, {}, t, rng);
      counts.set(d.region, (counts.get(d.region) ?? 0) + 1);
    }
    assert.ok(Math.abs((counts.get('us-east') ?? 0) / n - 0.75) < 0.01, JSON.stringify([...counts]));
    assert.ok(Math.abs((counts.get('eu-west') ?? 0) / n - 0.25) < 0.01, JSON.stringify([...counts]));
    assert.equal(counts.get('ap-southeast'), undefined);
  });

  it('never answers with an unhealthy region while a healthy one exists', () => {
    const host: HostnamePolicy = { policy: 'weighted' };
    const rng = new SeededRng(3);
    const t: SteeringTables = { regions: regions({ 'us-east': { healthy: false }, 'ap-southeast': { healthy: false } }) };
    for (let i = 0; i < 1000; i++) {
      const d = steer(host, {}, t, rng);
      assert.equal(d.region, 'eu-west');
      assert.equal(d.reason, 'weighted');
      assert.equal(d.scopePrefixLength, 0);
    }
  });

  it('is deterministic for a seed', () => {
    const host: HostnamePolicy = { policy: 'weighted' };
    const run = () => Array.from({ length: 50 }, ((rng) => () => steer(host, {}, { regions: regions() }, rng).region)(new SeededRng(11)));
    assert.deepEqual(run(), run());
  });
});

describe('failover', () => {
  const FO: HostnamePolicy = { policy: 'failover', order: ['eu-west', 'us-east'] };
  it('answers with the first healthy region of its order, and only regions in it', () => {
    const rng = new SeededRng(1);
    const a = steer(FO, client('10.1.0.1'), { regions: regions() }, rng);
    assert.deepEqual([a.region, a.reason, a.order], ['eu-west', 'primary', ['eu-west', 'us-east']]);
    const b = steer(FO, {}, { regions: regions({ 'eu-west': { healthy: false } }) }, rng);
    assert.deepEqual([b.region, b.reason, b.skipped], ['us-east', 'failover', ['eu-west']]);
    // ap-southeast is healthy but not in the order: fail open to the first of the order.
    const c = steer(FO, {}, { regions: regions({ 'eu-west': { healthy: false }, 'us-east': { healthy: false } }) }, rng);
    assert.deepEqual([c.region, c.reason], ['eu-west', 'fail_open']);
  });
});

describe('fail open', () => {
  const down = { healthy: false };
  const allDown = regions({ 'us-east': down, 'eu-west': down, 'ap-southeast': down });
  it('answers the policy\'s first preference when nothing is healthy, and says so', () => {
    const geo = steer(GEO, client('10.3.0.1'), { regions: allDown, cidrs }, new SeededRng(1));
    assert.deepEqual([geo.region, geo.reason, geo.skipped], ['ap-southeast', 'fail_open', ['ap-southeast', 'eu-west', 'us-east']]);
    const none = steer(GEO, {}, { regions: allDown }, new SeededRng(1));
    assert.deepEqual([none.region, none.reason], ['us-east', 'fail_open']);
    const w = steer({ policy: 'weighted', weights: { 'us-east': 0, 'eu-west': 0 } }, {}, { regions: allDown }, new SeededRng(1));
    assert.deepEqual([w.region, w.reason], ['ap-southeast', 'fail_open'], 'still by weight');
  });
});

describe('spillover', () => {
  it('sends the excess fraction (load - capacity) / load to the next choice (100,000 decisions)', () => {
    // us-east: capacity 1000 rps, load 1500 -> 1/3 of answers spill to the next nearest
    // (eu-west); eu-west is within capacity, so nothing spills further.
    const t: SteeringTables = { regions: regions({ 'us-east': { capacityRps: 1000, loadRps: 1500 }, 'eu-west': { capacityRps: 1000, loadRps: 10 } }), cidrs };
    const rng = new SeededRng(5);
    const n = 100_000;
    let spilled = 0;
    for (let i = 0; i < n; i++) {
      const d = steer(GEO, client('10.1.0.1'), t, rng);
      if (d.region === 'eu-west') {
        spilled++;
        assert.equal(d.reason, 'spillover');
        assert.deepEqual(d.spilledFrom, ['us-east']);
      } else {
        assert.deepEqual([d.region, d.reason], ['us-east', 'nearest']);
      }
    }
    assert.ok(Math.abs(spilled / n - 1 / 3) < 0.01, `spilled ${spilled / n}`);
  });

  it('chains through overloaded regions, never past the last healthy one, and skips unhealthy ones', () => {
    const over = { capacityRps: 0, loadRps: 10 }; // excess fraction 1: always spills
    const t: SteeringTables = { regions: regions({ 'us-east': over, 'eu-west': { healthy: false }, 'ap-southeast': over }), cidrs };
    const d = steer(GEO, client('10.1.0.1'), t, new SeededRng(1));
    assert.deepEqual([d.region, d.reason, d.spilledFrom], ['ap-southeast', 'spillover', ['us-east']]);
    const alone = steer(GEO, client('10.1.0.1'), { regions: regions({ 'us-east': over, 'eu-west': { healthy: false }, 'ap-southeast': { healthy: false } }), cidrs }, new SeededRng(1));
    assert.deepEqual([alone.region, alone.reason, alone.spilledFrom], ['us-east', 'nearest', []], 'the only healthy region keeps its answers');
  });

  it('is deterministic given the RNG', () => {
    const t: SteeringTables = { regions: regions({ 'us-east': { capacityRps: 100, loadRps: 200 } }), cidrs };
    const run = (seed: number) => {
      const rng = new SeededRng(seed);
      return Array.from({ length: 100 }, () => steer(GEO, client('10.1.0.1'), t, rng).region);
    };
    assert.deepEqual(run(9), run(9));
  });
});
