import { EndpointPool, plainConnector, type Connector, type ResponseHandler, type UpstreamRequest } from '../http1/upstream-client.js';
import { parseHostPort } from '../shared/address.js';
import { UpstreamTlsConnector, type ClusterTls } from './upstream-tls.js';

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
 * A cluster's keep-alive connection pools: one of Meridian's own HTTP/1.1 endpoint pools
 * (src/http1/upstream-client.ts) per endpoint.
 *
 * Idle connections are retired after `idleTimeoutMs` (default 4 s, below the usual 5 s
 * backend keep-alive), and sooner when a backend sends `Keep-Alive: timeout=N`. That
 * closes the keep-alive race from our side; the forwarder resends the rare request that
 * still loses it, on a connection of its own (`fresh`).
 */
export class UpstreamPools {
  readonly options: PoolOptions;
  readonly #pools = new Map<string, EndpointPool>();
  /** How connections are opened: plain TCP unless the cluster's endpoints speak TLS (issue 19). */
  readonly #connectorFor: (address: string) => Connector;

  constructor(options: PoolOptions, connectorFor: (address: string) => Connector = () => plainConnector) {
    this.options = options;
    this.#connectorFor = connectorFor;
  }

  sameOptions(options: PoolOptions): boolean {
    const o = this.options;
    const sameTls = o.tls === undefined ? options.tls === undefined : o.tls.same(options.tls);
    return o.idleTimeoutMs === options.idleTimeoutMs && o.maxConnections === options.maxConnections && o.connectTimeoutMs === options.connectTimeoutMs && sameTls;
  }

  /** Send `req` to the endpoint at `address`; `fresh`: on a new connection of its own, closed after the response. */
  dispatch(address: string, req: UpstreamRequest, handler: ResponseHandler, fresh = false): void {
    this.#pool(address).dispatch(req, handler, fresh);
  }

  /** Withdraw a request still waiting for a connection (see EndpointPool.cancel). */
  cancel(address: string, handler: ResponseHandler, err: Error): boolean {
    return this.#pools.get(address)?.cancel(handler, err) ?? false;
  }

  #pool(address: string): EndpointPool {
    let pool = this.#pools.get(address);
    if (pool === undefined) {
      const hp = parseHostPort(address);
      if (typeof hp === 'string') throw new Error(`endpoint address ${address}: ${hp}`);
      pool = new EndpointPool({
        host: hp.host,
        port: hp.port,
        maxConnections: this.options.maxConnections,
        idleTimeoutMs: this.options.idleTimeoutMs,
        connectTimeoutMs: this.options.connectTimeoutMs,
        connector: this.#connectorFor(address),
      });
      this.#pools.set(address, pool);
    }
    return pool;
  }

  /** The TLS version `address`'s latest connection negotiated; undefined: plaintext, or none yet. */
  tlsVersion(address: string): string | undefined {
    if (this.options.tls === undefined) return undefined; // plaintext: no lookup per request
    const connector = this.#pools.get(address)?.options.connector;
    return connector instanceof UpstreamTlsConnector ? connector.tlsVersion : undefined;
  }

  stats(address: string): PoolStats {
    return this.#pools.get(address)?.stats ?? { open: 0, idle: 0, pending: 0 };
  }

  /**
   * Requests handed to a pool that no connection has taken yet, across the cluster: the
   * forwarder counts them (from dispatch to onConnect or onError), since summing every
   * pool's stats on each request would cost O(endpoints).
   */
  waiting = 0;

  /** Close the pools of endpoints no longer configured, once their requests complete. */
  retain(addresses: ReadonlySet<string>): void {
    for (const [address, pool] of this.#pools) {
      if (!addresses.has(address)) {
        this.#pools.delete(address);
        pool.closeWhenIdle();
      }
    }
  }

  /** Retire the whole pool: requests in flight complete, then connections close. */
  closeWhenIdle(): void {
    this.retain(new Set());
  }

  close(): void {
    for (const pool of this.#pools.values()) pool.destroy();
    this.#pools.clear();
  }
}
