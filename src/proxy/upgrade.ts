import { request as httpRequest, STATUS_CODES, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { HostState } from '../core/cluster.js';
import type { Outcome } from '../core/types.js';
import { classifyUpstreamError, LOCAL_REPLIES, UpstreamError, type LocalReplyCode } from './errors.js';
import { report, type ExchangeRecord, type ListenerContext } from './forward.js';
import { downstreamResponseHeaders, requestIdOf, upstreamRequestHeaders, type ForwardedInfo } from './headers.js';
import type { ClusterRuntime, Runtime } from './runtime.js';
import { splitAddress } from './address.js';
import { admit, pickEndpoint, viaFor, type ClusterLease } from './admission.js';
import { requestTarget } from './request-target.js';

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
 * connection never goes back to a keep-alive pool), send the request on, and if the
 * upstream answers 101 splice the two sockets together until either side closes.
 * Never throws; every failure becomes a raw HTTP reply or a closed socket.
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
  #fwd: ForwardedInfo | undefined;
  #cluster: ClusterRuntime | undefined;
  #host: HostState | undefined;
  #upReq: ClientRequest | undefined;
  #upSocket: Duplex | undefined;
  #attempts = 0;
  #tried = new Set<HostState>();
  #lease: ClusterLease | undefined;
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
    const { route, cluster, lease } = admission;
    this.#lease = lease;
    this.#cluster = cluster;
    // The handshake (connects included) must be answered in connect + request timeout; the tunnel after it has no deadline.
    const timeoutMs = cluster.config.timeouts.connect + (route.config.timeout ?? cluster.config.timeouts.request);
    this.#timer = setTimeout(() => this.#onHandshakeTimeout(), timeoutMs);
    this.#tryNext();
  }

  /** Closable: cut both sides off now (drain deadline). */
  destroy(): void {
    if (this.#finished) return;
    if (this.#phase === 'handshake') this.#reason ??= 'client_abort';
    this.#upReq?.destroy();
    this.#upSocket?.destroy();
    this.#client.destroy();
  }

  #tryNext(): void {
    const host = pickEndpoint(this.#cluster as ClusterRuntime, this.#req, this.#url, this.#fwd?.clientIp ?? '', this.#attempts, this.#tried);
    if (host === undefined) return this.#localReply('no_healthy_endpoint');
    this.#tried.add(host);
    this.#attempts++;
    this.#dispatch(host);
  }

  #dispatch(host: HostState): void {
    const cluster = this.#cluster as ClusterRuntime;
    this.#host = host;
    cluster.core.onStart(host);
    const tryStartMs = this.#ctx.clock.nowMs();
    if (this.#upstreamStartMs === 0) this.#upstreamStartMs = tryStartMs;
    let settled = false;
    const settle = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      cluster.core.onEnd(host, outcome);
    };
    const latency = () => this.#ctx.clock.nowMs() - tryStartMs;

    const { host: hostname, port } = splitAddress(host.endpoint.address);
    const sock: Socket = connect({ host: hostname, port });
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
      headers: upgradeRequestHeaders(this.#req.headers, this.#fwd as ForwardedInfo, this.#requestId, viaFor(this.#cluster as ClusterRuntime, host)),
      setHost: false,
    });
    this.#upReq = upReq;
    upReq.end();

    upReq.on('error', (err) => {
      clearTimeout(connectTimer);
      const e = classifyUpstreamError(err, connected);
      if (this.#phase !== 'handshake') return settle({ latencyMs: latency() });
      settle({ error: e.code === 'connect_failure' ? 'connect' : e.code === 'timeout' ? 'timeout' : 'reset', latencyMs: latency() });
      if (e.code === 'connect_failure' && cluster.retry.onConnectFailure && this.#retryAllowed()) {
        this.#ctx.hooks.retry({ cluster: cluster.name, reason: e.code });
        return this.#tryNext();
      }
      this.#localReply(e.code);
    });

    // Not 101: hand the answer to the client as it is, then close both connections.
    upReq.on('response', (upRes) => {
      answered = true;
      const status = upRes.statusCode ?? 502;
      if (this.#phase !== 'handshake') {
        upRes.destroy();
        return settle({ status, latencyMs: latency() });
      }
      clearTimeout(this.#timer);
      this.#status = status;
      this.#upstreamMs = this.#ctx.clock.nowMs() - this.#upstreamStartMs;
      this.#phase = 'done';
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
        if (!upRes.complete) this.#client.destroy();
        upReq.destroy();
        this.#finish();
      });
    });

    upReq.on('upgrade', (upRes: IncomingMessage, upSocket: Duplex, upHead: Buffer) => {
      answered = true;
      if (this.#phase !== 'handshake') {
        upSocket.destroy();
        return settle({ latencyMs: latency() });
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
    if (this.#head.length > 0) {
      this.#bytesIn += this.#head.length;
      up.write(this.#head);
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
    client.pipe(up);
    up.pipe(client);
  }

  #onClientClose(): void {
    if (this.#phase === 'tunnel') return this.#onTunnelClientClose?.(this.#client.errored !== null);
    if (this.#phase === 'done') {
      // Leaving while a non-101 answer streams: stop reading it.
      if (!this.#finished) this.#upReq?.destroy();
      return;
    }
    // The client left before the upstream answered: nothing to tunnel, free the upstream.
    this.#reason = 'client_abort';
    this.#phase = 'done';
    this.#upReq?.destroy();
    this.#finish();
  }

  #onHandshakeTimeout(): void {
    if (this.#phase !== 'handshake') return;
    this.#upReq?.destroy(new UpstreamError('timeout', true, 'no answer to the upgrade request in time'));
  }

  #retryAllowed(): boolean {
    return this.#lease?.tryRetry(this.#attempts) ?? false;
  }


  /** Meridian's own answer, written raw (there is no ServerResponse on an upgrade), then close. */
  #localReply(code: LocalReplyCode, extra: Record<string, string> = {}): void {
    if (this.#phase === 'done') return;
    this.#phase = 'done';
    this.#reason = code;
    const { status, message } = LOCAL_REPLIES[code];
    this.#status = status;
    const body = `meridian: ${message} (${code})\n`;
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
    this.#tracker.remove(this);
    this.#lease?.release();
    report(this.#ctx, {
      requestId: this.#requestId,
      client: this.#fwd?.clientIp ?? '',
      method: this.#method,
      host: this.#req.headers.host ?? '',
      path: this.#url,
      status: this.#status,
      reason: this.#reason,
      cluster: this.#cluster,
      endpoint: this.#host,
      attempts: this.#attempts,
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


