import { connect, createServer, type ListenOptions, type Server, type Socket } from 'node:net';
import { isHashPolicy } from '../core/balancers.js';
import type { Clock } from '../core/clock.js';
import { murmur3 } from '../core/hash.js';
import { RequestLifecycle } from '../core/request-lifecycle.js';
import { SeededRng } from '../core/rng.js';
import type { Outcome } from '../core/types.js';
import { randomInt } from 'node:crypto';
import type { ClusterRuntime } from './runtime.js';
import { splitAddress, unmappedIp } from '../shared/address.js';
import { UpstreamError } from './errors.js';
import { tryFailed } from './try-outcome.js';
import { pipeForTurn } from '../http1/turn-writes.js';

/** One finished TCP connection, for the access log and metrics. */
export interface TcpConnectionRecord {
  readonly listener: string;
  /** The client's address as `ip:port`. */
  readonly client: string;
  /** The endpoint's address of the last try; '' when none was picked. */
  readonly endpoint: string;
  /** Upstream connects tried (0 when none was picked). */
  readonly attempts: number;
  /** Bytes read from the client (and sent upstream). */
  readonly bytesIn: number;
  /** Bytes written to the client (received from upstream). */
  readonly bytesOut: number;
  readonly durationMs: number;
  /**
   * Why the connection ended abnormally, absent for a clean close:
   * `no_cluster`, `circuit_open`, `no_endpoint`, `connect_failed`,
   * `upstream_reset`, `client_reset`, `idle_timeout`, `closed_by_proxy`.
   */
  readonly error?: string;
}

export interface TcpProxyContext {
  readonly listener: string;
  /** The current runtime's cluster for this listener (read per connection: reloads apply to new connections). */
  cluster(): ClusterRuntime | undefined;
  readonly clock: Clock;
  /** listener.timeouts.idle: a connection with no bytes either way for this long is closed; 0 = never. */
  readonly idleTimeoutMs: number;
  readonly log?: { warn(obj: object, msg?: string): void };
  readonly onConnection?: (r: TcpConnectionRecord) => void;
  /** The connection limits: false when the client was closed at accept (nothing is dialled, nothing recorded). */
  readonly admit?: (client: Socket) => boolean;
}

/**
 * An L4 pass-through listener: every client connection is spliced to one endpoint of
 * the listener's cluster, bytes untouched (TLS included), half-close and resets passed on.
 *
 * - Pick: ring_hash and maglev hash the client's source IP (connection affinity); other
 *   policies pick without a hash, and since `onStart`/`onEnd` bracket each connection,
 *   least_request balances open connections.
 * - Connect: within the cluster's `timeouts.connect`; a failed connect is reported as
 *   `{ error: 'connect' }` (connect-failure ejection, outlier detection) and retried as
 *   the request lifecycle decides, as for HTTP: another endpoint, within `retries.attempts`
 *   (when `retry_on` covers connect failures), after its backoff. The connection holds a
 *   `connections` slot of the breaker and a place in the retry budget for its whole life.
 *   The client's socket stays paused meanwhile, so no byte is lost.
 * - End: reported as `{ latencyMs: duration }`; `{ error: 'reset' }` only when the
 *   endpoint reset the connection. A client's reset or an idle timeout is nobody's fault.
 * - The cluster's circuit breaker caps open connections (`max_connections`).
 * - A reload changes what new connections see; open ones keep their endpoint, even one
 *   the reload removed.
 */
export class TcpProxy {
  readonly #ctx: TcpProxyContext;
  readonly #server: Server;
  readonly #conns = new Set<TcpConnection>();
  #drainWaiters: (() => void)[] = [];

  constructor(ctx: TcpProxyContext) {
    this.#ctx = ctx;
    this.#server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.#accept(socket));
  }

