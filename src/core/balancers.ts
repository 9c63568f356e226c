import type { Clock } from './clock.js';
import { LeastRequestBalancer, type LeastRequestOptions } from './least-request.js';
import { MaglevBalancer } from './maglev.js';
import { PeakEwmaBalancer, type PeakEwmaOptions } from './peak-ewma.js';
import { PredictiveBalancer, type PredictiveOptions } from './predictive.js';
import { PrequalBalancer, type PrequalOptions } from './prequal.js';
import { RandomBalancer } from './random.js';
import { RingHashBalancer } from './ring-hash.js';
import type { Rng } from './rng.js';
import { RoundRobinBalancer } from './round-robin.js';
import type { Balancer, PolicyName } from './types.js';

export interface PolicyOptions {
  readonly leastRequest?: LeastRequestOptions;
  readonly peakEwma?: PeakEwmaOptions;
  readonly prequal?: PrequalOptions;
  readonly predictive?: PredictiveOptions;
  readonly ringHash?: { readonly minRingSize?: number; readonly maxRingSize?: number };
  readonly maglev?: { readonly tableSize?: number };
  /** Bounded-load factor c for ring_hash and maglev; undefined = plain consistent hashing. */
  readonly boundedLoad?: number;
}

/** Policies whose hosts keep their keys: weights must not drift, so slow start skips them. */
export function isHashPolicy(policy: PolicyName): boolean {
  return policy === 'ring_hash' || policy === 'maglev';
}

export function createBalancer(policy: PolicyName, rng: Rng, clock: Clock, options: PolicyOptions = {}): Balancer {
  switch (policy) {
    case 'round_robin':
      return new RoundRobinBalancer();
    case 'random':
      return new RandomBalancer(rng);
    case 'least_request':
      return new LeastRequestBalancer(rng, options.leastRequest);
    case 'peak_ewma':
      return new PeakEwmaBalancer(rng, clock, options.peakEwma);
    case 'ring_hash':
      return new RingHashBalancer(rng, { ...options.ringHash, boundedLoad: options.boundedLoad });
    case 'maglev':
      return new MaglevBalancer(rng, { ...options.maglev, boundedLoad: options.boundedLoad });
    case 'prequal':
      return new PrequalBalancer(rng, clock, options.prequal);
    case 'predictive':
      return new PredictiveBalancer(rng, clock, { ...options.predictive, ...(options.peakEwma ? { peakEwma: options.peakEwma } : {}) });
  }
}
