import { type IncomingMessage, type Server as Http1Server, type ServerResponse } from 'node:http';
import {
  constants as h2,
  createSecureServer,
  createServer as createH2cServer,
  type Http2SecureServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Server as TlsServer, type TLSSocket } from 'node:tls';
import type { HttpListenerConfig } from '../config/index.js';
import { Http1Server as Http1Engine } from '../http1/server.js';
import { requestLineValid, unwatchRequestLines, watchRequestLines } from './request-lines.js';
import { clientAllowed, type SniCertificates } from './tls.js';

export type AnyServerRequest = IncomingMessage | Http2ServerRequest;
export type AnyServerResponse = ServerResponse | Http2ServerResponse;

/** What a listener's server calls. HTTP/1.1 exchanges get node:http objects, HTTP/2 ones the compat API's. */
export interface ServerHandlers {
  /** A request; `expectContinue` when it asked `Expect: 100-continue` (answer with res.writeContinue()). */
  request(req: AnyServerRequest, res: AnyServerResponse, expectContinue: boolean): void;
  /** HTTP/1.1 Upgrade (WebSocket). Absent: Node answers upgrades as ordinary requests. */
  upgrade?(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** A malformed HTTP/1.1 request or header timeout (the socket is still open: answer and close). */
  clientError(err: NodeJS.ErrnoException, socket: Duplex): void;
  /** A client reset streams faster than http2.max_resets_per_second; its session was closed. */
  rapidReset?(remoteAddress: string | undefined): void;
  /**
   * An HTTP/2 session or stream failed (a protocol error, a reset with an error code, a
   * socket error). Node has already torn it down; this is for the log and the metrics.
   */
  error?(component: 'http2_session' | 'http2_stream', err: Error): void;
  /** A client whose verified certificate names none of `tls.client_names`: its connection was closed. */
  clientRefused?(remoteAddress: string | undefined): void;
}

export interface ListenerServer {
  /**
   * The listening socket (not yet listening: the caller calls listen()): a plain
   * net.Server that admits each connection and hands it to the protocol server.
   */
  readonly server: NetServer;
  /**
   * The node server that speaks the protocol, where one does: node:http2 (for h2c, the
   * HTTP/2 one), or the TLS server in front of Meridian's HTTP/1.1 engine; none for
   * plain HTTP/1.1.
   */
  readonly protocol: Http2SecureServer | Http2Server | TlsServer | undefined;
  /** HTTP/2: close sessions with no open stream; HTTP/1.1: close keep-alive connections between requests. */
  closeIdle(): void;
  /** Cut every connection the listener accepted, now, whatever state it is in (upgraded, half-closed, mid-handshake). */
  closeAll(): void;
  /** HTTP/2: graceful GOAWAY on every session (streams in flight finish, no new ones); used at drain. */
  goaway(): void;
  /** New HTTP/1.1 header and keep-alive timeouts (a reload), in force at once. */
  setHttp1Timeouts(requestHeadersMs: number, idleMs: number): void;
}

/**
 * The server for one http/https listener, configured from its limits, timeouts and
 * http2 block:
 *
 * | protocol | http2.enabled | server                                                        |
 * |----------|---------------|---------------------------------------------------------------|
 * | http     | false         | node:http                                                     |
 * | http     | true          | h2c (prior knowledge) and HTTP/1.1 on one port, by preface    |
 * | https    | true          | node:http2 secure, ALPN h2 + http/1.1 (HTTP/1.1 clients served)|
 * | https    | false         | node:https                                                    |
 *
 * HTTP/2 sessions get: SETTINGS_MAX_CONCURRENT_STREAMS and SETTINGS_MAX_HEADER_LIST_SIZE
 * from the config; an idle timeout (no open stream for timeouts.idle closes the session
 * with GOAWAY); rapid-reset protection (CVE-2023-44487): more than
 * http2.max_resets_per_second streams reset by the client within one second, before
 * their response finished, closes the session with GOAWAY(ENHANCE_YOUR_CALM). Errors on
 * sessions and streams go to `handlers.error` (Node has closed them already); the request
 * handlers see closed responses.
 *
 * Every connection passes `admit` first (the connection limits: false means it was
 * closed), before the protocol server (TLS included) sees a byte of it.
 */
export function createHttpServer(l: HttpListenerConfig, handlers: ServerHandlers, certs?: SniCertificates, admit: (socket: Socket) => boolean = () => true): ListenerServer {
  if (l.protocol === 'https' && certs === undefined) throw new Error(`listener ${l.name}: an https listener needs certificates`);
  if (!l.http2.enabled) {
    const engine = http1Engine(l, handlers);
    let tlsServer: TlsServer | undefined;
    let front: Front;
    if (l.protocol === 'https' && certs) {
      const secure = new TlsServer({ ...tlsOptions(l, certs), ALPNProtocols: ['http/1.1'] });
      watchCertificates(secure, certs);
      guardClientNames(secure, l, handlers);
      // A handshake that fails is the client's problem, not the server's: the socket is already gone.
      secure.on('tlsClientError', () => {});
      secure.on('secureConnection', (socket: TLSSocket) => {
        if (!socket.destroyed) engine.connection(socket);
      });
      tlsServer = secure;
      front = frontFor([secure], HTTP1_ACCEPT, admit, (socket) => secure.emit('connection', socket));
    } else {
      front = frontFor([], HTTP1_ACCEPT, admit, (socket) => engine.connection(socket));
    }
    return {
      server: front.server,
      protocol: tlsServer,
      closeIdle: () => engine.closeIdle(),
      closeAll: () => front.destroyAll(),
      goaway: () => {},
      setHttp1Timeouts: (headersMs, idleMs) => engine.setTimeouts(headersMs, idleMs),
    };
  }

  const sessionOptions = {
    settings: { maxConcurrentStreams: l.http2.max_concurrent_streams, maxHeaderListSize: l.http2.max_header_list_bytes },
    // Pseudo-headers count as pairs too; forward.ts answers 431 for max_headers, this is the hard stop.
    maxHeaderListPairs: Math.max(128, l.limits.max_headers + 16),
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
  };
  let server: Http2SecureServer | Http2Server;
  let front: Front;
  /** The HTTP/1.1 engine of an h2c port; an https one serves HTTP/1.1 itself (node:http inside node:http2). */
  let http1: Http1Engine | undefined;
  if (l.protocol === 'https' && certs) {
    const secure = createSecureServer({ ...tlsOptions(l, certs), ...sessionOptions, allowHTTP1: true });
    watchCertificates(secure, certs);
    guardClientNames(secure, l, handlers);
    // HTTP/1.1 clients on this server go through node:http's connection code, which reads these.
    configureHttp1(secure as unknown as Http1Server, l, handlers);
    Object.assign(secure, { maxHeaderSize: l.limits.max_header_bytes });
    server = secure;
    front = frontFor([secure], secure, admit, (socket) => secure.emit('connection', socket));
  } else {
    server = createH2cServer(sessionOptions);
    server.on('checkContinue', (req: Http2ServerRequest, res: Http2ServerResponse) => handlers.request(req, res, true));
    server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => handlers.request(req, res, false));
    ({ front, http1 } = h2cOrHttp1(server, l, handlers, admit));
  }

