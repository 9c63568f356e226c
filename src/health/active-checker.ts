/**
 * Active health checking: the I/O half of src/core's health state machine. Probes a list
 * of endpoints over HTTP or TCP and hands each verdict to a target, which applies it: the
 * node feeds a cluster's `recordCheck` (thresholds, 'health_changed'), or, in a primary,
 * relays it to the workers (src/node). The checker knows endpoints, not clusters.
 *
 * Contract:
 * - each endpoint has its own chain of timers: probe, then wait interval x (1 + jitter x u),
 *   u uniform in [-1, 1), then probe again; so probes of one endpoint never overlap and
 *   endpoints drift apart instead of probing in lockstep. The first probe runs at once.
 * - membership follows the target: at start, every `interval` and at membershipChanged()
 *   the endpoint list is read again (by endpoint id); new ones start being probed, removed
 *   ones stop (a probe in flight for a removed one finishes, but its verdict is dropped).
 * - every failure counts the same toward unhealthy_threshold: timeout (no complete
 *   answer within `timeout`), refused, reset, unexpected status, anything else ('error').
 * - timers are unref()'d: a checker never keeps a process alive by itself.
 *
 * The thresholds are the target's (a cluster's ClusterOptions.activeChecks, filled from
 * the same health_check config by src/config/to-core.ts); this class only reports pass or fail.
 */
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { performance } from 'node:perf_hooks';
import type { HealthCheckConfig } from '../config/schema.js';
import { nextCheckDelayMs } from '../core/health.js';
import { SeededRng, type Rng } from '../core/rng.js';
import type { Endpoint } from '../core/types.js';
import { parseHostPort } from '../shared/address.js';
import { HOPS_HEADER } from '../shared/hops.js';
import { isTlsError } from '../shared/tls-errors.js';

export type CheckFailure = 'timeout' | 'refused' | 'reset' | 'bad_status' | 'tls' | 'error';

export interface CheckResult {
  readonly endpoint: Endpoint;
  readonly ok: boolean;
  /** Why it failed; absent when ok. */
  readonly reason?: CheckFailure;
  /** The response's status (http checks that got one). */
  readonly status?: number;
  /** From the start of the probe to its verdict. */
  readonly latencyMs: number;
}

/** What a checker probes and where its verdicts go. */
export interface CheckTarget {
  /** The endpoints to probe now; read at start, every interval and at membershipChanged(). */
  endpoints(): readonly Endpoint[];
  /**
   * A scheduled probe's verdict, for an endpoint of the last list read. The target drops
   * one for an endpoint it no longer has (its list may have changed since).
   */
  record(result: CheckResult): void;
}

export interface ActiveHealthCheckerOptions {
  /** Draws the jitter; default seeded from the clock (tests pass a SeededRng). */
  readonly rng?: Rng;
  /**
   * `target.record` threw: the checker carries on probing, and says so here (absent: the
   * error is dropped).
   */
  readonly onError?: (err: unknown) => void;
  /** TLS options for an endpoint's address (the cluster's `tls`, see upstream-tls.ts); absent or undefined: plaintext. */
  readonly tls?: (address: string) => ConnectionOptions | undefined;
  /** The protocol `http` checks speak: the cluster's (h2 for `upstream_protocol: h2`); default http1. */
  readonly protocol?: 'http1' | 'h2';
}

/** Whether `status` is in one of the configured ranges (inclusive). */
export function isExpectedStatus(status: number, ranges: HealthCheckConfig['expected_statuses']): boolean {
  return ranges.some((r) => status >= r.min && status <= r.max);
}

