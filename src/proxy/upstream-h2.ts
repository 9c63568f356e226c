import { connect as h2connect, constants as h2, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { ResponseHandler, TryControl, UpstreamRequest } from '../http1/upstream-client.js';
import type { HeaderValue } from '../http1/request-writer.js';
import { parseHostPort } from '../shared/address.js';
import { classifyUpstreamError, UpstreamError } from './errors.js';
import type { UpstreamPools } from './upstream-pool.js';
import { rememberSessions, surfaceTlsErrors, upstreamTlsOptions, type ClusterTls } from './upstream-tls.js';

/** A request whose fields are an object: an HTTP/2 header block is made of one (the HTTP/1.1 text form cannot be). */
export type ObjectRequest = UpstreamRequest & { readonly headers: Readonly<Record<string, HeaderValue>> };

export interface H2PoolOptions {
  /** Sessions open at once to one endpoint (circuit_breaker.max_connections). */
  readonly maxConnections: number;
  readonly connectTimeoutMs: number;
  /** A session with no stream for this long is closed. */
  readonly idleTimeoutMs: number;
  readonly tls: ClusterTls | undefined;
  /** auto: an endpoint that picks http/1.1 by ALPN is served by the HTTP/1.1 pools from then on. */
  readonly protocol: 'h2' | 'auto';
}

/** A request waiting for a stream; its handler is the engine's (forward.ts's UpstreamAttempt drives both clients). */
interface Queued {
  readonly req: ObjectRequest;
  readonly handler: ResponseHandler;
}

/** One HTTP/2 session to an endpoint, and what its peer allows. */
interface Conn {
  readonly session: ClientHttp2Session;
  /** Streams open (counted from request() to the stream's close). */
  active: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS; 0 until the peer's first SETTINGS (no stream before it). */
  max: number;
  /** GOAWAY received (or sent): no new streams. */
  closing: boolean;
  /** GOAWAY's last stream id: streams above it were never processed. */
  lastStreamId: number;
  idle: NodeJS.Timeout | undefined;
}

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM } = h2;
const NO_GOAWAY = 2 ** 31;
const NONE: readonly string[] = [];
/** Response headers gRPC puts in trailers: moved there when a backend answers trailers-only. */
const GRPC_STATUS_HEADERS = new Set(['grpc-status', 'grpc-message', 'grpc-status-details-bin']);

/**
 * A cluster's HTTP/2 connections: one EndpointH2 per endpoint, keyed by address, kept
 * and retired like the HTTP/1.1 pools (upstream-pool.ts).
 */
export class UpstreamH2Pools {
  readonly options: H2PoolOptions;
  /** The cluster's HTTP/1.1 pools, for `auto` endpoints that chose HTTP/1.1. */
  readonly #http1: UpstreamPools;
  readonly #pools = new Map<string, EndpointH2>();

  constructor(options: H2PoolOptions, http1: UpstreamPools) {
    this.options = options;
    this.#http1 = http1;
  }

  sameOptions(o: H2PoolOptions): boolean {
    const p = this.options;
    const sameTls = p.tls === undefined ? o.tls === undefined : p.tls.same(o.tls);
    return p.maxConnections === o.maxConnections && p.connectTimeoutMs === o.connectTimeoutMs && p.idleTimeoutMs === o.idleTimeoutMs && p.protocol === o.protocol && sameTls;
  }