  const sessions = new Set<ServerHttp2Session>();
  const active = new WeakMap<ServerHttp2Session, number>();
  // session.socket is a proxy that refuses destroy(); note the raw socket as Node hands it over
  // (the connection event runs first, then Node creates the session and emits 'session' synchronously).
  let raw: Duplex | undefined;
  server.prependListener(l.protocol === 'https' ? 'secureConnection' : 'connection', (socket: Duplex) => (raw = socket));
  server.on('session', (session: ServerHttp2Session) => {
    trackSession(session, l, handlers, sessions, active, raw);
    raw = undefined;
  });
  const h1 = server as unknown as Partial<Pick<Http1Server, 'closeIdleConnections'>>;
  return {
    server: front.server,
    protocol: server,
    setHttp1Timeouts: (headersMs, idleMs) => (http1 ? http1.setTimeouts(headersMs, idleMs) : setHttp1Timeouts(server as unknown as Http1Server, headersMs, idleMs)),
    closeIdle: () => {
      for (const s of sessions) if ((active.get(s) ?? 0) === 0) s.close();
      h1.closeIdleConnections?.call(server);
      http1?.closeIdle();
      front.destroySniffing?.();
    },
    closeAll: () => {
      for (const s of sessions) s.destroy();
      front.destroyAll();
    },
    goaway: () => {
      for (const s of sessions) if (!s.closed && !s.destroyed) s.close();
    },
  };
}

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * A cleartext port that speaks both h2c (prior knowledge) and HTTP/1.1: the listening
 * socket is a plain net.Server that reads a connection's first bytes, puts them back, and
 * hands the socket to the h2c server when they begin the HTTP/2 connection preface, else
 * to a node:http server set up like any HTTP/1.1 listener. A client that sends nothing is
 * cut at the request-header timeout.
 */
