import { buildConnector, Client, Pool } from 'undici';
import { surfaceTlsErrors, upstreamTlsOptions, type ClusterTls } from './upstream-tls.js';

export interface PoolOptions {
  /** An idle pooled connection is closed after this long (and sooner if the backend hints so). */
  readonly idleTimeoutMs: number;
  /** Connections open at once to one endpoint (circuit_breaker.max_connections). */
  readonly maxConnections: number;
  /** TCP connect timeout. */
  readonly connectTimeoutMs: number;
  /** TLS to the endpoints (absent: plaintext); see upstream-tls.ts. */
  readonly tls?: ClusterTls | undefined;
}

export interface PoolStats {
  readonly open: number;
  readonly idle: number;
  /** Requests waiting for a connection (the endpoint is at max_connections). */
  readonly pending: number;
}

/**
 * A cluster's keep-alive connection pools: one undici Pool per endpoint.
 *
 * Idle connections are retired after `idleTimeoutMs` (default 4 s, below the usual 5 s
 * backend keep-alive), and undici shortens that further when a backend sends
 * `Keep-Alive: timeout=N`. That closes the keep-alive race from our side; the forwarder
 * resends the rare request that still loses it.
 */
export class UpstreamPools {
  readonly options: PoolOptions;
  readonly #pools = new Map<string, Pool>();
  /** The TLS version each endpoint's latest connection negotiated (TLS clusters only). */
  readonly #tlsVersions = new Map<string, string>();

  constructor(options: PoolOptions) {
    this.options = options;
  }

  sameOptions(options: PoolOptions): boolean {
    const o = this.options;
    const sameTls = o.tls === undefined ? options.tls === undefined : o.tls.same(options.tls);
    return o.idleTimeoutMs === options.idleTimeoutMs && o.maxConnections === options.maxConnections && o.connectTimeoutMs === options.connectTimeoutMs && sameTls;
  }

  pool(address: string): Pool {
    let pool = this.#pools.get(address);
    if (pool === undefined) {
      const tls = upstreamTlsOptions(this.options.tls, address);
      pool = new Pool(`${tls ? 'https' : 'http'}://${address}`, {
        connections: this.options.maxConnections,
        pipelining: 1,
        keepAliveTimeout: this.options.idleTimeoutMs,
        keepAliveMaxTimeout: this.options.idleTimeoutMs,
        connect: this.#connector(tls, address),
        // Timeouts are the forwarder's (per try, per request): none of undici's own.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      this.#pools.set(address, pool);
    }
    return pool;
  }

  /** A one-request connection outside the pool (closed by the caller when done). */
  fresh(address: string): Client {
    const tls = upstreamTlsOptions(this.options.tls, address);
    return new Client(`${tls ? 'https' : 'http'}://${address}`, { pipelining: 1, connect: this.#connector(tls, address), headersTimeout: 0, bodyTimeout: 0 });
  }

  /** The TLS version negotiated with `address` (its latest connection); undefined: plaintext, or none yet. */
  tlsVersion(address: string): string | undefined {
    return this.#tlsVersions.get(address);
  }

  /** undici's connector with the endpoint's TLS options; it keeps each pool's TLS sessions itself (resumption). */
  #connector(tls: ReturnType<typeof upstreamTlsOptions>, address: string): buildConnector.BuildOptions | buildConnector.connector {
    if (tls === undefined) return { timeout: this.options.connectTimeoutMs };
    // undici would take a `session` for every connection, in place of its own newest one.
    const { session: _session, ...options } = tls;
    const connect = buildConnector({ timeout: this.options.connectTimeoutMs, ...options } as buildConnector.BuildOptions);
    return (opts, cb) =>
      connect(opts, (err, socket) => {
        if (socket) {
          surfaceTlsErrors(socket);
          const version = (socket as { getProtocol?: () => string | null }).getProtocol?.();
          if (version) this.#tlsVersions.set(address, version);
        }
        (cb as (e: Error | null, s: typeof socket) => void)(err, socket);
      });
  }

  stats(address: string): PoolStats {
    const s = this.#pools.get(address)?.stats;
    if (s === undefined) return { open: 0, idle: 0, pending: 0 };
    return { open: s.connected, idle: s.free, pending: s.queued };
  }

  /**
   * Requests handed to a pool that no connection has taken yet, across the cluster: the
   * forwarder counts them (from dispatch to undici's onConnect or onError), since summing
   * every pool's stats on each request would cost O(endpoints).
   */
  waiting = 0;

  /** Close the pools of endpoints no longer configured, once their requests complete. */
  retain(addresses: ReadonlySet<string>): void {
    for (const [address, pool] of this.#pools) {
      if (!addresses.has(address)) {
        this.#pools.delete(address);
        this.#tlsVersions.delete(address);
        void pool.close().catch(() => {});
      }
    }
  }

  /** Retire the whole pool: requests in flight complete, then connections close. */
  closeWhenIdle(): void {
    this.retain(new Set());
  }

  close(): void {
    for (const pool of this.#pools.values()) void pool.destroy().catch(() => {});
    this.#pools.clear();
  }
}