  pool(address: string): EndpointH2 {
    let pool = this.#pools.get(address);
    if (pool === undefined) {
      pool = new EndpointH2(address, this.options, this.#http1);
      this.#pools.set(address, pool);
    }
    return pool;
  }

  /** Close the sessions of endpoints no longer configured, once their streams complete. */
  retain(addresses: ReadonlySet<string>): void {
    for (const [address, pool] of this.#pools) {
      if (!addresses.has(address)) {
        this.#pools.delete(address);
        void pool.close();
      }
    }
  }

  closeWhenIdle(): void {
    this.retain(new Set());
  }

  close(): void {
    for (const pool of this.#pools.values()) pool.destroy();
    this.#pools.clear();
  }
}

/**
 * HTTP/2 to one endpoint on Node's http2 client: sessions opened as needed (up to
 * maxConnections), each carrying as many streams at once as the peer's
 * SETTINGS_MAX_CONCURRENT_STREAMS allows; requests beyond that wait here for a stream.
 *
 * h2c (prior knowledge) without TLS; with TLS, ALPN offers h2 (and http/1.1 for `auto`).
 * GOAWAY stops new streams on its session (another is opened); a stream the upstream did
 * not process (REFUSED_STREAM, or above GOAWAY's last stream id) fails as a connect
 * failure, which any request may retry: nothing reached the application. Any other reset
 * is upstream_reset. Trailers pass through; bodies stream both ways with backpressure.
 */
export class EndpointH2 {
  readonly #address: string;
  readonly #authority: string;
  readonly #options: H2PoolOptions;
  readonly #http1: UpstreamPools;
  readonly #scheme: 'http' | 'https';
  readonly #conns: Conn[] = [];
  #queue: Queued[] = [];
  /** An `auto` endpoint that chose HTTP/1.1 by ALPN: every request goes to the HTTP/1.1 pool. */
  #http1Only = false;
  #connecting = false;
  #closed = false;
  /** The TLS version the latest session negotiated; undefined for h2c. */
  tlsVersion: string | undefined;

  constructor(address: string, options: H2PoolOptions, http1: UpstreamPools) {
    this.#address = address;
    this.#authority = address;
    this.#options = options;
    this.#http1 = http1;
    this.#scheme = upstreamTlsOptions(options.tls, address) === undefined ? 'http' : 'https';
    // ALPN needs TLS: `auto` speaks HTTP/1.1 to a plaintext endpoint (Envoy's auto_config does the same).
    this.#http1Only = options.protocol === 'auto' && this.#scheme === 'http';
  }

  /** The protocol requests go out in now: `h2`, or `http1` for an `auto` endpoint that chose it. */
  get protocol(): 'h2' | 'http1' {
    return this.#http1Only ? 'http1' : 'h2';
  }

  dispatch(req: ObjectRequest, handler: ResponseHandler): void {
    if (this.#http1Only) return this.#http1.dispatch(this.#address, req, handler);
    this.#queue.push({ req, handler });
    this.#drain();
  }

  /** Withdraw a request still waiting for a stream (as EndpointPool.cancel does for a connection). */
  cancel(handler: ResponseHandler, err: Error): boolean {
    const i = this.#queue.findIndex((q) => q.handler === handler);
    if (i === -1) return this.#http1.cancel(this.#address, handler, err);
    this.#queue.splice(i, 1);
    handler.onError(err);
    return true;
  }

  /** Retire: no new streams; sessions close once their streams complete. */
  close(): Promise<void> {
    this.#closed = true;
    for (const c of this.#conns) c.session.close();
    return Promise.resolve();
  }

  destroy(): void {
    this.#closed = true;
    for (const c of this.#conns) c.session.destroy();
  }

  /** Start what waits on sessions with a free stream; open a session when none has one. */
  #drain(): void {
    while (this.#queue.length > 0) {
      const conn = this.#conns.find((c) => !c.closing && c.active < c.max);
      if (conn === undefined) break;
      this.#start(conn, this.#queue.shift() as Queued);
    }
    if (this.#queue.length === 0 || this.#connecting || this.#closed) return;
    if (this.#conns.filter((c) => !c.closing).length < this.#options.maxConnections) this.#open();
  }

  #open(): void {
    this.#connecting = true;
    const hp = parseHostPort(this.#address);
    const { host, port } = typeof hp === 'string' ? { host: '', port: 0 } : hp;
    const tls = upstreamTlsOptions(this.#options.tls, this.#address);
    let socket: Socket;
    const timer = setTimeout(() => socket.destroy(new UpstreamError('connect_failure', false, `connect timeout: no HTTP/2 session within ${this.#options.connectTimeoutMs} ms`)), this.#options.connectTimeoutMs);
    const failed = (err: Error) => {
      clearTimeout(timer);
      this.#connecting = false;
      this.#failQueue(err instanceof UpstreamError ? err : classifyUpstreamError(err, false));
    };
    if (tls === undefined) {
      socket = netConnect({ host, port });
      socket.once('error', failed);
      socket.once('connect', () => {
        socket.off('error', failed);
        this.#session(socket, timer);
      });
      return;
    }
    const alpn = this.#options.protocol === 'auto' ? ['h2', 'http/1.1'] : ['h2'];
    const secure: TLSSocket = tlsConnect({ host, port, ...tls, ALPNProtocols: alpn });
    socket = secure;
    rememberSessions(this.#options.tls, this.#address, secure);
    surfaceTlsErrors(secure);
    secure.once('error', failed);
    secure.once('secureConnect', () => {
      secure.off('error', failed);
      this.tlsVersion = secure.getProtocol() ?? undefined;
      if (secure.alpnProtocol === 'h2') return this.#session(secure, timer);
      clearTimeout(timer);
      this.#connecting = false;
      secure.destroy();
      if (this.#options.protocol === 'auto') {
        this.#http1Only = true;
        const queued = this.#queue;
        this.#queue = [];
        for (const q of queued) this.#http1.dispatch(this.#address, q.req, q.handler);
        return;
      }
      this.#failQueue(new UpstreamError('connect_failure', false, `the upstream did not agree to HTTP/2 by ALPN (it chose ${String(secure.alpnProtocol || 'nothing')})`));
    });
  }

  /** An HTTP/2 session over a connected socket; usable once the peer's SETTINGS arrive. */
  #session(socket: Socket, timer: NodeJS.Timeout): void {
    const session = h2connect(`${this.#scheme}://${this.#authority}`, { createConnection: () => socket, settings: { enablePush: false } });
    const conn: Conn = { session, active: 0, max: 0, closing: false, lastStreamId: NO_GOAWAY, idle: undefined };
    this.#conns.push(conn);
    session.on('remoteSettings', (s) => {
      if (conn.max === 0) {
        clearTimeout(timer);
        this.#connecting = false;
        this.#armIdle(conn);
      }
      conn.max = s.maxConcurrentStreams ?? 100;
      this.#drain();
    });
    session.on('goaway', (_code: number, lastStreamId: number) => {
      conn.closing = true;
      conn.lastStreamId = lastStreamId;
      this.#drain();
    });
    session.on('error', (err: Error) => {
      if (conn.max === 0) {
        clearTimeout(timer);
        this.#connecting = false;
        this.#failQueue(classifyUpstreamError(err, false));
      }
    });
    session.once('close', () => {
      clearTimeout(timer);
      clearTimeout(conn.idle);
      const i = this.#conns.indexOf(conn);
      if (i >= 0) this.#conns.splice(i, 1);
      if (conn.max === 0) {
        this.#connecting = false;
        this.#failQueue(new UpstreamError('connect_failure', false, 'the upstream closed the connection before its HTTP/2 SETTINGS'));
      }
      this.#drain();
    });
  }

  #failQueue(err: UpstreamError): void {
    const queued = this.#queue;
    this.#queue = [];
    for (const q of queued) q.handler.onError(err);
  }

  #armIdle(conn: Conn): void {
    clearTimeout(conn.idle);
    conn.idle = setTimeout(() => {
      if (conn.active === 0) conn.session.close();
    }, this.#options.idleTimeoutMs);
    conn.idle.unref();
  }

  #start(conn: Conn, q: Queued): void {
    const { req, handler } = q;
    const body: Buffer | Readable | null = req.body;
    const headers = req.headers as OutgoingHttpHeaders;
    // Reused as the request's HTTP/2 header block: it was built for this try alone.
    headers[':method'] = req.method;
    headers[':path'] = req.path;
    headers[':scheme'] = this.#scheme;
    headers[':authority'] = (headers['host'] as string | undefined) ?? this.#authority;
    delete headers['host'];
    let stream: ClientHttp2Stream;
    try {
      stream = conn.session.request(headers, { endStream: body === null });
    } catch (e) {
      // The session closed (GOAWAY) between the pick and now: wait for another.
      if ((e as NodeJS.ErrnoException).code === 'ERR_HTTP2_GOAWAY_SESSION' || (e as NodeJS.ErrnoException).code === 'ERR_HTTP2_INVALID_SESSION') {
        conn.closing = true;
        this.#queue.unshift(q);
        return this.#drain();
      }
      return handler.onError(e as Error);
    }
    conn.active++;
    clearTimeout(conn.idle);
    let done = false;
    let responded = false;
    let trailers: readonly string[] = NONE;
    let streamError: Error | undefined;
    const finish = (): boolean => {
      if (done) return false;
      done = true;
      return true;
    };
    const control: TryControl = {
      abort: (err) => {
        if (!finish()) return;
        handler.onError(err);
        if (!stream.closed) stream.close(NGHTTP2_CANCEL);
      },
      resume: () => stream.resume(),
    };
    handler.onConnect(control);
    if (done) return;
    stream.on('response', (h: IncomingHttpHeaders, flags: number) => {
      if (done) return;
      responded = true;
      const status = Number(h[':status']);
      // A trailers-only answer (gRPC errors): its status goes on as trailers, the form every client reads.
      const endStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
      const moved: string[] = [];
      const raw = rawHeaders(h, endStream ? moved : undefined);
      if (!handler.onHeaders(status, raw, '')) return control.abort(new Error('response refused by the handler'));
      if (endStream && finish()) handler.onComplete(moved);
    });
    stream.on('data', (chunk: Buffer) => {
      if (!done && handler.onData(chunk, false) === false) stream.pause();
    });
    stream.on('trailers', (h: IncomingHttpHeaders) => {
      trailers = rawHeaders(h, undefined);
    });
    stream.on('end', () => {
      if (responded && finish()) handler.onComplete(trailers);
    });
    stream.on('error', (err: Error) => (streamError = err));
    stream.once('close', () => {
      conn.active--;
      if (conn.active === 0 && !conn.closing) this.#armIdle(conn);
      this.#drain();
      if (!finish()) return;
      const code = stream.rstCode ?? 0;
      const id = stream.id ?? NO_GOAWAY;
      if (!responded && (code === NGHTTP2_REFUSED_STREAM || id > conn.lastStreamId)) {
        const why = code === NGHTTP2_REFUSED_STREAM ? 'refused the stream (REFUSED_STREAM)' : `sent GOAWAY below this stream (last processed ${conn.lastStreamId})`;
        return handler.onError(new UpstreamError('connect_failure', false, `http2: the upstream ${why}: not processed`));
      }
      if (streamError !== undefined && (streamError as NodeJS.ErrnoException).code !== 'ERR_HTTP2_STREAM_ERROR') return handler.onError(classifyUpstreamError(streamError));
      handler.onError(new UpstreamError('upstream_reset', true, `http2: the upstream reset the stream (code ${code})`));
    });
    if (body === null) return;
    if (Buffer.isBuffer(body)) {
      stream.end(body);
      return;
    }
    body.pipe(stream);
    stream.once('close', () => body.unpipe(stream));
  }
}

/** Node's header object as the engine's raw [name, value, ...] list, pseudo-headers dropped; `moveGrpc` takes grpc-status and its kin. */
function rawHeaders(h: IncomingHttpHeaders, moveGrpc: string[] | undefined): string[] {
  const out: string[] = [];
  for (const name in h) {
    if (name.charCodeAt(0) === 58) continue;
    const value = h[name];
    if (value === undefined) continue;
    const target = moveGrpc !== undefined && GRPC_STATUS_HEADERS.has(name) ? moveGrpc : out;
    if (Array.isArray(value)) for (const v of value) target.push(name, v);
    else target.push(name, String(value));
  }
  return out;
}
