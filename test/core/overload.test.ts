import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GradientLimiter } from '../../src/core/adaptive-concurrency.js';
import { AdmissionQueue } from '../../src/core/admission-queue.js';
import { HedgePolicy } from '../../src/core/hedging.js';
import { SeededRng } from '../../src/core/rng.js';

/** Run `n` requests of `rttMs` each through the limiter at time `t`. */
function feed(l: GradientLimiter, n: number, rttMs: number, t: number): void {
  for (let i = 0; i < n; i++) {
    l.acquire();
    l.release(rttMs, t);
  }
}

describe('GradientLimiter', () => {
  it('measures the minimum RTT at the floor, then restores the limit, and shrinks it when latency rises', () => {
    const l = new GradientLimiter({ minRttRequests: 10, minLimit: 3 }, new SeededRng(1));
    assert.equal(l.limit, 3);
    assert.equal(l.measuring, true);
    feed(l, 10, 10, 0);
    assert.equal(l.measuring, false);
    assert.equal(l.minRttMs, 10);
    // Demand at the limit and latency at the baseline: the limit grows (gradient 2, capped).
    for (let t = 100; t <= 500; t += 100) {
      for (let i = 0; i < l.limit; i++) l.acquire();
      for (let i = 0, n = l.limit; i < n; i++) l.release(10, t);
    }
    const grown = l.limit;
    assert.ok(grown > 3, `limit ${grown}`);
    // Latency four times the baseline (twice the buffer): the limit is halved, plus headroom.
    for (let i = 0; i < grown; i++) l.acquire();
    for (let i = 0; i < grown; i++) l.release(40, 550);
    // The window ends (at 600): it is judged on what it sampled.
    l.acquire();
    l.release(40, 650);
    assert.equal(l.limit, Math.floor(grown * 0.5 + Math.sqrt(grown * 0.5)));
  });

  it('measures the minimum RTT again from requests let in after the measurement began only', () => {
    const l = new GradientLimiter({ minRttRequests: 5, minRttIntervalMs: 1000, minRttJitterPercent: 0 }, new SeededRng(1));
    feed(l, 5, 10, 0);
    assert.equal(l.minRttMs, 10);
    assert.equal(l.hasRoom(1000), true);
    assert.equal(l.measuring, true);
    // Three let in at 600, under the old limit, ending now after 500 ms in its queues: not the baseline.
    feed(l, 3, 500, 1100);
    feed(l, 5, 12, 1100);
    assert.equal(l.measuring, false);
    assert.equal(l.minRttMs, 12);
  });

  it('does not raise a limit that demand never reached half of', () => {
    const l = new GradientLimiter({ minRttRequests: 5, minLimit: 10 }, new SeededRng(1));
    feed(l, 5, 10, 0);
    feed(l, 5, 10, 100);
    feed(l, 5, 10, 200);
    assert.equal(l.limit, 10);
  });
});

describe('AdmissionQueue', () => {
  it('serves the most critical class first; while overloaded, the newest first and with the target as timeout', () => {
    const q = new AdmissionQueue<string>({ targetMs: 5, intervalMs: 100 });
    const out: string[] = [];
    q.push('d1', 'default', 0, out);
    q.push('s1', 'sheddable', 0, out);
    q.push('c1', 'critical', 1, out);
    assert.equal(q.shift(2, out)?.item, 'c1');
    // A standing queue through a whole interval: overloaded.
    q.observeStanding(1, 0);
    q.observeStanding(1, 50);
    q.observeStanding(1, 100);
    assert.equal(q.overloaded, true);
    assert.equal(q.timeoutMs(1), 5);
    assert.equal(q.timeoutMs(0), 100);
    q.push('d2', 'default', 101, out);
    assert.equal(q.shift(102, out)?.item, 'd2');
    // d1 and s1 (deadline 100) are past their time: refused on the way, nothing left to serve.
    assert.equal(q.shift(102, out), undefined);
    assert.deepEqual(out, ['d1', 's1']);
  });

  it('a fresh queue is not overloaded: its first interval starts with nothing standing', () => {
    const q = new AdmissionQueue<string>();
    q.observeStanding(0, 0);
    assert.equal(q.overloaded, false);
    assert.equal(q.timeoutMs(2), 100);
  });

  it('a full queue pushes out the newest waiter of a lower class, and refuses an arrival with none below it', () => {
    const q = new AdmissionQueue<string>({ maxLength: 2 });
    const out: string[] = [];
    q.push('s1', 'sheddable', 0, out);
    q.push('d1', 'default', 0, out);
    assert.ok(q.push('c1', 'critical', 0, out) !== undefined);
    assert.deepEqual(out, ['s1']);
    assert.equal(q.push('d2', 'default', 0, out), undefined);
    assert.equal(q.length, 2);
  });
});

describe('HedgePolicy', () => {
  it('hedges after the quantile of recent tries, within max_percent of requests', () => {
    const h = new HedgePolicy({ quantile: 95, maxPercent: 5 });
    assert.equal(h.delayMs, Infinity);
    for (let i = 1; i <= 100; i++) h.observe(i);
    assert.equal(h.delayMs, 95);
    let sent = 0;
    for (let i = 0; i < 1000; i++) {
      h.requestStarted();
      if (h.tryTake()) sent++;
    }
    assert.equal(sent, 50);
  });
});
