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

export type EjectionReason = 'consecutive_5xx' | 'consecutive_gateway_errors' | 'success_rate';

export interface Ejection {
  readonly health: HostHealth;
  readonly reason: EjectionReason;
  readonly untilMs: number;
}

/**
 * Passive health: Envoy's outlier detection over the hosts of one cluster. Fed every
 * outcome; ejects a host after consecutive failures at once, and on each interval
 * judges success rates against the cluster's mean and standard deviation. Ejection n
 * lasts min(n x base, max); the multiplier falls by one for each interval a host then
 * spends un-ejected and without failures.
 */
export class OutlierDetector {
  readonly intervalMs: number;
  readonly #o: Required<Omit<OutlierOptions, 'successRate'>> & { successRate: Required<SuccessRateOptions> | undefined };

  constructor(options: OutlierOptions = {}) {
    this.#o = {
      consecutive5xx: options.consecutive5xx ?? 5,
      consecutiveGatewayErrors: options.consecutiveGatewayErrors ?? 5,
      intervalMs: options.intervalMs ?? 10_000,
      baseEjectionMs: options.baseEjectionMs ?? 30_000,
      maxEjectionMs: options.maxEjectionMs ?? 300_000,
      maxEjectionPercent: options.maxEjectionPercent ?? 10,
      successRate: options.successRate && {
        minimumHosts: options.successRate.minimumHosts ?? 5,
        requestVolume: options.successRate.requestVolume ?? 100,
        stdevFactor: options.successRate.stdevFactor ?? 1.9,
      },
    };
    this.intervalMs = this.#o.intervalMs;
  }

  /** Count one outcome; returns the ejection it caused, if any. */
  record(host: HostHealth, outcome: Outcome, all: readonly HostHealth[], nowMs: number): Ejection | undefined {
    const failed = isServerFailure(outcome);
    host.windowRequests++;
    if (!failed) host.windowSuccesses++;
    host.consecutive5xx = failed ? host.consecutive5xx + 1 : 0;
    host.consecutiveGatewayErrors = isGatewayFailure(outcome) ? host.consecutiveGatewayErrors + 1 : 0;
    const o = this.#o;
    if (o.consecutiveGatewayErrors > 0 && host.consecutiveGatewayErrors >= o.consecutiveGatewayErrors) {
      return this.#eject(host, 'consecutive_gateway_errors', all, nowMs);
    }
    if (o.consecutive5xx > 0 && host.consecutive5xx >= o.consecutive5xx) {
      return this.#eject(host, 'consecutive_5xx', all, nowMs);
    }
    return undefined;
  }

  /** Return ejected hosts whose time is up; called whenever `nextReturnMs` comes due. */
  returnDue(all: readonly HostHealth[], nowMs: number): HostHealth[] {
    const returned: HostHealth[] = [];
    for (const h of all) {
      if (h.ejected && h.ejectedUntilMs <= nowMs) {
        h.ejected = false;
        h.consecutive5xx = 0;
        h.consecutiveGatewayErrors = 0;
        returned.push(h);
      }
    }
    return returned;
  }

  /**
   * The interval's work: relax the back-off of hosts that stayed well, judge success
   * rates, and start a new window. Returns the hosts it ejected.
   */
  review(all: readonly HostHealth[], nowMs: number): Ejection[] {
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
            const e = this.#eject(h, 'success_rate', all, nowMs);
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
  nextReturnMs(all: readonly HostHealth[]): number {
    let next = Infinity;
    for (const h of all) if (h.ejected && h.ejectedUntilMs < next) next = h.ejectedUntilMs;
    return next;
  }

  #eject(host: HostHealth, reason: EjectionReason, all: readonly HostHealth[], nowMs: number): Ejection | undefined {
    if (host.ejected) return undefined;
    const ejectedNow = all.reduce((n, h) => n + (h.ejected ? 1 : 0), 0);
    if (ejectedNow > 0 && (100 * (ejectedNow + 1)) / all.length > this.#o.maxEjectionPercent) return undefined;
    host.ejectionLevel++;
    host.ejectionsTotal++;
    host.ejected = true;
    host.ejectedUntilMs = nowMs + Math.min(this.#o.baseEjectionMs * host.ejectionLevel, this.#o.maxEjectionMs);
    host.consecutive5xx = 0;
    host.consecutiveGatewayErrors = 0;
    return { health: host, reason, untilMs: host.ejectedUntilMs };
  }
}
