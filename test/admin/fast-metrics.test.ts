// fast-metrics.ts against prom-client itself: the same observations must print the same
// exposition, byte for byte, as prom-client's own Counter and Histogram.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { FastCounter, FastHistogram } from '../../src/admin/fast-metrics.js';
import { SeededRng } from '../../src/core/rng.js';

const BUCKETS = [0.005, 0.01, 0.1, 1, 10];

describe('fast metrics print what prom-client prints', () => {
  it('counters and histograms over random label sets and values, bucket bounds and past the last one included, after a remove', async () => {
    const ref = new Registry();
    const fast = new Registry();
    const opts = (r: Registry) => ({ name: 'x_total', help: 'a counter', labelNames: ['cluster', 'code'], registers: [r] });
    const hOpts = (r: Registry) => ({ name: 'x_seconds', help: 'a histogram', labelNames: ['cluster'], buckets: BUCKETS, registers: [r] });
    const rc = new Counter(opts(ref));
    const rh = new Histogram(hOpts(ref));
    const fc = new FastCounter(opts(fast));
    const fh = new FastHistogram(hOpts(fast));
    const rng = new SeededRng(7);
    const values = [...BUCKETS, 0, 0.0049, 0.05, 99, 1e9];
    for (let i = 0; i < 2000; i++) {
      const cluster = `c${rng.nextUint32() % 4}`;
      const code = String([200, 503, 404][rng.nextUint32() % 3]);
      const v = values[rng.nextUint32() % values.length] as number;
      rc.labels(cluster, code).inc();
      fc.labels(cluster, code).inc();
      rh.labels(cluster).observe(v);
      fh.labels(cluster).observe(v);
    }
    rc.remove({ cluster: 'c1', code: '200' });
    fc.remove({ cluster: 'c1', code: '200' });
    rh.remove({ cluster: 'c2' });
    fh.remove({ cluster: 'c2' });
    const want = await ref.metrics();
    assert.match(want, /x_seconds_bucket\{le="\+Inf",cluster="c0"\} \d+/);
    assert.equal(await fast.metrics(), want);
  });
});
