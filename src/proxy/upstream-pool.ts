import { Agent } from 'node:http';

export interface PoolOptions {
  /** Idle keep-alive connections kept per endpoint. */
  readonly maxIdlePerEndpoint: number;
  /** An idle pooled connection is closed after this long (and sooner if the backend hints so). */
  readonly idleTimeoutMs: number;
}

export interface PoolStats {
  readonly open: number;
  readonly idle: number;
}

/**
 * Keep-alive connection pools, one http.Agent per endpoint address.
 *
 * - LIFO reuse: the most recently used connection is the least likely to have been
 *   closed by the backend, and the ones at the bottom age out.
 * - Idle connections are retired after `idleTimeoutMs` (default 4 s, below the usual
 *   5 s backend keep-alive), and Node's agent shortens that further when a backend sends
 *   `Keep-Alive: timeout=N`. That closes the keep-alive race from our side; the forwarder
 *   retries the rare request that still loses it.
 */
export class UpstreamPools {
  readonly #agents = new Map<string, Agent>();
  #options: PoolOptions;

  constructor(options: PoolOptions) {
    this.#options = options;
  }

  agentFor(address: string): Agent {
    let agent = this.#agents.get(address);
    if (agent === undefined) {
      agent = new Agent({
        keepAlive: true,
        scheduling: 'lifo',
        maxFreeSockets: this.#options.maxIdlePerEndpoint,
        timeout: this.#options.idleTimeoutMs,
      });
      this.#agents.set(address, agent);
    }
    return agent;
  }

  stats(address: string): PoolStats {
    const agent = this.#agents.get(address);
    if (agent === undefined) return { open: 0, idle: 0 };
    const count = (m: NodeJS.ReadOnlyDict<unknown[]>) => Object.values(m).reduce((n, list) => n + (list?.length ?? 0), 0);
    const idle = count(agent.freeSockets);
    return { open: count(agent.sockets) + idle, idle };
  }

  /** Close the pools of endpoints no longer configured; in-flight requests finish first. */
  retain(addresses: ReadonlySet<string>): void {
    for (const [address, agent] of this.#agents) {
      if (!addresses.has(address)) {
        this.#agents.delete(address);
        closeWhenIdle(agent);
      }
    }
  }

  close(): void {
    for (const agent of this.#agents.values()) agent.destroy();
    this.#agents.clear();
  }
}

/** Destroy idle sockets now, and each busy one as soon as its request completes. */
function closeWhenIdle(agent: Agent): void {
  agent.on('free', (socket) => socket.destroy());
  for (const list of Object.values(agent.freeSockets)) for (const s of list ?? []) s.destroy();
}
