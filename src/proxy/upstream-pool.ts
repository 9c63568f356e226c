import { Agent } from 'node:http';
import { isDeepStrictEqual } from 'node:util';
import { splitAddress } from './address.js';

export interface PoolOptions {
  /** Idle keep-alive connections kept per endpoint. */
  readonly maxIdlePerEndpoint: number;
  /** An idle pooled connection is closed after this long (and sooner if the backend hints so). */
  readonly idleTimeoutMs: number;
  /** Connections open at once across the cluster's endpoints (circuit_breaker.max_connections). */
  readonly maxConnections: number;
}

export interface PoolStats {
  readonly open: number;
  readonly idle: number;
  /** Requests waiting for a connection (the cluster is at max_connections). */
  readonly pending: number;
}

/**
 * A cluster's keep-alive connection pools: one http.Agent for the cluster, which keeps a
 * pool per endpoint inside and caps the total (`maxTotalSockets` = max_connections);
 * requests past the cap wait in the agent's queue, which the forwarder bounds with
 * max_pending_requests.
 *
 * - LIFO reuse: the most recently used connection is the least likely to have been
 *   closed by the backend, and the ones at the bottom age out.
 * - Idle connections are retired after `idleTimeoutMs` (default 4 s, below the usual
 *   5 s backend keep-alive), and Node's agent shortens that further when a backend sends
 *   `Keep-Alive: timeout=N`. That closes the keep-alive race from our side; the forwarder
 *   retries the rare request that still loses it.
 */
export class UpstreamPools {
  readonly options: PoolOptions;
  readonly agent: Agent;
  /** Endpoint pool names still configured; undefined = all. Connections of others close when freed. */
  #keep: Set<string> | undefined;

  constructor(options: PoolOptions) {
    this.options = options;
    this.agent = new Agent({
      keepAlive: true,
      scheduling: 'lifo',
      maxFreeSockets: options.maxIdlePerEndpoint,
      maxTotalSockets: options.maxConnections,
      timeout: options.idleTimeoutMs,
    });
    this.agent.on('free', (socket, opts) => {
      if (this.#keep !== undefined && !this.#keep.has(this.agent.getName(opts))) socket.destroy();
    });
  }

  sameOptions(options: PoolOptions): boolean {
    return isDeepStrictEqual(this.options, options);
  }

  stats(address: string): PoolStats {
    const name = this.#name(address);
    const idle = this.agent.freeSockets[name]?.length ?? 0;
    return { open: (this.agent.sockets[name]?.length ?? 0) + idle, idle, pending: this.agent.requests[name]?.length ?? 0 };
  }

  /** Requests waiting for a connection, across the cluster. */
  pending(): number {
    let n = 0;
    for (const list of Object.values(this.agent.requests)) n += list?.length ?? 0;
    return n;
  }

  /** Close the idle connections of endpoints no longer configured; busy ones close when done. */
  retain(addresses: ReadonlySet<string>): void {
    const keep = new Set([...addresses].map((a) => this.#name(a)));
    this.#keep = keep;
    for (const [name, list] of Object.entries(this.agent.freeSockets)) if (!keep.has(name)) for (const s of list ?? []) s.destroy();
  }

  /** Retire the whole pool: idle connections now, busy ones as their requests complete. */
  closeWhenIdle(): void {
    this.retain(new Set());
  }

  close(): void {
    this.agent.destroy();
  }

  #name(address: string): string {
    return this.agent.getName(splitAddress(address));
  }
}
