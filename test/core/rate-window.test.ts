import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { RateWindow } from '../../src/core/index.js';

describe('RateWindow', () => {
  it('is 0 before any event, and counts a steady rate exactly once the window is full', () => {
    const w = new RateWindow(10_000, 10);
    assert.equal(w.rate(5_000), 0);
    // 50 events per second for 20 s, evenly spaced.
    for (let t = 0; t < 20_000; t += 20) w.add(t);
    assert.equal(w.rate(20_000), 50);
    assert.ok(Math.abs(w.rate(19_990) / 50 - 1) < 0.01, `about the same inside a bucket: ${w.rate(19_990)}`);
  });

  it('divides by the time covered while the window is young', () => {
    const w = new RateWindow(10_000, 10);
    for (let t = 0; t < 2_000; t += 10) w.add(t); // 100/s for 2 s
    assert.equal(w.rate(2_000), 100);
  });

  it('forgets what fell out of the window, however long the silence', () => {
    const w = new RateWindow(10_000, 10);
    for (let t = 0; t < 10_000; t += 10) w.add(t);
    assert.equal(w.rate(10_000), 100);
    // The window ending at 15 s holds 6 s..9.999 s of traffic (400 events) over 9 s.
    assert.ok(Math.abs(w.rate(15_000) - 400 / 9) < 1e-9, `${w.rate(15_000)}`);
    assert.equal(w.rate(25_000), 0);
    w.add(1_000_000, 9);
    assert.equal(w.rate(1_000_000), 1, 'only the new 9 over 9 s: stale buckets were cleared');
  });

  it('refuses a window it cannot keep', () => {
    assert.throws(() => new RateWindow(0), RangeError);
    assert.throws(() => new RateWindow(1000, 0), RangeError);
  });
});
