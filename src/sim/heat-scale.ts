/**
 * The heat map's colour scale. A linear scale up to the largest cell lets one short burst
 * (a 10x spike, the catch-up after a revive) own the top colours and squeezes every normal
 * cell into one or two shades, so a slow server no longer stands out from its peers. The
 * scale therefore ends at the 95th percentile of the cells: anything above saturates (and the
 * legend says so), while the bulk keeps the full colour range. A percentile rather than a log
 * scale because a log scale compresses exactly the 2x-4x differences a slow server shows;
 * p95 rather than p99 because a 5 s spike in a 120 s run is already 4% of the cells.
 */
export const HEAT_CLIP_QUANTILE = 0.95;

/** The value the colour scale ends at: the nearest-rank `q` quantile of `values` (0 when empty). */
export function heatClip(values: readonly number[], q: number = HEAT_CLIP_QUANTILE): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] as number;
}

/** Which of `bins` colours a value falls in on a scale from 0 to `clip`; at or above the clip, the top one. */
export function heatBin(value: number, clip: number, bins: number): number {
  if (!(clip > 0)) return 0;
  return Math.max(0, Math.min(bins - 1, Math.floor((value / clip) * bins)));
}