  /** Bind; resolves with the bound port (useful with port 0), rejects when the port is taken. */
  listen(options: ListenOptions): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.#server.once('error', onError);
      this.#server.listen(options, () => {
        this.#server.off('error', onError);
        this.#server.on('error', (err) => this.#ctx.log?.warn({ listener: this.#ctx.listener, err: err.message }, 'tcp listener error'));
        resolve((this.#server.address() as { port: number }).port);
      });
    });
  }

  /** Stop accepting; existing connections go on. Resolves once the port is released. */
  stopAccepting(): Promise<void> {
    if (!this.#server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      // close()'s callback waits for every connection to end; the port is free at once.
      this.#server.close();
      setImmediate(resolve);
    });
  }

  /** Connections open now (dialling or connected). */
  get open(): number {
    return this.#conns.size;
  }

  /** Resolves when no connection is open (for a graceful drain). */
  drained(): Promise<void> {
    if (this.#conns.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Destroy all open connections. */
  closeAll(): void {
    for (const c of [...this.#conns]) c.abort('closed_by_proxy');
  }

  #accept(client: Socket): void {
    if (this.#ctx.admit?.(client) === false) return;
    const conn = new TcpConnection(this.#ctx, client, () => {
      this.#conns.delete(conn);
      if (this.#conns.size === 0) for (const w of this.#drainWaiters.splice(0)) w();
    });
    this.#conns.add(conn);
    conn.start();
  }
}

/** The retry backoff's jitter (connect failures retry at once; kept for the lifecycle's other rules). */
const jitter = new SeededRng(randomInt(2 ** 31));

/** A connection holds a `connections` slot; each try is a fresh connection, so a reset is never the keep-alive race. */
const TCP_TRIES = { slot: 'connections', pooled: false } as const;

/** One client connection and its upstream, from accept to both sockets closed. */
class TcpConnection {
  readonly #ctx: TcpProxyContext;
  readonly #client: Socket;
  readonly #onDone: () => void;
  readonly #startMs: number;
  readonly #clientIp: string;
  readonly #clientLabel: string;
  #cluster: ClusterRuntime | undefined;
  #lc: RequestLifecycle | undefined;
  #upstream: Socket | undefined;
  /** A try is open: its end is still to be reported. */
  #inTry = false;
  #hostStartMs = 0;
  #connected = false;
  #clientClosed = false;
  #upstreamClosed = false;
  #error: string | undefined;
  #done = false;
  #connectTimer: NodeJS.Timeout | undefined;
  #backoffTimer: NodeJS.Timeout | undefined;
  #endpoint = '';
  #aborted = false;

  constructor(ctx: TcpProxyContext, client: Socket, onDone: () => void) {
    this.#ctx = ctx;
    this.#client = client;
    this.#onDone = onDone;
    this.#startMs = ctx.clock.nowMs();
    this.#clientIp = unmappedIp(client.remoteAddress ?? '');
    this.#clientLabel = `${this.#clientIp}:${client.remotePort ?? 0}`;
    client.on('error', (err: NodeJS.ErrnoException) => this.#sideFailed('client', err));
    client.on('close', () => {
      this.#clientClosed = true;
      // Closed before the upstream was reached (aborted, or a reset seen while dialling).
      if (!this.#connected) this.#upstream?.destroy();
      this.#maybeFinish();
    });
  }

  start(): void {
    const cluster = this.#ctx.cluster();
    if (cluster === undefined) {
      this.#ctx.log?.warn({ listener: this.#ctx.listener, client: this.#clientLabel }, 'tcp: the listener\'s cluster is not in the running config');
      return this.abort('no_cluster');
    }
    this.#cluster = cluster;
    const lc = new RequestLifecycle(cluster, this.#ctx.clock, jitter, TCP_TRIES);
    if (!lc.admit()) return this.abort('circuit_open');
    this.#lc = lc;
    lc.hash = isHashPolicy(cluster.core.policy) && this.#clientIp !== '' ? murmur3(this.#clientIp) : undefined;
    this.#dial();
  }

  /** End the connection now: both sockets destroyed. */
  abort(error: string): void {
    this.#error ??= error;
    this.#aborted = true;
    clearTimeout(this.#backoffTimer);
    this.#upstream?.destroy();
    this.#client.destroy();
    if (!this.#upstream) this.#upstreamClosed = true;
  }

  #dial(): void {
    if (this.#aborted || this.#clientClosed) return this.#maybeFinish();
    const cluster = this.#cluster as ClusterRuntime;
    const lc = this.#lc as RequestLifecycle;
    const host = lc.startTry();
    if (host === undefined) {
      this.#ctx.log?.warn({ listener: this.#ctx.listener, client: this.#clientLabel, cluster: cluster.name }, 'tcp: no endpoint can take traffic');
      return this.abort('no_endpoint');
    }
    this.#inTry = true;
    this.#endpoint = host.endpoint.address;
    this.#hostStartMs = this.#ctx.clock.nowMs();
    const { host: hostname, port } = splitAddress(host.endpoint.address);
    const up = connect({ host: hostname, port, allowHalfOpen: true });
    this.#upstream = up;
    this.#upstreamClosed = false;
    // This attempt's own state: a failed attempt's late events must not touch the next one.
    let state: 'connecting' | 'failed' | 'connected' = 'connecting';
    const connectMs = cluster.config.timeouts.connect;
    const fail = (e: UpstreamError) => {
      if (state !== 'connecting') return;
      state = 'failed';
      clearTimeout(this.#connectTimer);
      up.destroy();
      this.#upstreamClosed = true;
      const latencyMs = this.#ctx.clock.nowMs() - this.#hostStartMs;
      if (this.#aborted || this.#clientClosed) {
        // We gave up or the client left while we dialled: not the endpoint's fault.
        this.#endHost({ latencyMs });
        return this.#maybeFinish();
      }
      this.#inTry = false;
      // Nothing of the client's was read yet: the connection can always be tried again.
      if (tryFailed(lc, undefined, cluster.name, e, latencyMs, true) === 'retry') {
        const delayMs = lc.retryDelayMs;
        if (delayMs === 0) return this.#dial();
        this.#backoffTimer = setTimeout(() => this.#dial(), delayMs);
        return;
      }
      this.#ctx.log?.warn(
        { listener: this.#ctx.listener, client: this.#clientLabel, endpoint: host.endpoint.address, attempts: lc.attempt, reason: e.message },
        'tcp: no endpoint could be reached',
      );
      this.abort('connect_failed');
    };
    this.#connectTimer = setTimeout(() => fail(new UpstreamError('connect_failure', false, `connect timeout: no connection within ${connectMs} ms`)), connectMs);
    up.on('error', (err: NodeJS.ErrnoException) => {
      if (state === 'connecting') fail(new UpstreamError('connect_failure', false, err.code ?? err.message, { cause: err }));
      else if (state === 'connected') this.#sideFailed('upstream', err);
    });
    up.on('close', () => {
      if (state === 'connecting') fail(new UpstreamError('connect_failure', false, 'closed while connecting'));
      if (state !== 'connected') return;
      this.#upstreamClosed = true;
      if (!this.#clientClosed && !up.readableEnded) this.#client.destroy();
      this.#maybeFinish();
    });
    up.once('connect', () => {
      if (state !== 'connecting') return;
      if (this.#aborted || this.#clientClosed) return fail(new UpstreamError('connect_failure', false, 'client gone'));
      clearTimeout(this.#connectTimer);
      state = 'connected';
      this.#connected = true;
      this.#splice(up);
    });
  }


  #splice(up: Socket): void {
    const client = this.#client;
    up.setNoDelay(true);
    client.setNoDelay(true);
    const idle = this.#ctx.idleTimeoutMs;
    if (idle > 0) {
      // A socket's timer restarts on reads and writes, so traffic either way keeps both alive.
      const onIdle = () => this.abort('idle_timeout');
      client.setTimeout(idle, onIdle);
      up.setTimeout(idle, onIdle);
    }
    // pipe() ends the destination when the source ends: a FIN is passed on, and with
    // allowHalfOpen the other direction keeps flowing until its own FIN.
    pipeForTurn(client, up);
    pipeForTurn(up, client);
    client.on('close', () => {
      if (!this.#upstreamClosed && !client.readableEnded) up.destroy();
    });
  }

  /** An error on one side: the other side is reset, so the peer sees what happened. */
  #sideFailed(side: 'client' | 'upstream', err: NodeJS.ErrnoException): void {
    if (side === 'client') {
      this.#error ??= err.code === 'ECONNRESET' || err.code === 'EPIPE' ? 'client_reset' : `client_error: ${err.code ?? err.message}`;
      const up = this.#upstream;
      if (up && this.#connected && !up.destroyed) up.resetAndDestroy();
    } else {
      this.#error ??= err.code === 'ECONNRESET' || err.code === 'EPIPE' ? 'upstream_reset' : `upstream_error: ${err.code ?? err.message}`;
      if (!this.#client.destroyed) this.#client.resetAndDestroy();
    }
  }

  #endHost(outcome: Outcome): void {
    if (!this.#inTry) return;
    this.#inTry = false;
    this.#lc?.endTry(outcome);
  }

  #maybeFinish(): void {
    if (this.#done || !this.#clientClosed || !(this.#upstreamClosed || this.#upstream === undefined)) return;
    this.#done = true;
    clearTimeout(this.#connectTimer);
    const now = this.#ctx.clock.nowMs();
    clearTimeout(this.#backoffTimer);
    if (this.#inTry) {
      const latencyMs = now - this.#hostStartMs;
      this.#endHost(this.#error?.startsWith('upstream_') ? { error: 'reset', latencyMs } : { latencyMs });
    }
    this.#lc?.end();
    this.#onDone();
    try {
      this.#ctx.onConnection?.({
        listener: this.#ctx.listener,
        client: this.#clientLabel,
        endpoint: this.#endpoint,
        attempts: this.#lc?.attempt ?? 0,
        bytesIn: this.#client.bytesRead,
        bytesOut: this.#client.bytesWritten,
        durationMs: now - this.#startMs,
        ...(this.#error === undefined ? {} : { error: this.#error }),
      });
    } catch (err) {
      this.#ctx.log?.warn({ listener: this.#ctx.listener, err: (err as Error).message }, 'tcp: onConnection callback threw');
    }
  }

}


