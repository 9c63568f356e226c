import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LatencyEwma, PeakEwmaBalancer } from '../../src/core/index.js';
import { equalEndpoints, harness } from './helpers.js';

describe('LatencyEwma (peak EWMA)', () => {
  it('jumps to a new peak at once', () => {
    const e = new LatencyEwma(10_000);
    e.observe(10, 0);
    e.observe(500, 1);
    assert.equal(e.lastMs, 500);
  });

  it('decays toward lower samples with time constant tau', () => {
    const e = new LatencyEwma(10_000);
    e.observe(100, 0);
    // One tau later a 0 ms sample pulls it to 100 * e^-1.
    e.observe(0, 10_000);
    assert.ok(Math.abs(e.lastMs - 100 * Math.exp(-1)) < 1e-9);
  });

  it('reads decayed toward zero when idle, so a once-slow host gets another look', () => {
    const e = new LatencyEwma(1_000);
    e.observe(400, 0);
    assert.equal(e.valueAt(0), 400);
    assert.ok(Math.abs(e.valueAt(2_000) - 400 * Math.exp(-2)) < 1e-9);
  });
});

describe('peak_ewma', () => {
  it('sends most traffic away from a slow host', () => {
    const h = harness('peak_ewma', equalEndpoints(4));
    const counts = new Map<string, number>();
    for (let i = 0; i < 4000; i++) {
      const host = h.cluster.pick()!;
      h.cluster.onStart(host);
      h.clock.advance(1);
      h.cluster.onEnd(host, { status: 200, latencyMs: host.endpoint.id === 'e2' ? 200 : 10 });
      counts.set(host.endpoint.id, (counts.get(host.endpoint.id) ?? 0) + 1);
    }
    // The slow host loses every comparison it is drawn into once it has a sample; it is
    // picked only when drawn twice... which P2C with distinct candidates never does, so
    // all it gets are the picks before its first sample and those after its estimate
    // decays back (tau = 10 s, about 4 s of virtual time here: no decay to speak of).
    assert.ok((counts.get('e2') ?? 0) < 40, `slow host got ${counts.get('e2')}`);
  });

  it('tries a host with no sample once, but does not flood it (penalty)', () => {
    const h = harness('peak_ewma', equalEndpoints(2), { peakEwma: { penaltyMs: 1000 } });
    const [a, b] = h.cluster.hosts;
    // a is known and fast; b is new. Idle b costs 0, so it is tried first...
    h.cluster.onStart(a!);
    h.cluster.onEnd(a!, { status: 200, latencyMs: 5 });
    const first = h.cluster.pick()!;
    assert.equal(first, b);
    h.cluster.onStart(b!);
    // ...but with one request in flight and no answer yet it costs 2 x penalty.
    const balancer = new PeakEwmaBalancer(h.rng, h.clock, { penaltyMs: 1000 });
    assert.equal(balancer.cost(b!, h.clock.nowMs()), 2000);
    for (let i = 0; i < 20; i++) assert.equal(h.cluster.pick(), a);
  });

  it('cost is EWMA x (active + 1)', () => {
    const h = harness('peak_ewma', equalEndpoints(1));
    const [a] = h.cluster.hosts;
    h.cluster.onStart(a!);
    h.cluster.onEnd(a!, { status: 200, latencyMs: 40 });
    h.cluster.onStart(a!);
    h.cluster.onStart(a!);
    const balancer = new PeakEwmaBalancer(h.rng, h.clock);
    assert.equal(balancer.cost(a!, h.clock.nowMs()), 120);
  });
});
