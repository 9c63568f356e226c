/**
 * Probes one region's health URL: HTTP(S) GET on an interval with jitter, each probe
 * bounded by a timeout, every verdict handed to `onProbe` (which feeds core's
 * RegionHealth). A 2xx is up; anything else, a timeout or a connection error is down.
 *
 * A 2xx body may report the region's capacity and load as JSON:
 *   {"healthy_fraction": 0.75, "load_rps": 120}    or    {"healthy": 3, "total": 4, "load_rps": 120}
 * A plain 200 (or a body that is not such JSON) is up with full capacity, load unknown.
 *
 * Probes of one region never overlap (the next is scheduled after the previous ends);
 * the first runs at once; timers are unref()'d.
 */
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import type { RegionProbe } from '../core/region-health.js';
import type { Rng } from '../core/rng.js';
import type { RegionHealthCheckConfig } from '../config/global-schema.js';
import { nextCheckDelayMs } from '../core/health.js';
import { HOPS_HEADER } from '../shared/hops.js';

export type ProbeFailure = 'timeout' | 'refused' | 'bad_status' | 'error';

export interface ProbeResult extends RegionProbe {
  readonly reason?: ProbeFailure;
  readonly status?: number;
  readonly latencyMs: number;
}

/** Read at most this much of a health body. */
const MAX_BODY_BYTES = 64 * 1024;

/** Capacity and load from a health body; empty when it says nothing we understand. */
export function parseHealthBody(body: string): Pick<RegionProbe, 'healthyFraction' | 'loadRps'> {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return {};
  }
  if (typeof v !== 'object' || v === null) return {};
  const o = v as Record<string, unknown>;
  const num = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : undefined);
  let healthyFraction = num(o['healthy_fraction']);
  const healthy = num(o['healthy']);
  const total = num(o['total']);
  if (healthyFraction === undefined && healthy !== undefined && total !== undefined && total > 0) healthyFraction = healthy / total;
  const loadRps = num(o['load_rps']);
  return { ...(healthyFraction === undefined ? {} : { healthyFraction: Math.min(1, healthyFraction) }), ...(loadRps === undefined ? {} : { loadRps }) };
}

/** One GET of `url`, resolved (never rejected) with a verdict. */
export function probeOnce(url: string, timeoutMs: number): { result: Promise<ProbeResult>; cancel: () => void } {
  const started = performance.now();
  let cancel = (): void => {};
  const result = new Promise<ProbeResult>((resolve) => {
    let done = false;
    const finish = (r: Omit<ProbeResult, 'latencyMs'>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ ...r, latencyMs: performance.now() - started });
    };
    const timer = setTimeout(() => finish({ ok: false, reason: 'timeout' }), timeoutMs);
    timer.unref();
    const get = url.startsWith('https:') ? https.get : http.get;
    // The hops header: a region's Meridian answers from its own endpoints only, so its
    // cross-region failover cannot make a dead region look alive.
    const req = get(url, { agent: false, headers: { 'user-agent': 'meridian-region-probe', connection: 'close', [HOPS_HEADER]: 'region-probe' } }, (res) => {
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY_BYTES) chunks.push(c);
      });
      res.on('end', () => {
        if (status < 200 || status > 299) return finish({ ok: false, reason: 'bad_status', status });
        finish({ ok: true, status, ...parseHealthBody(Buffer.concat(chunks).toString('utf8')) });
      });
      res.on('error', () => finish({ ok: false, reason: 'error', status }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, reason: e.code === 'ECONNREFUSED' ? 'refused' : 'error' }));
    cancel = () => finish({ ok: false, reason: 'error' });
  });
  return { result, cancel };
}

export class RegionProber {
  readonly region: string;
  readonly #check: RegionHealthCheckConfig;
  readonly #rng: Rng;
  readonly #onProbe: (r: ProbeResult) => void;
  readonly #onError: (err: unknown) => void;
  #timer: NodeJS.Timeout | undefined;
  #cancel: (() => void) | undefined;
  #running = false;

  /** `onError` hears of an `onProbe` that threw; probing carries on regardless. */
  constructor(region: string, check: RegionHealthCheckConfig, rng: Rng, onProbe: (r: ProbeResult) => void, onError: (err: unknown) => void = () => {}) {
    this.region = region;
    this.#check = check;
    this.#rng = rng;
    this.#onProbe = onProbe;
    this.#onError = onError;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#round();
  }

  /** Stop probing; a probe in flight is abandoned and its result dropped. Idempotent. */
  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#cancel?.();
    this.#cancel = undefined;
  }

  async #round(): Promise<void> {
    if (!this.#running) return;
    const p = probeOnce(this.#check.url, this.#check.timeout);
    this.#cancel = p.cancel;
    const r = await p.result;
    this.#cancel = undefined;
    if (!this.#running) return;
    // Schedule first: a throwing onProbe must neither end the probing nor escape as an unhandled rejection.
    this.#timer = setTimeout(() => void this.#round(), nextCheckDelayMs(this.#check.interval, this.#check.jitter, this.#rng));
    this.#timer.unref();
    try {
      this.#onProbe(r);
    } catch (err) {
      this.#onError(err);
    }
  }
}
