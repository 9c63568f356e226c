export interface CircuitBreakerLimits {
  /** Upstream connections open at once. Default 1024. */
  readonly maxConnections?: number;
  /** Requests queued for a connection at once. Default 1024. */
  readonly maxPendingRequests?: number;
  /** Requests in flight at once. Default 1024. */
  readonly maxRequests?: number;
  /** Retries in flight at once. Default 3. */
  readonly maxRetries?: number;
}

export type BreakerResource = 'connections' | 'pending' | 'requests' | 'retries';

/**
 * Envoy-style circuit breaking: hard caps on what one cluster may have outstanding,
 * so an overloaded upstream fails fast (503) instead of queueing without bound. Each
 * `tryAcquire` that returns true must be paired with one `release` of the same resource.
 */
export class CircuitBreaker {
  readonly limits: Readonly<Record<BreakerResource, number>>;
  readonly #used: Record<BreakerResource, number> = { connections: 0, pending: 0, requests: 0, retries: 0 };
  readonly #tripped: Record<BreakerResource, number> = { connections: 0, pending: 0, requests: 0, retries: 0 };

  constructor(limits: CircuitBreakerLimits = {}) {
    this.limits = {
      connections: limits.maxConnections ?? 1024,
      pending: limits.maxPendingRequests ?? 1024,
      requests: limits.maxRequests ?? 1024,
      retries: limits.maxRetries ?? 3,
    };
  }

  tryAcquire(resource: BreakerResource): boolean {
    if (this.#used[resource] >= this.limits[resource]) {
      this.#tripped[resource]++;
      return false;
    }
    this.#used[resource]++;
    return true;
  }

  release(resource: BreakerResource): void {
    if (this.#used[resource] === 0) throw new Error(`circuit breaker: release of ${resource} without acquire`);
    this.#used[resource]--;
  }

  used(resource: BreakerResource): number {
    return this.#used[resource];
  }

  /** Times a resource was refused: the overflow counters of Envoy's stats. */
  overflows(resource: BreakerResource): number {
    return this.#tripped[resource];
  }

  /** True while the resource is at its limit (Envoy's `cx_open`-style gauge). */
  isOpen(resource: BreakerResource): boolean {
    return this.#used[resource] >= this.limits[resource];
  }
}
