/**
 * A small HTTP/1.1 server that answers with its name, with injected latency and errors:
 * the upstream for demos, tests and benchmarks (Envoy's test servers play this role).
 *
 * Every response carries `x-backend: <name>`. Routes (docs/backend.md has the full list):
 *   <health path>   200 `ok`, or 503 after setHealthy(false); `?delay=MS` delays it; no injected latency
 *   /echo           JSON { name, method, url, headers, rawHeaders, bodyBytes }
 *   /status/NNN     status NNN (200..599), body `<name> NNN\n` (none for 204 and 304)
 *   /slow?ms=N      200 after N ms
 *   /bytes?n=N      N bytes streamed in 64 KiB chunks with content-length (`&chunked=1`: without)
 *   /upload         JSON { bytes } of the request body
 *   /trailers       chunked `hello\n` with trailer `x-checksum: abc123`
 *   /reset-mid      headers and part of the body, then the socket is destroyed
 *   /reset          the socket is destroyed without an answer
 *   /hang           no answer, until the client goes away
 *   /prequal        JSON { rif, latency_ms }: a Prequal probe's answer, the requests in flight now and
 *                   the recent latency at that many (src/core/rif-latency.ts); not counted in `requests`
 *   anything else   200 `<name>\n` after the injected latency, or 500 `<name> error\n` with probability errorRate
 *
 * Every request body is read to its end (bytes counted, never buffered) before answering.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { murmur3 } from '../core/hash.js';
import { PREQUAL_PROBE_PATH } from '../core/prequal.js';
import { RifLatency } from '../core/rif-latency.js';
import { SeededRng } from '../core/rng.js';
import { parseLatency, type LatencySpec } from '../config/latency-spec.js';
import { sampleLatencyMs } from './latency.js';

export { formatLatency, LATENCY_FORMS, parseLatency, type LatencySpec } from '../config/latency-spec.js';
export { sampleLatencyMs } from './latency.js';

export interface SampleBackendOptions {
  /** 0 (the default) takes a free port. */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Sent in every `x-backend` header and body: printable ASCII, no spaces. */
  readonly name: string;
  readonly latency?: LatencySpec | string;
  /** Fraction 0..1 of default-route requests answered 500. Default 0. */
  readonly errorRate?: number;
  /** Default /healthz. */
  readonly healthPath?: string;
  /** server.keepAliveTimeout. Default 5000 (Node's own). */
  readonly keepAliveTimeoutMs?: number;
  /** Seed of the latency and error draws; default: a hash of the name. */
  readonly seed?: number;
  /**
   * Default-route requests served at once; the rest wait their turn in arrival order. A
   * known capacity (concurrency / mean latency) for overload tests. Default: no limit.
   */
  readonly concurrency?: number;
}

export interface SampleBackend {
  readonly name: string;
  readonly port: number;
  /** `http://host:port`, IPv6 hosts in brackets. */
  readonly url: string;
  /** Requests received, health checks and probes excluded (so balancing tests can count shares). */
  readonly requests: number;
  /** Default-route requests waiting for one of `concurrency` workers. */
  readonly queued: number;
  /** Prequal probes answered. */
  readonly probes: number;
  /** TCP connections accepted, in total. */
  readonly connections: number;
  readonly server: http.Server;
  /** Stop listening and destroy every connection, in-flight requests included. Idempotent. */
  close(): Promise<void>;
  setHealthy(ok: boolean): void;
  setLatency(spec: LatencySpec | string): void;
  setErrorRate(p: number): void;
}

const CHUNK = Buffer.alloc(64 * 1024, 'x');

const MAX_BYTES = 2 ** 40;

