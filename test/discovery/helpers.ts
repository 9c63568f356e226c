// Real DNS for discovery tests: Debian's dnsmasq on a free loopback port, serving a hosts
// file (re-read on SIGHUP) and SRV records (given on its command line: a change restarts it).
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Resolver } from 'node:dns/promises';
import { get as httpGet, Agent } from 'node:http';

export const DNSMASQ = '/usr/sbin/dnsmasq';

/** Why dnsmasq tests cannot run here, or false when they can. */
export function dnsmasqMissing(): string | false {
  return existsSync(DNSMASQ) ? false : `dnsmasq not installed (${DNSMASQ}; Debian package dnsmasq-base)`;
}

/**
 * A port free for both UDP and TCP: dnsmasq binds both, and a port free for UDP alone may
 * be another test's TCP listener ("Address already in use").
 */
async function freeDnsPort(): Promise<number> {
  for (;;) {
    const tcp = createServer();
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    const port = (tcp.address() as AddressInfo).port;
    const udp = createSocket('udp4');
    const ok = await new Promise<boolean>((r) => {
      udp.once('error', () => r(false));
      udp.bind(port, '127.0.0.1', () => r(true));
    });
    if (ok) await new Promise<void>((r) => udp.close(r));
    await new Promise<void>((r) => tcp.close(() => r()));
    if (ok) return port;
  }
}

export class Dnsmasq {
  readonly port: number;
  readonly hostsFile: string;
  #args: string[];
  #child: ChildProcess | undefined;

  private constructor(port: number, hostsFile: string, args: string[]) {
    this.port = port;
    this.hostsFile = hostsFile;
    this.#args = args;
  }

  /** `srv`: dnsmasq --srv-host values; `records`: --host-record values (name,ip). */
  static async start(hostsFile: string, hosts: string, opts: { srv?: string[]; records?: string[] } = {}): Promise<Dnsmasq> {
    await writeFile(hostsFile, hosts);
    // The port can still be taken between the check and dnsmasq's bind: try another.
    for (let i = 0; ; i++) {
      const d = new Dnsmasq(await freeDnsPort(), hostsFile, Dnsmasq.#extra(opts));
      try {
        await d.run();
        return d;
      } catch (e) {
        if (i >= 4 || !/dnsmasq exited|Address already in use/.test((e as Error).message)) throw e;
      }
    }
  }

  static #extra(opts: { srv?: string[]; records?: string[] }): string[] {
    return [...(opts.srv ?? []).map((s) => `--srv-host=${s}`), ...(opts.records ?? []).map((r) => `--host-record=${r}`)];
  }

  get resolver(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Start (again) on the same port, and wait until it answers. */
  async run(): Promise<void> {
    const args = ['--no-daemon', `--port=${this.port}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts', `--addn-hosts=${this.hostsFile}`, '--pid-file=', ...this.#args];
    const child = spawn(DNSMASQ, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    this.#child = child;
    const r = new Resolver({ timeout: 200, tries: 1 });
    r.setServers([this.resolver]);
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`dnsmasq exited: ${stderr}`);
      try {
        await r.resolve4('meridian-probe.invalid');
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // With no upstream, dnsmasq refuses names it does not know: an answer all the same.
        if (code === 'ENOTFOUND' || code === 'ENODATA' || code === 'EREFUSED') return;
        if (i > 100) {
          child.kill('SIGKILL');
          throw new Error(`dnsmasq does not answer on ${this.resolver}: ${stderr}`, { cause: e });
        }
      }
      await new Promise((res) => setTimeout(res, 20));
    }
  }

  /** Rewrite the hosts file and have dnsmasq read it again (SIGHUP). */
  async setHosts(hosts: string): Promise<void> {
    await writeFile(this.hostsFile, hosts);
    this.#child?.kill('SIGHUP');
  }

  /** New SRV records: dnsmasq reads them only at start, so restart it (a brief outage). */
  async restart(opts: { srv?: string[]; records?: string[] }): Promise<void> {
    await this.stop();
    this.#args = Dnsmasq.#extra(opts);
    await this.run();
  }

  async stop(): Promise<void> {
    const c = this.#child;
    this.#child = undefined;
    if (c === undefined || c.exitCode !== null) return;
    await new Promise<void>((r) => {
      c.once('exit', () => r());
      c.kill('SIGTERM');
    });
  }

  close(): Promise<void> {
    return this.stop();
  }
}

/**
 * A bounded load loop through Meridian: `concurrency` clients, each sending requests one
 * after another on keep-alive connections until stop(). Counts answers by backend and
 * every request that did not get a 200.
 */
export class LoadLoop {
  readonly byBackend = new Map<string, number>();
  readonly failures: string[] = [];
  sent = 0;
  #running = true;
  readonly #done: Promise<void[]>;
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 8 });

  constructor(port: number, concurrency = 4, headers: Record<string, string> = {}) {
    this.#done = Promise.all(Array.from({ length: concurrency }, () => this.#client(port, headers)));
  }

  async #client(port: number, headers: Record<string, string>): Promise<void> {
    while (this.#running && this.sent < 200_000) {
      this.sent++;
      await new Promise<void>((resolve) => {
        const req = httpGet({ host: '127.0.0.1', port, path: '/', agent: this.#agent, headers }, (res) => {
          const backend = String(res.headers['x-backend'] ?? '');
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) this.byBackend.set(backend, (this.byBackend.get(backend) ?? 0) + 1);
            else this.failures.push(`status ${res.statusCode} ${res.headers['x-meridian-reason'] ?? ''}`);
            resolve();
          });
          res.on('error', (e) => {
            this.failures.push(e.message);
            resolve();
          });
        });
        req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')));
        req.on('error', (e) => {
          this.failures.push(e.message);
          resolve();
        });
      });
    }
  }

  /** Answers from `backend` so far. */
  count(backend: string): number {
    return this.byBackend.get(backend) ?? 0;
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#done;
    this.#agent.destroy();
  }
}
