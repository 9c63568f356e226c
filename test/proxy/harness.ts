// Real Meridian in front of real sample backends, all on 127.0.0.1 with ephemeral ports.
import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import pino from 'pino';
import { startSampleBackend, type SampleBackend, type SampleBackendOptions } from '../../src/backend/sample-backend.js';
import { validateConfig, type Config } from '../../src/config/index.js';
import type { ExchangeRecord } from '../../src/proxy/forward.js';
import { Meridian } from '../../src/node/meridian.js';

export const quiet = pino({ level: 'silent' });

export async function backends(n: number, opts: Partial<SampleBackendOptions> = {}): Promise<SampleBackend[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => startSampleBackend({ name: `b${i}`, ...opts })));
}

/** A validated config from a plain object (the test's own YAML-equivalent), or throw with every error. */
export function config(input: unknown): Config {
  const r = validateConfig(input);
  if (!r.ok) throw new Error(`test config invalid:\n${r.errors.join('\n')}`);
  return r.config;
}

/** The smallest useful config: one listener on port 0, one cluster over `bs`. */
export function simpleConfig(bs: readonly SampleBackend[], cluster: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Config {
  return config({
    admin: { port: 0 },
    access_log: { enabled: false },
    listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
    clusters: [{ name: 'c', endpoints: bs.map((b) => ({ address: `127.0.0.1:${b.port}`, id: b.name })), ...cluster }],
    ...extra,
  });
}

export interface Running {
  readonly meridian: Meridian;
  readonly port: number;
  readonly records: ExchangeRecord[];
  close(): Promise<void>;
}

export async function startMeridian(cfg: Config, opts: { configPath?: string; adminToken?: string; activeChecks?: 'local' | 'external' } = {}): Promise<Running> {
  const records: ExchangeRecord[] = [];
  const meridian = new Meridian(cfg, { logger: quiet, onAccess: (r) => records.push(r), seed: 7, ...opts });
  await meridian.start();
  const port = Object.values(meridian.ports())[0] as number;
  return { meridian, port, records, close: () => meridian.close() };
}

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly trailers: NodeJS.Dict<string>;
}

export function get(
  port: number,
  path = '/',
  init: { method?: string; headers?: Record<string, string>; body?: string | Buffer; agent?: boolean; timeoutMs?: number } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: init.method ?? 'GET', headers: init.headers, agent: init.agent === false ? false : undefined }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), trailers: res.trailers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    // A test must fail, not hang, when an answer never comes.
    req.setTimeout(init.timeoutMs ?? 15_000, () => req.destroy(new Error(`no answer from 127.0.0.1:${port}${path} in time`)));
    req.end(init.body);
  });
}

/** Send raw bytes and collect everything until the server closes (or `ms` passes). */
export function raw(port: number, bytes: string, ms = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => s.destroy(), ms);
    s.on('data', (c) => chunks.push(c));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString());
    });
    s.on('error', reject);
    s.write(bytes);
  });
}

/** Poll until `cond` holds; fail after `ms`. Never used to assert timing, only to wait. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function closeAll(...things: ({ close(): Promise<void> } | readonly { close(): Promise<void> }[])[]): Promise<void> {
  await Promise.all(things.flat().map((t) => t.close()));
}

/** A port nothing listens on right now: bind, note the port, close. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** What the backends received besides the markers of `BackendSight.settle()`. */
export interface SeenBesides {
  /** `backend url` of every other request. */
  readonly requests: readonly string[];
  /** Connections opened whose first request was not a marker (or that carried none). */
  readonly connections: number;
}

const MARKER = '/echo?meridian-marker=';

/**
 * What backends receive from a moment on, so a test can assert that a refused request reached
 * none of them. "Nothing arrived" means something only once whatever Meridian had sent on
 * would have arrived: `settle()` sends marker requests through Meridian, each on a new client
 * connection, until every backend has answered one, and only then reports what the backends
 * saw besides the markers. No sleeping: the markers are the clock.
 */
export class BackendSight {
  readonly #bs: readonly SampleBackend[];
  readonly #off: (() => void)[] = [];
  #watching = false;
  #requests: { backend: string; url: string; socket: Socket }[] = [];
  #connections: Socket[] = [];
  #marker = 0;

  constructor(bs: readonly SampleBackend[]) {
    this.#bs = bs;
    for (const b of bs) {
      const onConnection = (socket: Socket) => {
        if (this.#watching) this.#connections.push(socket);
      };
      const onRequest = (req: IncomingMessage) => {
        if (this.#watching) this.#requests.push({ backend: b.name, url: req.url ?? '', socket: req.socket as Socket });
      };
      b.server.on('connection', onConnection);
      b.server.on('request', onRequest);
      this.#off.push(() => {
        b.server.off('connection', onConnection);
        b.server.off('request', onRequest);
      });
    }
  }

  /** Forget what was seen so far; watch from now on. */
  start(): void {
    this.#requests = [];
    this.#connections = [];
    this.#watching = true;
  }

  /**
   * Send markers through Meridian at `port` (one new connection each, Host cycling through
   * `hosts`, which must between them route to every backend) until every backend has
   * answered one; then stop watching and report what else the backends saw since `start()`.
   */
  async settle(port: number, hosts: readonly string[] = ['x']): Promise<SeenBesides> {
    const answered = new Set<string>();
    for (let n = 0; answered.size < this.#bs.length; n++) {
      if (n >= 20 * this.#bs.length) throw new Error(`markers reached only ${[...answered].join(', ') || 'no backend'} after ${n} tries`);
      const r = await get(port, `${MARKER}${++this.#marker}`, { agent: false, headers: { host: hosts[n % hosts.length] as string } });
      if (r.status !== 200) throw new Error(`marker request answered ${r.status}: ${r.body}`);
      answered.add((JSON.parse(r.body) as { name: string }).name);
    }
    this.#watching = false;
    const firstRequest = new Map<Socket, string>();
    for (const r of this.#requests) if (!firstRequest.has(r.socket)) firstRequest.set(r.socket, r.url);
    return {
      requests: this.#requests.filter((r) => !r.url.startsWith(MARKER)).map((r) => `${r.backend} ${r.url}`),
      connections: this.#connections.filter((s) => !(firstRequest.get(s) ?? '').startsWith(MARKER)).length,
    };
  }

  close(): void {
    for (const off of this.#off) off();
  }
}

/** What a raw-socket client got back. */
export interface Sent {
  /** Everything the server wrote back, as latin1 text. */
  readonly reply: string;
  /** The status line's code, 0 when nothing came back. */
  readonly status: number;
  /** The reply's body: what follows the first blank line. */
  readonly body: string;
  /** True when the server closed (or reset) the connection before `ms` ran out. */
  readonly closedByServer: boolean;
}

/**
 * Raw bytes in (each part written `gapMs` after the last), everything back until the
 * server closes or `ms` passes. Never rejects: a reset is a close too.
 */
export function sendRaw(port: number, parts: string | Buffer | readonly (string | Buffer)[], ms = 2000, gapMs = 0): Promise<Sent> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      s.destroy();
    }, ms);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      const reply = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(reply);
      const at = reply.indexOf('\r\n\r\n');
      resolve({ reply, status: m ? Number(m[1]) : 0, body: at < 0 ? '' : reply.slice(at + 4), closedByServer: !timedOut });
    });
    const list = typeof parts === 'string' || Buffer.isBuffer(parts) ? [parts] : parts;
    void (async () => {
      for (const p of list) {
        if (s.destroyed) return;
        s.write(p);
        if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      }
    })();
  });
}
