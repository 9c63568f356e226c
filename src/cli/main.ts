// The `meridian` command: dispatches to one module per subcommand.
import { readFileSync } from 'node:fs';
import { runBackend } from './backend.js';
import { runDemo } from './demo.js';
import { runHash } from './hash.js';
import { runPlan } from './plan.js';
import { runQuickstart } from './quickstart.js';
import { runSimulate } from './simulate.js';
import { runStart } from './start.js';
import { runValidate } from './validate.js';

import type { Io } from './io.js';

export type { Io };

const HELP = `meridian — a global load balancer

Usage:
  meridian start -c FILE         run the load balancer (SIGHUP reloads, SIGTERM drains)
  meridian demo [--rate N] [--regions N] [--backends N] [--policy P] [--port P] [--no-load]
                                 three regions, failover, load and a live dashboard on loopback (npm start)
  meridian quickstart [-c FILE]  sample backends plus Meridian on examples/quickstart.yaml
  meridian backend --port P [--name NAME] [--latency 10ms|exp:10ms|lognormal:10ms,1.0]
                   [--error-rate 0.01] [--health-path /healthz]
                                 a sample backend with injected latency and errors
  meridian validate -c FILE      check a config; print every error with its path
  meridian hash --policy maglev|ring_hash --endpoints N [--table-size M] [--max-ring-size M]
                [--keys K] [--seed S] [--json]
                                 build a hash table for N endpoints and report its balance
                                 and how many keys move when an endpoint leaves or joins
  meridian simulate FILE [--json OUT] [--html OUT] [--policy P,...] [--seed S]
                                 run a scenario in virtual time through the balancing core
  meridian plan --dau N --requests-per-user N --peak-factor F [--rps-per-node R] [--regions ...]
                                 capacity plan: QPS, bandwidth, load balancer nodes per region
  meridian --help                this text
  meridian --version             the version

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
    case 'plan':
      return runPlan(rest, io);
    default:
      io.stderr(`meridian: unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}

