// Prequal's rules on hand-built pools: the hot/cold choice, the pool's bounds, the sinkhole guard.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HostState, localProbeReply, ManualClock, PrequalBalancer, RifLatency, SeededRng, type PrequalOptions } from '../../src/core/index.js';
import { equalEndpoints, harness } from './helpers.js';

function setup(n: number, options: PrequalOptions = {}) {
  const clock = new ManualClock(0);
  const b = new PrequalBalancer(new SeededRng(1), clock, options);
  const hosts = equalEndpoints(n).map((e) => new HostState(e, 10_000, true));
  b.update(hosts, hosts.map(() => 1));
  return { clock, b, hosts };
}

describe('prequal: the pick', () => {
  it('picks at random (by weight) while the pool holds fewer than two replies', () => {
    const { b, hosts } = setup(4);
    b.onProbe(hosts[0]!, { rif: 0, latencyMs: 1 });
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(b.pick({})!.endpoint.id);
    assert.equal(seen.size, 4);
    assert.equal(b.stats().randomPicks, 200);
  });

  it('takes the cold reply with the lowest latency; a hot reply loses even with a lower latency', () => {
    const { b, hosts } = setup(20);
    // RIFs 0,0,0,0,0,0,1,9: the 0.84 quantile of these eight is 1, so only RIF 9 is hot.
    const replies = [[0, 50], [0, 40], [0, 10], [0, 30], [0, 35], [0, 45], [1, 20], [9, 1]] as const;
    replies.forEach(([rif, latencyMs], i) => b.onProbe(hosts[i]!, { rif, latencyMs }));
    assert.equal(b.pick({}), hosts[2]);
  });

  it('when every reply is hot, takes the lowest RIF; a used reply counts the request it sent', () => {
    const { b, hosts } = setup(3); // 3 hosts <= pool: replies are reused until they age out
    for (let i = 0; i < 20; i++) b.onProbe(hosts[0]!, { rif: 0, latencyMs: 5 });
    b.onProbe(hosts[1]!, { rif: 7, latencyMs: 1 });
    b.onProbe(hosts[2]!, { rif: 6, latencyMs: 1 });
    // Threshold: the 0.84 quantile of twenty 0s, a 7 and a 6 is 0. Host 0 is cold first, then
    // hot at RIF 1, 2, ... and still the lowest until it passes host 2's 6.
    const picks = Array.from({ length: 8 }, () => b.pick({})!.endpoint.id);
    assert.deepEqual(picks, ['e0', 'e0', 'e0', 'e0', 'e0', 'e0', 'e0', 'e2']);
  });

  it('folds errors into latency: a host that fails fast does not look fast (sinkhole guard)', () => {
    const { b, hosts } = setup(20);
    for (let i = 0; i < 10; i++) b.onEnd(hosts[0]!, { status: 500, latencyMs: 1 });
    for (let i = 0; i < 8; i++) b.onProbe(hosts[i]!, { rif: 0, latencyMs: i === 0 ? 1 : 5 + i });
    assert.equal(b.pick({}), hosts[1]);
  });
});

describe('prequal: the pool', () => {
  it('drops a reply after max age', () => {
    const { b, hosts, clock } = setup(100);
    b.onProbe(hosts[0]!, { rif: 0, latencyMs: 1 });
    b.onProbe(hosts[1]!, { rif: 0, latencyMs: 1 });
    clock.advance(1000);
    b.pick({});
    assert.equal(b.poolSize, 1); // the one used is gone (budget 1 at 100 hosts), the other still exactly 1 s old
    clock.advance(1);
    b.pick({});
    assert.equal(b.poolSize, 0);
  });

  it('holds at most maxPool replies, one per host, evicting the oldest and the worst in turn', () => {
    const { b, hosts, clock } = setup(50, { maxPool: 4 });
    for (let i = 0; i < 4; i++) {
      b.onProbe(hosts[i]!, { rif: 0, latencyMs: 10 + i });
      clock.advance(1);
    }
    b.onProbe(hosts[2]!, { rif: 0, latencyMs: 99 }); // same host: replaces its reply
    assert.equal(b.poolSize, 4);
    b.onProbe(hosts[4]!, { rif: 0, latencyMs: 5 }); // full: the oldest (host 0) goes
    b.onProbe(hosts[5]!, { rif: 0, latencyMs: 6 }); // full: the worst (host 2 at 99 ms) goes
    assert.equal(b.poolSize, 4);
    // Left: hosts 1 (11 ms), 3 (13), 4 (5), 5 (6); with budget 1 each pick uses one up, best first.
    const picks = Array.from({ length: 4 }, () => b.pick({})!.endpoint.id);
    assert.deepEqual(picks.slice(0, 3), ['e4', 'e5', 'e1']);
  });

  it('reuse budget: (1 + delta) / ((1 - pool / hosts) x probes), at least 1; unlimited when hosts fit the pool', () => {
    assert.equal(setup(100).b.reuseBudget, 1);
    assert.equal(setup(100, { probesPerRequest: 1 }).b.reuseBudget, 3); // 2 / (0.84 x 1) = 2.38
    assert.equal(setup(10).b.reuseBudget, Infinity);
  });

  it('ignores a reply from a host no longer eligible', () => {
    const { b, hosts } = setup(5);
    b.update(hosts.slice(1), [1, 1, 1, 1]);
    b.onProbe(hosts[0]!, { rif: 0, latencyMs: 1 });
    assert.equal(b.poolSize, 0);
  });
});

