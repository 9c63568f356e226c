import { fileURLToPath } from 'node:url';
import { startSampleBackend, type SampleBackend, type SampleBackendOptions } from '../backend/sample-backend.js';
import { clusterEndpoints } from '../config/index.js';
import { Meridian } from '../node/meridian.js';
import { parseCommand, stopSignal } from './args.js';
import { configArg, loadConfigForCommand } from './config-file.js';
import type { Io } from './io.js';

export const QUICKSTART_USAGE_LINE = 'usage: meridian quickstart [-c FILE]';

export const QUICKSTART_USAGE = `${QUICKSTART_USAGE_LINE}

Starts FILE's sample_backends and a sample backend (meridian backend) for every other
endpoint of FILE that points at 127.0.0.1, then Meridian on FILE, and prints what to curl. Default FILE: the bundled
examples/quickstart.yaml. Ctrl-C stops everything.`;

/** A load balancer a newcomer can curl within seconds. */
export async function runQuickstart(argv: string[], io: Io, signals: NodeJS.EventEmitter = process): Promise<number> {
  const bundled = fileURLToPath(new URL('../../../examples/quickstart.yaml', import.meta.url));
  const file = parseCommand('quickstart', argv, io, (a) => (a.length === 0 ? bundled : configArg(a)), QUICKSTART_USAGE, QUICKSTART_USAGE_LINE);
  if (typeof file === 'number') return file;
  const config = await loadConfigForCommand(file, io, 'quickstart');
  if (typeof config === 'number') return config;

  // The file's own sample_backends as it declares them; every other loopback endpoint gets a default one.
  const backends: SampleBackendOptions[] = config.sample_backends.map((b) => ({ name: b.name, host: b.address, port: b.port, latency: b.latency, errorRate: b.error_rate }));
  const declared = new Set(backends.map((b) => b.port));
  for (const c of config.clusters) {
    for (const e of clusterEndpoints(c)) {
      if (e.host !== '127.0.0.1' || declared.has(e.port)) continue;
      declared.add(e.port);
      backends.push({ port: e.port, name: e.id, latency: 'exp:5ms' });
    }
  }
  const started: SampleBackend[] = [];
  const stopBackends = () => Promise.all(started.map((b) => b.close()));
  try {
    for (const b of backends) started.push(await startSampleBackend(b));
  } catch (e) {
    await stopBackends();
    const err = e as NodeJS.ErrnoException & { port?: number };
    io.stderr(`meridian quickstart: ${err.code === 'EADDRINUSE' ? `a sample backend's port is already in use (${err.message}); stop whatever holds it or edit ${file}` : err.message}`);
    return 2;
  }
  const meridian = new Meridian(config, { configPath: file });
  try {
    await meridian.start();
  } catch (e) {
    await Promise.all([meridian.close(), stopBackends()]);
    io.stderr(`meridian quickstart: ${(e as Error).message}`);
    return 2;
  }
  const [name, port] = Object.entries(meridian.ports())[0] ?? ['', 0];
  const adminUrl = `http://${config.admin.address}:${meridian.adminPort}`;
  io.stdout(
    [
      `Meridian is balancing ${started.length} sample backends (listener ${name}).`,
      `  try:      curl http://127.0.0.1:${port}/          (run it a few times: the answer names the backend)`,
      `  sticky:   curl -H 'x-user: alice' http://127.0.0.1:${port}/sticky   (maglev: alice always lands on the same one)`,
      `  clusters: curl ${adminUrl}/api/clusters`,
      `  metrics:  curl ${adminUrl}/metrics`,
      `  stop:     Ctrl-C`,
    ].join('\n'),
  );
  await stopSignal(signals);
  await meridian.drainAndStop(2000);
  await stopBackends();
  return 0;
}
