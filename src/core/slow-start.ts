export interface SlowStartOptions {
  /** How long a host takes to reach its full weight. */
  readonly windowMs: number;
  /** 1.0 ramps linearly; above 1 ramps faster early on (Envoy's `aggression`). Default 1.0. */
  readonly aggression?: number;
  /** The weight a host starts from, as a percentage of its full weight. Default 10. */
  readonly minWeightPercent?: number;
}

/**
 * The fraction of its weight a host gets `elapsedMs` into its slow-start window, as in
 * Envoy: max(minWeight, (elapsed / window) ^ (1 / aggression)), and 1 once the window
 * has passed. A cold host (new, or just back from failing) so takes a trickle that grows
 * while its caches and JIT warm, instead of its full share at once.
 */
export function slowStartFactor(elapsedMs: number, options: SlowStartOptions): number {
  if (elapsedMs >= options.windowMs || options.windowMs <= 0) return 1;
  const minFraction = (options.minWeightPercent ?? 10) / 100;
  const timeFactor = Math.max(0, elapsedMs) / options.windowMs;
  return Math.max(minFraction, Math.pow(timeFactor, 1 / (options.aggression ?? 1)));
}
