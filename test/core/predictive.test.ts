// The predictive policy's rules on hand-built histories: it learns which host is slow,
// starts new hosts from the pool's prior, exports and loads its model, and falls back to
// peak EWMA when Page-Hinkley flags its error (and comes back once it beats it again).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HostState, ManualClock, PageHinkley, PredictiveBalancer, requestClass, REQUEST_CLASSES, SeededRng, type PredictiveOptions } from '../../src/core/index.js';
import { equalEndpoints } from './helpers.js';

function setup(n: number, options: PredictiveOptions = {}) {
  const clock = new ManualClock(0);
  const b = new PredictiveBalancer(new SeededRng(1), clock, options);
  const hosts = equalEndpoints(n).map((e) => new HostState(e, 10_000, true));
  b.update(hosts, hosts.map(() => 1));
  return { clock, b, hosts };
}

/** One request on `host` that takes `ms`, as the cluster reports it (active counted around the balancer's hooks). */
function serve(b: PredictiveBalancer, clock: ManualClock, host: HostState, ms: number, status = 200): void {
  host.active++;
  b.onStart(host);
  clock.advance(ms);
  host.active--;
  host.latency.observe(ms, clock.nowMs());
  b.onEnd(host, { status, latencyMs: ms });
}

describe('predictive: the model', () => {
  it('learns per host latency = intercept + slope x in flight, and picks the host predicted fastest', () => {
    const { b, clock, hosts } = setup(2);
    for (let i = 0; i < 50; i++) {
      serve(b, clock, hosts[0]!, 10);
      serve(b, clock, hosts[1]!, 40);
    }
    const m = b.export().endpoints;
    assert.ok(Math.abs(m['e0']!.intercept - 10) < 0.5, JSON.stringify(m));
    assert.ok(Math.abs(m['e1']!.intercept - 40) < 0.5, JSON.stringify(m));
    for (let i = 0; i < 20; i++) assert.equal(b.pick({}), hosts[0]);
    // With 3 of its own requests ahead, the fast host is predicted slower than the idle slow one only if the slope says so:
    // here the slope is unknown (always 0 in flight), so it stays the pick.
  });

  it('a new host starts from the mean of the trained hosts (cold start from the pool prior)', () => {
    const { b, clock, hosts } = setup(2);
    for (let i = 0; i < 50; i++) {
      serve(b, clock, hosts[0]!, 10);
      serve(b, clock, hosts[1]!, 30);
    }
    const extra = new HostState(equalEndpoints(3)[2]!, 10_000, true);
    b.update([...hosts, extra], [1, 1, 1]);
    assert.ok(Math.abs(b.export().endpoints['e2']!.intercept - 20) < 0.5);
  });

  it('exports its model and loads it into a fresh balancer', () => {
    const { b, clock, hosts } = setup(2);
    for (let i = 0; i < 50; i++) serve(b, clock, hosts[1]!, 25);
    const saved = b.export();
    const other = setup(2);
    other.b.load(saved);
    assert.deepEqual(other.b.export(), saved);
  });

  it('folds failures into the latency it learns: a host answering 503 in 1 ms is not the pick', () => {
    const { b, clock, hosts } = setup(2);
    for (let i = 0; i < 30; i++) {
      serve(b, clock, hosts[0]!, 1, 503);
      serve(b, clock, hosts[1]!, 20);
    }
    for (let i = 0; i < 20; i++) assert.equal(b.pick({}), hosts[1]);
  });
});

describe('predictive: confidence', () => {
  it('leaves to peak EWMA the picks whose candidates it cannot tell apart, and makes the others', () => {
    const rng = new SeededRng(4);
    const alike = setup(2);
    // Two hosts alike: 10 ms give or take 5, so the model's error (about 2.5 ms) dwarfs their difference.
    for (let i = 0; i < 200; i++) {
      serve(alike.b, alike.clock, alike.hosts[0]!, 5 + 10 * rng.next());
      serve(alike.b, alike.clock, alike.hosts[1]!, 5 + 10 * rng.next());
    }
    for (let i = 0; i < 100; i++) alike.b.pick({});
    assert.deepEqual([alike.b.stats().modelPicks, alike.b.stats().baselinePicks], [0, 100]);
    const apart = setup(2);
    for (let i = 0; i < 200; i++) {
      serve(apart.b, apart.clock, apart.hosts[0]!, 5 + 10 * rng.next());
      serve(apart.b, apart.clock, apart.hosts[1]!, 35 + 10 * rng.next());
    }
    for (let i = 0; i < 100; i++) assert.equal(apart.b.pick({}), apart.hosts[0]);
    assert.deepEqual([apart.b.stats().modelPicks, apart.b.stats().baselinePicks], [100, 0]);
  });
});