export async function startSampleBackend(opts: SampleBackendOptions): Promise<SampleBackend> {
  const name = opts.name;
  if (!/^[\x21-\x7e]+$/.test(name)) throw new Error(`bad backend name ${JSON.stringify(name)}: expected printable ASCII without spaces`);
  const healthPath = opts.healthPath ?? '/healthz';
  if (!healthPath.startsWith('/')) throw new Error(`bad health path ${JSON.stringify(healthPath)}: must start with /`);
  const rng = new SeededRng(opts.seed ?? murmur3(name));
  let latency = toSpec(opts.latency ?? { kind: 'none' });
  let errorRate = checkRate(opts.errorRate ?? 0);
  let healthy = true;
  let requests = 0;
  const workers = new Workers(opts.concurrency ?? Infinity);
  let connections = 0;
  let probes = 0;
  // Prequal's server side: requests in flight now, and latency by the in-flight count each found.
  let inFlight = 0;
  const rifLatency = new RifLatency();

  const text = (res: http.ServerResponse, status: number, body: string): void => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const json = (res: http.ServerResponse, value: unknown): void => {
    const body = JSON.stringify(value);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, signal: AbortSignal): Promise<void> {
    res.setHeader('x-backend', name);
    const url = new URL(req.url ?? '/', 'http://backend.invalid');
    const path = url.pathname;
    if (path === PREQUAL_PROBE_PATH) {
      probes++;
      const now = performance.now();
      return json(res, { rif: inFlight, latency_ms: rifLatency.estimate(inFlight, now) });
    }
    if (path !== healthPath) {
      requests++;
      const rif = inFlight++;
      const t0 = performance.now();
      res.once('close', () => {
        inFlight--;
        const now = performance.now();
        rifLatency.observe(rif, now - t0, now);
      });
    }
    if (path === '/reset') {
      req.socket.destroy();
      return;
    }
    let bodyBytes = 0;
    for await (const chunk of req) bodyBytes += (chunk as Buffer).length;

    const status = /^\/status\/(\d{3})$/.exec(path);
    if (path === healthPath) {
      await wait(intParam(url, 'delay'), signal);
      if (healthy) text(res, 200, 'ok');
      else text(res, 503, 'unhealthy');
    } else if (path === '/echo') {
      json(res, { name, method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes });
    } else if (status) {
      const code = Number(status[1]);
      if (code < 200 || code > 599) return text(res, 400, `${name} bad status ${code}\n`);
      if (code === 204 || code === 304) {
        res.writeHead(code);
        res.end();
      } else {
        text(res, code, `${name} ${code}\n`);
      }
    } else if (path === '/slow') {
      await wait(intParam(url, 'ms'), signal);
      text(res, 200, `${name}\n`);
    } else if (path === '/bytes') {
      await streamBytes(req, res, Math.min(intParam(url, 'n'), MAX_BYTES), url.searchParams.get('chunked') === '1', signal);
    } else if (path === '/upload') {
      json(res, { bytes: bodyBytes });
    } else if (path === '/trailers') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', trailer: 'x-checksum' });
      res.write('hello\n');
      res.addTrailers({ 'x-checksum': 'abc123' });
      res.end();
    } else if (path === '/reset-mid') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 1000 });
      // Destroy once the partial body is handed to the kernel, so the client sees it arrive first.
      res.write('x'.repeat(100), () => req.socket.destroy());
    } else if (path === '/hang') {
      return;
    } else {
      // Draw in a fixed order (latency, then error) so a seed gives one sequence.
      const delay = sampleLatencyMs(latency, rng);
      const fail = errorRate > 0 && rng.next() < errorRate;
      await workers.take(signal);
      try {
        await wait(delay, signal);
      } finally {
        workers.give();
      }
      if (fail) text(res, 500, `${name} error\n`);
      else text(res, 200, `${name}\n`);
    }
  }

  const server = http.createServer((req, res) => {
    // Aborts any wait of this request when the client goes away or close() destroys the socket.
    const ac = new AbortController();
    res.once('close', () => ac.abort());
    handle(req, res, ac.signal).catch(() => {
      // The client went away (or close() ran) while the body was read or a wait was pending.
      if (!res.headersSent && !res.destroyed) text(res, 500, `${name} internal error\n`);
      else res.destroy();
    });
  });
  server.keepAliveTimeout = opts.keepAliveTimeoutMs ?? 5000;
  server.on('connection', () => connections++);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;

  let closing: Promise<void> | undefined;
  return {
    name,
    port: addr.port,
    url: `http://${urlHost}:${addr.port}`,
    server,
    get requests() {
      return requests;
    },
    get connections() {
      return connections;
    },
    get queued() {
      return workers.queued;
    },
    get probes() {
      return probes;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
    setHealthy(ok) {
      healthy = ok;
    },
    setLatency(spec) {
      latency = toSpec(spec);
    },
    setErrorRate(p) {
      errorRate = checkRate(p);
    },
  };
}

function toSpec(spec: LatencySpec | string): LatencySpec {
  return typeof spec === 'string' ? parseLatency(spec) : spec;
}

function checkRate(p: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`bad error rate ${p}: expected a number from 0 to 1`);
  return p;
}

/** Resolves after `ms` (at once for 0); rejects when `signal` aborts first. */
/** A fixed number of workers; the requests beyond them wait in arrival order (a request whose client left gives up its place). */
class Workers {
  readonly #max: number;
  #busy = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(max: number) {
    if (!(max >= 1)) throw new Error(`bad concurrency ${max}: expected at least 1`);
    this.#max = max;
  }

  get queued(): number {
    return this.#waiting.length;
  }

  take(signal: AbortSignal): Promise<void> {
    if (this.#busy < this.#max) {
      this.#busy++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const go = (): void => {
        signal.removeEventListener('abort', gone);
        resolve();
      };
      const gone = (): void => {
        const i = this.#waiting.indexOf(go);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', gone, { once: true });
      this.#waiting.push(go);
    });
  }

  /** A worker is free: the longest-waiting request gets it. */
  give(): void {
    const next = this.#waiting.shift();
    if (next !== undefined) next();
    else this.#busy--;
  }
}

async function wait(ms: number, signal: AbortSignal): Promise<void> {
  if (ms > 0) await sleep(ms, undefined, { signal });
}

/** A non-negative integer query parameter; absent or malformed reads as 0. */
function intParam(url: URL, key: string): number {
  const v = url.searchParams.get(key);
  return v !== null && /^\d{1,15}$/.test(v) ? Number(v) : 0;
}

/** Write `n` bytes in 64 KiB chunks, waiting for 'drain' whenever write() says the buffer is full. */
async function streamBytes(req: http.IncomingMessage, res: http.ServerResponse, n: number, chunked: boolean, signal: AbortSignal): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/octet-stream', ...(chunked ? {} : { 'content-length': n }) });
  if (req.method === 'HEAD') return void res.end();
  let left = n;
  while (left > 0) {
    if (signal.aborted) return;
    const size = Math.min(left, CHUNK.length);
    left -= size;
    if (!res.write(size === CHUNK.length ? CHUNK : CHUNK.subarray(0, size))) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          res.off('drain', done);
          signal.removeEventListener('abort', done);
          resolve();
        };
        res.on('drain', done);
        signal.addEventListener('abort', done);
      });
    }
  }
  res.end();
}
