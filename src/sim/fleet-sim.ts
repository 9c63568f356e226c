/**
 * A fleet in the simulator: N load-balancer nodes in one region, each with its own view
 * (its own core `Cluster`: picks, in-flight counts, latency EWMAs; its own token bucket),
 * clients spread over them, on a virtual clock. Two questions, two runs:
 *
 * - `runFleetBalance`: what a fleet does to load-aware policies (P2C least_request, peak
 *   EWMA). With `view: own` each node sees only its own requests in flight, 1/N of the
 *   load. With `view: shared` every node's counts are replaced, at each sync, by the
 *   fleet's totals (what sharing load through Redis would give), then move only with its
 *   own requests until the next sync: a stale common view, on which nodes can herd onto
 *   the same "least loaded" server.
 * - `runFleetLimit`: a global rate limit of L/s over N nodes, `strong` (one bucket, a
 *   Redis round trip per decision), `local` (each node's bucket debited by the others'
 *   counts every sync, src/core's FleetTally and TokenBucket.debit, as the proxy does) or
 *   `split` (L/N per node, no Redis) or `alone` (L per node: no fleet at all): admitted
 *   against L·t, and the latency a decision adds.
 *
 * The same core objects as the proxy; kept apart from engine.ts (one LB per region), so a
 * fleet's effects are measured on their own.
 */
import { Cluster, type HostState } from '../core/cluster.js';
import { ManualClock } from '../core/clock.js';
import { FleetTally, localOverAdmissionBound } from '../core/fleet-tally.js';
import { RifLatency } from '../core/rif-latency.js';
import { SeededRng } from '../core/rng.js';
import { TokenBucket } from '../core/token-bucket.js';
import type { PolicyName, ProbeReply } from '../core/types.js';
import { exponentialGapMs } from './distributions.js';
import { EventQueue } from './event-queue.js';
import { newHistogram, percentileMs, recordMs, round } from './stats.js';

export interface FleetBalanceOptions {
  readonly policy: PolicyName;
  readonly nodes: number;
  readonly view: 'own' | 'shared';
  /** For `view: shared`: how often each node reads the fleet's counts (nodes' phases spread evenly). */
  readonly syncIntervalMs: number;
  readonly servers: number;
  /** Requests a server works on at once; more wait in its queue. */
  readonly serverConcurrency: number;
  readonly serviceMeanMs: number;
  /** Service-time multiplier per server (default 1 each): unequal servers are where balancing matters. */
  readonly slowdown?: readonly number[];
  /** Offered load as a fraction of the servers' total capacity. */
  readonly utilisation: number;
  readonly durationMs: number;
  readonly seed: number;
  /** prequal: a probe's round trip (its reply comes back after it), ms. Default 1. */
  readonly probeRttMs?: number;
  /** prequal: server work a probe costs, ms, added to the server's next request. Default 0.05, as the single-node simulator's. */
  readonly probeCostMs?: number;
}

export interface FleetBalanceResult {
  readonly requests: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The longest queue any server had. */
  readonly maxQueue: number;
}

interface Job {
  readonly startMs: number;
  readonly node: number;
  readonly host: HostState;
  readonly server: number;
  /** Requests at its server when it arrived (prequal's servers learn latency by this). */
  readonly rif: number;
}

type BalanceEv =
  | { readonly k: 'arrive' }
  | { readonly k: 'done'; readonly job: Job }
  | { readonly k: 'sync'; readonly node: number }
  // prequal: a probe reaches its server (half a round trip), its reply reaches the node (the other half).
  | { readonly k: 'probe'; readonly node: number; readonly host: HostState }
  | { readonly k: 'reply'; readonly node: number; readonly host: HostState; readonly reply: ProbeReply };

