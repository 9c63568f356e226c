/**
 * The fleet scenarios behind docs/TRADEOFFS.md's fleet section (`meridian simulate-fleet`):
 * fixed, seeded, so the tables there can be reproduced exactly.
 */
import type { PolicyName } from '../core/types.js';
import { runFleetBalance, runFleetLimit, type FleetBalanceResult, type FleetLimitResult } from './fleet-sim.js';

export interface HerdingRow {
  readonly policy: PolicyName;
  readonly nodes: number;
  readonly view: string;
  readonly result: FleetBalanceResult;
}

/**
 * Ten servers (two of them three times slower), 8 requests each at once, 20 ms mean
 * service, at 85% of capacity, for 60 virtual seconds; 1, 3 and 10 LB nodes, each with its
 * own view or a shared one refreshed every 10 ms or 100 ms.
 */
export function herdingTable(seed = 1, durationMs = 60_000): HerdingRow[] {
  const rows: HerdingRow[] = [];
  const views = [
    { view: 'own', label: 'own', sync: 0 },
    { view: 'shared', label: 'shared, 10 ms', sync: 10 },
    { view: 'shared', label: 'shared, 100 ms', sync: 100 },
  ] as const;
  for (const policy of ['least_request', 'peak_ewma', 'round_robin'] as const) {
    for (const nodes of [1, 3, 10]) {
      for (const v of views) {
        if (nodes === 1 && v.view === 'shared') continue;
        if (policy === 'round_robin' && v.view === 'shared') continue;
        const result = runFleetBalance({
          policy,
          nodes,
          view: v.view,
          syncIntervalMs: Math.max(1, v.sync),
          servers: 10,
          serverConcurrency: 8,
          serviceMeanMs: 20,
          slowdown: [3, 3],
          utilisation: 0.85,
          durationMs,
          seed,
        });
        rows.push({ policy, nodes, view: v.label, result });
      }
    }
  }
  return rows;
}

/**
 * Prequal's heterogeneous servers (examples/scenarios/prequal-heterogeneous.yaml) behind a
 * fleet: 100 single-worker servers, half 2x slower, exponential service of 10 ms, load 0.9;
 * 1 and 10 LB nodes, each with its own view (prequal: its own probe pool; predictive: its own model).
 */
export function prequalFleetTable(seed = 1, durationMs = 40_000): HerdingRow[] {
  const slowdown = Array.from({ length: 100 }, (_, i) => (i % 2 === 1 ? 2 : 1));
  const rows: HerdingRow[] = [];
  for (const policy of ['least_request', 'peak_ewma', 'prequal', 'predictive'] as const) {
    for (const nodes of [1, 10]) {
      const result = runFleetBalance({ policy, nodes, view: 'own', syncIntervalMs: 1, servers: 100, serverConcurrency: 1, serviceMeanMs: 10, slowdown, utilisation: 0.9, durationMs, seed });
      rows.push({ policy, nodes, view: 'own', result });
    }
  }
  return rows;
}

export interface LimitRow {
  readonly consistency: 'strong' | 'local' | 'split' | 'alone';
  readonly nodes: number;
  readonly firstNodeShare: number;
  readonly syncIntervalMs: number;
  readonly result: FleetLimitResult;
}

/**
 * A limit of 100/s (burst 20) under 300/s offered for 60 virtual seconds, on 3 and 10
 * nodes, traffic even or 70% on one node; `local` at 100 ms and 1 s sync; Redis 0.5 ms away;
 * against `split` (L/N per node) and `alone` (L per node, no fleet).
 */
export function limitTable(seed = 1, durationMs = 60_000): LimitRow[] {
  const rows: LimitRow[] = [];
  for (const nodes of [3, 10]) {
    for (const firstNodeShare of [1 / nodes, 0.7]) {
      const cases = [
        { consistency: 'strong', syncIntervalMs: 0 },
        { consistency: 'local', syncIntervalMs: 100 },
        { consistency: 'local', syncIntervalMs: 1000 },
        { consistency: 'split', syncIntervalMs: 0 },
        { consistency: 'alone', syncIntervalMs: 0 },
      ] as const;
      for (const c of cases) {
        const result = runFleetLimit({
          nodes,
          ratePerSecond: 100,
          burst: 20,
          consistency: c.consistency,
          offeredPerSecond: 300,
          firstNodeShare,
          syncIntervalMs: Math.max(1, c.syncIntervalMs),
          redisRttMs: 0.5,
          durationMs,
          seed,
        });
        rows.push({ consistency: c.consistency, nodes, firstNodeShare, syncIntervalMs: c.syncIntervalMs, result });
      }
    }
  }
  return rows;
}
