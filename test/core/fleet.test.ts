// The pure rules a fleet runs on: count reconciliation, the over-admission bound, version
// order of shared control, and the health vote.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fleetEjections } from '../../src/core/fleet-health.js';
import { FleetTally, localOverAdmissionBound } from '../../src/core/fleet-tally.js';
import { TokenBucket } from '../../src/core/token-bucket.js';
import { VersionedOverrides } from '../../src/core/versioned-overrides.js';

describe('FleetTally', () => {
  it("turns running counts into what the others admitted since the last read, its own count excluded", () => {
    const t = new FleetTally('a');
    assert.equal(t.observe([{ node: 'a', boot: 'x', count: 5 }, { node: 'b', boot: 'y', count: 10 }]), 0, 'the first read is a baseline');
    assert.equal(t.observe([{ node: 'a', boot: 'x', count: 50 }, { node: 'b', boot: 'y', count: 17 }, { node: 'c', boot: 'z', count: 4 }]), 7 + 4);
    // A repeated read counts nothing twice.
    assert.equal(t.observe([{ node: 'b', boot: 'y', count: 17 }, { node: 'c', boot: 'z', count: 4 }]), 0);
  });

  it('counts a restarted node (new boot) from zero, and rebases after an outage', () => {
    const t = new FleetTally('a');
    t.observe([{ node: 'b', boot: 'y', count: 100 }]);
    assert.equal(t.observe([{ node: 'b', boot: 'y2', count: 3 }]), 3);
    t.rebase();
    assert.equal(t.observe([{ node: 'b', boot: 'y2', count: 500 }]), 0, 'what b admitted alone during the outage is past');
    assert.equal(t.observe([{ node: 'b', boot: 'y2', count: 502 }]), 2);
  });

  it('states the bound: the rate over the window, one burst, and per other node a burst plus two sync intervals of rate', () => {
    assert.equal(localOverAdmissionBound(100, 20, 3, 100, 2000), 200 + 20 + 2 * (20 + 20));
    assert.equal(localOverAdmissionBound(100, 20, 1, 100, 2000), 220, 'one node: exactly a local bucket');
  });
});

describe('TokenBucket.debit', () => {
  it('takes tokens spent elsewhere, into debt, and admits again only once the refill has paid it', () => {
    const b = new TokenBucket({ ratePerSecond: 10, burst: 5 }, 0);
    b.debit(0, 8);
    assert.equal(b.available(0), -3);
    assert.equal(b.tryTake(0).ok, false);
    assert.equal(b.tryTake(399).ok, false);
    assert.equal(b.tryTake(400).ok, true);
  });
});

describe('VersionedOverrides', () => {
  it('applies a change only when newer than the last for its key, whatever order they arrive in', () => {
    const o = new VersionedOverrides<boolean>();
    assert.equal(o.offer('drain a', 2, true), true);
    assert.equal(o.offer('drain a', 1, false), false, 'a late older message');
    assert.equal(o.offer('drain a', 2, true), false, 'a repeat');
    assert.equal(o.offer('drain b', 1, true), true, 'keys are independent');
    assert.equal(o.offer('drain a', 3, false), true);
    assert.deepEqual(o.entries(), [
      { key: 'drain b', version: 1, value: true },
      { key: 'drain a', version: 3, value: false },
    ]);
  });
});

describe('fleetEjections', () => {
  const eps = ['e1', 'e2', 'e3', 'e4'];
  const rule = { quorum: 'majority' as const, maxEjectionPercent: 50 };

  it('takes out an endpoint a majority of reporting nodes judge bad, and not one a single node does', () => {
    const reports = [
      { node: 'a', bad: ['e1', 'e2'] },
      { node: 'b', bad: ['e1'] },
      { node: 'c', bad: [] },
    ];
    assert.deepEqual([...fleetEjections(reports, new Set(), eps, rule)], ['e1']);
  });

  it("one node's bad network (every endpoint bad in its eyes) ejects nothing elsewhere", () => {
    const reports = [{ node: 'a', bad: eps }, { node: 'b', bad: [] }, { node: 'c', bad: [] }];
    assert.deepEqual([...fleetEjections(reports, new Set(), eps, rule)], []);
  });

  it('holds the ejection cap fleet-wide: this node\'s own ejections count, most votes first, one always allowed', () => {
    const reports = [
      { node: 'a', bad: ['e1', 'e2', 'e3'] },
      { node: 'b', bad: ['e2', 'e3'] },
      { node: 'c', bad: ['e3', 'e2'] },
    ];
    assert.deepEqual([...fleetEjections(reports, new Set(), eps, { quorum: 1, maxEjectionPercent: 50 })], ['e2', 'e3']);
    assert.deepEqual([...fleetEjections(reports, new Set(['e4']), eps, { quorum: 1, maxEjectionPercent: 50 })], ['e2']);
    assert.deepEqual([...fleetEjections(reports, new Set(), eps, { quorum: 1, maxEjectionPercent: 0 })], ['e2'], 'one endpoint may always be out');
  });

  it('ignores endpoints the cluster does not have and a node naming one twice', () => {
    const reports = [{ node: 'a', bad: ['gone', 'e1', 'e1'] }];
    assert.deepEqual([...fleetEjections(reports, new Set(), eps, { quorum: 2, maxEjectionPercent: 100 })], []);
  });
});
