import { Cluster, ManualClock, SeededRng, type ClusterOptions, type Endpoint, type HostState, type PolicyName } from '../../src/core/index.js';

export function endpoints(weights: readonly number[]): Endpoint[] {
  return weights.map((weight, i) => ({ id: `e${i}`, address: `10.0.${i >> 8}.${i & 255}:8080`, weight }));
}

export function equalEndpoints(n: number, weight = 1): Endpoint[] {
  return endpoints(Array.from({ length: n }, () => weight));
}

export interface Harness {
  readonly clock: ManualClock;
  readonly rng: SeededRng;
  readonly cluster: Cluster;
}

export function harness(policy: PolicyName, eps: readonly Endpoint[], extra: Partial<ClusterOptions> = {}, seed = 42): Harness {
  const clock = new ManualClock(0);
  const rng = new SeededRng(seed);
  const cluster = new Cluster('test', eps, { policy, clock, rng, ...extra });
  return { clock, rng, cluster };
}

/** Pick `n` times, each request finishing at once with `latencyMs`; returns counts by endpoint id. */
export function idleShares(h: Harness, n: number, latencyMs = 10, hashes?: (i: number) => number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const host = h.cluster.pick(hashes ? { hash: hashes(i) } : {});
    if (!host) throw new Error('no host picked');
    h.cluster.onStart(host);
    h.cluster.onEnd(host, { status: 200, latencyMs });
    counts.set(host.endpoint.id, (counts.get(host.endpoint.id) ?? 0) + 1);
  }
  return counts;
}

export function fail(h: Harness, host: HostState, status = 503): void {
  h.cluster.onStart(host);
  h.cluster.onEnd(host, { status, latencyMs: 1 });
}

export const ALL_POLICIES: readonly PolicyName[] = ['round_robin', 'random', 'least_request', 'peak_ewma', 'ring_hash', 'maglev', 'prequal', 'predictive'];

/** A uint32 stream for hash keys, independent of the balancer's RNG. */
export function hashStream(seed: number): (i: number) => number {
  const rng = new SeededRng(seed);
  return () => rng.nextUint32();
}
