import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  constants as h2,
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
import { clientAllowed, type SniCertificates } from './tls.js';

export type AnyServerRequest = IncomingMessage | Http2ServerRequest;
export type AnyServerResponse = ServerResponse | Http2ServerResponse;

/**
 * What a listener's server calls. HTTP/1.1 exchanges get the HTTP/1.1 engine's request and
 * response (typed as node:http's, whose members they share), HTTP/2 ones the compat API's.
 */
export interface ServerHandlers {
  /** A request; `expectContinue` when it asked `Expect: 100-continue` (answer with res.writeContinue()). */
  request(req: AnyServerRequest, res: AnyServerResponse, expectContinue: boolean): void;
  /** HTTP/1.1 Upgrade (WebSocket). Absent: upgrades are answered as ordinary requests. */
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
 * | protocol | http2.enabled | server                                                         |
 * |----------|---------------|----------------------------------------------------------------|
 * | http     | false         | Meridian's HTTP/1.1 engine (src/http1/server.ts)               |
 * | http     | true          | h2c (prior knowledge) and HTTP/1.1 on one port, by preface     |
 * | https    | true          | node:tls; ALPN h2 to node:http2, anything else to the engine   |
 * | https    | false         | node:tls, then the engine                                      |
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
  const http1 = http1Engine(l, handlers);
  const h2 = l.http2.enabled ? h2Server(l, handlers) : undefined;
  let front: Front;
  let secure: TlsServer | undefined;
  if (l.protocol === 'https' && certs) {
    // ALPN picks the protocol: h2 sessions go to node:http2, everything else to the HTTP/1.1 engine.
    const tls = new TlsServer({ ...tlsOptions(l, certs), ALPNProtocols: h2 ? ['h2', 'http/1.1'] : ['http/1.1'] });
    watchCertificates(tls, certs);
    guardClientNames(tls, l, handlers);
    // A failed handshake has already cost the client its connection; there is nothing to answer.
    tls.on('tlsClientError', () => {});
    tls.on('secureConnection', (socket: TLSSocket) => {
      if (socket.destroyed) return;
      if (h2 !== undefined && socket.alpnProtocol === 'h2') h2.server.emit('connection', socket);
      else http1.connection(socket);
    });
    secure = tls;
    // HTTP/1.1-only: node:https's socket options (half-open, no Nagle); with h2, node:http2's secure server's.
    front = frontFor(h2 ? [tls, h2.server] : [tls], h2 ? tls : HTTP1_ACCEPT, admit, (socket) => tls.emit('connection', socket));
  } else if (h2) {
    front = h2cOrHttp1(h2.server, http1, l, admit);
  } else {
    front = frontFor([], HTTP1_ACCEPT, admit, (socket) => http1.connection(socket));
  }
  return {
    server: front.server,
    protocol: h2?.server ?? secure,
    setHttp1Timeouts: (headersMs, idleMs) => http1.setTimeouts(headersMs, idleMs),
    closeIdle: () => {
      h2?.closeIdle();
      http1.closeIdle();
      front.destroySniffing?.();
    },
    closeAll: () => {
      h2?.destroyAll();
      front.destroyAll();
    },
    goaway: () => h2?.goaway(),
  };
}

interface H2 {
  readonly server: Http2Server;
  /** Close the sessions with no open stream. */
  closeIdle(): void;
  destroyAll(): void;
  /** Graceful GOAWAY on every session. */
  goaway(): void;
}

/**
 * The node:http2 server of a listener, fed connections whose protocol is settled: h2c by
 * its preface, or TLS by ALPN (a plain Http2Server takes a TLS socket as it is: its
 * session runs on whatever socket it is handed).
 */
function h2Server(l: HttpListenerConfig, handlers: ServerHandlers): H2 {
  const server = createH2cServer({
    settings: { maxConcurrentStreams: l.http2.max_concurrent_streams, maxHeaderListSize: l.http2.max_header_list_bytes },
    // Pseudo-headers count as pairs too; forward.ts answers 431 for max_headers, this is the hard stop.
    maxHeaderListPairs: Math.max(128, l.limits.max_headers + 16),
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
  });
  server.on('checkContinue', (req: Http2ServerRequest, res: Http2ServerResponse) => handlers.request(req, res, true));
  server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => handlers.request(req, res, false));
  const sessions = new Set<ServerHttp2Session>();
  const active = new WeakMap<ServerHttp2Session, number>();
  // session.socket is a proxy that refuses destroy(); note the raw socket as Node hands it over
  // (the connection event runs first, then Node creates the session and emits 'session' synchronously).
  let raw: Duplex | undefined;
  server.prependListener('connection', (socket: Duplex) => (raw = socket));
  server.on('session', (session: ServerHttp2Session) => {
    trackSession(session, l, handlers, sessions, active, raw);
    raw = undefined;
  });
  return {
    server,
    closeIdle: () => {
      for (const s of sessions) if ((active.get(s) ?? 0) === 0) s.close();
    },
    destroyAll: () => {
      for (const s of sessions) s.destroy();
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
function h2cOrHttp1(h2c: Http2Server, http1: Http1Engine, l: HttpListenerConfig, admit: (socket: Socket) => boolean): Front {
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
    ...front,
    // Not a byte yet: idle as far as a drain is concerned.
    destroySniffing: () => {
      for (const s of sniffing) s.destroy();
    },
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

