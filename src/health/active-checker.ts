/**
 * Active health checking: the I/O half of src/core's health state machine. Probes every
 * host of a cluster over HTTP or TCP and feeds each verdict to `Cluster.recordCheck`,
 * which applies the thresholds and emits 'health_changed' on a transition.
 *
 * Contract:
 * - each host has its own chain of timers: probe, then wait interval x (1 + jitter x u),
 *   u uniform in [-1, 1), then probe again; so probes of one host never overlap and
 *   hosts drift apart instead of probing in lockstep. The first probe of a host runs at once.
 * - membership follows the cluster: every `interval` the host list is read again; new
 *   hosts start being probed, removed hosts stop (a probe in flight for a removed host
 *   finishes, but its result is dropped).
 * - every failure counts the same toward unhealthy_threshold: timeout (no complete
 *   answer within `timeout`), refused, reset, unexpected status, anything else ('error').
 * - timers are unref()'d: a checker never keeps a process alive by itself.
 *
 * The thresholds are the cluster's (ClusterOptions.activeChecks, filled from the same
 * health_check config by src/config/to-core.ts); this class only reports pass or fail.
 */
import http from 'node:http';
import { HOPS_HEADER } from '../proxy/headers.js';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { HealthCheckConfig } from '../config/schema.js';
import type { Cluster, HostState } from '../core/cluster.js';
import { SeededRng, type Rng } from '../core/rng.js';

export type CheckFailure = 'timeout' | 'refused' | 'reset' | 'bad_status' | 'error';

export interface CheckResult {
  readonly host: HostState;
  readonly ok: boolean;
  /** Why it failed; absent when ok. */
  readonly reason?: CheckFailure;
  /** The response's status (http checks that got one). */
  readonly status?: number;
  /** From the start of the probe to its verdict. */
  readonly latencyMs: number;
}

export interface ActiveHealthCheckerOptions {
  /** Draws the jitter; default seeded from the clock (tests pass a SeededRng). */
  readonly rng?: Rng;
  /** Called after each scheduled probe's result was recorded in the cluster. */
  readonly onResult?: (r: CheckResult) => void;
  /**
   * Recording a result (the cluster's event listeners) or `onResult` threw: the checker
   * carries on probing, and says so here (absent: the error is dropped).
   */
  readonly onError?: (err: unknown) => void;
}

/** The wait before a host's next probe: interval x (1 + jitter x u), u = 2 x rng.next() - 1 in [-1, 1); at least 1 ms. */
export function nextCheckDelayMs(intervalMs: number, jitter: number, rng: Rng): number {
  const u = 2 * rng.next() - 1;
  return Math.max(1, intervalMs * (1 + jitter * u));
}

/** Whether `status` is in one of the configured ranges (inclusive). */
export function isExpectedStatus(status: number, ranges: HealthCheckConfig['expected_statuses']): boolean {
  return ranges.some((r) => status >= r.min && status <= r.max);
}

/** `host:port` or `[v6]:port` → the parts; undefined when it is neither. */
export function splitAddress(address: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  if (m === null) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? m[2] ?? '', port };
}

function failureOf(err: NodeJS.ErrnoException): CheckFailure {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'reset';
    case 'ETIMEDOUT':
      return 'timeout';
    default:
      return 'error';
  }
}

type Verdict = Omit<CheckResult, 'host' | 'latencyMs'>;

export class ActiveHealthChecker {
  readonly #cluster: Cluster;
  readonly #check: HealthCheckConfig;
  readonly #rng: Rng;
  readonly #onResult: ((r: CheckResult) => void) | undefined;
  readonly #onError: (err: unknown) => void;
  #running = false;
  /** Hosts being checked: the timer of the next probe, or null while one is in flight. */
  readonly #hosts = new Map<HostState, NodeJS.Timeout | null>();
  #membershipTimer: NodeJS.Timeout | undefined;
  /** Cancels each probe in flight (scheduled or one-shot). */
  readonly #inFlight = new Set<() => void>();

  constructor(cluster: Cluster, check: HealthCheckConfig, options: ActiveHealthCheckerOptions = {}) {
    this.#cluster = cluster;
    this.#check = check;
    this.#rng = options.rng ?? new SeededRng(Date.now());
    this.#onResult = options.onResult;
    this.#onError = options.onError ?? (() => {});
  }

