import { request as httpRequest, STATUS_CODES, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { HostState } from '../core/cluster.js';
import { FAILURE_OUTCOME, type RequestLifecycle, type RetryDecision } from '../core/request-lifecycle.js';
import type { Outcome } from '../core/types.js';
import { classifyUpstreamError, LOCAL_REPLIES, localReplyText, UpstreamError, type LocalReplyCode } from './errors.js';
import { report, type ExchangeRecord, type ListenerContext } from './forward.js';
import { downstreamResponseHeaders, requestIdOf, upstreamRequestHeaders, type ForwardedInfo } from './headers.js';
import { BodyReader, bodyFraming } from './upgrade-body.js';
import type { ClusterRuntime, Runtime } from './runtime.js';
import { splitAddress } from '../shared/address.js';
import { admit, viaFor } from './admission.js';
import { requestTarget } from './request-target.js';
import { rememberSessions, upstreamTlsOptions } from './upstream-tls.js';
import { tryAnswered, tryFailed, tryFailureOf } from './try-outcome.js';
import { pipeForTurn } from '../http1/turn-writes.js';

/** Something the tracker can cut off at the drain deadline. */
interface Closable {
  destroy(): void;
}

/**
 * The upgraded connections (WebSocket tunnels) of one process, from the moment an
 * Upgrade request is accepted until both of its sockets are closed. Drain waits on
 * `idle()` and calls `closeAll()` at its deadline: a tunnel has no natural end.
 */
export class UpgradeTracker {
  readonly #open = new Set<Closable>();
  #waiters: (() => void)[] = [];

  /** Tunnels open now (handshakes in progress included). */
  get open(): number {
    return this.#open.size;
  }

  /** Destroy every tunnel, both sides; each still reports its record as it closes. */
  closeAll(): void {
    for (const t of [...this.#open]) t.destroy();
  }

  /** Resolves when no tunnel is open, or after `ms`, whichever comes first. */
  idle(ms: number): Promise<void> {
    if (this.#open.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters = this.#waiters.filter((w) => w !== done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.push(done);
    });
  }

  /** @internal */
  add(t: Closable): void {
    this.#open.add(t);
  }

  /** @internal */
  remove(t: Closable): void {
    if (!this.#open.delete(t) || this.#open.size > 0) return;
    for (const w of [...this.#waiters]) w();
  }
}

/**
 * Handle one HTTP/1.1 Upgrade request (the server's 'upgrade' event): route, admit and
 * pick exactly as `forward` does, connect a fresh socket to the endpoint (an upgraded
 * connection never goes back to a keep-alive pool), send the request on, body included,
 * and if the upstream answers 101 splice the two sockets together until either side
 * closes. Only protocols the route lists in `upgrades` are tunnelled (others: 403, as
 * Envoy); an h2c upgrade, and any Upgrade on HTTP/1.0, is forwarded as a plain request
 * instead (as Envoy and HAProxy strip h2c). Never throws; every failure becomes a raw
 * HTTP reply or a closed socket.
 */
export function handleUpgrade(ctx: ListenerContext, tracker: UpgradeTracker, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  new Tunnel(ctx, tracker, req, socket, head).start();
}

/**
 * The headers sent upstream on an Upgrade request: those `upstreamRequestHeaders` sends,
 * plus the hop-by-hop ones the upgrade itself needs (Connection, Upgrade) and every
 * Sec-WebSocket-* header even if the client listed it in Connection.
 */
export function upgradeRequestHeaders(headers: IncomingHttpHeaders, fwd: ForwardedInfo, requestId: string, via?: string): OutgoingHttpHeaders {
  const out = upstreamRequestHeaders(headers, fwd, requestId, via);
  out['connection'] = 'upgrade';
  if (headers.upgrade !== undefined) out['upgrade'] = headers.upgrade;
  for (const name in headers) if (name.startsWith('sec-websocket-')) out[name] = headers[name];
  return out;
}

type Phase = 'handshake' | 'tunnel' | 'done';

/** The Upgrade field as Envoy compares it with its upgrade types: whole, trimmed, in lower case. */
function upgradeProtocolOf(req: IncomingMessage): string {
  return (req.headers.upgrade ?? '').trim().toLowerCase();
}

class Tunnel implements Closable {
  readonly #ctx: ListenerContext;
  readonly #tracker: UpgradeTracker;
  readonly #req: IncomingMessage;
  readonly #client: Duplex;
  readonly #head: Buffer;
  readonly #startMs: number;
  readonly #rt: Runtime;
  readonly #requestId: string;
  readonly #method: string;
  #url: string;
  #phase: Phase = 'handshake';
  /** Forwarded as a plain request and never tunnelled: h2c (RFC 9113 dropped it; Envoy and HAProxy strip it) and HTTP/1.0 (RFC 9110 §7.8). */
  readonly #plain: boolean;
  #body: BodyReader | undefined;
  /**
   * Body bytes read before anything goes upstream (the route's request_body_buffer_bytes,
   * as on the request path): a body this small is checked whole first and can be sent
   * again on a connect retry; a larger one streams on from there.
   */
  #holdBytes = 0;
  /** The first body bytes, kept until the request is answered so a connect retry can send them again. */
  readonly #held: Buffer[] = [];
  #heldBytes = 0;
  /** The try the rest of a large body streams into; once it has, no try can be made again. */
  #pumpInto: ClientRequest | undefined;
  #pumped = false;
  /** Bytes the client sent after its request: the start of the tunnel. */
  #early: Buffer;
  #fwd: ForwardedInfo | undefined;
  #cluster: ClusterRuntime | undefined;
  #upReq: ClientRequest | undefined;
  /** The current try's connection, from connect to close (the tunnel's upstream side after a 101). */
  #upSocket: Duplex | undefined;
  #lc: RequestLifecycle | undefined;
  #backoffTimer: NodeJS.Timeout | undefined;
  /** The handshake's deadline passed. */
  #timedOut = false;
  #upstreamStartMs = 0;
  #upstreamMs: number | undefined;
  #bytesIn = 0;
  #bytesOut = 0;
  #status = 0;
  #reason: ExchangeRecord['reason'];
  #timer: NodeJS.Timeout | undefined;
  #finished = false;
  #onTunnelClientClose: ((hadError: boolean) => void) | undefined;

  constructor(ctx: ListenerContext, tracker: UpgradeTracker, req: IncomingMessage, client: Duplex, head: Buffer) {
    this.#ctx = ctx;
    this.#tracker = tracker;
    this.#req = req;
    this.#client = client;
    this.#head = head;
    this.#startMs = ctx.clock.nowMs();
    this.#rt = ctx.runtime();
    this.#requestId = requestIdOf(req.headers);
    this.#method = req.method ?? 'GET';
    this.#url = req.url ?? '/';
    this.#plain = req.httpVersion === '1.0' || upgradeProtocolOf(req) === 'h2c';
    this.#early = head;
  }

  start(): void {
    const req = this.#req;
    const client = this.#client;
    this.#tracker.add(this);
    // Node leaves an upgraded socket with no 'error' listener: without one a reset would crash the process.
    client.on('error', () => {});
    client.on('close', () => this.#onClientClose());
    const target = requestTarget(req);
    if (typeof target === 'string') return this.#localReply(target);
    this.#url = target.url;
    this.#fwd = this.#rt.trusted.forwarded(req.socket.remoteAddress, req.headers, this.#ctx.encrypted);
    // A tunnel holds its request slot for its whole life, as Envoy counts upgraded streams.
    const admission = admit(this.#ctx, this.#rt, req, this.#url, this.#fwd.clientIp);
    if (!admission.ok) return this.#localReply(admission.code, admission.headers);
    const { route, cluster, lifecycle } = admission;
    this.#lc = lifecycle;
    this.#cluster = cluster;
    // The handshake (connects included) must be answered in connect + request timeout; the tunnel after it has no deadline.
    const timeoutMs = cluster.config.timeouts.connect + (route.config.timeout ?? cluster.config.timeouts.request);
    lifecycle.deadlineIn(timeoutMs);
    this.#timer = setTimeout(() => this.#onHandshakeTimeout(), timeoutMs);
    if (!this.#plain && !route.config.upgrades.includes(upgradeProtocolOf(req))) return this.#localReply('upgrade_refused');
    const framing = bodyFraming(req.headers);
    if (typeof framing === 'string') return this.#localReply(framing);
    if (framing.kind === 'none') return this.#tryNext();
    const maxBody = this.#ctx.limits.max_body_bytes;
    if (framing.kind === 'length' && maxBody > 0 && framing.length > maxBody) return this.#localReply('payload_too_large');
    this.#body = new BodyReader(framing, maxBody);
    // A Content-Length over the limit streams from the start, as on the request path.
    const hold = route.config.request_body_buffer_bytes;
    this.#holdBytes = framing.kind === 'length' && framing.length > hold ? 0 : hold;
    this.#early = Buffer.alloc(0);
    // Node never answers 100-continue on an upgrade: the client waits for it before its body.
    if (/\b100-continue\b/i.test(String(req.headers.expect ?? ''))) client.write('HTTP/1.1 100 Continue\r\n\r\n');
    this.#onBodyBytes(this.#head);
    if (this.#phase !== 'handshake' || this.#body.done || this.#pumpInto !== undefined) return;
    this.#readBody();
  }

  /** Held enough to go upstream: the limit, and for a chunked body at least its first chunk's start (its framing seen sane). */
  #heldEnough(): boolean {
    return this.#heldBytes >= this.#holdBytes && (this.#heldBytes > 0 || this.#req.headers['transfer-encoding'] === undefined);
  }

  /** Raw bytes of the request body from the client: decoded, held or streamed upstream. */
  readonly #onBodyBytes = (raw: Buffer): void => {
    const body = this.#body as BodyReader;
    if (this.#phase !== 'handshake' || body.done) return;
    const verdict = body.feed(raw, this.#onBodyData);
    if (verdict === 'more') {
      if (this.#pumpInto === undefined && this.#heldEnough()) this.#tryNext();
      return;
    }
    this.#stopReadingBody();
    if (verdict !== 'done') {
      this.#dropUpstream();
      return this.#localReply(verdict);
    }
    this.#early = body.rest;
    if (this.#pumpInto !== undefined) this.#pumpInto.end();
    else this.#tryNext();
  };

  readonly #onBodyData = (chunk: Buffer): void => {
    this.#bytesIn += chunk.length;
    const up = this.#pumpInto;
    if (up === undefined) {
      // A view into the client's read buffer: copied, since it is kept.
      this.#held.push(Buffer.from(chunk));
      this.#heldBytes += chunk.length;
      return;
    }
    this.#pumped = true;
    if (!up.write(chunk)) {
      this.#client.pause();
      // Only while the body still streams into this try: after it, the client's bytes wait for the tunnel.
      up.once('drain', () => {
        if (this.#pumpInto === up && this.#phase === 'handshake' && !(this.#body as BodyReader).done) this.#client.resume();
      });
    }
  };

  #readBody(): void {
    this.#client.off('data', this.#onBodyBytes);
    this.#client.on('data', this.#onBodyBytes);
    this.#client.resume();
  }

  #stopReadingBody(): void {
    this.#client.off('data', this.#onBodyBytes);
    this.#client.pause();
  }

  /** Give up the current try: its request and its connection. */
  #dropUpstream(): void {
    this.#upReq?.destroy();
    this.#upSocket?.destroy();
  }

  /** Closable: cut both sides off now (drain deadline). */
  destroy(): void {
    if (this.#finished) return;
    if (this.#phase === 'handshake') this.#reason ??= 'client_abort';
    this.#dropUpstream();
    this.#client.destroy();
  }

  #tryNext(): void {
    if (this.#phase !== 'handshake') return;
    const host = (this.#lc as RequestLifecycle).startTry();
    if (host === undefined) return this.#localReply('no_healthy_endpoint');
    this.#dispatch(host);
  }

  /**
   * What the lifecycle decided for a try that failed or was answered with a status it
   * retries, carried out. A body that streamed on into the try cannot be sent again: the
   * lifecycle was told so (`bodyReplayable`), so a retry here has all of it still held.
   */
  #afterTry(d: RetryDecision, code: LocalReplyCode | undefined): boolean {
    if (d !== 'retry') {
      if (code !== undefined) this.#localReply(code);
      return false;
    }
    if (this.#pumpInto !== undefined) {
      this.#pumpInto = undefined;
      this.#stopReadingBody();
    }
    const delayMs = (this.#lc as RequestLifecycle).retryDelayMs;
    if (delayMs === 0) this.#tryNext();
    else this.#backoffTimer = setTimeout(() => this.#tryNext(), delayMs);
    return true;
  }

  #dispatch(host: HostState): void {
    const cluster = this.#cluster as ClusterRuntime;
    const lc = this.#lc as RequestLifecycle;
    const tryStartMs = this.#ctx.clock.nowMs();
    if (this.#upstreamStartMs === 0) this.#upstreamStartMs = tryStartMs;
    let settled = false;
    const settle = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      lc.endTry(outcome);
    };
    const latency = () => this.#ctx.clock.nowMs() - tryStartMs;

    const { host: hostname, port } = splitAddress(host.endpoint.address);
    // A cluster with TLS tunnels over TLS too: an upgrade is never the way around it.
    const tls = upstreamTlsOptions(cluster.tls, host.endpoint.address);
    const sock: Socket = tls ? tlsConnect({ host: hostname, port, ...tls, ALPNProtocols: ['http/1.1'] }) : connect({ host: hostname, port });
    if (tls) rememberSessions(cluster.tls, host.endpoint.address, sock);
    this.#upSocket = sock;
    const connectMs = cluster.config.timeouts.connect;
    const connectTimer = setTimeout(() => sock.destroy(new UpstreamError('connect_failure', false, `connect timeout after ${connectMs} ms`)), connectMs);
    let connected = false;
    let answered = false;
    sock.once('connect', () => {
      connected = true;
      clearTimeout(connectTimer);
    });
    sock.once('close', () => clearTimeout(connectTimer));
    const upReq = httpRequest({
      createConnection: () => sock,
      method: this.#method,
      path: this.#url,
      headers: this.#upstreamHeaders(host),
      setHost: false,
    });
    this.#upReq = upReq;
    for (const chunk of this.#held) upReq.write(chunk);
    if (this.#body === undefined || this.#body.done) upReq.end();
    else {
      this.#pumpInto = upReq;
      this.#readBody();
    }

    upReq.on('error', (err) => {
      clearTimeout(connectTimer);
      const e = classifyUpstreamError(err, connected);
      if (this.#timedOut) return settle({ error: FAILURE_OUTCOME[tryFailureOf(e)], latencyMs: latency() });
      if (this.#phase !== 'handshake') return settle({ latencyMs: latency() });
      if (settled) return;
      settled = true;
      // Each try is a fresh connection: a reset is never the keep-alive race here.
      this.#afterTry(tryFailed(lc, this.#ctx.hooks, cluster.name, e, latency(), !this.#pumped), e.code);
    });

    // Not 101: hand the answer to the client as it is, then close both connections.
    upReq.on('response', (upRes) => {
      answered = true;
      const status = upRes.statusCode ?? 502;
      if (this.#phase !== 'handshake') {
        upRes.destroy();
        sock.destroy();
        return settle({ status, latencyMs: latency() });
      }
      if (!settled && tryAnswered(lc, this.#ctx.hooks, cluster.name, status, latency(), !this.#pumped) === 'retry') {
        settled = true;
        upRes.resume();
        sock.destroy();
        this.#afterTry('retry', undefined);
        return;
      }
      clearTimeout(this.#timer);
      this.#status = status;
      this.#upstreamMs = this.#ctx.clock.nowMs() - this.#upstreamStartMs;
      this.#phase = 'done';
      // The answer ends the exchange: whatever of the body is still to come is not read.
      if (this.#body !== undefined && !this.#body.done) this.#stopReadingBody();
      const headers = downstreamResponseHeaders(upRes.headers, this.#requestId);
      // Without Transfer-Encoding (dropped: the body arrives decoded) the body ends where the connection does.
      headers['connection'] = 'close';
      this.#client.write(responseHead(`HTTP/1.1 ${status} ${upRes.statusMessage ?? ''}`, headers));
      upRes.on('data', (c: Buffer) => {
        this.#bytesOut += c.length;
      });
      upRes.pipe(this.#client);
      upRes.on('close', () => {
        settle(upRes.complete ? { status, latencyMs: latency() } : { error: 'reset', latencyMs: latency() });
        // Node would keep the connection for another request that never comes: close it, as
        // Envoy closes an upstream whose response ended before its request (an upgrade's never ends).
        sock.destroy();
        if (upRes.complete) destroySoon(this.#client);
        else this.#client.destroy();
        this.#finish();
      });
    });

    upReq.on('upgrade', (upRes: IncomingMessage, upSocket: Duplex, upHead: Buffer) => {
      answered = true;
      if (this.#phase !== 'handshake') {
        upSocket.destroy();
        return settle({ latencyMs: latency() });
      }
      if (this.#plain || (this.#body !== undefined && !this.#body.done)) {
        // Switching to a protocol nobody asked for, or before the request was whole
        // (RFC 9110 §7.8): never a tunnel.
        upSocket.destroy();
        settle({ error: 'protocol', latencyMs: latency() });
        this.#stopReadingBody();
        return this.#localReply('upstream_protocol_error');
      }
      clearTimeout(this.#timer);
      this.#phase = 'tunnel';
      this.#status = upRes.statusCode ?? 101;
      this.#upstreamMs = this.#ctx.clock.nowMs() - this.#upstreamStartMs;
      const handshakeMs = latency();
      this.#splice(upRes, upSocket, upHead, () => settle({ latencyMs: handshakeMs }));
    });
    // Whatever else happens before an answer, the host's in-flight count is given back.
    upReq.on('close', () => {
      if (!answered) settle({ latencyMs: latency() });
    });
  }

  /** 101: the upstream's answer verbatim to the client, then bytes both ways until both sides are closed. */
  #splice(upRes: IncomingMessage, up: Duplex, upHead: Buffer, settle: () => void): void {
    const client = this.#client;
    this.#upSocket = up;
    const raw = upRes.rawHeaders;
    let headText = `HTTP/${upRes.httpVersion} ${upRes.statusCode ?? 101} ${upRes.statusMessage ?? ''}\r\n`;
    for (let i = 0; i + 1 < raw.length; i += 2) headText += `${raw[i]}: ${raw[i + 1]}\r\n`;
    client.write(`${headText}\r\n`);
    if (upHead.length > 0) {
      this.#bytesOut += upHead.length;
      client.write(upHead);
    }
    if (this.#early.length > 0) {
      this.#bytesIn += this.#early.length;
      up.write(this.#early);
    }
    client.on('data', (c: Buffer) => {
      this.#bytesIn += c.length;
    });
    up.on('data', (c: Buffer) => {
      this.#bytesOut += c.length;
    });
    let closed = 0;
    const closedOne = () => {
      if (++closed < 2) return;
      settle();
      this.#finish();
    };
    // A reset on one side destroys the other at once; a clean close lets the other side
    // flush what it was sent (pipe ends it) and then closes it too.
    up.on('error', () => {
      this.#reason ??= 'upstream_abort';
    });
    up.on('close', (hadError: boolean) => {
      if (hadError) client.destroy();
      else destroySoon(client);
      closedOne();
    });
    this.#onTunnelClientClose = (hadError: boolean) => {
      if (hadError) up.destroy();
      else destroySoon(up);
      closedOne();
    };
    pipeForTurn(client, up);
    pipeForTurn(up, client);
  }

  #onClientClose(): void {
    if (this.#phase === 'tunnel') return this.#onTunnelClientClose?.(this.#client.errored !== null);
    if (this.#phase === 'done') {
      // Leaving while a non-101 answer streams: stop reading it.
      if (!this.#finished) this.#dropUpstream();
      return;
    }
    // The client left before the upstream answered: nothing to tunnel, free the upstream.
    this.#reason = 'client_abort';
    this.#phase = 'done';
    this.#dropUpstream();
    this.#finish();
  }

  #onHandshakeTimeout(): void {
    if (this.#phase !== 'handshake') return;
    if (this.#body !== undefined && !this.#body.done) {
      // The client, not the upstream, is late: its body never came whole.
      this.#stopReadingBody();
      this.#dropUpstream();
      return this.#localReply('request_timeout');
    }
    // The request's deadline, not a try's: no retry follows, whether a try is in flight
    // (it counts as a timeout against its endpoint) or a retry waits out its backoff.
    this.#timedOut = true;
    this.#upReq?.destroy(new UpstreamError('timeout', true, 'no answer to the upgrade request in time'));
    this.#localReply('timeout');
  }

  /** A plain request's headers for h2c and HTTP/1.0 (Upgrade, Connection, HTTP2-Settings gone), else the upgrade's; framed for the body as read. */
  #upstreamHeaders(host: HostState): OutgoingHttpHeaders {
    const via = viaFor(this.#cluster as ClusterRuntime, host);
    const fwd = this.#fwd as ForwardedInfo;
    const headers = this.#plain ? upstreamRequestHeaders(this.#req.headers, fwd, this.#requestId, via) : upgradeRequestHeaders(this.#req.headers, fwd, this.#requestId, via);
    // The client's 100-continue was Meridian's to answer.
    delete headers['expect'];
    if (this.#plain) headers['connection'] = 'close';
    // A chunked body read whole goes with its length; a longer one is chunked again.
    if (this.#body !== undefined && this.#req.headers['transfer-encoding'] !== undefined) {
      if (this.#body.done) headers['content-length'] = String(this.#heldBytes);
      else headers['transfer-encoding'] = 'chunked';
    }
    return headers;
  }

  /** Meridian's own answer, written raw (there is no ServerResponse on an upgrade), then close. */
  #localReply(code: LocalReplyCode, extra: Record<string, string> = {}): void {
    if (this.#phase === 'done') return;
    this.#phase = 'done';
    this.#reason = code;
    const status = LOCAL_REPLIES[code].status;
    this.#status = status;
    const body = localReplyText(code);
    const head = responseHead(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'x-meridian-reason': code,
      'x-request-id': this.#requestId,
      ...extra,
      connection: 'close',
    });
    if (this.#client.writable) this.#client.end(head + body);
    destroySoon(this.#client);
    this.#finish();
  }

  #finish(): void {
    if (this.#phase === 'handshake' || this.#finished) return;
    this.#finished = true;
    this.#phase = 'done';
    clearTimeout(this.#timer);
    clearTimeout(this.#backoffTimer);
    this.#tracker.remove(this);
    this.#lc?.end();
    report(this.#ctx, {
      requestId: this.#requestId,
      client: this.#fwd?.clientIp ?? '',
      method: this.#method,
      host: this.#req.headers.host ?? '',
      path: this.#url,
      status: this.#status,
      reason: this.#reason,
      cluster: this.#cluster,
      endpoint: this.#lc?.host,
      attempts: this.#lc?.attempt ?? 0,
      upstreamMs: this.#upstreamMs,
      startMs: this.#startMs,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
    });
  }
}

function responseHead(statusLine: string, headers: OutgoingHttpHeaders): string {
  let s = `${statusLine}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) s += `${name}: ${v}\r\n`;
  }
  return `${s}\r\n`;
}

/** End the socket, and destroy it once what was written has been flushed. */
function destroySoon(s: Duplex): void {
  if (s.destroyed) return;
  if (s.writable) s.end();
  if (s.writableFinished) s.destroy();
  else s.once('finish', () => s.destroy());
}


