import cluster from 'node:cluster';
import type { ListenOptions } from 'node:net';
import { REUSE_PORT, type Config } from '../config/index.js';

/**
 * Whether a listener on `port` takes a socket of its own per worker (SO_REUSEPORT) under
 * `worker_accept`: `auto` does where the runtime can and the port is fixed (port 0 would
 * give each worker a port of its own); `reuse_port` always (validation refused it where
 * it cannot); `round_robin` never.
 */
function reusesPort(accept: Config['worker_accept'], port: number): boolean {
  return accept === 'reuse_port' || (accept === 'auto' && REUSE_PORT && port !== 0);
}

/**
 * How a listener binds. In a worker that reuses the port, the socket is its own
 * (`exclusive`: not the primary's, which node:cluster would otherwise share or hand
 * connections from) with SO_REUSEPORT, so the kernel spreads new connections over the
 * workers' sockets with no hop through the primary; elsewhere a plain bind.
 */
export function listenOptions(port: number, host: string, accept: Config['worker_accept']): ListenOptions {
  if (!cluster.isWorker || !reusesPort(accept, port)) return { port, host };
  // `reusePort` is net's from Node 22.12; @types/node 20 does not know it yet.
  return { port, host, exclusive: true, reusePort: true } as ListenOptions;
}
