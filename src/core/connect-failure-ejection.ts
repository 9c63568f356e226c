import type { ActiveCheckThresholds, HostHealth } from './health.js';
import type { Ejection } from './outlier-detector.js';
import type { Outcome } from './types.js';

export interface ConnectFailureOptions {
  /** Connect failures in a row that eject a host; 0 disables. Default 1. */
  readonly consecutiveFailures?: number;
  /** Without active checks: the first ejection's length; each further one in a row doubles it. Default 1 s. */
  readonly baseEjectionMs?: number;
  /** Without active checks: cap on one ejection's length. Default 30 s. */
  readonly maxEjectionMs?: number;
}

/**
 * Connect-failure ejection: a host Meridian could not connect to (refused, unreachable,
 * connect timeout: a local-origin failure, in Envoy's terms) is taken out of the picks at
 * once, on that passive signal, without waiting for an outlier interval or an active check. A failed connect is the one
 * failure that says nothing about the request and everything about the host: the
 * process is gone, or its port is closed or full.
 *
 * - Ejects after `consecutiveFailures` connect failures in a row (default 1: nginx's
 *   `max_fails=1`; Envoy's `consecutive_local_origin_failure` with
 *   `split_external_local_origin_errors`, whose default of 5 lets 4 more requests pay).
 *   Any try that connected resets the run, whatever its answer.
 * - Comes back, on a cluster with active checks, after `healthyThreshold` checks in a row
 *   pass after the ejection (HAProxy's `observe layer4` + `on-error mark-down`: a probe,
 *   not a client's request, finds out the host is back). Without active checks, after
 *   `base x 2^(n-1)` (capped) for the n-th ejection in a row (nginx's `fail_timeout`,
 *   Envoy's growing ejection time); a host still down is then ejected again by the first
 *   request that finds it so, which a connect-failure retry carries elsewhere.
 * - Not capped by outlier detection's `maxEjectionPercent`: a host that cannot be
 *   connected to serves nothing, so ejecting it loses no capacity; the cluster's panic
 *   threshold still balances over every host when too few are left.
 *
 * Keeps the cluster's host list (`setHosts`) and how many are ejected, so an outcome
 * costs O(1); only returning hosts walks the list.
 */
export class ConnectFailureEjection {
  readonly #consecutive: number;
  readonly #baseMs: number;
  readonly #maxMs: number;
  /** Set when active checks decide the return; then no timer does. */
  readonly #checks: ActiveCheckThresholds | undefined;
  #hosts: readonly HostHealth[] = [];
  #ejected = 0;

  constructor(options: ConnectFailureOptions, activeChecks: ActiveCheckThresholds | undefined) {
    this.#consecutive = options.consecutiveFailures ?? 1;
    if (!(this.#consecutive >= 1)) throw new RangeError(`consecutiveFailures must be >= 1, got ${this.#consecutive}`);
    this.#baseMs = options.baseEjectionMs ?? 1_000;
    this.#maxMs = options.maxEjectionMs ?? 30_000;
    this.#checks = activeChecks;
  }

  /** The cluster's hosts from now on (a membership change). */
  setHosts(hosts: readonly HostHealth[]): void {
    this.#hosts = hosts;
    let ejected = 0;
    for (const h of hosts) if (h.unreachable) ejected++;
    this.#ejected = ejected;
  }

  /** Hosts of the cluster ejected for failing to connect, now. */
  get ejectedCount(): number {
    return this.#ejected;
  }

  /** One try's outcome at one of the cluster's hosts; returns the ejection it caused, if any. */
  record(host: HostHealth, outcome: Outcome, nowMs: number): Ejection | undefined {
    if (outcome.error === 'connect') {
      host.consecutiveConnectFailures++;
      if (host.unreachable || host.consecutiveConnectFailures < this.#consecutive) return undefined;
      return this.#eject(host, nowMs);
    }
    // An answer (or a reset or timeout after connecting) shows the host took the
    // connection. One arriving while the host is out was under way before: it brings
    // nothing back.
    if ((outcome.status !== undefined || outcome.error !== undefined) && !host.unreachable) {
      host.consecutiveConnectFailures = 0;
      host.unreachableLevel = 0;
    }
    return undefined;
  }

  /** After an active check passed: true when that brought the host back. */
  checkPassed(host: HostHealth): boolean {
    const checks = this.#checks;
    if (checks === undefined || !host.unreachable || host.checkPassesInARow < (checks.healthyThreshold ?? 2)) return false;
    this.#return(host);
    return true;
  }

  /** Return hosts whose ejection time is up (clusters without active checks). */
  returnDue(nowMs: number): HostHealth[] {
    const returned: HostHealth[] = [];
    if (this.#ejected === 0) return returned;
    for (const h of this.#hosts) {
      if (h.unreachable && h.unreachableUntilMs <= nowMs) {
        this.#return(h);
        returned.push(h);
      }
    }
    return returned;
  }

  /** The earliest time an ejected host is due back, or Infinity. */
  nextReturnMs(): number {
    if (this.#ejected === 0) return Infinity;
    let next = Infinity;
    for (const h of this.#hosts) if (h.unreachable && h.unreachableUntilMs < next) next = h.unreachableUntilMs;
    return next;
  }

  #eject(host: HostHealth, nowMs: number): Ejection {
    host.unreachable = true;
    host.ejectionsTotal++;
    this.#ejected++;
    if (this.#checks !== undefined) {
      // Only probes sent after the ejection may bring it back.
      host.restartCheckStreaks();
      host.unreachableUntilMs = Infinity;
    } else {
      host.unreachableUntilMs = nowMs + Math.min(this.#baseMs * 2 ** host.unreachableLevel, this.#maxMs);
    }
    host.unreachableLevel++;
    return { health: host, reason: 'connect_failure', untilMs: host.unreachableUntilMs };
  }

  #return(host: HostHealth): void {
    host.unreachable = false;
    host.consecutiveConnectFailures = 0;
    this.#ejected--;
  }
}
