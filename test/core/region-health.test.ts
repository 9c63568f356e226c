import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { excessFraction, ManualClock, nextSpill, RegionHealth, RttTable } from '../../src/core/index.js';

describe('RegionHealth thresholds', () => {
  it('goes down after N consecutive failures and up after M consecutive successes', () => {
    const h = new RegionHealth({ unhealthyThreshold: 3, healthyThreshold: 2 });
    assert.equal(h.healthy, true, 'regions start up');
    assert.equal(h.recordProbe({ ok: false }), false);
    assert.equal(h.recordProbe({ ok: false }), false);
    assert.equal(h.recordProbe({ ok: true }), false, 'a success resets the failure count');
    assert.equal(h.recordProbe({ ok: false }), false);
    assert.equal(h.recordProbe({ ok: false }), false);
    assert.equal(h.recordProbe({ ok: false }), true, 'third failure in a row: down');
    assert.equal(h.healthy, false);
    assert.equal(h.recordProbe({ ok: true }), false);
    assert.equal(h.recordProbe({ ok: false }), false, 'a failure resets the success count');
    assert.equal(h.recordProbe({ ok: true }), false);
    assert.equal(h.recordProbe({ ok: true }), true, 'second success in a row: up');
    assert.equal(h.healthy, true);
  });

  it('takes capacity and load from passing probes; a healthy fraction of 0 is down', () => {
    const h = new RegionHealth({ capacityRps: 1000 });
    assert.equal(h.capacityRps, 1000);
    h.recordProbe({ ok: true, healthyFraction: 0.75, loadRps: 120 });
    assert.equal(h.capacityRps, 750);
    assert.equal(h.loadRps, 120);
    h.recordProbe({ ok: false });
    assert.equal(h.capacityRps, 750, 'a failed probe keeps the last figures');
    assert.equal(h.recordProbe({ ok: true, healthyFraction: 0 }), true);
    assert.equal(h.healthy, false);
    h.recordProbe({ ok: true, healthyFraction: 7 });
    assert.equal(h.view().healthyFraction, 1, 'clamped to 0..1');
    assert.equal(new RegionHealth().capacityRps, undefined, 'no configured capacity: unbounded');
  });

  it('an override wins over probes until cleared', () => {
    const h = new RegionHealth({ unhealthyThreshold: 1 });
    assert.equal(h.setOverride('down'), true);
    assert.equal(h.healthy, false);
    h.recordProbe({ ok: true });
    assert.equal(h.healthy, false);
    h.recordProbe({ ok: false });
    assert.equal(h.setOverride('up'), true);
    assert.equal(h.healthy, true, 'forced up while probes say down');
    assert.equal(h.setOverride(undefined), true);
    assert.equal(h.healthy, false, 'cleared: the probes decide again');
    assert.equal(h.view().override, undefined);
  });

  it('carries state over a reload with new thresholds', () => {
    const old = new RegionHealth({ unhealthyThreshold: 1 });
    old.recordProbe({ ok: false });
    old.setOverride('up');
    const next = RegionHealth.from(old, { unhealthyThreshold: 5, healthyThreshold: 1, capacityRps: 10 });
    assert.equal(next.view().probeHealthy, false);
    assert.equal(next.view().override, 'up');
    assert.equal(next.capacityRps, 10);
  });
});

describe('excessFraction', () => {
  it('is (load - capacity) / load above capacity, else 0', () => {
    assert.equal(excessFraction(1000, 1500), 1 / 3);
    assert.equal(excessFraction(1000, 1000), 0);
    assert.equal(excessFraction(1000, 10), 0);
    assert.equal(excessFraction(undefined, 1500), 0);
    assert.equal(excessFraction(1000, undefined), 0);
    assert.equal(excessFraction(0, 50), 1);
  });
});

describe('spill control', () => {
  it('settles at the excess of the demand, not of the load the spill already lowered', () => {
    const h = new RegionHealth({ capacityRps: 1000 });
    // Demand 1500 rps: the region reports what reaches it, i.e. the demand less what spills.
    const demand = 1500;
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      h.recordProbe({ ok: true, loadRps: demand * (1 - h.spillFraction) });
      seen.push(h.spillFraction);
    }
    for (const f of seen) assert.ok(Math.abs(f - 1 / 3) < 1e-12, `spill ${f}`);
    // Without the correction it would swing: 1500 -> 1/3, then 1000 -> 0, then 1500 -> 1/3 ...
    assert.equal(excessFraction(1000, 1000), 0);
  });

  it('lets go as demand falls, and follows healthy capacity', () => {
    const h = new RegionHealth({ capacityRps: 1000 });
    h.recordProbe({ ok: true, loadRps: 2000 });
    assert.equal(h.spillFraction, 0.5);
    h.recordProbe({ ok: true, loadRps: 400 }); // demand 800: within capacity
    assert.equal(h.spillFraction, 0);
    h.recordProbe({ ok: true, loadRps: 800, healthyFraction: 0.5 }); // half the backends: 500 rps of capacity
    assert.equal(h.spillFraction, 300 / 800);
    assert.equal(h.view().spillFraction, 300 / 800);
    h.recordProbe({ ok: true }); // no load reported: nothing to spill
    assert.equal(h.spillFraction, 0);
    assert.equal(nextSpill(0.5, undefined, 100), 0);
  });
});

describe('RttTable', () => {
  it('keeps a time-weighted moving average per subnet and region', () => {
    const clock = new ManualClock(0);
    const t = new RttTable(clock, { tauMs: 1000 });
    assert.ok(t.report('10.0.0.1', 'us', 100));
    assert.deepEqual([...t.estimates('10.0.0.0/24')], [['us', 100]]);
    // Right away: alpha floors at MIN_ALPHA (0.1): 100 + 0.1 * (200 - 100) = 110.
    t.report('10.0.0.2', 'us', 200);
    assert.ok(Math.abs(t.estimates('10.0.0.0/24').get('us')! - 110) < 1e-9);
    // After one tau: alpha = 1 - 1/e.
    clock.advance(1000);
    t.report('10.0.0.3', 'us', 10);
    const alpha = 1 - Math.exp(-1);
    assert.ok(Math.abs(t.estimates('10.0.0.0/24').get('us')! - (110 + alpha * (10 - 110))) < 1e-9);
    assert.equal(t.estimates('10.0.1.0/24').size, 0);
  });

  it('forgets old measurements and bounds the number of subnets', () => {
    const clock = new ManualClock(0);
    const t = new RttTable(clock, { maxAgeMs: 5000, maxSubnets: 2 });
    t.report('10.0.0.1', 'us', 10);
    clock.advance(5001);
    assert.equal(t.estimates('10.0.0.0/24').size, 0);
    t.report('10.0.1.1', 'us', 10);
    t.report('10.0.2.1', 'us', 10);
    t.report('10.0.3.1', 'us', 10);
    assert.equal(t.subnets, 2);
    assert.equal(t.estimates('10.0.1.0/24').size, 0, 'least recently measured went first');
    assert.equal(t.report('nope', 'us', 1), false);
    assert.equal(t.report('10.0.0.1', 'us', -1), false);
    assert.equal(t.report('10.0.0.1', 'us', NaN), false);
  });
});
