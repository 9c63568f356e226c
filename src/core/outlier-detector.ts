import type { HostHealth } from './health.js';
import { isGatewayFailure, isServerFailure, type Outcome } from './types.js';

export interface SuccessRateOptions {
  /** Hosts with enough requests needed before success-rate ejection runs. Default 5. */
  readonly minimumHosts?: number;
  /** Requests a host needs in an interval to be judged. Default 100. */
  readonly requestVolume?: number;
  /** Eject below mean - stdevFactor x stdev of the hosts' success rates. Default 1.9. */
  readonly stdevFactor?: number;
}

export interface OutlierOptions {
  /** Consecutive 5xx (or failed requests) that eject a host; 0 disables. Default 5. */
  readonly consecutive5xx?: number;
  /** Consecutive gateway errors (502/503/504, connect failure, reset, timeout); 0 disables. Default 5. */
  readonly consecutiveGatewayErrors?: number;
  /** How often success rates are judged and ejections reviewed. Default 10 s. */
  readonly intervalMs?: number;
  /** First ejection's length; the n-th lasts n times as long. Default 30 s. */
  readonly baseEjectionMs?: number;
  /** Cap on one ejection's length. Default 300 s. */
  readonly maxEjectionMs?: number;
  /** At most this percentage of hosts ejected at once; one host may always be. Default 10. */
  readonly maxEjectionPercent?: number;
  /** Success-rate ejection; omitted = off. */
  readonly successRate?: SuccessRateOptions;
}

/** Envoy's defaults for outlier detection: the config schema fills these in, and the detector falls back on them. */
export const OUTLIER_DEFAULTS = {
  consecutive5xx: 5,
  consecutiveGatewayErrors: 5,
  intervalMs: 10_000,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectionPercent: 10,
  successRate: { minimumHosts: 5, requestVolume: 100, stdevFactor: 1.9 },
} as const;

/** Why a host was ejected: outlier detection's reasons, and connect-failure ejection's `connect_failure`. */
export type EjectionReason = 'consecutive_5xx' | 'consecutive_gateway_errors' | 'success_rate' | 'connect_failure';

export interface Ejection {
  readonly health: HostHealth;
  readonly reason: EjectionReason;
  /** When it is due back; Infinity when active health checks decide (connect-failure ejection). */
  readonly untilMs: number;
}

/**
 * Passive health: Envoy's outlier detection over the hosts of one cluster. Fed every
 * outcome; ejects a host after consecutive failures at once, and on each interval
 * judges success rates against the cluster's mean and standard deviation. Ejection n
 * lasts min(n x base, max); the multiplier falls by one for each interval a host then
 * spends un-ejected and without failures.
 *
 * It keeps the cluster's host list (`setHosts`, on every membership change) and the
 * number of them ejected, kept up to date as it ejects and returns hosts, so an outcome
 * costs O(1) whatever the cluster's size; only the interval's review and the return of
 * ejected hosts walk the list.
 */
export class OutlierDetector {
  readonly intervalMs: number;
  readonly #o: Required<Omit<OutlierOptions, 'successRate'>> & { successRate: Required<SuccessRateOptions> | undefined };
  #hosts: readonly HostHealth[] = [];
  #ejected = 0;

