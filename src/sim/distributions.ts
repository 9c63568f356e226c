import type { Rng } from '../core/rng.js';

/**
 * Service-time distributions, in milliseconds. Each is described by its parameters
 * (as in the scenario file) and sampled from an injected Rng, so a seed fixes every draw.
 */
export type ServiceTime =
  | { readonly dist: 'constant'; readonly valueMs: number }
  | { readonly dist: 'exponential'; readonly meanMs: number }
  /** Normal truncated at zero (a draw below zero is redrawn). */
  | { readonly dist: 'normal'; readonly meanMs: number; readonly sdMs: number }
  /** Lognormal with the given mean and shape sigma (the sd of the underlying normal). */
  | { readonly dist: 'lognormal'; readonly meanMs: number; readonly sigma: number }
  /** `aMs` with probability p, else `bMs`. */
  | { readonly dist: 'bimodal'; readonly p: number; readonly aMs: number; readonly bMs: number }
  /** Pareto (type I) with shape alpha > 1 and the given mean: scale xm = mean (alpha - 1) / alpha. */
  | { readonly dist: 'pareto'; readonly meanMs: number; readonly alpha: number };

/** The mean of a distribution, in ms (what `speed` and utilization figures are relative to). */
export function meanOf(d: ServiceTime): number {
  switch (d.dist) {
    case 'constant':
      return d.valueMs;
    case 'bimodal':
      return d.p * d.aMs + (1 - d.p) * d.bMs;
    case 'normal':
      return d.meanMs; // truncation at zero shifts it up a little when sd is comparable to the mean
    default:
      return d.meanMs;
  }
}

/** Lognormal sigma for a given mean and p99 (p99 / mean = exp(2.3263 sigma - sigma^2 / 2), smaller root). */
export function lognormalSigmaFromP99(meanMs: number, p99Ms: number): number {
  const z = 2.3263478740408408;
  const k = Math.log(p99Ms / meanMs);
  const disc = z * z - 2 * k;
  if (!(k > 0) || disc < 0) throw new RangeError(`no lognormal has mean ${meanMs} ms and p99 ${p99Ms} ms`);
  return z - Math.sqrt(disc);
}

/** A sampler: one draw in ms per call. */
export type Sampler = (rng: Rng) => number;

export function sampler(d: ServiceTime): Sampler {
  switch (d.dist) {
    case 'constant': {
      const v = d.valueMs;
      return () => v;
    }
    case 'exponential': {
      const m = d.meanMs;
      return (rng) => -m * Math.log(1 - rng.next());
    }
    case 'normal': {
      const { meanMs, sdMs } = d;
      return (rng) => {
        for (;;) {
          const x = meanMs + sdMs * gaussian(rng);
          if (x >= 0) return x;
        }
      };
    }
    case 'lognormal': {
      const { sigma } = d;
      const mu = Math.log(d.meanMs) - (sigma * sigma) / 2;
      return (rng) => Math.exp(mu + sigma * gaussian(rng));
    }
    case 'bimodal': {
      const { p, aMs, bMs } = d;
      return (rng) => (rng.next() < p ? aMs : bMs);
    }
    case 'pareto': {
      const { alpha } = d;
      const xm = (d.meanMs * (alpha - 1)) / alpha;
      const inv = -1 / alpha;
      return (rng) => xm * Math.pow(1 - rng.next(), inv);
    }
  }
}

/** Standard normal by Box-Muller (one of the pair; simplicity over speed). */
export function gaussian(rng: Rng): number {
  const u = 1 - rng.next();
  const v = rng.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Exponential inter-arrival gap in ms for a rate per second. */
export function exponentialGapMs(rng: Rng, ratePerSecond: number): number {
  return (-1000 * Math.log(1 - rng.next())) / ratePerSecond;
}
