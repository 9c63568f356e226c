import { POLICIES } from '../admin/dashboard-types.js';
import { Demo, PortInUseError } from '../demo/demo.js';
import { REGIONS } from '../demo/topology.js';
import { integerOption, parseCommand, parseOptions, stopSignal, UsageError } from './args.js';
import type { Io } from './io.js';

export const DEMO_USAGE_LINE = 'usage: meridian demo [--rate N] [--regions N] [--backends N] [--policy P] [--port P] [--no-load] [--reports DIR]';

export const DEMO_USAGE = `${DEMO_USAGE_LINE}

Runs a global load balancer on loopback, with a live dashboard: regions of sample
backends, a Meridian per region failing over to the others, and a load generator
playing clients from several geographies. Ctrl-C stops everything.

  --rate N       requests per second of the load generator (default 50)
  --regions N    regions, 1-${REGIONS.length} (default 3: ${REGIONS.slice(0, 3).map((r) => r.name).join(', ')})
  --backends N   backends per region, 1-16 (default 4)
  --policy P     the clusters' policy: ${POLICIES.join(', ')} (default least_request)
  --port P       the dashboard's port (default 9900; a taken default is replaced by a free port)
  --no-load      no load generator: send requests yourself
  --reports DIR  where the dashboard lists simulator reports (meridian simulate --html)`;

interface DemoArgs {
  readonly rate: number;
  readonly regions: number;
  readonly backends: number;
  readonly policy: string;
  readonly port: number;
  readonly portExplicit: boolean;
  readonly load: boolean;
  readonly reportsDir: string | undefined;
}

function parse(argv: readonly string[]): DemoArgs | 'help' {
  const v = parseOptions(argv, {
    rate: { type: 'string' },
    regions: { type: 'string' },
    backends: { type: 'string' },
    policy: { type: 'string' },
    port: { type: 'string' },
    'no-load': { type: 'boolean' },
    reports: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) return 'help';
  const policy = v.policy ?? 'least_request';
  if (!(POLICIES as readonly string[]).includes(policy)) throw new UsageError(`--policy must be one of ${POLICIES.join(', ')}, got '${policy}'`);
  return {
    rate: integerOption('rate', v.rate, 50, 1, 5000),
    regions: integerOption('regions', v.regions, 3, 1, REGIONS.length),
    backends: integerOption('backends', v.backends, 4, 1, 16),
    policy,
    port: integerOption('port', v.port, 9900, 0, 65535),
    portExplicit: v.port !== undefined,
    load: !v['no-load'],
    reportsDir: v.reports,
  };
}

/** `npm start`: three regions, failover, load and the live dashboard, on loopback. */
export async function runDemo(argv: string[], io: Io, signals: NodeJS.EventEmitter = process): Promise<number> {
  const a = parseCommand('demo', argv, io, parse, DEMO_USAGE, DEMO_USAGE_LINE);
  if (typeof a === 'number') return a;
  const demo = new Demo({
    rate: a.rate,
    regions: a.regions,
    backends: a.backends,
    policy: a.policy,
    port: a.port,
    portExplicit: a.portExplicit,
    load: a.load,
    ...(a.reportsDir === undefined ? {} : { reportsDir: a.reportsDir }),
  });
  try {
    await demo.start();
  } catch (e) {
    io.stderr(`meridian demo: ${e instanceof PortInUseError ? e.message : (e as Error).message}`);
    return 2;
  }
  const regions = demo.regions();
  const first = regions[0];
  const lines = [
    `Meridian demo: ${regions.length} regions x ${a.backends} backends, ${a.load ? `${a.rate} req/s of load from ${regions.length > 1 ? 'several geographies' : 'one geography'}` : 'no load (--no-load)'}, policy ${a.policy}.`,
    ...demo.notes.map((n) => `  note:       ${n}`),
    `  dashboard:  ${demo.dashboardUrl}`,
    `  curl:       curl -i http://${first?.address}:${first?.webPort}/        (${first?.name}; ${regions.slice(1).map((r) => `${r.name} ${r.address}:${r.webPort}`).join(', ')})`,
    ...(demo.dns ? [`  dns:        ${demo.dns.dig}        (as a London client: the nearest region's address)`] : []),
    `  admin API:  curl -H 'Authorization: Bearer ${demo.token}' -X POST http://127.0.0.1:${demo.port}/api/demo/backends/${first?.backends[0]}/kill`,
    `  discovery:  ${first?.name}'s backends are listed in ${first?.backendsFile} (a watched file: add or remove a line, the dashboard follows)`,
    `  stop:       Ctrl-C`,
  ];
  io.stdout(lines.join('\n'));
  await stopSignal(signals);
  io.stdout('meridian demo: stopping');
  await demo.stop();
  return 0;
}
