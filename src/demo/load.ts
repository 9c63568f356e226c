/**
 * The demo's load generator: clients in several geographies, each sending to its region's
 * Meridian over keep-alive connections (undici pools), open loop at a set rate: requests
 * leave on schedule whether or not earlier ones have answered, as real users do, so an
 * overloaded region shows queueing instead of a politely slowed client. Bounded: at most
 * `maxInFlight` requests outstanding (the rest are counted as dropped), and it stops, with
 * every connection closed, on stop().
 */
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

export interface LoadClient {
  /** The geography's name, sent as `x-client-geo`. */
  readonly geo: string;
  /** Share of the requests. */
  readonly weight: number;
  /** The Meridian listener its requests go to now (the demo re-steers it through DNS). */
  host: string;
  port: number;
}

export interface LoadResult {
  readonly geo: string;
  /** HTTP status, or 0 when the request failed without an answer. */
  readonly status: number;
  readonly ms: number;
}

export interface LoadOptions {
  readonly clients: readonly LoadClient[];
  /** Requests per second. */
  readonly rate: number;
  readonly onResult: (r: LoadResult) => void;
  readonly maxInFlight?: number;
  /** Distinct `x-user` values (for the hash policies). Default 1000. */
  readonly users?: number;
}

/** Ticks per second of the scheduler: requests go out in 50 ms batches. */
const TICKS_PER_SECOND = 20;

export class LoadGenerator {
  readonly #o: LoadOptions;
  readonly #pools = new Map<string, Pool>();
  readonly #maxInFlight: number;
  readonly #cumulative: number[];
  readonly #totalWeight: number;
  #rate: number;
  #due = 0;
  #timer: NodeJS.Timeout | undefined;
  #inFlight = 0;
  #dropped = 0;
  #sent = 0;

  constructor(o: LoadOptions) {
    this.#o = o;
    this.#rate = o.rate;
    this.#maxInFlight = o.maxInFlight ?? 2000;
    let sum = 0;
    this.#cumulative = o.clients.map((c) => (sum += c.weight));
    this.#totalWeight = sum;
  }

  get rate(): number {
    return this.#rate;
  }

  set rate(r: number) {
    this.#rate = Math.max(0, r);
  }

  get running(): boolean {
    return this.#timer !== undefined;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get sent(): number {
    return this.#sent;
  }

  /** Requests not sent because `maxInFlight` were outstanding, since the last call. */
  takeDropped(): number {
    const d = this.#dropped;
    this.#dropped = 0;
    return d;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.#tick(), 1000 / TICKS_PER_SECOND);
  }

  /** Stop sending, abort what is in flight and close every connection. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }

  #tick(): void {
    this.#due += this.#rate / TICKS_PER_SECOND;
    const n = Math.floor(this.#due);
    this.#due -= n;
    for (let i = 0; i < n; i++) {
      if (this.#inFlight >= this.#maxInFlight) {
        this.#dropped++;
        continue;
      }
      this.#send(this.#pick());
    }
  }

  #pick(): LoadClient {
    const x = Math.random() * this.#totalWeight;
    const i = this.#cumulative.findIndex((c) => x < c);
    return this.#o.clients[i === -1 ? this.#o.clients.length - 1 : i] as LoadClient;
  }

  #pool(host: string, port: number): Pool {
    const origin = `http://${host}:${port}`;
    let p = this.#pools.get(origin);
    if (!p) {
      p = new Pool(origin, { connections: 128, keepAliveTimeout: 2000 });
      this.#pools.set(origin, p);
    }
    return p;
  }

  #send(c: LoadClient): void {
    this.#inFlight++;
    this.#sent++;
    const started = performance.now();
    const user = `u${Math.floor(Math.random() * (this.#o.users ?? 1000))}`;
    const done = (status: number): void => {
      this.#inFlight--;
      this.#o.onResult({ geo: c.geo, status, ms: performance.now() - started });
    };
    this.#pool(c.host, c.port)
      .request({ path: '/', method: 'GET', headers: { 'x-user': user, 'x-client-geo': encodeURIComponent(c.geo) }, headersTimeout: 10_000, bodyTimeout: 10_000 })
      .then(async (res) => {
        await res.body.dump();
        done(res.statusCode);
      })
      .catch(() => done(0));
  }
}