export function runFleetBalance(o: FleetBalanceOptions): FleetBalanceResult {
  const clock = new ManualClock(0);
  const rng = new SeededRng(o.seed);
  const slow = Array.from({ length: o.servers }, (_, i) => o.slowdown?.[i] ?? 1);
  const capacityPerSecond = slow.reduce((a, f) => a + (o.serverConcurrency * 1000) / (o.serviceMeanMs * f), 0);
  const rate = o.utilisation * capacityPerSecond;
  const endpoints = Array.from({ length: o.servers }, (_, i) => ({ id: `s${i}`, address: `s${i}`, weight: 1 }));
  const nodes = Array.from({ length: o.nodes }, (_, n) => new Cluster(`lb${n}`, endpoints, { policy: o.policy, clock, rng: new SeededRng(o.seed * 31 + n + 1) }));
  const serverOf = new Map<HostState, number>();
  for (const c of nodes) c.hosts.forEach((h, i) => serverOf.set(h, i));
  const busy = new Array<number>(o.servers).fill(0);
  const queues: Job[][] = Array.from({ length: o.servers }, () => []);
  const q = new EventQueue<BalanceEv>();
  const h = newHistogram();
  let requests = 0;
  let maxQueue = 0;
  // Each server answers probes with its requests in flight and the latency it has seen at
  // that count, as meridian backend does; each node keeps its own pool of replies. A probe's
  // work is owed by the server and paid by its next request, as in the single-node simulator.
  const rifLatency = Array.from({ length: o.servers }, () => new RifLatency());
  const probeDebtMs = new Array<number>(o.servers).fill(0);
  const halfRtt = (o.probeRttMs ?? 1) / 2;
  const probeCostMs = o.probeCostMs ?? 0.05;
  nodes.forEach((c, node) => c.setProber((targets) => targets.forEach((host) => q.push(clock.nowMs() + halfRtt, { k: 'probe', node, host }))));

  const startService = (job: Job, now: number) => {
    busy[job.server]!++;
    const ms = -Math.log(1 - rng.next()) * o.serviceMeanMs * (slow[job.server] as number) + (probeDebtMs[job.server] as number);
    probeDebtMs[job.server] = 0;
    q.push(now + ms, { k: 'done', job });
  };

  q.push(exponentialGapMs(rng, rate), { k: 'arrive' });
  if (o.view === 'shared') for (let n = 0; n < o.nodes; n++) q.push((o.syncIntervalMs * n) / o.nodes, { k: 'sync', node: n });
  while (q.size > 0 && q.peekTime() <= o.durationMs) {
    const now = q.peekTime();
    const ev = q.pop() as BalanceEv;
    clock.set(now);
    if (ev.k === 'arrive') {
      q.push(now + exponentialGapMs(rng, rate), { k: 'arrive' });
      const node = Math.floor(rng.next() * o.nodes);
      const cluster = nodes[node] as Cluster;
      const host = cluster.pick() as HostState;
      cluster.onStart(host);
      const server = serverOf.get(host) as number;
      const job: Job = { startMs: now, node, host, server, rif: (busy[server] as number) + (queues[server] as Job[]).length };
      if ((busy[job.server] as number) < o.serverConcurrency) startService(job, now);
      else {
        const queue = queues[job.server] as Job[];
        queue.push(job);
        maxQueue = Math.max(maxQueue, queue.length);
      }
    } else if (ev.k === 'done') {
      const { job } = ev;
      busy[job.server]!--;
      const latencyMs = now - job.startMs;
      (rifLatency[job.server] as RifLatency).observe(job.rif, latencyMs, now);
      (nodes[job.node] as Cluster).onEnd(job.host, { latencyMs, status: 200 });
      recordMs(h, latencyMs);
      requests++;
      const next = (queues[job.server] as Job[]).shift();
      if (next !== undefined) startService(next, now);
    } else if (ev.k === 'probe') {
      const s = serverOf.get(ev.host) as number;
      const rif = (busy[s] as number) + (queues[s] as Job[]).length;
      probeDebtMs[s]! += probeCostMs;
      q.push(now + halfRtt, { k: 'reply', node: ev.node, host: ev.host, reply: { rif, latencyMs: (rifLatency[s] as RifLatency).estimate(rif, now) } });
    } else if (ev.k === 'reply') {
      (nodes[ev.node] as Cluster).recordProbe(ev.host, ev.reply);
    } else {
      // The fleet's totals, as a shared store would report them now.
      const cluster = nodes[ev.node] as Cluster;
      cluster.hosts.forEach((host, s) => {
        host.active = (busy[s] as number) + (queues[s] as Job[]).length;
      });
      q.push(now + o.syncIntervalMs, ev);
    }
  }
  return { requests, p50Ms: round(percentileMs(h, 50)), p99Ms: round(percentileMs(h, 99)), maxQueue };
}

