// Meridian processes (`meridian start`) forming a fleet over one Redis, for the fleet tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
import { freePort, until } from '../proxy/harness.js';

export const TOKEN = 'fleet-test-token';

export interface NodeSpec {
  readonly name: string;
  /** The config; listener and admin ports are chosen here and kept across restarts. */
  readonly config: (ports: { web: number; admin: number }) => unknown;
}

export class FleetNode {
  readonly name: string;
  readonly web: number;
  readonly admin: number;
  readonly #file: string;
  #child: ChildProcess | undefined;
  #out = '';

  private constructor(name: string, web: number, admin: number, file: string) {
    this.name = name;
    this.web = web;
    this.admin = admin;
    this.#file = file;
  }

  static async start(spec: NodeSpec): Promise<FleetNode> {
    const web = await freePort();
    const admin = await freePort();
    const dir = mkdtempSync(join(tmpdir(), `meridian-fleet-${spec.name}-`));
    const file = join(dir, 'meridian.json');
    writeFileSync(file, JSON.stringify(spec.config({ web, admin })));
    const n = new FleetNode(spec.name, web, admin, file);
    await n.restart();
    return n;
  }

  get output(): string {
    return this.#out;
  }

  async restart(): Promise<void> {
    this.#out = '';
    const child = spawn(process.execPath, ['dist/src/cli/bin.js', 'start', '-c', this.#file], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MERIDIAN_ADMIN_TOKEN: TOKEN },
    });
    this.#child = child;
    child.stdout?.on('data', (d: Buffer) => (this.#out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.#out += d.toString()));
    await until(() => /meridian is running/.test(this.#out) || child.exitCode !== null, 15_000, `${this.name} to start`);
    if (child.exitCode !== null) throw new Error(`${this.name} exited: ${this.#out}`);
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  }

  async adminGet(path: string): Promise<unknown> {
    const r = await call(this.admin, 'GET', path);
    return JSON.parse(r.body) as unknown;
  }

  async adminPost(path: string, body: unknown): Promise<{ status: number; body: string }> {
    return call(this.admin, 'POST', path, JSON.stringify(body));
  }
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

export function call(port: number, method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method, agent, headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) } },
      (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (b += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer from 127.0.0.1:${port}${path}`)));
    req.end(body);
  });
}

export interface Load {
  readonly statuses: Map<number, number>;
  /** Answers by node, by status. */
  readonly byNode: Map<string, Map<number, number>>;
  readonly elapsedMs: number;
  readonly errors: number;
}

/**
 * `concurrency` loops each sending GET `path` to the nodes in turn until `stop()` resolves
 * true (checked between requests), counting answers by status. Bounded: each loop waits
 * for its answer before the next request.
 */
export async function load(nodes: readonly FleetNode[], path: string, concurrency: number, stop: () => boolean, answered: (status: number) => void = () => {}): Promise<Load> {
  const statuses = new Map<number, number>();
  const byNode = new Map<string, Map<number, number>>();
  let errors = 0;
  let turn = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!stop()) {
        const n = nodes[turn++ % nodes.length] as FleetNode;
        try {
          const r = await call(n.web, 'GET', path);
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          answered(r.status);
          let m = byNode.get(n.name);
          if (m === undefined) byNode.set(n.name, (m = new Map()));
          m.set(r.status, (m.get(r.status) ?? 0) + 1);
        } catch {
          errors++;
        }
      }
    }),
  );
  return { statuses, byNode, elapsedMs: performance.now() - start, errors };
}
