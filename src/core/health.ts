import type { Rng } from './rng.js';

export interface ActiveCheckThresholds {
  /** Consecutive passing checks that make an unhealthy host healthy. Default 2. */
  readonly healthyThreshold?: number;
  /** Consecutive failing checks that make a healthy host unhealthy. Default 3. */
  readonly unhealthyThreshold?: number;
}

/**
 * The wait before a host's (or a region's) next active probe: interval x (1 + jitter x u),
 * u = 2 x rng.next() - 1 in [-1, 1); at least 1 ms. Jittered so that probes of many hosts
 * drift apart instead of arriving in lockstep.
 */
export function nextCheckDelayMs(intervalMs: number, jitter: number, rng: Rng): number {
  const u = 2 * rng.next() - 1;
  return Math.max(1, intervalMs * (1 + jitter * u));
}

/** What a host's health is, for people: one word per state, in order of precedence. */
export type HealthStatus = 'draining' | 'unhealthy' | 'ejected' | 'slow_start' | 'healthy';

/**
 * The health of one host, combining the active checker's verdict, passive ejection (by
 * outlier detection, or for failing to connect) and the operator's drain. The host takes
 * traffic only when all allow it (`routable`); the cluster decides what to do when too
 * few are (panic).
 *
 * Counters for passive detection live here; the decisions live in OutlierDetector (those
 * that need the whole cluster: the ejection cap, success-rate outliers) and in
 * ConnectFailureEjection (connect failures).
 */
export class HostHealth {
  /** Verdict of active health checks; hosts start healthy unless told otherwise. */
  activeHealthy: boolean;
  draining = false;
  ejected = false;
  ejectedUntilMs = 0;
  /** Times ejected, decremented while well: multiplies the next ejection's duration. */
  ejectionLevel = 0;
  /** Total ejections ever, for metrics. */
  ejectionsTotal = 0;
  consecutive5xx = 0;
  consecutiveGatewayErrors = 0;
  /**
   * Out for failing to connect (connect-failure ejection), until `unreachableUntilMs`; when
   * that is Infinity, until active checks pass again.
   */
  unreachable = false;
  unreachableUntilMs = 0;
  /** Unreachable spells in a row, with no connection made in between: each doubles the next. */
  unreachableLevel = 0;
  consecutiveConnectFailures = 0;
  /** Out by the fleet's vote (src/core/fleet-health.ts): other nodes judged it bad; this node's own judgement is the fields above. */
  fleetEjected = false;
  /** Requests and successes in the current outlier-detection interval. */
  windowRequests = 0;
  windowSuccesses = 0;
  #checkPasses = 0;
  #checkFailures = 0;

  constructor(initiallyHealthy = true) {
    this.activeHealthy = initiallyHealthy;
  }

  get routable(): boolean {
    return this.activeHealthy && !this.ejected && !this.unreachable && !this.draining && !this.fleetEjected;
  }

  /** Active checks passed in a row, up to now. */
  get checkPassesInARow(): number {
    return this.#checkPasses;
  }

  /** Only checks from now on count toward the thresholds (a verdict or an ejection starts over). */
  restartCheckStreaks(): void {
    this.#checkPasses = 0;
    this.#checkFailures = 0;
  }

  /** Record an active check; returns true when the active verdict flipped. */
  recordCheck(passed: boolean, thresholds: ActiveCheckThresholds = {}): boolean {
    if (passed) {
      this.#checkPasses++;
      this.#checkFailures = 0;
      if (!this.activeHealthy && this.#checkPasses >= (thresholds.healthyThreshold ?? 2)) {
        this.activeHealthy = true;
        return true;
      }
    } else {
      this.#checkFailures++;
      this.#checkPasses = 0;
      if (this.activeHealthy && this.#checkFailures >= (thresholds.unhealthyThreshold ?? 3)) {
        this.activeHealthy = false;
        return true;
      }
    }
    return false;
  }

  /**
   * Take an active verdict reached elsewhere (another process's checks of the same host):
   * the streaks start over from it. Returns true when the verdict flipped.
   */
  assume(healthy: boolean): boolean {
    this.restartCheckStreaks();
    if (this.activeHealthy === healthy) return false;
    this.activeHealthy = healthy;
    return true;
  }
}
