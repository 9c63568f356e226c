/**
 * `meridian plan`: capacity planning from daily active users (src/sim/plan.ts does the
 * arithmetic). Exit codes: 0 done, 2 bad arguments.
 */
import { MEASURED_RPS_PER_NODE, parseBytes, parseCount, plan, type PlanInput } from '../sim/plan.js';
import { parseCommand, parseOptions, UsageError } from './args.js';
import type { Io } from './io.js';

export const PLAN_USAGE_LINE =
  'usage: meridian plan --dau N --requests-per-user N --peak-factor F [--rps-per-node R] [--regions A:0.5,B:0.5] [--response-size 10KB] [--headroom 0.3] [--survive-region-loss] [--json]';

export const PLAN_USAGE = `${PLAN_USAGE_LINE}

Average and peak QPS, bandwidth, and load balancer nodes per region.
  --dau N                 daily active users (100M, 2.5k, 1000000)
  --requests-per-user N   requests per user per day
  --peak-factor F         peak QPS over average QPS (e.g. 3)
  --rps-per-node R        requests per second one load balancer node serves; default
                          ${MEASURED_RPS_PER_NODE}, the proxy benchmark's measured figure (bench/proxy.bench.ts,
                          Meridian with 1 worker on a 2-core machine)
  --regions LIST          regions and traffic shares, NAME:SHARE,... (shares are normalised),
                          or just names for an even split (default: one region "global")
  --response-size SIZE    mean response size for bandwidth (default 10KB)
  --headroom H            spare capacity kept at peak, 0..0.9 (default 0.3: nodes at most 70% busy)
  --survive-region-loss   size each region to absorb its part of the largest other region
  --json                  print one JSON object instead of text
  -h, --help              show this help

Nodes per region = ceil(design QPS / (R x (1 - headroom))) + 1 spare (N+1).
Exit status: 0 done, 2 bad arguments.`;

function num(name: string, raw: string | undefined, fallback: number | undefined, min: number, max: number): number {
  if (raw === undefined) {
    if (fallback === undefined) throw new UsageError(`--${name} is required`);
    return fallback;
  }
  const v = parseCount(raw);
  if (v === undefined || !(v >= min && v <= max)) throw new UsageError(`--${name} must be a number in ${min}..${max}, got '${raw}'`);
  return v;
}

function parse(argv: readonly string[]): (PlanInput & { json: boolean }) | 'help' {
  const v = parseOptions(argv, {
    dau: { type: 'string' },
    'requests-per-user': { type: 'string' },
    'peak-factor': { type: 'string' },
    'rps-per-node': { type: 'string' },
    regions: { type: 'string' },
    'response-size': { type: 'string' },
    headroom: { type: 'string' },
    'survive-region-loss': { type: 'boolean' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) return 'help';
  const regionsRaw = (v.regions ?? 'global').split(',').filter((x) => x.length > 0);
  const parsed = regionsRaw.map((item) => {
    const [name, share] = item.split(':');
    if (!name) throw new UsageError(`--regions: empty region name in '${v.regions}'`);
    const s = share === undefined ? 1 : Number(share);
    if (!(s > 0)) throw new UsageError(`--regions: share of ${name} must be > 0, got '${share}'`);
    return { name, share: s };
  });
  if (parsed.length === 0) throw new UsageError('--regions: no region given');
  const total = parsed.reduce((a, r) => a + r.share, 0);
  const size = v['response-size'] === undefined ? 10_000 : parseBytes(v['response-size']);
  if (size === undefined) throw new UsageError(`--response-size must be a size such as 10KB, got '${v['response-size']}'`);
  const headroom = v.headroom === undefined ? 0.3 : Number(v.headroom);
  if (!(headroom >= 0 && headroom <= 0.9)) throw new UsageError(`--headroom must be in 0..0.9, got '${v.headroom}'`);
  return {
    dau: num('dau', v.dau, undefined, 1, 1e12),
    requestsPerUser: num('requests-per-user', v['requests-per-user'], undefined, 0.001, 1e6),
    peakFactor: num('peak-factor', v['peak-factor'], undefined, 1, 1000),
    rpsPerNode: num('rps-per-node', v['rps-per-node'], MEASURED_RPS_PER_NODE, 1, 1e9),
    regions: parsed.map((r) => ({ name: r.name, share: r.share / total })),
    responseBytes: size,
    headroom,
    surviveRegionLoss: v['survive-region-loss'] === true,
    json: v.json === true,
  };
}

export async function runPlan(argv: string[], io: Io): Promise<number> {
  const s = parseCommand('plan', argv, io, parse, PLAN_USAGE, PLAN_USAGE_LINE);
  if (typeof s === 'number') return s;
  const p = plan(s);
  if (s.json) {
    io.stdout(JSON.stringify(p, null, 2));
    return 0;
  }
  const n = (x: number): string => x.toLocaleString('en-US');
  const lines = [
    `requests per day     ${n(p.requests_per_day)}`,
    `average QPS          ${n(p.average_qps)}`,
    `peak QPS             ${n(p.peak_qps)}  (x${s.peakFactor})`,
    `peak bandwidth       ${p.peak_bandwidth_gbps} Gbit/s  (${n(s.responseBytes)} B per response)`,
    `egress per day       ${p.egress_tb_per_day} TB`,
    `per node             ${n(p.rps_per_node)} req/s${s.rpsPerNode === MEASURED_RPS_PER_NODE ? ' (measured: bench/proxy.bench.ts, 1 worker, 2-core machine)' : ''}, run at most ${Math.round((1 - p.headroom) * 100)}% busy`,
    '',
    `${'region'.padEnd(16)}${'share'.padStart(7)}${'peak QPS'.padStart(12)}${'design QPS'.padStart(12)}${'LB nodes'.padStart(10)}`,
    ...p.regions.map((r) => `${r.name.padEnd(16)}${(r.share * 100).toFixed(1).padStart(6)}%${n(r.peak_qps).padStart(12)}${n(r.design_qps).padStart(12)}${String(r.nodes).padStart(10)}`),
    `${'total'.padEnd(47)}${String(p.total_nodes).padStart(10)}`,
    '',
    `nodes = ceil(design QPS / (per node x ${(1 - p.headroom).toFixed(2)})) + 1 spare${s.surviveRegionLoss ? '; design QPS includes the failover share of the largest other region' : ''}`,
  ];
  io.stdout(lines.join('\n'));
  return 0;
}