function failureOf(err: NodeJS.ErrnoException): CheckFailure {
  if (isTlsError(err.code)) return 'tls';
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

type Verdict = Omit<CheckResult, 'endpoint' | 'latencyMs'>;

/** One endpoint being checked: its latest config, and the timer of its next probe (null while one is in flight). */
interface Checked {
  endpoint: Endpoint;
  timer: NodeJS.Timeout | null;
}

export class ActiveHealthChecker {
  readonly #target: CheckTarget;
  readonly #check: HealthCheckConfig;
  readonly #rng: Rng;
  readonly #onError: (err: unknown) => void;
  readonly #tls: (address: string) => ConnectionOptions | undefined;
  readonly #h2: boolean;
  #running = false;
  /** Endpoints being checked, by id. A removed one's entry goes; one that comes back gets a new entry. */
  readonly #checked = new Map<string, Checked>();
  #membershipTimer: NodeJS.Timeout | undefined;
  /** Cancels each probe in flight (scheduled or one-shot). */
  readonly #inFlight = new Set<() => void>();

  constructor(target: CheckTarget, check: HealthCheckConfig, options: ActiveHealthCheckerOptions = {}) {
    this.#target = target;
    this.#check = check;
    this.#rng = options.rng ?? new SeededRng(Date.now());
    this.#onError = options.onError ?? (() => {});
    this.#tls = options.tls ?? (() => undefined);
    this.#h2 = options.protocol === 'h2';
  }

  /** Probes in flight now (scheduled or one-shot). */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Timers pending now: one per idle endpoint, plus the membership timer while running. */
  get pendingTimers(): number {
    let n = this.#membershipTimer === undefined ? 0 : 1;
    for (const c of this.#checked.values()) if (c.timer !== null) n++;
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

  /** The target's endpoints changed (discovery): probe new ones now, not at the next interval. */
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
    for (const c of this.#checked.values()) if (c.timer !== null) clearTimeout(c.timer);
    this.#checked.clear();
    for (const cancel of [...this.#inFlight]) cancel();
  }

  /** One probe of `endpoint`, now. Records nothing: the scheduled rounds do that. */
  probe(endpoint: Endpoint): Promise<CheckResult> {
    const started = performance.now();
    return new Promise<CheckResult>((resolve) => {
      let cleanup = (): void => {};
      const finish = (v: Verdict): void => {
        if (!this.#inFlight.delete(cancel)) return;
        clearTimeout(timer);
        cleanup();
        resolve({ endpoint, ...v, latencyMs: performance.now() - started });
      };
      const cancel = (): void => finish({ ok: false, reason: 'error' });
      this.#inFlight.add(cancel);
      const timer = setTimeout(() => finish({ ok: false, reason: 'timeout' }), this.#check.timeout);
      timer.unref();
      const target = parseHostPort(endpoint.address);
      if (typeof target === 'string') return finish({ ok: false, reason: 'error' });
      try {
        const remote = endpoint.locality?.remote === true;
        const type = this.#check.type;
        if (type === 'tcp') cleanup = this.#tcp(target, finish);
        else if (type === 'grpc') cleanup = this.#grpc(endpoint.address, remote, finish);
        else cleanup = this.#h2 ? this.#httpOverH2(endpoint.address, remote, finish) : this.#http(endpoint.address, remote, target, finish);
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
    const tls = this.#tls(address);
    const req = (tls ? https : http).request({
      ...tls,
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

  /**
   * Starts a gRPC probe (grpc.health.v1.Health/Check for the configured service, over h2c
   * or TLS as the cluster's `tls` says); returns what destroys it. Only grpc-status 0 with
   * status SERVING passes: NOT_SERVING, an unknown service (NOT_FOUND) or no Health
   * service (UNIMPLEMENTED) fail as bad_status.
   */
  #grpc(address: string, remote: boolean, finish: (v: Verdict) => void): () => void {
    const session = this.#session(address, finish);
    const req = session.request({
      ':method': 'POST',
      ':path': '/grpc.health.v1.Health/Check',
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'meridian-health-check',
      ...(remote ? { [HOPS_HEADER]: 'health-check' } : {}),
    });
    let httpStatus = 0;
    let grpcStatus: string | undefined;
    const chunks: Buffer[] = [];
    req.on('response', (h) => {
      httpStatus = Number(h[':status']);
      grpcStatus = h['grpc-status'] as string | undefined; // trailers-only answers carry it here
    });
    req.on('trailers', (t) => (grpcStatus = t['grpc-status'] as string | undefined));
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, reason: failureOf(e) }));
    req.on('end', () => {
      const serving = httpStatus === 200 && grpcStatus === '0' && healthStatusOf(Buffer.concat(chunks)) === SERVING;
      finish(serving ? { ok: true, status: httpStatus } : { ok: false, reason: 'bad_status', status: httpStatus });
    });
    req.end(healthCheckRequest(this.#check.service ?? ''));
    return () => session.destroy();
  }

  /** An HTTP probe in HTTP/2 (h2c, or TLS with ALPN h2), as the cluster's requests go: judged by :status at the end of the body. */
  #httpOverH2(address: string, remote: boolean, finish: (v: Verdict) => void): () => void {
    const session = this.#session(address, finish);
    const req = session.request({ ':method': 'GET', ':path': this.#check.path, 'user-agent': 'meridian-health-check', ...(remote ? { [HOPS_HEADER]: 'health-check' } : {}) });
    let status = 0;
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, reason: failureOf(e) }));
    req.on('end', () => finish(isExpectedStatus(status, this.#check.expected_statuses) ? { ok: true, status } : { ok: false, reason: 'bad_status', status }));
    req.resume();
    req.end();
    return () => session.destroy();
  }

  /** A one-probe HTTP/2 session to `address` (TLS with the cluster's settings, else h2c); its failure is the probe's. */
  #session(address: string, finish: (v: Verdict) => void): http2.ClientHttp2Session {
    const tls = this.#tls(address);
    const session = http2.connect(`${tls ? 'https' : 'http'}://${address}`, tls ? { ...tls, ALPNProtocols: ['h2'] } : {});
    session.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, reason: failureOf(e) }));
    return session;
  }

  #syncMembership(): void {
    if (!this.#running) return;
    const current = new Map(this.#target.endpoints().map((e) => [e.id, e]));
    for (const [id, c] of this.#checked) {
      const endpoint = current.get(id);
      if (endpoint !== undefined) {
        // Same id, maybe a new weight or locality (a remote one is probed with the hops header).
        c.endpoint = endpoint;
        continue;
      }
      if (c.timer !== null) clearTimeout(c.timer);
      this.#checked.delete(id);
    }
    for (const [id, endpoint] of current) {
      if (this.#checked.has(id)) continue;
      const c: Checked = { endpoint, timer: null };
      this.#checked.set(id, c);
      this.#schedule(c, 0);
    }
    this.#membershipTimer = setTimeout(() => this.#syncMembership(), this.#check.interval);
    this.#membershipTimer.unref();
  }

  #schedule(c: Checked, delayMs: number): void {
    c.timer = setTimeout(() => void this.#round(c), delayMs);
    c.timer.unref();
  }

  async #round(c: Checked): Promise<void> {
    c.timer = null;
    const result = await this.probe(c.endpoint);
    // Stopped, or the endpoint left (and maybe came back as a new entry) meanwhile.
    if (!this.#running || this.#checked.get(c.endpoint.id) !== c) return;
    // Schedule first: what follows may call stop() (which clears this timer) or throw, and
    // a throw must neither end this endpoint's probing nor escape as an unhandled rejection.
    this.#schedule(c, nextCheckDelayMs(this.#check.interval, this.#check.jitter, this.#rng));
    try {
      this.#target.record(result);
    } catch (err) {
      this.#onError(err);
    }
  }
}

/** grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING */
const SERVING = 1;

/** A gRPC frame (uncompressed) holding HealthCheckRequest { string service = 1; }. */
function healthCheckRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const len: number[] = [];
  for (let n = name.length; ; n >>>= 7) {
    if (n < 0x80) {
      len.push(n);
      break;
    }
    len.push((n & 0x7f) | 0x80);
  }
  const message = name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, ...len]), name]);
  const frame = Buffer.alloc(5);
  frame.writeUInt32BE(message.length, 1);
  return Buffer.concat([frame, message]);
}

/** The `status` (field 1, varint) of the HealthCheckResponse in a gRPC frame; 0 (UNKNOWN) when absent or malformed. */
function healthStatusOf(frame: Buffer): number {
  if (frame.length < 5 || frame[0] !== 0) return 0;
  const message = frame.subarray(5, 5 + frame.readUInt32BE(1));
  for (let i = 0; i < message.length; ) {
    const tag = message[i++] as number;
    if (tag === 0x08) return (message[i] as number) & 0x7f;
    // Any other field: skip it by its wire type (varint or length-delimited).
    if ((tag & 7) === 0) while (i < message.length && ((message[i++] as number) & 0x80) !== 0);
    else if ((tag & 7) === 2) i += 1 + (message[i] as number);
    else return 0;
  }
  return 0;
}
