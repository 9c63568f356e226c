// `meridian start` with workers, run as a user runs it: a child process, its banner read
// for the ports, its workers found in /proc (Linux) so the tests need no ps.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { until } from '../proxy/harness.js';

/** Child pids of `pid`. */
export function children(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

export interface StartedWorkers {
  readonly child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  readonly exited: Promise<number | null>;
  readonly admin: number;
  /** The port of the listener named `web`. */
  readonly web: number;
}

/** `meridian start -c file` (a config with `workers: 2`), once its banner is out; killed by `cleanup`. */
export async function startWorkers(file: string, cleanup: (() => unknown)[]): Promise<StartedWorkers> {
  const child = spawn(process.execPath, ['dist/src/cli/bin.js', 'start', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanup.push(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  await until(() => /workers:\s+2/.test(out), 15_000, 'the banner');
  const admin = Number(/admin:\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
  const web = Number(/listener web:\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
  return { child, output: () => out, exited, admin, web };
}
