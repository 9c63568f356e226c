// A real redis-server for the fleet tests: its own process on a free loopback port, no
// persistence, stopped (or killed, to test an outage) by the test.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { freePort } from '../proxy/harness.js';

/** redis-server's path ($REDIS_SERVER, else the PATH, else /usr/bin), or undefined when not installed. */
export function redisServerPath(): string | undefined {
  const env = process.env['REDIS_SERVER'];
  if (env !== undefined && existsSync(env)) return env;
  for (const dir of [...(process.env['PATH'] ?? '').split(delimiter), '/usr/bin', '/usr/local/bin']) {
    const p = join(dir, 'redis-server');
    if (dir !== '' && existsSync(p)) return p;
  }
  return undefined;
}

/** Why the fleet tests skip, or undefined when they run. */
export const NO_REDIS = redisServerPath() === undefined ? 'redis-server not found (apt-get install redis-server, or set REDIS_SERVER)' : undefined;

export class RedisServer {
  readonly port: number;
  #child: ChildProcess | undefined;

  private constructor(port: number) {
    this.port = port;
  }

  static async start(): Promise<RedisServer> {
    const r = new RedisServer(await freePort());
    await r.restart();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** (Re)start on the same port, resolved once it accepts connections. */
  async restart(): Promise<void> {
    const child = spawn(redisServerPath() as string, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start in time: ${out}`)), 10_000);
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}): ${out}`));
      });
    });
  }

  /** Freeze the process (SIGSTOP): connections stay open and nothing is answered. */
  freeze(): void {
    this.#child?.kill('SIGSTOP');
  }

  thaw(): void {
    this.#child?.kill('SIGCONT');
  }

  /** Stop at once (SIGKILL: an outage, not a shutdown), resolved once the process is gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  }
}