describe('predictive: request class', () => {
  it('classes: route slots times body buckets, route indexes past the last sharing it', () => {
    assert.equal(REQUEST_CLASSES, 32);
    assert.deepEqual([requestClass(0, 0), requestClass(0, 100), requestClass(0, 100_000), requestClass(0, 5_000_000), requestClass(0, -1)], [0, 1, 2, 3, 3]);
    assert.deepEqual([requestClass(1, 0), requestClass(7, 0), requestClass(50, 0)], [4, 28, 28]);
  });

  /** Light (10 ms) and heavy (100 ms) requests of their own classes, one at a time on alternate hosts, then one of each left in flight. */
  function twoClasses(options: PredictiveOptions) {
    const { b, clock, hosts } = setup(2, options);
    const light = { requestClass: requestClass(0, 0) };
    const heavy = { requestClass: requestClass(1, 0) };
    const run = (h: HostState, ctx: { requestClass: number }, ms: number): void => {
      h.active++;
      b.onStart(h, ctx);
      clock.advance(ms);
      h.active--;
      h.latency.observe(ms, clock.nowMs());
      b.onEnd(h, { status: 200, latencyMs: ms });
    };
    for (let i = 0; i < 100; i++) {
      run(hosts[i % 2]!, light, 10);
      run(hosts[(i + 1) % 2]!, heavy, 100);
    }
    // Now host 0 holds a heavy request and host 1 a light one: one request ahead on each.
    hosts[0]!.active++;
    b.onStart(hosts[0]!, heavy);
    hosts[1]!.active++;
    b.onStart(hosts[1]!, light);
    return { b, hosts, light };
  }

  it('counts the work ahead by class: a light request goes behind the light one, not the heavy one', () => {
    const { b, hosts, light } = twoClasses({});
    for (let i = 0; i < 20; i++) assert.equal(b.pick(light), hosts[1]);
  });

  it('without the class feature both hosts have one request ahead: it cannot choose and leaves the pick to peak EWMA', () => {
    const { b, light } = twoClasses({ requestClass: false });
    for (let i = 0; i < 20; i++) b.pick(light);
    assert.equal(b.stats().modelPicks, 0);
  });
});

describe('predictive: drift and fallback', () => {
  it('Page-Hinkley: silent on a stationary stream, alarms after a step up', () => {
    const ph = new PageHinkley({ delta: 0.2, lambda: 20 });
    const rng = new SeededRng(3);
    for (let i = 0; i < 2000; i++) assert.equal(ph.add(rng.next()), false, `false alarm at ${i}`);
    let at = -1;
    for (let i = 0; i < 200 && at < 0; i++) if (ph.add(2 + rng.next())) at = i;
    assert.ok(at >= 0 && at < 30, `alarm after ${at} samples`);
  });

  it('switches picks to peak EWMA on drift, says so, and switches back once the model beats it again', () => {
    const switches: string[] = [];
    // A low alarm level, so Page-Hinkley speaks before the slower comparison with peak EWMA's error does.
    const { b, clock, hosts } = setup(2, { driftLambda: 5, onSwitch: (f, reason) => switches.push(`${f ? 'fallback' : 'model'}:${reason}`) });
    for (let i = 0; i < 300; i++) {
      serve(b, clock, hosts[0]!, 10);
      serve(b, clock, hosts[1]!, 10);
    }
    assert.equal(b.fallback, false);
    // A behaviour change: responses now take 100-300 ms (peak EWMA, holding near the peaks, is no better a predictor).
    const rng = new SeededRng(9);
    let n = 0;
    for (; n < 200 && !b.fallback; n++) serve(b, clock, hosts[n % 2]!, 100 + 200 * rng.next());
    assert.deepEqual(switches, ['fallback:drift']);
    assert.equal(n, 1); // the first response 10x off the model raises the cumulative excess past 5 levels
    assert.equal(b.stats().driftEvents, 1);
    // Steady again: the model relearns and, after its least time in fallback, is back.
    for (let i = 0; i < 2000 && b.fallback; i++) serve(b, clock, hosts[i % 2]!, 100);
    assert.equal(b.fallback, false);
    assert.deepEqual(switches, ['fallback:drift', 'model:recovered']);
  });

  it('stays in fallback while its error is well above its normal, even when it beats peak EWMA', () => {
    const switches: string[] = [];
    const { b, clock, hosts } = setup(2, { driftLambda: 5, onSwitch: (f, reason) => switches.push(`${f ? 'fallback' : 'model'}:${reason}`) });
    for (let i = 0; i < 300; i++) {
      serve(b, clock, hosts[0]!, 10);
      serve(b, clock, hosts[1]!, 10);
    }
    // An overload-like regime: 100-300 ms, unpredictable. The model (about 50 ms off) beats
    // peak EWMA (holding near the peaks, about 90 ms off) but is far from its normal (~0).
    const rng = new SeededRng(9);
    for (let i = 0; i < 500; i++) serve(b, clock, hosts[i % 2]!, 100 + 200 * rng.next());
    assert.ok(clock.nowMs() > 60_000); // far past the least time in fallback (2 s)
    assert.equal(b.fallback, true);
    assert.deepEqual(switches, ['fallback:drift']);
  });

  it('falls back when the model predicts worse than peak EWMA does', () => {
    const switches: string[] = [];
    const { b, clock, hosts } = setup(2, { onSwitch: (f, reason) => switches.push(`${f ? 'fallback' : 'model'}:${reason}`) });
    for (let i = 0; i < 300; i++) {
      serve(b, clock, hosts[0]!, 10);
      serve(b, clock, hosts[1]!, 10);
    }
    // One request at a time and a steady 10x step: peak EWMA takes the new value at once, the model over many responses.
    for (let i = 0; i < 400 && !b.fallback; i++) serve(b, clock, hosts[i % 2]!, 100 + (i % 7) * 30);
    assert.deepEqual(switches, ['fallback:worse_than_baseline']);
  });
});
