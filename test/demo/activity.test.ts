// The Activity panel's automatic events: what changed between two snapshots, in words.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DemoSnapshot, EndpointSnapshot, RegionSnapshot } from '../../src/admin/dashboard-types.js';
import { changes } from '../../src/demo/activity.js';

const endpoint = (id: string, status: EndpointSnapshot['status']): EndpointSnapshot => ({ id, address: '127.0.0.1:1', remote: false, status, weight: 1, effectiveWeight: 1, active: 0, latencyEwmaMs: 0, rps: 0, p50Ms: null, p99Ms: null, errorRate: 0 });
const region = (name: string, o: Partial<RegionSnapshot> = {}): RegionSnapshot => ({
  name, node: `meridian-${name}`, address: '127.0.0.11', dnsUp: true, up: true, policy: 'least_request', cluster: `app@${name}`, listenerPort: 1, adminPort: 2,
  rps: 0, p50Ms: null, p99Ms: null, errorRate: 0, retries: 0, shed: 0, rateLimited: 0, peerInRps: 0, failoverOutRps: 0, inPanic: false,
  endpoints: [endpoint(`${name}-1`, 'healthy')], localities: [], ...o,
});
const snap = (t: number, regions: RegionSnapshot[], geoRegion = 'us-east'): DemoSnapshot => ({
  t, intervalMs: 1000, regions, geos: [{ name: 'New York', region: geoRegion, rps: 1, p50Ms: null, p99Ms: null, errorRate: 0 }], flows: [],
  load: { running: true, rate: 1, baseRate: 1, spikeUntil: null, inFlight: 0, dropped: 0 }, dns: null, events: [],
});

describe('activity: changes between snapshots', () => {
  it('names nothing for the first snapshot or an unchanged one', () => {
    const s = snap(1000, [region('us-east')]);
    assert.deepEqual(changes(undefined, s), []);
    assert.deepEqual(changes(s, snap(2000, [region('us-east')])), []);
  });

  it('names health, DNS, steering, policy and panic changes, stamped with the later snapshot', () => {
    const before = snap(1000, [region('us-east'), region('eu-west')]);
    const after = snap(2000, [region('us-east', { endpoints: [endpoint('us-east-1', 'ejected')], dnsUp: false, inPanic: true }), region('eu-west', { policy: 'maglev' })], 'eu-west');
    assert.deepEqual(changes(before, after), [
      { t: 2000, source: 'health', text: 'us-east: us-east-1 healthy → ejected' },
      { t: 2000, source: 'DNS', text: 'us-east out of DNS answers' },
      { t: 2000, source: 'panic', text: 'us-east: cluster in panic (too few healthy endpoints: balancing over all)' },
      { t: 2000, source: 'policy', text: 'eu-west: policy least_request → maglev' },
      { t: 2000, source: 'DNS', text: 'New York steered us-east → eu-west' },
    ]);
  });
});
