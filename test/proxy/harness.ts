// Real Meridian in front of real sample backends, all on 127.0.0.1 with ephemeral ports.
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect, createServer } from 'node:net';
import pino from 'pino';
import { startSampleBackend, type SampleBackend, type SampleBackendOptions } from '../../src/backend/sample-backend.js';
import { validateConfig, type Config } from '../../src/config/index.js';
import type { ExchangeRecord } from '../../src/proxy/forward.js';
import { Meridian } from '../../src/proxy/meridian.js';

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
