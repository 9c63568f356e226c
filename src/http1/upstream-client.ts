import { connect as netConnect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { BodyDecoder, Framing, type BodySink } from './body-decoder.js';
import { FAILED, HeadParser, NEED_MORE, type MessageHead } from './head-parser.js';
import { BodyMode, declaredLength, requestHead, type HeaderValue, type RequestFields } from './request-writer.js';
import { corkForTurn } from './turn-writes.js';
import { keepRead, READ_BUFFER } from './read-buffer.js';
import { handleRead, nowMs } from './read-time.js';

/*
 * Meridian's HTTP/1.1 client for upstreams: keep-alive connections per endpoint, one
 * request at a time on each (no pipelining), written with one corked write, the response
 * parsed by head-parser.ts and body-decoder.ts straight off the socket's reads.
 * Hand-written for the same reason as the parser: it replaces undici on the hot path,
 * where undici's generality (its request queue, its handler wrapping, its own timers)
 * cost more per request than this whole file does.
 */

/** One request's answer, as the caller sees it: an object's methods, not closures per request. */
export interface ResponseHandler {
  /**
   * The request got a connection and is being written: `t.abort()` may be called from here
   * on (before, `EndpointPool.cancel`).
   */
  onConnect(t: TryControl): void;
  /**
   * The final response head (1xx interim responses are skipped). Return false to abort.
   * `raw` is [name, value, ...] as the upstream sent them.
   */
  onHeaders(status: number, raw: readonly string[], reason: string): boolean;
  /**
   * Body bytes; return false to stop reading until `t.resume()`. `view`: the buffer is a
   * view of the shared read buffer, valid only during this call (copy what is kept past it).
   */
  onData(chunk: Buffer, view: boolean): boolean;
  /** The response is complete. `trailers`: [name, value, ...], empty without any. */
  onComplete(trailers: readonly string[]): void;
  /** The try failed (or was aborted: the abort's own error). Nothing follows it. */
  onError(err: Error): void;
}

/** A try's handle once it is under way: this client's UpstreamTry, or an HTTP/2 stream's (src/proxy/upstream-h2.ts). */
export interface TryControl {
  abort(err: Error): void;
  resume(): void;
}

export interface UpstreamRequest {
  readonly method: string;
  readonly path: string;
  /** The header fields: an object, or (the proxy's fast path) RequestFields, already text. */
  readonly headers: Readonly<Record<string, HeaderValue>> | RequestFields;
  /** None, the whole body, or a stream (sent under the Content-Length `headers` declare if they do, else chunked). */
  readonly body: Buffer | Readable | null;
}

/** How a connection to an endpoint is opened: plain TCP, or TLS (issue 19 plugs its options in here). */
export interface Connector {
  /**
   * A socket connecting to `host:port`, and the event that says it is ready for bytes.
   * Given `onRead`, a connector that can (plain TCP) hands the socket's reads to it, in
   * READ_BUFFER, instead of emitting 'data' (`shared` says it did).
   */
  connect(host: string, port: number, onRead?: (n: number, buf: Buffer) => boolean): { readonly socket: Socket; readonly ready: 'connect' | 'secureConnect'; readonly shared?: boolean };
}

export const plainConnector: Connector = {
  connect: (host, port, onRead) => ({
    socket: netConnect(onRead === undefined ? { host, port, noDelay: true } : { host, port, noDelay: true, onread: { buffer: READ_BUFFER, callback: onRead } }),
    ready: 'connect',
    shared: onRead !== undefined,
  }),
};

/**
 * Connections over TLS with `options` (CA, SNI name, client certificate...: what upstream
 * TLS settles per endpoint). Ready once the handshake is done; a failed handshake before
 * it is a connect failure, like a refused connect (nothing reached the upstream).
 */
export function tlsConnector(options: ConnectionOptions): Connector {
  return {
    connect: (host, port) => {
      const socket = tlsConnect({ host, port, ...options });
      socket.setNoDelay(true);
      return { socket, ready: 'secureConnect' };
    },
  };
}

/** Why a try failed, in the terms of src/proxy/errors.ts's UpstreamError codes. */
export class UpstreamClientError extends Error {
  readonly code: 'connect_failure' | 'upstream_reset' | 'upstream_protocol_error';
  readonly connectTimeout: boolean;
  constructor(code: UpstreamClientError['code'], message: string, options?: { cause?: unknown; connectTimeout?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UpstreamClientError';
    this.code = code;
    this.connectTimeout = options?.connectTimeout ?? false;
  }
}

export interface EndpointPoolOptions {
  readonly host: string;
  readonly port: number;
  /** Connections open at once (circuit_breaker.max_connections); requests past it wait in order. */
  readonly maxConnections: number;
  /** An idle connection is closed after this long (sooner if the upstream's Keep-Alive says so). */
  readonly idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly connector: Connector;
}

/** Response heads from upstreams: generous (undici's default is 16 KiB), but bounded. */
const RESPONSE_LIMITS = { maxHeadBytes: 64 * 1024, maxFields: 512 } as const;
/** The Keep-Alive timeout an upstream announces, less this margin, bounds our idle time (undici uses 1 s too). */
const KEEP_ALIVE_MARGIN_MS = 1000;

const enum Conn {
  Connecting,
  Idle,
  Busy,
  Closed,
}

/**
 * One request in flight on one connection: the handle the caller aborts or resumes. A
 * connection reuses its one UpstreamTry object for each request it carries (a stale
 * handle from an earlier request is told apart by its generation).
 */
export class UpstreamTry implements TryControl {
  readonly #conn: UpstreamConnection;
  readonly #gen: number;
  constructor(conn: UpstreamConnection, gen: number) {
    this.#conn = conn;
    this.#gen = gen;
  }
  /** Stop the try: the connection is closed and `onError(err)` follows. */
  abort(err: Error): void {
    this.#conn.abort(this.#gen, err);
  }
  /** Read on after onData returned false. */
  resume(): void {
    this.#conn.resume(this.#gen);
  }
}

class UpstreamConnection implements BodySink {
  readonly #pool: EndpointPool;
  readonly socket: Socket;
  readonly #parser = new HeadParser(false, RESPONSE_LIMITS);
  readonly #decoder = new BodyDecoder(RESPONSE_LIMITS.maxHeadBytes);
  readonly fresh: boolean;
  #state = Conn.Connecting;
  #handler: ResponseHandler | undefined;
  #gen = 0;
  /** The response head has been handed on: the body follows. */
  #inBody = false;
  /** The request body (if a stream) has been written whole. */
  #requestDone = true;
  #headRequest = false;
  #closeAfter = false;
  #idleMs: number;
  #body: Readable | undefined;
  #paused = false;
  /** What was read but not yet decoded when the handler asked for a pause. */
  #held: Buffer | undefined;
  /** Reads arrive in READ_BUFFER: anything kept past the read is copied. */
  #shared = false;

  constructor(pool: EndpointPool, fresh: boolean) {
    this.#pool = pool;
    this.fresh = fresh;
    this.#idleMs = pool.options.idleTimeoutMs;
    const { socket, ready, shared } = pool.options.connector.connect(pool.options.host, pool.options.port, (n, buf) => {
      handleRead(this.#onData, this, buf.subarray(0, n));
      return true;
    });
    this.socket = socket;
    this.#shared = shared === true;
    socket.setTimeout(pool.options.connectTimeoutMs);
    socket.once(ready, () => this.#onConnected());
    socket.on('timeout', () => this.#onTimeout());
    if (!this.#shared) socket.on('data', (b: Buffer) => handleRead(this.#onData, this, b));
    socket.on('end', () => this.#onEnd());
    socket.on('error', (err: Error) => this.#fail(this.#state === Conn.Connecting ? new UpstreamClientError('connect_failure', err.message, { cause: err }) : this.#resetError(err)));
    socket.on('close', () => this.#onClose());
    socket.on('drain', () => this.#body?.resume());
  }

  #onConnected(): void {
    this.socket.setTimeout(0);
    if (this.#state !== Conn.Connecting) return;
    this.#state = Conn.Idle;
    this.idleUntil = nowMs() + this.#idleMs;
    this.#pool.connected(this);
  }

  #onTimeout(): void {
    if (this.#state !== Conn.Connecting) return;
    const cause = Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' });
    this.#fail(new UpstreamClientError('connect_failure', `connect timeout after ${this.#pool.options.connectTimeoutMs} ms`, { cause, connectTimeout: true }));
  }

  /**
   * When this idle connection is past its idle time (performance.now() ms): a field the
   * pool's sweep and its next dispatch read, not a timer set and cleared per request.
   */
  idleUntil = 0;

  /** Carry `req`; the connection is idle and connected. */
  send(req: UpstreamRequest, handler: ResponseHandler): void {
    this.#state = Conn.Busy;
    this.#gen++;
    this.#held = undefined;
    this.#handler = handler;
    this.#inBody = false;
    this.#paused = false;
    this.#headRequest = req.method === 'HEAD';
    this.#parser.reset();
    handler.onConnect(new UpstreamTry(this, this.#gen));
    if (this.#handler !== handler || this.#state !== Conn.Busy) return; // aborted from onConnect
    this.#write(req);
  }

  #write(req: UpstreamRequest): void {
    const socket = this.socket;
    corkForTurn(socket);
    const body = req.body;
    if (body === null) {
      this.#requestDone = true;
      socket.write(requestHead(req.method, req.path, req.headers, BodyMode.None, 0), 'latin1');
    } else if (Buffer.isBuffer(body)) {
      this.#requestDone = true;
      socket.cork();
      socket.write(requestHead(req.method, req.path, req.headers, BodyMode.Whole, body.length), 'latin1');
      if (body.length > 0) socket.write(body);
      socket.uncork();
    } else {
      const cl = declaredLength(req.headers);
      const mode = cl === undefined ? BodyMode.Chunked : BodyMode.Length;
      this.#requestDone = false;
      socket.write(requestHead(req.method, req.path, req.headers, mode, cl ?? 0), 'latin1');
      this.#streamBody(body, mode === BodyMode.Chunked);
    }
  }

  /** A streamed request body, with backpressure both ways; chunk-encoded when its length is unknown. */
  #streamBody(body: Readable, chunked: boolean): void {
    this.#body = body;
    const gen = this.#gen;
    const socket = this.socket;
    const onData = (chunk: Buffer) => {
      if (chunk.length === 0) return;
      corkForTurn(socket);
      let ok: boolean;
      if (chunked) {
        socket.cork();
        socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        socket.write(chunk);
        ok = socket.write('\r\n', 'latin1');
        socket.uncork();
      } else ok = socket.write(chunk);
      if (!ok) body.pause();
    };
    const onEnd = () => {
      off();
      if (this.#gen !== gen || this.#state !== Conn.Busy) return;
      if (chunked) {
        corkForTurn(socket);
        socket.write('0\r\n\r\n', 'latin1');
      }
      this.#requestDone = true;
      this.#body = undefined;
    };
    const onClose = () => {
      off();
      // The body stream was destroyed before its end (the exchange gave up on it): the request cannot complete.
      if (this.#gen === gen && this.#state === Conn.Busy && !this.#requestDone) this.abort(gen, new Error('the request body ended early'));
    };
    const off = () => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('close', onClose);
    };
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('close', onClose);
  }

  abort(gen: number, err: Error): void {
    if (gen !== this.#gen || this.#state !== Conn.Busy) return;
    const handler = this.#handler as ResponseHandler;
    this.#handler = undefined;
    this.#detachBody();
    this.#close();
    handler.onError(err);
  }

  resume(gen: number): void {
    if (gen !== this.#gen || !this.#paused) return;
    this.#paused = false;
    const held = this.#held;
    this.#held = undefined;
    if (held !== undefined) this.#onData(held);
    if (!this.#paused) this.socket.resume();
  }

  #onData(b: Buffer): void {
    if (this.#state !== Conn.Busy) {
      // Bytes nobody asked for (pipelining is off): the connection's framing is unknown.
      this.destroy();
      return;
    }
    if (this.#paused) {
      this.#held = this.#held === undefined ? this.#keep(b) : Buffer.concat([this.#held, b]);
      return;
    }
    let off = 0;
    while (off < b.length && this.#state === Conn.Busy) {
      if (!this.#inBody) {
        const end = this.#parser.execute(b, off);
        if (end === NEED_MORE) return;
        if (end === FAILED) return this.#fail(new UpstreamClientError('upstream_protocol_error', `malformed response head (${this.#parser.error ?? 'bad_request'})`));
        off = end;
        if (!this.#onHead(this.#parser.head)) return;
        continue;
      }
      const end = this.#decoder.execute(b, off, this);
      if (this.#state !== Conn.Busy) return; // aborted from onData
      if (end === FAILED) return this.#fail(new UpstreamClientError('upstream_protocol_error', 'malformed response body framing'));
      if (end === NEED_MORE) return;
      if (!this.#decoder.done) {
        this.#held = end < b.length ? this.#keep(b.subarray(end)) : undefined;
        return;
      }
      if (end < b.length) this.#closeAfter = true; // bytes past the response: framing unknown
      this.#complete();
      return;
    }
  }

  /** A response head arrived; false when nothing more of this read is for this response. */
  #onHead(head: MessageHead): boolean {
    const status = head.status;
    if (status < 200) {
      // 101 to a request that asked no upgrade (the pool sends none) breaks the exchange.
      if (status === 101) {
        this.#fail(new UpstreamClientError('upstream_protocol_error', 'a 101 response to a request that asked no upgrade'));
        return false;
      }
      this.#parser.reset();
      return true;
    }
    let framing: Framing;
    if (this.#headRequest || status === 204 || status === 304) framing = Framing.None;
    else if (head.transferEncoding) {
      // Anything but chunked last is refused (HAProxy would read to the close): reject, never guess.
      if (!head.chunked || head.otherCoding) {
        this.#fail(new UpstreamClientError('upstream_protocol_error', 'a response transfer coding other than chunked'));
        return false;
      }
      framing = Framing.Chunked;
    } else if (head.contentLength >= 0) framing = Framing.Length;
    else framing = Framing.UntilClose;
    this.#closeAfter = head.close || framing === Framing.UntilClose;
    if (head.keepAliveTimeoutS >= 0) {
      const ms = head.keepAliveTimeoutS * 1000 - KEEP_ALIVE_MARGIN_MS;
      if (ms <= 0) this.#closeAfter = true;
      else if (ms < this.#idleMs) this.#idleMs = ms;
    }
    this.#decoder.start(framing, head.contentLength);
    this.#inBody = true;
    const handler = this.#handler as ResponseHandler;
    if (!handler.onHeaders(status, head.raw, head.reason)) {
      this.abort(this.#gen, new Error('response refused by the handler'));
      return false;
    }
    if (this.#state !== Conn.Busy) return false;
    if (this.#decoder.done) {
      this.#complete();
      return false;
    }
    return true;
  }

  #keep(b: Buffer): Buffer {
    return keepRead(b, this.#shared);
  }

  onBody(chunk: Buffer): boolean {
    const handler = this.#handler;
    if (handler === undefined) return false;
    // Not copied here: the proxy's answer copies it into its own write anyway (head and body in one buffer).
    if (handler.onData(chunk, this.#shared)) return true;
    if (!this.#paused) {
      this.#paused = true;
      this.socket.pause();
    }
    return false;
  }

  #complete(): void {
    const handler = this.#handler as ResponseHandler;
    const trailers = this.#decoder.trailers;
    this.#handler = undefined;
    // A response that came before its request body went out whole leaves the connection mid-request.
    const reusable = !this.#closeAfter && this.#requestDone && !this.fresh;
    if (this.#paused) {
      this.#paused = false;
      this.socket.resume();
    }
    this.#detachBody();
    if (reusable) {
      this.#state = Conn.Idle;
      this.idleUntil = nowMs() + this.#idleMs;
    } else this.#close();
    handler.onComplete(trailers);
    if (reusable && this.#state === Conn.Idle) this.#pool.released(this);
  }

  #onEnd(): void {
    if (this.#state === Conn.Busy && this.#inBody && this.#decoder.framing === Framing.UntilClose) return this.#complete();
    if (this.#state === Conn.Busy) return this.#fail(new UpstreamClientError('upstream_reset', 'the upstream closed the connection'));
    this.destroy();
  }

  #onClose(): void {
    if (this.#state === Conn.Busy || this.#state === Conn.Connecting) {
      this.#fail(this.#state === Conn.Connecting ? new UpstreamClientError('connect_failure', 'the connection closed while connecting') : new UpstreamClientError('upstream_reset', 'the upstream connection closed'));
    }
    this.#state = Conn.Closed;
    this.#pool.closed(this);
  }

  #resetError(err: Error): UpstreamClientError {
    return new UpstreamClientError('upstream_reset', err.message, { cause: err });
  }

  /** The try in flight (or the connect it waits on) failed: tell its handler, close the connection. */
  #fail(err: UpstreamClientError): void {
    const connecting = this.#state === Conn.Connecting;
    const handler = this.#handler;
    this.#handler = undefined;
    this.#detachBody();
    if (connecting) this.#pool.connectFailed(this, err);
    this.#close();
    if (handler !== undefined) handler.onError(err);
  }

  /** Closed for good, and out of the pool at once (not at the socket's 'close', a turn later). */
  #close(): void {
    this.#state = Conn.Closed;
    this.socket.destroy();
    this.#pool.closed(this);
  }

  #detachBody(): void {
    this.#body = undefined;
  }

  destroy(): void {
    if (this.#state === Conn.Busy) return this.#fail(new UpstreamClientError('upstream_reset', 'the connection was closed'));
    this.#close();
  }

  get idle(): boolean {
    return this.#state === Conn.Idle;
  }
}

interface Waiting {
  readonly req: UpstreamRequest;
  readonly handler: ResponseHandler;
}

/**
 * An endpoint's keep-alive connections. Idle ones are reused most recently used first
 * (the others age out by the idle timeout); at `maxConnections`, requests wait in order
 * for the next free one. A connection's connect is tied to the request that opened it:
 * a refused connect fails that request, not the queue.
 */
export class EndpointPool {
  readonly options: EndpointPoolOptions;
  readonly #idle: UpstreamConnection[] = [];
  readonly #all = new Set<UpstreamConnection>();
  /** For each connection being opened, the request it was opened for. */
  readonly #opening = new Map<UpstreamConnection, Waiting>();
  readonly #queue: Waiting[] = [];
  /** Connections counted against maxConnections (fresh ones are not). */
  #pooled = 0;
  #closing = false;
  #sweep: NodeJS.Timeout | undefined;

  constructor(options: EndpointPoolOptions) {
    this.options = options;
  }

  /** Send `req` on an idle connection, a new one, or (at the cap) the next to free; `fresh`: on a connection of its own, closed after. */
  dispatch(req: UpstreamRequest, handler: ResponseHandler, fresh = false): void {
    if (!fresh) {
      let conn = this.#idle.pop();
      // One past its idle time is not reused, however late the sweep: the upstream may be closing it.
      if (conn !== undefined) {
        const now = nowMs();
        for (; conn !== undefined && now >= conn.idleUntil; conn = this.#idle.pop()) conn.destroy();
      }
      if (conn !== undefined) return conn.send(req, handler);
      if (this.#pooled >= this.options.maxConnections) {
        this.#queue.push({ req, handler });
        return;
      }
    }
    this.#open({ req, handler }, fresh);
  }

  #open(w: Waiting, fresh: boolean): void {
    const conn = new UpstreamConnection(this, fresh);
    if (!fresh) this.#pooled++;
    this.#all.add(conn);
    this.#opening.set(conn, w);
  }

  connected(conn: UpstreamConnection): void {
    const w = this.#opening.get(conn);
    this.#opening.delete(conn);
    if (w !== undefined) conn.send(w.req, w.handler);
    else this.released(conn);
  }

  /**
   * Withdraw a request that has no connection yet (it waits at the cap, or for its
   * connection to open): `onError(err)` at once, so a per-try timeout or a client that left
   * ends it now rather than when a connection frees. A connection opened for it goes to the
   * next request. False if the request already has its connection (abort that instead).
   */
  cancel(handler: ResponseHandler, err: Error): boolean {
    const i = this.#queue.findIndex((w) => w.handler === handler);
    if (i !== -1) this.#queue.splice(i, 1);
    else {
      let opening: UpstreamConnection | undefined;
      for (const [conn, w] of this.#opening) if (w.handler === handler) opening = conn;
      if (opening === undefined) return false;
      this.#opening.delete(opening);
    }
    handler.onError(err);
    return true;
  }

  connectFailed(conn: UpstreamConnection, err: Error): void {
    const w = this.#opening.get(conn);
    this.#opening.delete(conn);
    w?.handler.onError(err);
  }

  /** A connection finished its request and may carry another. */
  released(conn: UpstreamConnection): void {
    const next = this.#queue.shift();
    if (next !== undefined) return conn.send(next.req, next.handler);
    if (this.#closing) return conn.destroy();
    this.#idle.push(conn);
    if (this.#sweep === undefined) this.#startSweep();
  }

  /**
   * Idle connections are retired by one sweep per pool while any are idle, a few times per
   * idle timeout (so at most a quarter of it, and a second, late), rather than by a socket
   * timer armed and cleared around every request; dispatch never reuses one past its time.
   */
  #startSweep(): void {
    const every = Math.max(50, Math.min(1000, Math.floor(this.options.idleTimeoutMs / 4)));
    this.#sweep = setInterval(() => {
      const now = performance.now();
      for (const c of [...this.#idle]) if (now >= c.idleUntil) c.destroy();
      if (this.#idle.length === 0) this.#stopSweep();
    }, every);
    this.#sweep.unref();
  }

  #stopSweep(): void {
    clearInterval(this.#sweep);
    this.#sweep = undefined;
  }

  closed(conn: UpstreamConnection): void {
    if (!this.#all.delete(conn)) return;
    if (!conn.fresh) this.#pooled--;
    const i = this.#idle.indexOf(conn);
    if (i !== -1) this.#idle.splice(i, 1);
    const w = this.#opening.get(conn);
    if (w !== undefined) {
      this.#opening.delete(conn);
      w.handler.onError(new UpstreamClientError('connect_failure', 'the connection closed while connecting'));
    }
    // A slot freed: the first waiting request gets a connection of its own.
    if (!conn.fresh) {
      const next = this.#queue.shift();
      if (next !== undefined) this.#open(next, false);
    }
  }

  get stats(): { open: number; idle: number; pending: number } {
    return { open: this.#all.size, idle: this.#idle.length, pending: this.#queue.length };
  }

  /** Close idle connections now, the others when their request completes; queued requests still go. */
  closeWhenIdle(): void {
    this.#closing = true;
    this.#stopSweep();
    for (const c of this.#idle.splice(0)) c.destroy();
  }

  /** Close everything now; requests in flight fail. */
  destroy(): void {
    this.#closing = true;
    this.#stopSweep();
    for (const w of this.#queue.splice(0)) w.handler.onError(new UpstreamClientError('upstream_reset', 'the pool was closed'));
    for (const c of [...this.#all]) c.destroy();
  }
}