  /** Probes in flight now (scheduled or one-shot). */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Timers pending now: one per idle host, plus the membership timer while running. */
  get pendingTimers(): number {
    let n = this.#membershipTimer === undefined ? 0 : 1;
    for (const t of this.#hosts.values()) if (t !== null) n++;
    return n;
  }

  get running(): boolean {
    return this.#running;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#syncMembership();
  }

  /** The cluster's hosts changed outside a reload (discovery): probe new ones now, not at the next interval. */
  membershipChanged(): void {
    if (!this.#running) return;
    clearTimeout(this.#membershipTimer);
    this.#syncMembership();
  }

  /** Clears every timer and aborts every probe in flight; their results are dropped. Idempotent. */
  stop(): void {
    this.#running = false;
    clearTimeout(this.#membershipTimer);
    this.#membershipTimer = undefined;
    for (const t of this.#hosts.values()) if (t !== null) clearTimeout(t);
    this.#hosts.clear();
    for (const cancel of [...this.#inFlight]) cancel();
  }

  /** One probe of `host`, now. Records nothing in the cluster: the scheduled rounds do that. */
  probe(host: HostState): Promise<CheckResult> {
    const started = performance.now();
    return new Promise<CheckResult>((resolve) => {
      let cleanup = (): void => {};
      const finish = (v: Verdict): void => {
        if (!this.#inFlight.delete(cancel)) return;
        clearTimeout(timer);
        cleanup();
        resolve({ host, ...v, latencyMs: performance.now() - started });
      };
      const cancel = (): void => finish({ ok: false, reason: 'error' });
      this.#inFlight.add(cancel);
      const timer = setTimeout(() => finish({ ok: false, reason: 'timeout' }), this.#check.timeout);
      timer.unref();
      const target = splitAddress(host.endpoint.address);
      if (target === undefined) return finish({ ok: false, reason: 'error' });
      try {
        cleanup = this.#check.type === 'tcp' ? this.#tcp(target, finish) : this.#http(host.endpoint.address, host.endpoint.locality?.remote === true, target, finish);
      } catch {
        // http.request throws at once on a path it cannot send (e.g. with a space in it).
        finish({ ok: false, reason: 'error' });
      }
    });
  }

  /** Starts a TCP probe; returns what destroys it. */
  #tcp(target: { host: string; port: number }, finish: (v: Verdict) => void): () => void {
    const socket = net.connect({ host: target.host, port: target.port });
    socket.once('connect', () => finish({ ok: true }));
    // on, not once: a second 'error' with no listener would crash the process.
    socket.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, reason: failureOf(e) }));
    return () => socket.destroy();
  }

  /** Starts an HTTP probe; returns what destroys it. The verdict comes at the end of the body. */
  #http(address: string, remote: boolean, target: { host: string; port: number }, finish: (v: Verdict) => void): () => void {
    const req = http.request({
      host: target.host,
      port: target.port,
      method: 'GET',
      path: this.#check.path,
      // Another region's Meridian answers for its own region only: the hops header keeps
      // it from forwarding the probe on (and from reporting healthy on a third region's behalf).
      headers: { host: address, 'user-agent': 'meridian-health-check', connection: 'close', ...(remote ? { [HOPS_HEADER]: 'health-check' } : {}) },
      agent: false,
    });
    req.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, reason: failureOf(e) }));
    req.once('response', (res) => {
      const status = res.statusCode ?? 0;
      const verdict: Verdict = isExpectedStatus(status, this.#check.expected_statuses) ? { ok: true, status } : { ok: false, reason: 'bad_status', status };
      // A body cut short ('close' before the end): the status was fine but the answer was not.
      res.on('close', () => finish(res.complete || !verdict.ok ? verdict : { ok: false, reason: 'reset', status }));
      res.on('error', () => {});
      res.resume();
    });
    req.end();
    return () => req.destroy();
  }

  #syncMembership(): void {
    if (!this.#running) return;
    const current = new Set(this.#cluster.hosts);
    for (const [host, timer] of this.#hosts) {
      if (current.has(host)) continue;
      if (timer !== null) clearTimeout(timer);
      this.#hosts.delete(host);
    }
    for (const host of current) if (!this.#hosts.has(host)) this.#schedule(host, 0);
    this.#membershipTimer = setTimeout(() => this.#syncMembership(), this.#check.interval);
    this.#membershipTimer.unref();
  }

  #schedule(host: HostState, delayMs: number): void {
    const timer = setTimeout(() => void this.#round(host), delayMs);
    timer.unref();
    this.#hosts.set(host, timer);
  }

  async #round(host: HostState): Promise<void> {
    if (!this.#isMember(host)) {
      this.#hosts.delete(host);
      return;
    }
    this.#hosts.set(host, null);
    const result = await this.probe(host);
    // Stopped, or the host left the cluster (and maybe came back as a new HostState) meanwhile.
    if (!this.#running || this.#hosts.get(host) !== null || !this.#isMember(host)) return;
    // Schedule first: what follows may call stop() (which clears this timer) or throw, and
    // a throw must neither end this host's probing nor escape as an unhandled rejection.
    this.#schedule(host, nextCheckDelayMs(this.#check.interval, this.#check.jitter, this.#rng));
    try {
      this.#cluster.recordCheck(host, result.ok);
      this.#onResult?.(result);
    } catch (err) {
      this.#onError(err);
    }
  }

  #isMember(host: HostState): boolean {
    return this.#cluster.host(host.endpoint.id) === host;
  }
}
