import cluster from 'node:cluster';
import { startSampleBackend, type SampleBackend } from '../backend/sample-backend.js';
import { Meridian } from '../node/meridian.js';
import { runWorker, WorkerPool, workerCount } from '../node/workers.js';
import type { Config } from '../config/index.js';
import { parseCommand, stopSignal } from './args.js';
import { configArg, loadConfigForCommand } from './config-file.js';
import type { Io } from './io.js';

export const START_USAGE_LINE = 'usage: meridian start -c FILE';

export const START_USAGE = `${START_USAGE_LINE}

Runs the load balancer. SIGHUP reloads FILE (an invalid config is refused and the
running one stays); SIGTERM or Ctrl-C drains (stop accepting, finish requests in flight
up to drain_timeout) and exits 0.`;

/** Resolves when the process should exit. `signals` is injectable for tests. */
export async function runStart(argv: string[], io: Io, signals: NodeJS.EventEmitter = process): Promise<number> {
  const file = parseCommand('start', argv, io, configArg, START_USAGE, START_USAGE_LINE);
  if (typeof file === 'number') return file;
  const config = await loadConfigForCommand(file, io, 'start');
  if (typeof config === 'number') return config;
  const samples = cluster.isWorker ? [] : await startSamples(config, io);
  if (samples === undefined) return 2;
  try {
    if (workerCount(config.workers) > 1) return await runWorkers(file, config, io, signals, samples);
    const meridian = new Meridian(config, { configPath: file });
    try {
      await meridian.start();
    } catch (e) {
      io.stderr(`meridian start: ${(e as Error).message}`);
      await meridian.close();
      return 2;
    }
    io.stdout(startBanner(meridian, samples));
    signals.on('SIGHUP', () => void meridian.reload());
    await stopSignal(signals);
    await meridian.drainAndStop();
    return 0;
  } finally {
    await Promise.all(samples.map((b) => b.close()));
  }
}

/** The config's sample_backends, started before the proxy; undefined (after saying why) if one cannot bind. */
async function startSamples(config: Config, io: Io): Promise<SampleBackend[] | undefined> {
  const started: SampleBackend[] = [];
  for (const b of config.sample_backends) {
    try {
      started.push(await startSampleBackend({ name: b.name, host: b.address, port: b.port, latency: b.latency, errorRate: b.error_rate }));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      io.stderr(`meridian start: sample backend ${b.name}: ${err.code === 'EADDRINUSE' ? `port ${b.port} on ${b.address} is already in use` : err.message}`);
      await Promise.all(started.map((s) => s.close()));
      return undefined;
    }
  }
  return started;
}

/** `workers` > 1: this process is either the primary or one of its workers. */
async function runWorkers(file: string, config: Config, io: Io, signals: NodeJS.EventEmitter, samples: readonly SampleBackend[]): Promise<number> {
  if (cluster.isWorker) {
    await runWorker(file, config);
    return new Promise<number>(() => {}); // the worker exits when the primary tells it to drain
  }
  const pool = new WorkerPool(file, config);
  try {
    await pool.start();
  } catch (e) {
    io.stderr(`meridian start: ${(e as Error).message}`);
    await pool.drainAndStop();
    return 2;
  }
  io.stdout(`${startBanner({ ports: () => pool.ports(), config, adminPort: pool.adminPort }, samples)}
  workers:  ${pool.count}`);
  signals.on('SIGHUP', () => void pool.reload());
  await stopSignal(signals);
  await pool.drainAndStop();
  return 0;
}

export function startBanner(m: { ports(): Record<string, number>; readonly config: Config; readonly adminPort: number }, samples: readonly SampleBackend[] = []): string {
  const lines = Object.entries(m.ports()).map(([name, port]) => {
    const l = m.config.listeners.find((x) => x.name === name);
    const host = l === undefined || l.address === '0.0.0.0' || l.address === '::' ? '127.0.0.1' : l.address;
    const at = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    // What a client would type: https for TLS listeners, and no path for a TCP pass-through.
    return l?.protocol === 'tcp' ? `  listener ${name}: tcp://${at}` : `  listener ${name}: ${l?.protocol === 'https' ? 'https' : 'http'}://${at}/`;
  });
  const backends = samples.map((b) => `  sample backend ${b.name}: ${b.url}/`);
  return [`meridian is running`, ...lines, `  admin:    http://${m.config.admin.address}:${m.adminPort}/  (/metrics, /api/clusters)`, ...backends].join('\n');
}