describe('prequal: probes and the cluster', () => {
  it('hands the prober 3 distinct hosts with each request sent; other policies never call it', () => {
    const h = harness('prequal', equalEndpoints(10));
    const sent: string[][] = [];
    h.cluster.setProber((targets) => sent.push(targets.map((t) => t.endpoint.id)));
    h.cluster.onStart(h.cluster.pick()!);
    assert.equal(sent.length, 1);
    assert.equal(new Set(sent[0]).size, 3);
    const l = harness('least_request', equalEndpoints(10));
    l.cluster.setProber(() => assert.fail('least_request asked for probes'));
    l.cluster.onStart(l.cluster.pick()!);
  });

  it('the local stand-in for a backend without a probe endpoint: its in-flight count and peak-EWMA latency', () => {
    const host = new HostState(equalEndpoints(1)[0]!, 10_000, true);
    host.active = 3;
    host.latency.observe(20, 0);
    assert.deepEqual(localProbeReply(host, 0), { rif: 3, latencyMs: 20 });
  });
});

describe('RifLatency (the server side of a probe)', () => {
  it('answers the average at the RIF asked, or scales the nearest level below', () => {
    const r = new RifLatency();
    r.observe(0, 10, 0);
    r.observe(2, 30, 0);
    assert.equal(r.estimate(0, 0), 10);
    assert.equal(r.estimate(1, 0), 20); // from level 0: 10 x 2 / 1
    assert.equal(r.estimate(2, 0), 30);
    assert.equal(r.estimate(5, 0), 60); // from level 2: 30 x 6 / 3
  });

  it('relaxes a stale level toward its long-run average, and scales by CPU contention', () => {
    const r = new RifLatency({ staleTauMs: 100 });
    for (let i = 0; i < 500; i++) r.observe(0, 10, i);
    for (let i = 0; i < 30; i++) r.observe(0, 100, 500 + i);
    const fresh = r.estimate(0, 529);
    const stale = r.estimate(0, 529 + 1000);
    assert.ok(fresh > 90, `fresh ${fresh}`);
    // Back to the long-run average, which those 30 slow samples moved from 10 to 10 + 90 x (1 - 0.99^30) = 33.4.
    assert.ok(Math.abs(stale - 33.4) < 0.1, `stale ${stale}`);
    const c = new RifLatency();
    c.observe(0, 30, 0, 3); // ran at a third of its speed: 10 ms of its own work
    assert.equal(c.estimate(0, 0), 10);
    assert.equal(c.estimate(0, 0, 3), 30);
  });

  it("does not let a level's first sample pin its long-run average (a server that looked slow once would be shunned)", () => {
    const r = new RifLatency({ staleTauMs: 100 });
    r.observe(0, 100, 0); // an unlucky first request
    for (let i = 1; i <= 20; i++) r.observe(0, 10, i);
    // Stale, the level reads its long-run value: the mean of the 21 samples, (100 + 200) / 21.
    // A 1% average started from the first sample would still read 100 - 90 x (1 - 0.99^20) = 83.6.
    assert.ok(Math.abs(r.estimate(0, 10_000) - 300 / 21) < 1e-9, `${r.estimate(0, 10_000)}`);
  });
});
