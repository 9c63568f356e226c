/**
 * The engine against queueing theory. Each check runs R independent replications (seeds
 * 1..R) and compares the mean over replications with the theory, allowing T x the
 * standard error estimated from the replications themselves, with T = 3.50, Student's t
 * for R - 1 = 7 degrees of freedom at 99% two-sided (R = 8 everywhere). The tolerance so
 * follows from the run length, not from tuning; a further check keeps it meaningful (the
 * half-width must be a few percent of the prediction at most). Runs are seeded: the
 * verdict is the same on every machine.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PolicyName } from '../../src/core/types.js';
import { parseScenario, runPolicy, type PolicyResult } from '../../src/sim/index.js';

const T_99 = 3.499;

function replicate(reps: number, doc: (seed: number) => unknown, policy: PolicyName): PolicyResult[] {
  return Array.from({ length: reps }, (_, i) => runPolicy(parseScenario(doc(i + 1)), policy));
}

/** Mean and standard error of the mean over replications. */
function meanSe(xs: readonly number[]): { mean: number; se: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1));
  return { mean, se: sd / Math.sqrt(xs.length) };
}

function assertNear(label: string, xs: readonly number[], expected: number, maxRelHalfWidth: number): void {
  const { mean, se } = meanSe(xs);
  const half = T_99 * se;
  assert.ok(half / expected < maxRelHalfWidth, `${label}: the run is too short to say anything (half-width ${half.toFixed(4)} vs ${expected.toFixed(4)})`);
  assert.ok(Math.abs(mean - expected) <= half, `${label}: ${mean.toFixed(4)} vs theory ${expected.toFixed(4)} (allowed +-${half.toFixed(4)})`);
}

const mm = (servers: number, ratePerS: number, duration: string, warmup: string) => (seed: number) => ({
  seed,
  duration,
  warmup,
  regions: [{ name: 'r', servers, service_time: { dist: 'exponential', mean: '10ms' } }],
  clients: [{ name: 'c', rate: `${ratePerS}/s` }],
});

describe('simulator vs queueing theory', () => {
  it('M/M/1 at utilization 0.8: mean response 1/(mu - lambda) = 50 ms, P(N >= i) = rho^i', () => {
    // mu = 100/s (10 ms mean), lambda = 80/s: W = 1 / (100 - 80) s = 50 ms.
    const runs = replicate(8, mm(1, 80, '3000s', '20s'), 'random');
    assertNear('mean response (ms)', runs.map((r) => r.latency_ms.mean), 50, 0.05);
    assertNear('utilization', runs.map((r) => r.max_utilization), 0.8, 0.02);
    for (let i = 1; i <= 4; i++) {
      assertNear(`P(N >= ${i})`, runs.map((r) => r.queue_length_at_least[i] as number), 0.8 ** i, 0.1);
    }
    // Median of an exponential sojourn time with rate mu - lambda: ln 2 / 20 s = 34.66 ms
    // (HDR: 3 significant digits, so well within the sampling error allowed here).
    assertNear('p50 (ms)', runs.map((r) => r.latency_ms.p50), (Math.LN2 / 20) * 1000, 0.05);
  });

  it('random over n identical servers behaves as n independent M/M/1 queues', () => {
    // Random splitting of a Poisson stream gives each of the 10 servers a Poisson stream
    // of 800 / 10 = 80/s: each is the M/M/1 above, W = 50 ms, utilization 0.8 each.
    const runs = replicate(8, mm(10, 800, '120s', '10s'), 'random');
    assertNear('mean response (ms)', runs.map((r) => r.latency_ms.mean), 50, 0.06);
    for (let j = 0; j < 10; j++) assertNear(`utilization of server ${j}`, runs.map((r) => r.servers[j]?.utilization as number), 0.8, 0.05);
    for (let i = 1; i <= 3; i++) assertNear(`P(N >= ${i})`, runs.map((r) => r.queue_length_at_least[i] as number), 0.8 ** i, 0.1);
  });

  it('least_request (power of two choices) at load 0.9 over 100 servers approaches the supermarket model', () => {
    // Mitzenmacher's supermarket model (n -> infinity, JSQ(2), Poisson arrivals at lambda n,
    // exponential service at rate 1): the fraction of queues with >= i jobs is
    // s_i = lambda^(2^i - 1). At lambda = 0.9: s1 0.9, s2 0.729, s3 0.478, s4 0.206, s5 0.038.
    // Mean jobs per queue = sum s_i = 2.352; by Little, mean response = 2.352 / 0.9 = 2.613
    // service times = 26.13 ms here. With n = 100 the finite system sits slightly above the
    // limit (the O(1/n) correction is largest in the tail: s5 comes out near 0.048), so the
    // mean is allowed the sampling error plus 2% of model error, and each s_i its sampling
    // error plus 0.012. The M/M/1 figure for random at the same load is 100 ms.
    const lambda = 0.9;
    const s = (i: number): number => lambda ** (2 ** i - 1);
    let sum = 0;
    for (let i = 1; i < 20; i++) sum += s(i);
    const predictedMs = (sum / lambda) * 10;
    const runs = replicate(8, mm(100, 9000, '15s', '3s'), 'least_request');
    const mean = meanSe(runs.map((r) => r.latency_ms.mean));
    assert.ok(Math.abs(mean.mean - predictedMs) <= T_99 * mean.se + 0.02 * predictedMs, `mean ${mean.mean.toFixed(2)} ms vs supermarket ${predictedMs.toFixed(2)} ms`);
    for (let i = 1; i <= 5; i++) {
      const got = meanSe(runs.map((r) => r.queue_length_at_least[i] as number));
      assert.ok(Math.abs(got.mean - s(i)) <= T_99 * got.se + 0.012, `s_${i}: ${got.mean.toFixed(4)} vs ${s(i).toFixed(4)}`);
    }
    assert.ok(mean.mean < 0.3 * 100, 'far below the 100 ms of random at the same load');
  });
});
