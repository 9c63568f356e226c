/**
 * `meridian simulate-fleet [herding|limits|prequal] [--seed S] [--duration D] [--json]`: the fleet
 * scenarios (src/sim/fleet-scenarios.ts) in virtual time: what N LB nodes with their own
 * views do to P2C and peak EWMA, and global limits strong vs local vs split per node.
 */
import { parseArgs } from 'node:util';
import { parseDuration } from '../config/index.js';
import { herdingTable, limitTable, prequalFleetTable } from '../sim/fleet-scenarios.js';
import type { Io } from './io.js';

export const SIMULATE_FLEET_USAGE_LINE = 'usage: meridian simulate-fleet [herding|limits|prequal] [--seed S] [--duration D] [--json]';

const USAGE = `${SIMULATE_FLEET_USAGE_LINE}

Runs the fleet scenarios of docs/fleet.md and docs/TRADEOFFS.md in virtual time, through
the same core objects as the proxy (each LB node its own Cluster and token bucket):
  herding   P2C (least_request), peak_ewma, round_robin on 1, 3 and 10 LB nodes, each with
            its own view or a shared one refreshed every 10 ms / 100 ms: p50, p99, max queue
  limits    a global 100/s limit under 300/s on 3 and 10 nodes, traffic even or 70% on
            one node: strong, local (100 ms, 1 s sync), split (L/N per node), alone
            (L per node, no fleet): admitted / L·t
  prequal   prequal's heterogeneous servers (100, half 2x slower, load 0.9) behind 1 and 10
            LB nodes, each its own view: least_request, peak_ewma, prequal, predictive
herding and limits by default.
  --seed S       seed (default 1)
  --duration D   virtual time per run (default 30s)
  --json         one JSON object instead of the tables`;

export function runSimulateFleet(argv: string[], io: Io): number {
  let values: { seed?: string; duration?: string; json?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: { seed: { type: 'string' }, duration: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
    }));
  } catch (e) {
    io.stderr(`meridian simulate-fleet: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    io.stdout(USAGE);
    return 0;
  }
  const which = positionals[0];
  const seed = Number(values.seed ?? 1);
  const durationMs = parseDuration(values.duration ?? '30s');
  if (positionals.length > 1 || (which !== undefined && which !== 'herding' && which !== 'limits' && which !== 'prequal') || !Number.isInteger(seed) || durationMs === undefined || durationMs <= 0) {
    io.stderr(`meridian simulate-fleet: bad arguments\n\n${USAGE}`);
    return 2;
  }
  const herding = which === undefined || which === 'herding' ? herdingTable(seed, durationMs) : undefined;
  const limits = which === undefined || which === 'limits' ? limitTable(seed, durationMs) : undefined;
  const prequal = which === 'prequal' ? prequalFleetTable(seed, durationMs) : undefined;
  if (values.json) {
    io.stdout(JSON.stringify({ seed, durationMs, ...(herding ? { herding } : {}), ...(limits ? { limits } : {}), ...(prequal ? { prequal } : {}) }));
    return 0;
  }
  const out: string[] = [];
  if (prequal) {
    out.push(`prequal: 100 servers (half 2x slower), 90% load, ${durationMs / 1000}s virtual, seed ${seed}`);
    out.push(table(['policy', 'nodes', 'view', 'p50 ms', 'p99 ms', 'max queue'], prequal.map((r) => [r.policy, String(r.nodes), r.view, r.result.p50Ms.toFixed(1), r.result.p99Ms.toFixed(1), String(r.result.maxQueue)])));
  }
  if (herding) {
    out.push(`herding: 10 servers (2 three times slower), 85% load, ${durationMs / 1000}s virtual, seed ${seed}`);
    out.push(table(['policy', 'nodes', 'view', 'p50 ms', 'p99 ms', 'max queue'], herding.map((r) => [r.policy, String(r.nodes), r.view, r.result.p50Ms.toFixed(1), r.result.p99Ms.toFixed(1), String(r.result.maxQueue)])));
  }
  if (limits) {
    if (herding) out.push('');
    out.push(`limits: 100/s, burst 20, 300/s offered, ${durationMs / 1000}s virtual, seed ${seed}; admitted as a multiple of L·t`);
    out.push(
      table(
        ['consistency', 'sync', 'nodes', 'first node', 'admitted / L·t', 'local bound', 'added ms'],
        limits.map((r) => [r.consistency, r.consistency === 'local' ? `${r.syncIntervalMs} ms` : '-', String(r.nodes), `${Math.round(r.firstNodeShare * 100)}%`, r.result.ofLimit.toFixed(3), r.result.boundOfLimit?.toFixed(3) ?? '-', r.result.addedMs.toFixed(1)]),
      ),
    );
  }
  io.stdout(out.join('\n'));
  return 0;
}

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}
