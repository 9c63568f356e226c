// The `meridian` command: dispatches to one module per subcommand.
import { readFileSync } from 'node:fs';
import { BACKEND_USAGE_LINE, runBackend } from './backend.js';
import { DEMO_USAGE_LINE, runDemo } from './demo.js';
import { HASH_USAGE_LINE, runHash } from './hash.js';
import { PLAN_USAGE_LINE, runPlan } from './plan.js';
import { QUICKSTART_USAGE_LINE, runQuickstart } from './quickstart.js';
import { runSimulate, SIMULATE_USAGE_LINE } from './simulate.js';
import { runSimulateFleet, SIMULATE_FLEET_USAGE_LINE } from './simulate-fleet.js';
import { runStart, START_USAGE_LINE } from './start.js';
import { runValidate, VALIDATE_USAGE_LINE } from './validate.js';

import type { Io } from './io.js';

export type { Io };

/** Each command's own usage line and what it does: the top-level help cannot drift from the commands' flags. */
const COMMANDS: readonly (readonly [string, string])[] = [
  [START_USAGE_LINE, 'run the load balancer (SIGHUP reloads, SIGTERM drains)'],
  [DEMO_USAGE_LINE, 'three regions, failover, load and a live dashboard on loopback (npm start)'],
  [QUICKSTART_USAGE_LINE, 'sample backends plus Meridian on examples/quickstart.yaml'],
  [BACKEND_USAGE_LINE, 'a sample backend with injected latency and errors'],
  [VALIDATE_USAGE_LINE, 'check a config; print every error with its path'],
  [HASH_USAGE_LINE, 'build a hash table for N endpoints; report its balance and the keys moved when one leaves or joins'],
  [SIMULATE_USAGE_LINE, 'run a scenario in virtual time through the balancing core'],
  [SIMULATE_FLEET_USAGE_LINE, 'several LB nodes per region with their own views: herding, global limits (docs/fleet.md)'],
  [PLAN_USAGE_LINE, 'capacity plan: QPS, bandwidth, load balancer nodes per region'],
];

/** `meridian cmd [--a] [--b X] ...` folded at `width`, never inside a bracket, continuation lines indented. */
function fold(line: string, width: number): string {
  const words = line.match(/\[[^\]]*\]|\S+/g) ?? [];
  const indent = ' '.repeat(`${words[0]} ${words[1]} `.length + 2);
  const lines: string[] = [];
  let cur = '';
  for (const w of words) {
    if (cur !== '' && cur.length + 1 + w.length > width) {
      lines.push(cur);
      cur = `${indent.slice(2)}${w}`;
    } else cur = cur === '' ? w : `${cur} ${w}`;
  }
  lines.push(cur);
  return lines.map((l) => `  ${l}`).join('\n');
}

const HELP = `meridian — a global load balancer

Usage:
${COMMANDS.map(([usage, what]) => `${fold(usage.replace(/^usage: /, ''), 94)}\n      ${what}`).join('\n')}
  meridian --help | --version
      this text | the version; meridian COMMAND --help describes every flag of COMMAND

Exit status: 0 success, 1 invalid config (or an internal error), 2 usage error or unreadable file.
Docs: README.md, docs/config.md, docs/admin.md, docs/metrics.md, docs/simulator.md.`;

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: readonly string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      io.stdout(HELP);
      return command === undefined ? 2 : 0;
    case '-v':
    case '--version':
    case 'version':
      io.stdout(`meridian ${version()}`);
      return 0;
    case 'start':
      return runStart(rest, io);
    case 'demo':
      return runDemo(rest, io);
    case 'quickstart':
      return runQuickstart(rest, io);
    case 'backend':
      return runBackend(rest, io);
    case 'validate':
      return runValidate(rest, io);
    case 'hash':
      return runHash(rest, io);
    case 'simulate':
      return runSimulate(rest, io);
    case 'simulate-fleet':
      return runSimulateFleet(rest, io);
    case 'plan':
      return runPlan(rest, io);
    default:
      io.stderr(`meridian: unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}

