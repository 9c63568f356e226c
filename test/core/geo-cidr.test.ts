// Geography and addresses for global steering: haversine against known distances,
// IP parsing, and longest-prefix matching in v4 and v6.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CidrTable, formatIp, greatCircleKm, nearestRegions, parseCidr, parseIp, rttSubnetOf } from '../../src/core/index.js';

describe('greatCircleKm (haversine)', () => {
  // Reference figures: great-circle distances on the mean-radius sphere (6371 km), as
  // published by common distance calculators; checked to 0.5%.
  const cases: [string, number, number, number, number, number][] = [
    ['New York - London', 40.7128, -74.006, 51.5074, -0.1278, 5570],
    ['Paris - Tokyo', 48.8566, 2.3522, 35.6762, 139.6503, 9712],
    ['Sydney - Los Angeles', -33.8688, 151.2093, 34.0522, -118.2437, 12051],
  ];
  for (const [name, lat1, lon1, lat2, lon2, km] of cases) {
    it(name, () => {
      const d = greatCircleKm({ lat: lat1, lon: lon1 }, { lat: lat2, lon: lon2 });
      assert.ok(Math.abs(d - km) / km < 0.005, `${name}: ${d.toFixed(0)} km, expected about ${km}`);
    });
  }

  it('is 0 for the same point, symmetric, and half the circumference for antipodes', () => {
    const a = { lat: 10, lon: 20 };
    const b = { lat: -35, lon: 150 };
    assert.equal(greatCircleKm(a, a), 0);
    assert.equal(greatCircleKm(a, b), greatCircleKm(b, a));
    const anti = greatCircleKm({ lat: 0, lon: 0 }, { lat: 0, lon: 180 });
    assert.ok(Math.abs(anti - Math.PI * 6371.0088) < 1e-6);
  });

  it('one degree of latitude is about 111.2 km', () => {
    assert.ok(Math.abs(greatCircleKm({ lat: 0, lon: 0 }, { lat: 1, lon: 0 }) - 111.19) < 0.01);
  });
});

describe('nearestRegions', () => {
  const regions = [
    { name: 'us-east', location: { lat: 39.0, lon: -77.5 } },
    { name: 'eu-west', location: { lat: 53.3, lon: -6.3 } },
    { name: 'ap-south', location: { lat: 19.1, lon: 72.9 } },
  ];
  it('orders by distance from the client', () => {
    assert.deepEqual(nearestRegions({ lat: 48.9, lon: 2.35 }, regions).map((r) => r.name), ['eu-west', 'us-east', 'ap-south']);
    assert.deepEqual(nearestRegions({ lat: 40.7, lon: -74 }, regions).map((r) => r.name), ['us-east', 'eu-west', 'ap-south']);
  });
  it('keeps config order on ties', () => {
    const twins = [
      { name: 'b', location: { lat: 0, lon: 10 } },
      { name: 'a', location: { lat: 0, lon: -10 } },
    ];
    assert.deepEqual(nearestRegions({ lat: 0, lon: 0 }, twins).map((r) => r.name), ['b', 'a']);
  });
});

describe('parseIp / formatIp', () => {
  it('parses v4 and v6 and formats canonically (RFC 5952)', () => {
    assert.equal(formatIp(parseIp('192.0.2.1')!), '192.0.2.1');
    assert.equal(formatIp(parseIp('2001:0DB8:0:0:0:0:0:1')!), '2001:db8::1');
    assert.equal(formatIp(parseIp('::')!), '::');
    assert.equal(formatIp(parseIp('::1')!), '::1');
    assert.equal(formatIp(parseIp('fe80::1:0:0:2')!), 'fe80::1:0:0:2');
    assert.equal(formatIp(parseIp('1:0:0:2:0:0:0:3')!), '1:0:0:2::3');
    assert.equal(formatIp(parseIp('64:ff9b::192.0.2.33')!), '64:ff9b::c000:221');
  });
  it('treats IPv4-mapped IPv6 as IPv4', () => {
    const ip = parseIp('::ffff:10.1.2.3')!;
    assert.equal(ip.family, 4);
    assert.equal(formatIp(ip), '10.1.2.3');
  });
  it('refuses what is not an address', () => {
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1::2::3', '1:2:3:4:5:6:7:8:9', 'g::1', '::1.2.3', 'example.com', '1:2:3:4:5:6:7::8']) {
      assert.equal(parseIp(bad), undefined, bad);
    }
  });
});

describe('parseCidr', () => {
  it('parses networks and refuses host bits, long prefixes and junk', () => {
    const n = parseCidr('10.1.0.0/16');
    assert.ok(typeof n !== 'string' && n.prefixLength === 16);
    assert.match(parseCidr('10.1.2.3/16') as string, /did you mean 10\.1\.0\.0\/16/);
    assert.match(parseCidr('10.0.0.0/33') as string, /0-32/);
    assert.match(parseCidr('2001:db8::/129') as string, /0-128/);
    assert.match(parseCidr('nope/8') as string, /not an IP/);
    const bare = parseCidr('2001:db8::1');
    assert.ok(typeof bare !== 'string' && bare.prefixLength === 128);
  });
});

describe('CidrTable: longest prefix match', () => {
  const table = new CidrTable([
    { cidr: '0.0.0.0/0', value: 'v4-default' },
    { cidr: '10.0.0.0/8', value: 'ten' },
    { cidr: '10.1.0.0/16', value: 'ten-one' },
    { cidr: '10.1.2.0/24', value: 'ten-one-two' },
    { cidr: '10.1.2.3/32', value: 'host' },
    { cidr: '2001:db8::/32', value: 'doc' },
    { cidr: '2001:db8:1::/48', value: 'doc-1' },
    { cidr: '2001:db8:1:8000::/49', value: 'doc-1-hi' },
  ]);
  it('picks the most specific v4 entry', () => {
    assert.equal(table.lookup('10.1.2.3')?.value, 'host');
    assert.equal(table.lookup('10.1.2.4')?.value, 'ten-one-two');
    assert.equal(table.lookup('10.1.3.4')?.value, 'ten-one');
    assert.equal(table.lookup('10.2.0.1')?.value, 'ten');
    assert.equal(table.lookup('192.0.2.1')?.value, 'v4-default');
    assert.equal(table.lookup('::ffff:10.1.2.9')?.value, 'ten-one-two');
    assert.equal(table.lookup('10.1.3.4')?.network.prefixLength, 16);
  });
  it('picks the most specific v6 entry, and v6 never matches v4 entries', () => {
    assert.equal(table.lookup('2001:db8:1:8000::5')?.value, 'doc-1-hi');
    assert.equal(table.lookup('2001:db8:1:7fff::5')?.value, 'doc-1');
    assert.equal(table.lookup('2001:db8:2::1')?.value, 'doc');
    assert.equal(table.lookup('2001:db9::1'), undefined);
    assert.equal(table.lookup('not an ip'), undefined);
  });
  it('refuses a repeated CIDR', () => {
    assert.throws(() => new CidrTable([{ cidr: '10.0.0.0/8', value: 1 }, { cidr: '10.0.0.0/8', value: 2 }]), /listed twice/);
  });
});

describe('rttSubnetOf', () => {
  it('keys /24 for v4 and /48 for v6', () => {
    assert.equal(rttSubnetOf('203.0.113.77'), '203.0.113.0/24');
    assert.equal(rttSubnetOf('2001:db8:1:2:3::9'), '2001:db8:1::/48');
    assert.equal(rttSubnetOf('::ffff:203.0.113.77'), '203.0.113.0/24');
    assert.equal(rttSubnetOf('x'), undefined);
  });
});
