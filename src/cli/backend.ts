/**
 * `meridian backend`: run one sample backend (src/backend/sample-backend.ts) in the
 * foreground until SIGINT or SIGTERM, for demos and for trying a config by hand.
 *
 * Exit codes: 0 stopped by a signal; 2 bad arguments or the port could not be bound
 * (the message names the option or the port).
 * Output: one line `backend NAME listening on URL` once it listens.
 */
import { LATENCY_FORMS, parseLatency, startSampleBackend, type LatencySpec, type SampleBackend } from '../backend/sample-backend.js';
import { integerOption, parseCommand, parseOptions, UsageError } from './args.js';
import type { Io } from './io.js';

export const BACKEND_USAGE_LINE =
  'usage: meridian backend --port P [--host H] [--name NAME] [--latency 10ms|exp:10ms|lognormal:10ms,1.0] [--error-rate 0.01] [--health-path /healthz] [--seed S] [--concurrency N]';

export const BACKEND_USAGE = `${BACKEND_USAGE_LINE}

Runs a sample HTTP/1.1 backend that answers with its name, until SIGINT or SIGTERM.
  --port P            port to listen on, 0..65535 (0: any free port) (required)
  --host H            address to listen on (default 127.0.0.1)
  --name NAME         name in every answer and x-backend header (default backend-P)
  --latency SPEC      injected latency: ${LATENCY_FORMS} (default 0)
  --error-rate R      fraction 0..1 of requests answered 500 (default 0)
  --health-path PATH  health check path (default /healthz)
  --seed S            seed of the latency and error draws, 0..4294967295 (default: from the name)
  --concurrency N     serve at most N requests at once, the rest wait in order (default: no limit)
  -h, --help          show this help
Routes: docs/backend.md.

Exit status: 0 stopped by SIGINT or SIGTERM, 2 bad arguments or port in use.`;

export interface BackendSettings {
  readonly port: number;
  readonly host: string;
  readonly name: string;
  readonly latency: LatencySpec;
  readonly errorRate: number;
  readonly healthPath: string;
  readonly seed: number | undefined;
  readonly concurrency: number | undefined;
}

/** `argv` is what follows `backend`; throws a UsageError (message naming the option), or returns 'help'. */
export function parseBackendArgs(argv: readonly string[]): BackendSettings | 'help' {
  const values = parseOptions(argv, {
        port: { type: 'string' },
        host: { type: 'string' },
        name: { type: 'string' },
        latency: { type: 'string' },
        'error-rate': { type: 'string' },
        'health-path': { type: 'string' },
        seed: { type: 'string' },
        concurrency: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      });
  if (values.help === true) return 'help';
  if (values.port === undefined) throw new UsageError('--port is required (0 for any free port)');
  const port = integerOption('port', values.port, undefined, 0, 65535);
  const host = values.host ?? '127.0.0.1';
  if (host === '') throw new UsageError('--host must not be empty');
  const name = values.name ?? `backend-${port}`;
  if (!/^[\x21-\x7e]+$/.test(name)) throw new UsageError(`--name must be printable ASCII without spaces, got '${name}'`);
  let latency: LatencySpec = { kind: 'none' };
  if (values.latency !== undefined) {
    try {
      latency = parseLatency(values.latency);
    } catch (e) {
      throw new UsageError(`--latency: ${(e as Error).message}`);
    }
  }
  let errorRate = 0;
  const rate = values['error-rate'];
  if (rate !== undefined) {
    errorRate = /^\d+(?:\.\d+)?$/.test(rate) ? Number(rate) : NaN;
    if (!(errorRate >= 0 && errorRate <= 1)) throw new UsageError(`--error-rate must be a number from 0 to 1, got '${rate}'`);
  }
  const healthPath = values['health-path'] ?? '/healthz';
  if (!/^\/[\x21-\x7e]*$/.test(healthPath)) throw new UsageError(`--health-path must start with / (no spaces), got '${healthPath}'`);
  const seed = values.seed === undefined ? undefined : integerOption('seed', values.seed, undefined, 0, 0xffffffff);
  const concurrency = values.concurrency === undefined ? undefined : integerOption('concurrency', values.concurrency, undefined, 1, 1_000_000);
  return { port, host, name, latency, errorRate, healthPath, seed, concurrency };
}

/**
 * `argv` is what follows `backend` on the command line. Resolves when SIGINT or SIGTERM
 * arrives (or `stop` aborts, for callers that embed it), after the backend has closed.
 */
export async function runBackend(argv: string[], io: Io, stop?: AbortSignal): Promise<number> {
  const s = parseCommand('backend', argv, io, parseBackendArgs, BACKEND_USAGE, BACKEND_USAGE_LINE);
  if (typeof s === 'number') return s;
  let backend: SampleBackend;
  try {
    backend = await startSampleBackend({
      port: s.port,
      host: s.host,
      name: s.name,
      latency: s.latency,
      errorRate: s.errorRate,
      healthPath: s.healthPath,
      ...(s.seed === undefined ? {} : { seed: s.seed }),
      ...(s.concurrency === undefined ? {} : { concurrency: s.concurrency }),
    });
  } catch (e) {
    io.stderr(`meridian backend: ${listenError(e as NodeJS.ErrnoException, s)}`);
    return 2;
  }
  io.stdout(`backend ${backend.name} listening on ${backend.url}`);
  await new Promise<void>((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      stop?.removeEventListener('abort', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
    if (stop?.aborted) done();
    else stop?.addEventListener('abort', done);
  });
  await backend.close();
  return 0;
}

function listenError(e: NodeJS.ErrnoException, s: BackendSettings): string {
  switch (e.code) {
    case 'EADDRINUSE':
      return `port ${s.port} is already in use`;
    case 'EACCES':
      return `permission denied to listen on port ${s.port}`;
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `--host ${s.host} is not an address of this machine (${e.code})`;
    default:
      return `cannot listen on ${s.host}:${s.port}: ${e.message}`;
  }
}
