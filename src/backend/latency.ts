/**
 * Injected latency for the sample backend: a sampler driven by a seeded Rng, so a run
 * with the same seed waits the same sequence. The spec's grammar is src/config/latency-spec.ts.
 */
import type { LatencySpec } from '../config/latency-spec.js';
import type { Rng } from '../core/rng.js';

/** setTimeout's largest delay: anything above fires at once (with a warning). */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** One delay in ms drawn from `spec` (exp uses one draw of `rng`, lognormal two, the others none). */
export function sampleLatencyMs(spec: LatencySpec, rng: Rng): number {
  let ms: number;
  switch (spec.kind) {
    case 'none':
      return 0;
    case 'constant':
      ms = spec.ms;
      break;
    case 'exp':
      // Inverse CDF; 1 - u is in (0, 1], so the log is finite.
      ms = -spec.meanMs * Math.log(1 - rng.next());
      break;
    case 'lognormal': {
      // exp(N(mu, sigma^2)) has mean exp(mu + sigma^2 / 2): choose mu so the mean is meanMs.
      const mu = Math.log(spec.meanMs) - (spec.sigma * spec.sigma) / 2;
      // Box-Muller: one standard normal from two uniforms.
      const z = Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
      ms = Math.exp(mu + spec.sigma * z);
      break;
    }
  }
  return Math.min(ms, MAX_DELAY_MS);
}
