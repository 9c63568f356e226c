/**
 * The sample backend's injected latency, as written in a config (`sample_backends`) or
 * on the command line; sampled by src/backend/latency.ts. Here, in config, since the
 * schema validates it and config depends on nothing above it.
 *
 * Spec strings (durations as in config files, see src/config/duration.ts):
 *   `0` (or absent)        no latency
 *   `10ms`                 constant
 *   `exp:10ms`             exponential with mean 10 ms
 *   `lognormal:10ms,1.0`   log-normal with mean 10 ms and sigma 1.0 (of the underlying normal)
 */
import { parseDuration } from './duration.js';

export type LatencySpec =
  | { readonly kind: 'none' }
  | { readonly kind: 'constant'; readonly ms: number }
  | { readonly kind: 'exp'; readonly meanMs: number }
  | { readonly kind: 'lognormal'; readonly meanMs: number; readonly sigma: number };

export const LATENCY_FORMS = '0, 10ms, exp:10ms or lognormal:10ms,1.0';

/** `"exp:10ms"` → `{ kind: 'exp', meanMs: 10 }`; throws an Error naming the spec when it is not one. */
export function parseLatency(text: string): LatencySpec {
  const bad = (): Error => new Error(`bad latency spec ${JSON.stringify(text)}: expected ${LATENCY_FORMS}`);
  if (text === '' || text === '0') return { kind: 'none' };
  const colon = text.indexOf(':');
  const kind = colon < 0 ? 'constant' : text.slice(0, colon);
  const rest = colon < 0 ? text : text.slice(colon + 1);
  if (kind === 'constant' || kind === 'exp') {
    const ms = parseDuration(rest);
    if (ms === undefined) throw bad();
    if (ms === 0) return { kind: 'none' };
    return kind === 'exp' ? { kind: 'exp', meanMs: ms } : { kind: 'constant', ms };
  }
  if (kind === 'lognormal') {
    const m = /^([^,]+),(\d+(?:\.\d+)?)$/.exec(rest);
    const meanMs = m === null ? undefined : parseDuration(m[1]);
    if (m === null || meanMs === undefined) throw bad();
    if (meanMs === 0) return { kind: 'none' };
    return { kind: 'lognormal', meanMs, sigma: Number(m[2]) };
  }
  throw bad();
}

/** The inverse of parseLatency, for messages. */
export function formatLatency(spec: LatencySpec): string {
  switch (spec.kind) {
    case 'none':
      return '0';
    case 'constant':
      return `${spec.ms}ms`;
    case 'exp':
      return `exp:${spec.meanMs}ms`;
    case 'lognormal':
      return `lognormal:${spec.meanMs}ms,${spec.sigma}`;
  }
}