export interface FleetLimitOptions {
  readonly nodes: number;
  readonly ratePerSecond: number;
  readonly burst: number;
  /** `alone`: each node its own L/s, no Redis (scope: local on every node). */
  readonly consistency: 'strong' | 'local' | 'split' | 'alone';
  /** Requests per second offered to the whole fleet. */
  readonly offeredPerSecond: number;
  /** Share of the traffic landing on the first node (the rest spread evenly); 1/N = even. */
  readonly firstNodeShare: number;
  readonly syncIntervalMs: number;
  /** Redis round trip: what `strong` adds to every decision. */
  readonly redisRttMs: number;
  readonly durationMs: number;
  readonly seed: number;
}

export interface FleetLimitResult {
  readonly admitted: number;
  /** admitted / (L·t): 1 is exact. */
  readonly ofLimit: number;
  /** `local`'s stated bound over the run, as a multiple of L·t (undefined for the others). */
  readonly boundOfLimit: number | undefined;
  /** Latency a decision adds to each request. */
  readonly addedMs: number;
}

export function runFleetLimit(o: FleetLimitOptions): FleetLimitResult {
  const rng = new SeededRng(o.seed);
  const n = o.nodes;
  const split = o.consistency === 'split';
  const buckets = Array.from({ length: n }, () => new TokenBucket(split ? { ratePerSecond: o.ratePerSecond / n, burst: Math.max(1, o.burst / n) } : { ratePerSecond: o.ratePerSecond, burst: o.burst }, 0));
  const global = new TokenBucket({ ratePerSecond: o.ratePerSecond, burst: o.burst }, 0);
  const admittedBy = new Array<number>(n).fill(0);
  // What each node last wrote to the shared store: its running count, as TALLY keeps it.
  const written = new Array<number>(n).fill(0);
  const tallies = Array.from({ length: n }, (_, i) => new FleetTally(`n${i}`));
  type Ev = { readonly k: 'arrive' } | { readonly k: 'sync'; readonly node: number };
  const q = new EventQueue<Ev>();
  q.push(exponentialGapMs(rng, o.offeredPerSecond), { k: 'arrive' });
  if (o.consistency === 'local') for (let i = 0; i < n; i++) q.push((o.syncIntervalMs * i) / n, { k: 'sync', node: i });
  let admitted = 0;
  while (q.size > 0 && q.peekTime() <= o.durationMs) {
    const now = q.peekTime();
    const ev = q.pop() as Ev;
    if (ev.k === 'arrive') {
      q.push(now + exponentialGapMs(rng, o.offeredPerSecond), { k: 'arrive' });
      const r = rng.next();
      const node = r < o.firstNodeShare || n === 1 ? 0 : 1 + Math.floor(((r - o.firstNodeShare) / (1 - o.firstNodeShare)) * (n - 1));
      const ok = o.consistency === 'strong' ? global.tryTake(now + o.redisRttMs / 2).ok : (buckets[node] as TokenBucket).tryTake(now).ok;
      if (ok) {
        admitted++;
        admittedBy[node]!++;
      }
    } else {
      const i = ev.node;
      written[i] = admittedBy[i] as number;
      const others = (tallies[i] as FleetTally).observe(written.map((count, j) => ({ node: `n${j}`, boot: 'b', count })));
      if (others > 0) (buckets[i] as TokenBucket).debit(now, others);
      q.push(now + o.syncIntervalMs, ev);
    }
  }
  const limit = (o.ratePerSecond * o.durationMs) / 1000;
  return {
    admitted,
    ofLimit: round(admitted / limit),
    boundOfLimit: o.consistency === 'local' ? round(localOverAdmissionBound(o.ratePerSecond, o.burst, n, o.syncIntervalMs, o.durationMs) / limit) : undefined,
    addedMs: o.consistency === 'strong' ? o.redisRttMs : 0,
  };
}