function h2cOrHttp1(h2c: Http2Server, l: HttpListenerConfig, handlers: ServerHandlers, admit: (socket: Socket) => boolean): { front: Front; http1: Http1Engine } {
  const http1 = http1Engine(l, handlers);
  const sniffing = new Set<Socket>();
  const front = frontFor([h2c], h2c, admit, (socket) => {
    sniffing.add(socket);
    socket.on('error', () => socket.destroy());
    socket.setTimeout(l.timeouts.request_headers, () => socket.destroy());
    socket.once('close', () => sniffing.delete(socket));
    socket.once('readable', () => {
      sniffing.delete(socket);
      const first = socket.read() as Buffer | null;
      if (first === null) return; // ended before a byte: 'close' follows
      socket.setTimeout(0);
      socket.removeAllListeners('error');
      socket.unshift(first);
      const n = Math.min(first.length, H2_PREFACE.length);
      if (first.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) h2c.emit('connection', socket);
      else http1.connection(socket);
    });
  });
  return {
    front: {
      ...front,
      // Not a byte yet: idle as far as a drain is concerned.
      destroySniffing: () => {
        for (const s of sniffing) s.destroy();
      },
    },
    http1,
  };
}

/**
 * Meridian's HTTP/1.1 engine (src/http1/server.ts) for one listener. The exchange code
 * reads requests and writes answers through the members that node:http's objects and the
 * engine's share (the HTTP/2 compat objects share them too): hence the casts.
 */
function http1Engine(l: HttpListenerConfig, handlers: ServerHandlers): Http1Engine {
  const upgrade = handlers.upgrade;
  return new Http1Engine(
    {
      maxHeadBytes: l.limits.max_header_bytes,
      // The exchange answers max_headers with its own 431; this is the parser's hard stop.
      maxFields: l.limits.max_headers * 2 + 64,
      headersTimeoutMs: l.timeouts.request_headers,
      idleTimeoutMs: l.timeouts.idle,
    },
    {
      request: (req, res, expectContinue) => handlers.request(req as unknown as IncomingMessage, res as unknown as ServerResponse, expectContinue),
      upgrade: upgrade === undefined ? undefined : (req, socket, head) => upgrade(req as unknown as IncomingMessage, socket, head),
      clientError: (err, socket) => handlers.clientError(err, socket),
    },
  );
}

/** The accepted sockets' options for the HTTP/1.1 engine: node:http's (half-open: a client's FIN still gets its answer). */
const HTTP1_ACCEPT = { allowHalfOpen: true, noDelay: true, keepAlive: false, keepAliveInitialDelay: 0, highWaterMark: 16384 };

/** The per-socket options a net.Server applies to the sockets it accepts (set by its constructor). */
interface AcceptOptions {
  readonly allowHalfOpen: boolean;
  readonly noDelay: boolean;
  readonly keepAlive: boolean;
  readonly keepAliveInitialDelay: number;
  readonly highWaterMark: number;
}

