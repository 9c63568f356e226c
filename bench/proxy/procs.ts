/**
 * Child processes and ports for the proxy benchmark. Every child is spawned in its own
 * process group (nginx's master and workers share one), so stopping it reaches all of
 * its processes; `stopAll` runs on success, on error and on SIGINT/SIGTERM, and
 * `killAllSync` is the last resort from a process 'exit' handler.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';

const OUTPUT_CAP = 1 << 20;

export interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves when the process has exited: its exit code, or the signal that ended it. */
  readonly exited: Promise<number | string>;
  /** True until the 'exit' event. */
  alive(): boolean;
  /** stdout and stderr interleaved, the last MiB of it. */
  output(): string;
}

export interface SpawnOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Called with every complete line of stdout or stderr. */
  readonly onLine?: (line: string) => void;
}

export class ProcessGroup {
  readonly #procs: Proc[] = [];
  #stopping = false;

  spawn(name: string, command: string, args: readonly string[], options: SpawnOptions = {}): Proc {
    if (this.#stopping) throw new Error(`not starting ${name}: stopping everything`);
    const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
    let out = '';
    let partial = '';
    let alive = true;
    const take = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      out = (out + text).slice(-OUTPUT_CAP);
      if (options.onLine !== undefined) {
        const lines = (partial + text).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) options.onLine(line);
      }
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    const exited = new Promise<number | string>((resolve) => {
      child.once('error', (e) => {
        alive = false;
        out += `\n${name}: ${e.message}`;
        resolve(`error: ${e.message}`);
      });
      child.once('exit', (code, signal) => {
        alive = false;
        if (partial !== '' && options.onLine !== undefined) options.onLine(partial);
        resolve(code ?? signal ?? 'unknown');
      });
    });
    const proc: Proc = { name, pid: child.pid ?? -1, child, exited, alive: () => alive, output: () => out };
    if (proc.pid > 0) this.#procs.push(proc);
    return proc;
  }

  /** SIGTERM to each process group (latest first), then SIGKILL to any still there after `graceMs`. */
  async stopAll(graceMs = 5000): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#procs.splice(0).reverse().map((p) => stopProc(p, graceMs)));
  }

  /** From an 'exit' handler, where nothing asynchronous runs any more. */
  killAllSync(): void {
    for (const p of this.#procs.splice(0)) signalGroup(p.pid, 'SIGKILL');
  }

  /** Stop one process now (the group forgets it). */
  async stop(p: Proc, graceMs = 5000): Promise<void> {
    const i = this.#procs.indexOf(p);
    if (i >= 0) this.#procs.splice(i, 1);
    await stopProc(p, graceMs);
  }
}

async function stopProc(p: Proc, graceMs: number): Promise<void> {
  if (p.alive()) signalGroup(p.pid, 'SIGTERM');
  const ended = await Promise.race([p.exited.then(() => true), idle(graceMs).then(() => false)]);
  // The leader may be gone while members linger (nginx workers): SIGKILL the group either way.
  signalGroup(p.pid, 'SIGKILL');
  if (!ended) await Promise.race([p.exited, idle(2000)]);
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A timeout that does not keep the process alive by itself. */
function idle(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** `n` distinct free ports on 127.0.0.1: bound to :0 together, then closed for reuse. */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** One GET on a fresh connection to 127.0.0.1:port. */
export function httpGet(port: number, urlPath = '/', timeoutMs = 2000): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET 127.0.0.1:${port}${urlPath}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** Poll until 127.0.0.1:port answers 200, or fail early if `proc` exits. */
export async function waitReady(port: number, proc: Proc, timeoutMs = 15_000): Promise<HttpAnswer> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!proc.alive()) throw new Error(`${proc.name} exited before it was ready (${await proc.exited}):\n${proc.output().slice(-4000)}`);
    try {
      const a = await httpGet(port);
      if (a.status === 200) return a;
      last = `status ${a.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(50);
  }
  throw new Error(`${proc.name} did not answer 200 on 127.0.0.1:${port} within ${timeoutMs} ms (last: ${last})\n${proc.output().slice(-4000)}`);
}

/** True if something accepts connections on 127.0.0.1:port. */
export function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
