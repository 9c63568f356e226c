import type { SimReport } from './index.js';

/** The terminal table: one row per policy. */
export function formatTable(r: SimReport): string {
  // The cross-region column only where a load balancer sent tries to another region.
  const cross = r.results.some((x) => x.cross_region_tries > 0);
  // Keys moved by each scale-out or scale-in, in order, where a hash policy saw one.
  const moves = r.results.some((x) => x.membership_changes.some((c) => c.keys_moved !== undefined));
  const head = ['policy', 'requests', 'completed', 'failed', 'shed', ...(cross ? ['cross-region'] : []), ...(moves ? ['keys moved'] : []), 'mean ms', 'p50', 'p90', 'p99', 'p99.9', 'max util', 'imbalance'];
  const rows = r.results.map((x) => [
    x.policy,
    String(x.requests),
    String(x.completed),
    String(x.failed),
    String(x.shed),
    ...(cross ? [String(x.cross_region_tries)] : []),
    ...(moves ? [keysMoved(x)] : []),
    x.latency_ms.mean.toFixed(2),
    x.latency_ms.p50.toFixed(2),
    x.latency_ms.p90.toFixed(2),
    x.latency_ms.p99.toFixed(2),
    x.latency_ms.p999.toFixed(2),
    x.max_utilization.toFixed(3),
    x.imbalance.toFixed(3),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  const title = `${r.scenario}: seed ${r.seed}, ${r.duration_s}s virtual (first ${r.warmup_s}s excluded), latency in ms (HDR, 3 significant digits)`;
  return [title, line(head), ...rows.map(line)].join('\n');
}

/** `9.1% / 18.2%`: the share of keys each membership change moved; `-` for a policy that does not hash. */
function keysMoved(x: SimReport['results'][number]): string {
  const shares = x.membership_changes.flatMap((c) => (c.keys_moved === undefined ? [] : [`${(c.keys_moved * 100).toFixed(1)}%`]));
  return shares.length === 0 ? '-' : shares.join(' / ');
}
