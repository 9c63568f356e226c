import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatDuration, parseDuration } from '../../src/config/duration.js';

describe('parseDuration', () => {
  it('parses each unit to milliseconds', () => {
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('2s'), 2_000);
    assert.equal(parseDuration('1.5s'), 1_500);
    assert.equal(parseDuration('1m'), 60_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('0s'), 0);
    assert.equal(parseDuration('0ms'), 0);
  });

  it('is exact where floating point is not (1.1s is 1100ms, not 1100.0000000000002)', () => {
    assert.equal(parseDuration('1.1s'), 1_100);
    assert.equal(parseDuration('0.001s'), 1);
    assert.equal(parseDuration('2.75h'), 9_900_000);
  });

  it('adds the parts of a compound duration, largest unit first, as Prometheus does', () => {
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('1h0m5s'), 3_605_000);
    assert.equal(parseDuration('2s500ms'), 2_500);
    assert.equal(parseDuration('1h1m1s1ms'), 3_661_001);
    assert.equal(parseDuration('1.5m30s'), 120_000);
  });

  it('rejects a compound duration with a unit twice, out of order, or with a space', () => {
    for (const bad of ['30s1m', '1s1s', '500ms2s', '1m 30s', '1m30', '1m30s ', 'm30s', '1m-30s', '1m0.5ms']) {
      assert.equal(parseDuration(bad), undefined, JSON.stringify(bad));
    }
  });

  it('rejects everything that is not number+unit', () => {
    for (const bad of [
      'fast', '', '5', '0', '2', '2 s', ' 2s', '2s ', '-1s', '+1s', '1.s', '.5s', '1e3ms',
      '2S', '2sec', '1d', 'ms', '1.5ms', '0.0001s', 'NaNs', 'Infinityh',
    ]) {
      assert.equal(parseDuration(bad), undefined, JSON.stringify(bad));
    }
  });

  it('rejects non-strings, numbers included (is 5 seconds or milliseconds?)', () => {
    for (const bad of [5, 0, null, undefined, true, ['2s'], { s: 2 }]) {
      assert.equal(parseDuration(bad), undefined, String(bad));
    }
  });
});

describe('formatDuration', () => {
  it('uses the largest unit that divides exactly', () => {
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(250), '250ms');
    assert.equal(formatDuration(1_500), '1500ms');
    assert.equal(formatDuration(90_000), '90s');
    assert.equal(formatDuration(120_000), '2m');
    assert.equal(formatDuration(7_200_000), '2h');
  });

  it('refuses what is not a whole, non-negative number of ms', () => {
    assert.throws(() => formatDuration(-1), RangeError);
    assert.throws(() => formatDuration(1.5), RangeError);
  });

  it('round-trips through parseDuration', () => {
    fc.assert(
      fc.property(fc.nat({ max: Number.MAX_SAFE_INTEGER }), (ms) => parseDuration(formatDuration(ms)) === ms),
    );
  });
});
