/**
 * Capacity planning arithmetic for `meridian plan`: from daily users to QPS, bandwidth and
 * load balancer nodes per region. Pure: the CLI parses and prints.
 */

/** The proxy benchmark's measured figure: bench/proxy.bench.ts, Meridian with 1 worker on a 2-core machine. */
export const MEASURED_RPS_PER_NODE = 10_000;

export interface PlanInput {
  readonly dau: number;
  readonly requestsPerUser: number;
  readonly peakFactor: number;
  readonly rpsPerNode: number;
  /** Region names with their share of traffic (shares sum to 1). */
  readonly regions: readonly { readonly name: string; readonly share: number }[];
  readonly responseBytes: number;
  /** Spare capacity kept at peak, as a fraction: nodes run at most at 1 - headroom. */
  readonly headroom: number;
  /** Size each region to also absorb its part of the largest other region's traffic should that region fail. */
  readonly surviveRegionLoss: boolean;
}

export interface RegionPlan {
  readonly name: string;
  readonly share: number;
  readonly peak_qps: number;
  /** Peak including the failover load taken over from a lost region (when asked for). */
  readonly design_qps: number;
  /** ceil(design_qps / (rps_per_node x (1 - headroom))) + 1 spare node (N+1). */
  readonly nodes: number;
}

export interface Plan {
  readonly average_qps: number;
  readonly peak_qps: number;
  readonly requests_per_day: number;
  readonly peak_bandwidth_gbps: number;
  readonly egress_tb_per_day: number;
  readonly rps_per_node: number;
  readonly headroom: number;
  readonly regions: readonly RegionPlan[];
  readonly total_nodes: number;
}

export function plan(p: PlanInput): Plan {
  const perDay = p.dau * p.requestsPerUser;
  const avg = perDay / 86_400;
  const peak = avg * p.peakFactor;
  const usable = p.rpsPerNode * (1 - p.headroom);
  const regions = p.regions.map((r) => {
    const regionPeak = peak * r.share;
    let design = regionPeak;
    if (p.surviveRegionLoss && p.regions.length > 1) {
      // Worst case for this region: the largest other region fails and its traffic spreads
      // over the survivors in proportion to their shares.
      let worst = 0;
      for (const lost of p.regions) {
        if (lost === r) continue;
        worst = Math.max(worst, (peak * lost.share * r.share) / (1 - lost.share));
      }
      design += worst;
    }
    return { name: r.name, share: r.share, peak_qps: Math.round(regionPeak), design_qps: Math.round(design), nodes: Math.ceil(design / usable) + 1 };
  });
  return {
    average_qps: Math.round(avg),
    peak_qps: Math.round(peak),
    requests_per_day: perDay,
    peak_bandwidth_gbps: +((peak * p.responseBytes * 8) / 1e9).toFixed(2),
    egress_tb_per_day: +((perDay * p.responseBytes) / 1e12).toFixed(2),
    rps_per_node: p.rpsPerNode,
    headroom: p.headroom,
    regions,
    total_nodes: regions.reduce((n, r) => n + r.nodes, 0),
  };
}

const SUFFIX: Record<string, number> = { '': 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6, b: 1e9, B: 1e9, g: 1e9, G: 1e9 };

/** `100M` -> 1e8, `2.5k` -> 2500, `10` -> 10; undefined when not a count. */
export function parseCount(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([kKmMbBgG]?)$/.exec(s.trim());
  return m ? Number(m[1]) * (SUFFIX[m[2] as string] as number) : undefined;
}

/** `10KB` -> 10000, `1.5MB`, `512B`, `2KiB` -> 2048. */
export function parseBytes(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(B|KB|MB|GB|KiB|MiB|GiB)$/i.exec(s.trim());
  if (!m) return undefined;
  const unit = (m[2] as string).toLowerCase();
  const f = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 }[unit] as number;
  return Number(m[1]) * f;
}