  constructor(options: OutlierOptions = {}) {
    const d = OUTLIER_DEFAULTS;
    this.#o = {
      consecutive5xx: options.consecutive5xx ?? d.consecutive5xx,
      consecutiveGatewayErrors: options.consecutiveGatewayErrors ?? d.consecutiveGatewayErrors,
      intervalMs: options.intervalMs ?? d.intervalMs,
      baseEjectionMs: options.baseEjectionMs ?? d.baseEjectionMs,
      maxEjectionMs: options.maxEjectionMs ?? d.maxEjectionMs,
      maxEjectionPercent: options.maxEjectionPercent ?? d.maxEjectionPercent,
      successRate: options.successRate && {
        minimumHosts: options.successRate.minimumHosts ?? d.successRate.minimumHosts,
        requestVolume: options.successRate.requestVolume ?? d.successRate.requestVolume,
        stdevFactor: options.successRate.stdevFactor ?? d.successRate.stdevFactor,
      },
    };
    this.intervalMs = this.#o.intervalMs;
  }

  /** The cluster's hosts from now on (a membership change): the ejection cap counts over them. */
  setHosts(hosts: readonly HostHealth[]): void {
    this.#hosts = hosts;
    let ejected = 0;
    for (const h of hosts) if (h.ejected) ejected++;
    this.#ejected = ejected;
  }

  /** Hosts of the cluster ejected now. */
  get ejectedCount(): number {
    return this.#ejected;
  }

  /** Count one outcome of one of the cluster's hosts; returns the ejection it caused, if any. */
  record(host: HostHealth, outcome: Outcome, nowMs: number): Ejection | undefined {
    const failed = isServerFailure(outcome);
    host.windowRequests++;
    if (!failed) host.windowSuccesses++;
    host.consecutive5xx = failed ? host.consecutive5xx + 1 : 0;
    host.consecutiveGatewayErrors = isGatewayFailure(outcome) ? host.consecutiveGatewayErrors + 1 : 0;
    const o = this.#o;
    if (o.consecutiveGatewayErrors > 0 && host.consecutiveGatewayErrors >= o.consecutiveGatewayErrors) {
      return this.#eject(host, 'consecutive_gateway_errors', nowMs);
    }
    if (o.consecutive5xx > 0 && host.consecutive5xx >= o.consecutive5xx) {
      return this.#eject(host, 'consecutive_5xx', nowMs);
    }
    return undefined;
  }

  /** Return ejected hosts whose time is up; called whenever `nextReturnMs` comes due. */
  returnDue(nowMs: number): HostHealth[] {
    const returned: HostHealth[] = [];
    for (const h of this.#hosts) {
      if (h.ejected && h.ejectedUntilMs <= nowMs) {
        h.ejected = false;
        h.consecutive5xx = 0;
        h.consecutiveGatewayErrors = 0;
        this.#ejected--;
        returned.push(h);
      }
    }
    return returned;
  }

  /**
   * The interval's work: relax the back-off of hosts that stayed well, judge success
   * rates, and start a new window. Returns the hosts it ejected.
   */
  review(nowMs: number): Ejection[] {
    const all = this.#hosts;
    for (const h of all) {
      if (!h.ejected && h.ejectionLevel > 0 && h.windowRequests === h.windowSuccesses) h.ejectionLevel--;
    }
    const ejected: Ejection[] = [];
    const sr = this.#o.successRate;
    if (sr) {
      const judged = all.filter((h) => !h.ejected && h.windowRequests >= sr.requestVolume);
      if (judged.length >= sr.minimumHosts) {
        const rates = judged.map((h) => h.windowSuccesses / h.windowRequests);
        const mean = rates.reduce((a, b) => a + b, 0) / rates.length;
        const stdev = Math.sqrt(rates.reduce((a, r) => a + (r - mean) ** 2, 0) / rates.length);
        const floor = mean - sr.stdevFactor * stdev;
        judged.forEach((h, i) => {
          if ((rates[i] as number) < floor) {
            const e = this.#eject(h, 'success_rate', nowMs);
            if (e) ejected.push(e);
          }
        });
      }
    }
    for (const h of all) {
      h.windowRequests = 0;
      h.windowSuccesses = 0;
    }
    return ejected;
  }

  /** The earliest time an ejected host is due back, or Infinity. */
  nextReturnMs(): number {
    if (this.#ejected === 0) return Infinity;
    let next = Infinity;
    for (const h of this.#hosts) if (h.ejected && h.ejectedUntilMs < next) next = h.ejectedUntilMs;
    return next;
  }

  #eject(host: HostHealth, reason: EjectionReason, nowMs: number): Ejection | undefined {
    if (host.ejected) return undefined;
    const ejectedNow = this.#ejected;
    if (ejectedNow > 0 && (100 * (ejectedNow + 1)) / this.#hosts.length > this.#o.maxEjectionPercent) return undefined;
    this.#ejected++;
    host.ejectionLevel++;
    host.ejectionsTotal++;
    host.ejected = true;
    host.ejectedUntilMs = nowMs + Math.min(this.#o.baseEjectionMs * host.ejectionLevel, this.#o.maxEjectionMs);
    host.consecutive5xx = 0;
    host.consecutiveGatewayErrors = 0;
    return { health: host, reason, untilMs: host.ejectedUntilMs };
  }
}