interface Front {
  readonly server: NetServer;
  /** Destroy every connection it accepted that is still open. */
  destroyAll(): void;
  /** h2c ports: destroy the connections that have not sent a byte yet. */
  destroySniffing?(): void;
}

/**
 * The listening socket of a listener: a plain net.Server that admits each connection,
 * keeps it (so that closeAll() reaches every one, whatever a protocol server did with it:
 * upgraded, half-closed, mid-TLS-handshake) and hands it over (`hand`) to the protocol
 * servers, which never listen themselves. Its sockets get the options `like` would give
 * them (node:http's half-open sockets, for one), and the protocol servers hear its
 * 'listening' (node:http starts its header-timeout checks then) and 'close' (their timers
 * and certificate watchers stop).
 */
function frontFor(inner: readonly (TlsServer | Http2SecureServer | Http2Server)[], like: object, admit: (socket: Socket) => boolean, hand: (socket: Socket) => void): Front {
  const o = like as AcceptOptions;
  const opts = { allowHalfOpen: o.allowHalfOpen, noDelay: o.noDelay, keepAlive: o.keepAlive, keepAliveInitialDelay: o.keepAliveInitialDelay, highWaterMark: o.highWaterMark };
  const open = new Set<Socket>();
  const server = createNetServer(opts, (socket) => {
    if (!admit(socket)) return;
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    hand(socket);
  });
  server.on('listening', () => {
    for (const s of inner) s.emit('listening');
  });
  server.on('close', () => {
    for (const s of inner) s.close();
  });
  return {
    server,
    destroyAll: () => {
      for (const s of open) s.destroy();
    },
  };
}

function setHttp1Timeouts(server: Http1Server, headersMs: number, idleMs: number): void {
  server.headersTimeout = headersMs;
  server.keepAliveTimeout = idleMs;
}

function tlsOptions(l: HttpListenerConfig, certs: SniCertificates) {
  return {
    ...certs.defaultPem,
    ...clientCaOptions(certs),
    minVersion: certs.minVersion,
    SNICallback: certs.SNICallback,
    // The TLS handshake counts against the header timeout: a client that never finishes it is cut.
    handshakeTimeout: l.timeouts.request_headers,
  };
}

/** Clients without SNI get the server's own context: keep it the first certificate across reloads. */
function watchCertificates(server: TlsServer | Http2SecureServer, certs: SniCertificates): void {
  const off = certs.onChange(() => server.setSecureContext({ ...certs.defaultPem, ...clientCaOptions(certs), minVersion: certs.minVersion }));
  server.once('close', off);
}

/** Listener mTLS: a client certificate the CAs signed is required, or the handshake fails. */
function clientCaOptions(certs: SniCertificates): { ca: string; requestCert: true; rejectUnauthorized: true } | Record<string, never> {
  const ca = certs.clientCaPem;
  return ca === undefined ? {} : { ca, requestCert: true, rejectUnauthorized: true };
}

/**
 * `tls.client_names`: a client whose verified certificate names none of them is cut once
 * its handshake completes, before the protocol server reads a byte of a request.
 */
function guardClientNames(server: TlsServer | Http2SecureServer, l: HttpListenerConfig, handlers: ServerHandlers): void {
  const allowed = l.tls?.client_names;
  if (allowed === undefined) return;
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    if (clientAllowed(socket.getPeerX509Certificate(), allowed)) return;
    handlers.clientRefused?.(socket.remoteAddress);
    socket.destroy();
  });
}

function configureHttp1(server: Http1Server, l: HttpListenerConfig, handlers: ServerHandlers): void {
  // Checked every second rather than Node's default 30 s, so the header timeout bites.
  // Host is checked (with the rest of the request) by request-target.ts, which answers in Meridian's own form.
  Object.assign(server, { connectionsCheckingInterval: 1000, requireHostHeader: false });
  server.headersTimeout = l.timeouts.request_headers;
  // Node requires requestTimeout >= headersTimeout; 0 leaves whole-request bounds to the proxy.
  server.requestTimeout = 0;
  server.keepAliveTimeout = l.timeouts.idle;
  // Every HTTP/1.x connection has its request lines checked (request-lines.ts). These events
  // come after node:http's own: the socket is its by then. An h2 connection is left alone.
  server.on(server instanceof TlsServer ? 'secureConnection' : 'connection', (socket: Socket) => {
    if ((socket as TLSSocket).alpnProtocol !== 'h2') watchRequestLines(socket);
  });
  server.on('request', (req: AnyServerRequest, res: AnyServerResponse) => handlers.request(req, res, false));
  server.on('checkContinue', (req: AnyServerRequest, res: AnyServerResponse) => handlers.request(req, res, true));
  // Node's own answer to an Expect other than 100-continue, with that request's line taken in turn.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    requestLineValid(req);
    res.writeHead(417).end();
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => handlers.clientError(err, socket));
  const upgrade = handlers.upgrade;
  if (upgrade) {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      upgrade(req, socket, head);
      unwatchRequestLines(socket);
    });
  }
}

function trackSession(
  session: ServerHttp2Session,
  l: HttpListenerConfig,
  handlers: ServerHandlers,
  sessions: Set<ServerHttp2Session>,
  active: WeakMap<ServerHttp2Session, number>,
  rawSocket: Duplex | undefined,
): void {
  sessions.add(session);
  active.set(session, 0);
  session.on('error', (err: Error) => handlers.error?.('http2_session', err));
  let idle: NodeJS.Timeout | undefined;
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(() => session.close(), l.timeouts.idle).unref();
  };
  armIdle();
  session.once('close', () => {
    clearTimeout(idle);
    sessions.delete(session);
  });
  // A client's GOAWAY means it opens no more streams: close once the open ones finish,
  // rather than hold the connection until the idle timeout.
  session.once('goaway', () => session.close());

  // Rapid reset: a fixed one-second window per session.
  let windowStartMs = 0;
  let resets = 0;
  const remoteAddress = session.socket?.remoteAddress;
  const destroySocket = () => rawSocket?.destroy();
  session.on('stream', (stream: ServerHttp2Stream) => {
    active.set(session, (active.get(session) ?? 0) + 1);
    clearTimeout(idle);
    // The compat response sees the close (and the proxy reports the exchange); this says why.
    stream.on('error', (err: Error) => handlers.error?.('http2_stream', err));
    // Only resets the client sends count: mark the ones this side starts (res.destroy(), session
    // teardown) while the stream is still open. (After a client's RST_STREAM Node marks the stream
    // closed first, then tears it down with these same calls.)
    let localReset = false;
    const { destroy, close } = stream;
    stream.destroy = function (this: ServerHttp2Stream, ...args: Parameters<ServerHttp2Stream['destroy']>) {
      if (!this.closed) localReset = true;
      return destroy.apply(this, args);
    };
    stream.close = function (this: ServerHttp2Stream, ...args: Parameters<ServerHttp2Stream['close']>) {
      if (!this.closed) localReset = true;
      return close.apply(this, args);
    };
    let aborted = false;
    stream.once('aborted', () => (aborted = !localReset)); // 'aborted': closed before our side ended
    stream.once('close', () => {
      const n = (active.get(session) ?? 1) - 1;
      active.set(session, n);
      if (n === 0 && !session.closed && !session.destroyed) armIdle();
      if (!aborted || stream.rstCode === h2.NGHTTP2_NO_ERROR) return;
      const now = performance.now();
      if (now - windowStartMs >= 1000) {
        windowStartMs = now;
        resets = 0;
      }
      if (++resets > l.http2.max_resets_per_second && !session.destroyed) {
        handlers.rapidReset?.(remoteAddress);
        session.destroy(undefined, h2.NGHTTP2_ENHANCE_YOUR_CALM);
        // Node then only end()s the socket, and a client still writing can hold it open: cut it
        // once the GOAWAY had a moment to leave.
        setTimeout(destroySocket, 100).unref();
      }
    });
  });
}

