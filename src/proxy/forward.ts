import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import type { Http2ServerRequest } from 'node:http2';
import type { Clock } from '../core/clock.js';
import type { HostState } from '../core/cluster.js';
import { FAILURE_OUTCOME, type RequestLifecycle, type RetryDecision } from '../core/request-lifecycle.js';
import type { RetryRefusal } from '../core/retry-budget.js';
import type { Outcome } from '../core/types.js';
import type { HttpListenerConfig } from '../config/index.js';
import { classifyUpstreamError, LOCAL_REPLIES, sendLocalReply, UpstreamError, type LocalReplyCode } from './errors.js';
import { downstreamResponseFields, downstreamResponseList, headerObject, hostHeaderOf, requestIdOf, upstreamRequestFields, upstreamRequestHeaders, type ForwardedInfo, type ResponseFields } from './headers.js';
import { admit, awaitSlot, OVERLOADED_HEADERS, viaFor } from './admission.js';
import { requestTarget } from './request-target.js';
import type { ClusterRuntime, Runtime } from './runtime.js';
import type { UpstreamPools } from './upstream-pool.js';
import type { EndpointH2 } from './upstream-h2.js';
import type { CompiledRoute } from './router.js';
import { tryAnswered, tryFailed, tryFailureOf, tryGrpcAnswered } from './try-outcome.js';
import { afterTurn, type TurnEndWaiter } from './turn-end.js';
import { GRPC, grpcMessage, grpcStatusOf, grpcTimeoutMs, isGrpc } from './grpc.js';
import type { ResponseHandler, TryControl } from '../http1/upstream-client.js';
import type { RequestFields } from '../http1/request-writer.js';
import { Http1ServerResponse } from '../http1/server-response.js';
import { hedgingFor, type HedgeEvent } from './hedge.js';
import { Deadline, type DeadlineOwner } from './deadlines.js';

/** What the forwarder reports, once per request: the access log line and the metrics. */
export interface ExchangeRecord {
  readonly listener: string;
  readonly requestId: string;
  readonly client: string;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly status: number;
  readonly cluster: string;
  readonly endpoint: string;
  readonly attempts: number;
  readonly upstreamMs: number | undefined;
  readonly totalMs: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly reason: LocalReplyCode | 'client_abort' | 'upstream_abort' | undefined;
  /** The answer came from a hedge (it answered first, or the first try failed while it ran). */
  readonly hedged: boolean;
  /** The answering try's protocol to its endpoint; absent when no try got an answer. */
  readonly upstreamProtocol?: 'http1' | 'h2' | undefined;
  /** The TLS version negotiated with that endpoint (its latest connection); absent: plaintext. */
  readonly upstreamTls?: string | undefined;
  /** gRPC calls: the grpc-status the client got (the backend's, or Meridian's own). */
  readonly grpcStatus?: string | undefined;
}

/** What a request or an upgrade tallied by its end: `report()` turns it into the record. */
export interface ExchangeTally {
  readonly requestId: string;
  readonly client: string;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly status: number;
  readonly reason: ExchangeRecord['reason'];
  readonly cluster: ClusterRuntime | undefined;
  readonly endpoint: HostState | undefined;
  readonly attempts: number;
  readonly upstreamMs: number | undefined;
  readonly startMs: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly hedged?: boolean;
  readonly upstreamProtocol?: ExchangeRecord['upstreamProtocol'];
  readonly upstreamTls?: string | undefined;
  readonly grpcStatus?: string | undefined;
}

/** Report an exchange once, at its end: a client that left is a 499 (nginx's convention). */
export function report(ctx: ListenerContext, t: ExchangeTally): void {
  ctx.hooks.done({
    listener: ctx.listener,
    requestId: t.requestId,
    client: t.client,
    method: t.method,
    host: t.host,
    path: t.path,
    status: t.reason === 'client_abort' ? 499 : t.status,
    cluster: t.cluster?.name ?? '',
    endpoint: t.endpoint?.endpoint.id ?? '',
    attempts: t.attempts,
    upstreamMs: t.upstreamMs,
    totalMs: ctx.clock.nowMs() - t.startMs,
    bytesIn: t.bytesIn,
    bytesOut: t.bytesOut,
    reason: t.reason,
    hedged: t.hedged === true,
    upstreamProtocol: t.upstreamProtocol,
    upstreamTls: t.upstreamTls,
    grpcStatus: t.grpcStatus,
  });
}

export interface RetryEvent {
  readonly cluster: string;
  readonly reason: string;
}

export interface ForwardHooks {
  done(record: ExchangeRecord): void;
  retry(event: RetryEvent): void;
  /** A failed try that `retry_on` covers was not tried again, and why. */
  retryRefused(cluster: string, reason: RetryRefusal): void;
  /** A hedge sent, answered first (its answer taken), or cancelled (the first try answered first, or the request ended). */
  hedge?(cluster: string, event: HedgeEvent): void;
}

export interface ListenerContext {
  readonly listener: string;
  readonly encrypted: boolean;
  readonly limits: HttpListenerConfig['limits'];
  readonly clock: Clock;
  readonly hooks: ForwardHooks;
  runtime(): Runtime;
  /** True once the process drains: responses ask clients to close their connections. */
  draining(): boolean;
}

/** Forward one request. Never throws: every failure becomes a reply or a closed socket. */
export function forward(ctx: ListenerContext, req: IncomingMessage, res: ServerResponse, expectContinue = false): void {
  new Exchange(ctx, req, res, expectContinue).start();
}

/**
 * One request's way through the proxy: route, admit (rate limit, then the request's
 * lifecycle: circuit breaker, retry budget), try, maybe retry (as the lifecycle decides,
 * after its backoff), stream the answer back, report once. The mechanism only: every
 * retry rule is the lifecycle's (src/core/request-lifecycle.ts), reached through
 * try-outcome.ts.
 */
class Exchange implements TurnEndWaiter, DeadlineOwner {
  readonly #ctx: ListenerContext;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #expectContinue: boolean;
  readonly #startMs: number;
  readonly #rt: Runtime;
  readonly #requestId: string;
  readonly #method: string;
  #url: string;
  readonly #hasBody: boolean;
  #fwd: ForwardedInfo | undefined;
  /** The host the request names (requestTarget's). */
  #host = '';
  /** The fields as text for an HTTP/1.1 upstream (not through another region), kept for the next try. */
  #fields: RequestFields | undefined;
  #cluster: ClusterRuntime | undefined;
  /** The try in flight (or the last one). */
  #attempt: UpstreamAttempt | undefined;
  #bodyStream: Transform | undefined;
  /** The whole body, read before the first try: every try sends it. */
  #bodyBuffer: Buffer | undefined;
  /** What was read of a body before it outgrew the buffer: the first bytes of its stream. */
  #bodyPrefix: Buffer | undefined;
  /** Bytes of the upstream's answer (its head at least) have gone to the client: no other answer is possible. */
  #responded = false;
  /** The upstream's response head, held until its first body bytes or the end of the turn it came in. */
  #head: string[] | ResponseFields | undefined;
  #headStatusText = '';
  /** afterTurn() calls still to come: a retry's head may arrive before the failed try's call. */
  #turnWaits = 0;
  #finished = false;
  #upstreamStartMs = 0;
  #upstreamMs: number | undefined;
  #bytesIn = 0;
  #bytesOut = 0;
  #status = 0;
  #reason: ExchangeRecord['reason'];
  /** The request's timeout (route, cluster or gRPC deadline). */
  #deadline: Deadline | undefined;
  #rateTimer: NodeJS.Timeout | undefined;
  #backoffTimer: NodeJS.Timeout | undefined;
  /** The rest of the request body will not be read: the connection cannot carry another request. */
  #mustClose = false;
  #lc: RequestLifecycle | undefined;
  /** The hedge in flight beside `#attempt`, until one of them answers or fails. */
  #hedge: UpstreamAttempt | undefined;
  #hedgeTimer: NodeJS.Timeout | undefined;
  /** The answer is the hedge's. */
  #hedged = false;
  /** A gRPC call (h2, application/grpc): streamed at once both ways, answered in gRPC's terms. */
  readonly #grpc: boolean;
  #upstreamProtocol: ExchangeRecord['upstreamProtocol'];
  #upstreamTls: string | undefined;
  #grpcStatus: string | undefined;
  /** A gRPC call that `retry_on` may retry on its grpc-status: its body as it streamed, while within grpc_buffer_bytes. */
  #grpcCopy: Buffer[] | undefined;
  #grpcCopyLimit = 0;

  constructor(ctx: ListenerContext, req: IncomingMessage, res: ServerResponse, expectContinue: boolean) {
    this.#ctx = ctx;
    this.#req = req;
    this.#res = res;
    this.#expectContinue = expectContinue;
    this.#startMs = ctx.clock.nowMs();
    this.#rt = ctx.runtime();
    this.#requestId = requestIdOf(req.headers);
    this.#method = req.method ?? 'GET';
    this.#url = req.url ?? '/';
    const cl = req.headers['content-length'];
    // HTTP/2 frames bodies itself (often with no content-length): a stream that did not
    // end with its headers carries a body.
    const h2 = (req as unknown as Partial<Http2ServerRequest>).stream;
    this.#hasBody = h2 !== undefined ? !h2.endAfterHeaders : req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
    this.#grpc = h2 !== undefined && isGrpc(req.headers);
  }

  start(): void {
    const req = this.#req;
    const res = this.#res;
    res.on('close', () => this.#onDownstreamClose());
    const target = requestTarget(req);
    if (typeof target === 'string') return this.#refuse(target);
    this.#url = target.url;
    this.#host = target.host;
    this.#fwd = this.#rt.trusted.forwarded(req.socket.remoteAddress, req.headers, this.#ctx.encrypted);
    const maxBody = this.#ctx.limits.max_body_bytes;
    if (maxBody > 0 && Number(req.headers['content-length'] ?? 0) > maxBody) return this.#localReply('payload_too_large');
    const admission = admit(this.#ctx, this.#rt, req, this.#url, this.#fwd.clientIp, true);
    if (!admission.ok) {
      // A client over a limit is not one to keep talking to: those replies close the connection.
      if (admission.close) this.#mustClose = true;
      return this.#localReply(admission.code, admission.headers);
    }
    const { route, cluster, lifecycle } = admission;
    this.#lc = lifecycle;
    this.#cluster = cluster;
    if (admission.queued === true) {
      return awaitSlot(lifecycle, cluster, this.#ctx.clock, (v) => (v === 'admitted' ? this.#admitted(route, cluster) : this.#localReply(v, v === 'overloaded' ? OVERLOADED_HEADERS : {})));
    }
    this.#admitted(route, cluster);
  }

  /** Past admission (at once, or after waiting for a slot): the request's deadline, then its body and first try. */
  #admitted(route: CompiledRoute, cluster: ClusterRuntime): void {
    // At max_connections, requests queue in the pool for a connection; only so many may.
    if (cluster.pools.waiting >= cluster.config.circuit_breaker.max_pending_requests) return this.#localReply('circuit_open');
    const routeTimeoutMs = route.config.timeout ?? cluster.config.timeouts.request;
    // A gRPC deadline shorter than the route's is the request's timeout (Envoy's grpc_timeout_header_max).
    const deadlineMs = this.#grpc ? grpcTimeoutMs(this.#req.headers['grpc-timeout']) : undefined;
    const timeoutMs = deadlineMs !== undefined && deadlineMs < routeTimeoutMs ? deadlineMs : routeTimeoutMs;
    const lc = this.#lc as RequestLifecycle;
    lc.hedging = hedgingFor(route.config);
    lc.deadlineIn(timeoutMs);
    this.#deadline = new Deadline(this);
    this.#deadline.set(timeoutMs);
    if (this.#grpc && ((route.retry ?? cluster.retry).grpcStatuses?.size ?? 0) > 0) {
      this.#grpcCopy = [];
      this.#grpcCopyLimit = (route.config.retries ?? cluster.config.retries).grpc_buffer_bytes;
    }
    // Expect: 100-continue is answered here: the body comes to Meridian, which sends it on.
    if (this.#expectContinue) this.#res.writeContinue();
    // A gRPC stream's messages go on as they come: buffering would hold a bidirectional call's first message.
    this.#sendWhenReady(this.#grpc ? 0 : route.config.request_body_buffer_bytes);
  }

  /**
   * Start the first try as soon as the body allows: at once without one; once it is read
   * whole, or has outgrown the route's buffer, when it is buffered (any body not declared
   * larger than the buffer); once its first chunk has parsed when a chunked body streams.
   */
  #sendWhenReady(bufferBytes: number): void {
    if (!this.#hasBody) return this.#tryNext();
    const req = this.#req;
    // A streaming call's client sends when it has something to say: no minimum rate.
    if (!this.#grpc) this.#watchBodyRate();
    const cl = req.headers['content-length'];
    if (bufferBytes > 0 && (cl === undefined || Number(cl) <= bufferBytes)) return this.#bufferBody(bufferBytes);
    if (req.headers['transfer-encoding'] === undefined) return this.#tryNext();
    // A chunked body is framed by the client: wait until its first chunk parses before
    // anything goes upstream, so a malformed first chunk (the stuff of request smuggling)
    // is refused (400, by the parser) without a backend seeing even the headers.
    const go = () => {
      req.off('readable', go);
      req.off('end', go);
      if (!this.#finished) this.#tryNext();
    };
    req.once('readable', go);
    req.once('end', go);
  }

  /**
   * Read the body before anything goes upstream, so a malformed chunk anywhere in it is
   * refused (400, by the parser) with no backend having seen a byte. A body that ends
   * within `limit` bytes is sent whole, with Content-Length, and can be sent again by a
   * retry. One that grows past it streams: what was read (the first chunks, up to the one
   * that crossed the limit) goes first, the rest follows as it arrives.
   */
  #bufferBody(limit: number): void {
    const req = this.#req;
    const maxBody = this.#ctx.limits.max_body_bytes;
    const chunks: Buffer[] = [];
    const stop = () => {
      req.off('data', onData);
      req.off('end', onEnd);
    };
    const onData = (chunk: Buffer) => {
      // Answered already (a timeout, the client gone): the rest is not worth holding.
      if (this.#finished) return stop();
      this.#bytesIn += chunk.length;
      if (maxBody > 0 && this.#bytesIn > maxBody) {
        stop();
        return this.#abortRequest('payload_too_large');
      }
      chunks.push(chunk);
      if (this.#bytesIn <= limit) return;
      stop();
      req.pause();
      this.#bodyPrefix = Buffer.concat(chunks);
      if (!this.#finished) this.#tryNext();
    };
    const onEnd = () => {
      stop();
      this.#bodyBuffer = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      if (!this.#finished) this.#tryNext();
    };
    req.on('data', onData);
    req.on('end', onEnd);
  }

  #tryNext(): void {
    if (this.#finished) return;
    const host = (this.#lc as RequestLifecycle).startTry();
    if (host === undefined) return this.#localReply('no_healthy_endpoint');
    // A retry after an adopted hedge: the answer will be the new try's.
    this.#hedged = false;
    this.#dispatch(host);
  }

  /** The lifecycle granted a retry: the next try after its backoff (none after a failed connect). */
  #retry(): void {
    const delayMs = (this.#lc as RequestLifecycle).retryDelayMs;
    if (delayMs === 0) return this.#tryNext();
    this.#backoffTimer = setTimeout(() => this.#tryNext(), delayMs);
  }

  /**
   * One try at `host`, through the endpoint's pool (Meridian's own HTTP/1.1 client,
   * src/http1/upstream-client.ts). The try is an object of its own (UpstreamAttempt), so
   * that a hedge runs beside it with the same code (`#send`).
   */
  #dispatch(host: HostState, fresh = false): void {
    const attempt = this.#send(host, fresh);
    if (this.#upstreamStartMs === 0) this.#upstreamStartMs = attempt.startMs;
    this.#attempt = attempt;
    this.#armHedge();
  }

  #send(host: HostState, fresh: boolean): UpstreamAttempt {
    const cluster = this.#cluster as ClusterRuntime;
    const lc = this.#lc as RequestLifecycle;
    // HTTP/2 upstreams (upstream_protocol h2, or auto by ALPN) take the same attempt: see upstream-h2.ts.
    const h2 = cluster.h2?.pool(host.endpoint.address);
    const via = viaFor(cluster, host);
    const attempt = new UpstreamAttempt(this, cluster.pools, h2, host.endpoint.address, this.#ctx.clock.nowMs(), fresh);
    // The request's own timer covers a try that its deadline, not its per-try timeout, ends.
    const tryDeadlineMs = lc.tryDeadlineMs();
    if (tryDeadlineMs < lc.deadlineMs) attempt.armPerTryTimeout(tryDeadlineMs - attempt.startMs);
    cluster.pools.waiting++;
    const body = this.#bodyBuffer ?? (this.#hasBody ? this.#body() : null);
    if (h2 !== undefined) h2.dispatch({ method: this.#method, path: this.#url, headers: this.#headerObject(via), body }, attempt);
    else cluster.pools.dispatch(host.endpoint.address, { method: this.#method, path: this.#url, headers: this.#http1Fields(via) ?? this.#headerObject(via), body }, attempt, fresh);
    return attempt;
  }

  /** The fields sent upstream, as an object: an HTTP/2 request's, or a try's that the text path does not take. */
  #headerObject(via: string | undefined): OutgoingHttpHeaders {
    const headers = upstreamRequestHeaders(this.#req.headers, this.#fwd as ForwardedInfo, this.#requestId, via);
    delete headers['expect'];
    return headers;
  }

  /** An HTTP/1.x request's fields as text for an HTTP/1.1 upstream, built from the fields as sent; undefined where only the object path applies. */
  #http1Fields(via: string | undefined): RequestFields | undefined {
    if (this.#req.httpVersionMajor !== 1) return undefined;
    if (via !== undefined) return upstreamRequestFields(this.#req.rawHeaders, this.#host, this.#fwd as ForwardedInfo, this.#requestId, via);
    return (this.#fields ??= upstreamRequestFields(this.#req.rawHeaders, this.#host, this.#fwd as ForwardedInfo, this.#requestId, undefined));
  }

  // --- Hedging: a second try beside the first, as the lifecycle decides (docs/overload.md).

  /**
   * The first try started (or was resent, as the simulator also re-arms it): its hedge goes
   * after the lifecycle's delay unless a head comes first. Only a body known whole can be
   * sent twice at once: none, or buffered.
   */
  #armHedge(): void {
    clearTimeout(this.#hedgeTimer);
    const delayMs = (this.#lc as RequestLifecycle).hedgeDelayMs();
    if (delayMs === Infinity || (this.#hasBody && this.#bodyBuffer === undefined)) return;
    this.#hedgeTimer = setTimeout(() => this.#startHedge(), delayMs);
  }

  #startHedge(): void {
    this.#hedgeTimer = undefined;
    if (this.#finished) return;
    const host = (this.#lc as RequestLifecycle).startHedge();
    if (host === undefined) return;
    this.#ctx.hooks.hedge?.((this.#cluster as ClusterRuntime).name, 'started');
    this.#hedge = this.#send(host, false);
  }

  /** The other try of the race is given up: its connection closed (its answer is unread), its outcome the lifecycle's cancel. */
  #cancelHedge(): void {
    const hedge = this.#hedge as UpstreamAttempt;
    this.#hedge = undefined;
    hedge.cancel(new Error('hedge race lost'));
    (this.#lc as RequestLifecycle).cancelHedge();
    this.#ctx.hooks.hedge?.((this.#cluster as ClusterRuntime).name, 'cancelled');
  }

  /**
   * While a hedge runs, a try's head or failure first settles the race. False: `a`'s event
   * is its own to handle as any try's (it won, or the hedge was adopted and it is the
   * request's try); true: nothing more to do with it (a failed hedge, the first try failed
   * and the hedge adopted in its place).
   */
  #race(a: UpstreamAttempt, outcome: Outcome): boolean {
    const hedge = this.#hedge as UpstreamAttempt;
    const first = this.#attempt as UpstreamAttempt;
    this.#hedge = undefined;
    switch ((this.#lc as RequestLifecycle).settleHedgeRace(a === hedge, outcome)) {
      case 'hedge_failed':
        hedge.settled = true;
        hedge.clearTimer();
        return true;
      case 'hedge_won':
        first.cancel(new Error('hedge race lost'));
        this.#attempt = hedge;
        this.#hedged = true;
        this.#ctx.hooks.hedge?.((this.#cluster as ClusterRuntime).name, 'won');
        return false;
      case 'first_failed':
        a.settled = true;
        a.clearTimer();
        this.#attempt = hedge;
        this.#hedged = true;
        return true;
      case 'first_won':
        hedge.cancel(new Error('hedge race lost'));
        this.#ctx.hooks.hedge?.((this.#cluster as ClusterRuntime).name, 'cancelled');
        return false;
    }
  }

  /** The attempt's request left the pool's queue (it got a connection, or failed without one). */
  attemptTaken(): void {
    (this.#cluster as ClusterRuntime).pools.waiting--;
  }

  /** The lifecycle's end of a try: its outcome reported to the cluster (once per try). */
  attemptSettle(a: UpstreamAttempt, status: number | undefined, error?: Outcome['error']): void {
    if (a.settled) return;
    a.settled = true;
    a.clearTimer();
    const latencyMs = this.#ctx.clock.nowMs() - a.startMs;
    (this.#lc as RequestLifecycle).endTry(error !== undefined ? { error, latencyMs } : status !== undefined ? { status, latencyMs } : { latencyMs });
  }

  attemptHeaders(a: UpstreamAttempt, status: number, raw: readonly string[], statusText: string): boolean {
    a.clearTimer();
    const cluster = this.#cluster as ClusterRuntime;
    const lc = this.#lc as RequestLifecycle;
    if (this.#finished) {
      this.attemptSettle(a, status);
      return false;
    }
    clearTimeout(this.#hedgeTimer);
    if (this.#hedge !== undefined) {
      const latencyMs = this.#ctx.clock.nowMs() - a.startMs;
      if (this.#race(a, { status, latencyMs })) {
        // A failed answer's body is read and dropped, so the connection can carry another request.
        a.discard = true;
        return true;
      }
    }
    if (tryAnswered(lc, this.#ctx.hooks, cluster.name, status, this.#ctx.clock.nowMs() - a.startMs, this.#bodyReplayable()) === 'retry') {
      // Its body is read and dropped, so the connection can carry another request.
      a.discard = true;
      a.settled = true;
      this.#retry();
      return true;
    }
    this.#status = status;
    this.#upstreamProtocol = a.protocol;
    this.#upstreamTls = a.tlsVersion;
    this.#upstreamMs = this.#ctx.clock.nowMs() - this.#upstreamStartMs;
    // An HTTP/1.1 answer to an HTTP/1.1 client goes on as text; the list (and, for an
    // HTTP/2 client, a header object) otherwise, or when its Connection names fields to drop.
    const fields = this.#res instanceof Http1ServerResponse && a.protocol === 'http1' ? downstreamResponseFields(raw, this.#requestId) : undefined;
    let out: string[] | ResponseFields;
    if (fields !== undefined) out = fields;
    else {
      out = downstreamResponseList(raw, this.#requestId);
      if (this.#req.httpVersionMajor === 1 && this.#ctx.draining()) out.push('connection', 'close');
    }
    // Held, not written: a malformed body (a bad chunk size) found in the same read as the
    // head is reported right after this returns, and until the head is sent the client
    // can still get a 502 instead of a cut connection.
    this.#head = out;
    this.#headStatusText = statusText;
    this.#turnWaits++;
    afterTurn(this);
    return true;
  }

  attemptData(a: UpstreamAttempt, chunk: Buffer, view: boolean): boolean {
    if (a.discard || this.#finished) return true;
    // One write for the head and the first chunk.
    if (this.#head !== undefined) this.#sendHead();
    this.#bytesOut += chunk.length;
    const res = this.#res;
    const ok = !view ? res.write(chunk) : res instanceof Http1ServerResponse ? res.writeView(chunk) : res.write(Buffer.from(chunk));
    if (!ok) res.once('drain', a.resumeOnDrain);
    return ok;
  }

  attemptComplete(a: UpstreamAttempt, trailers: readonly string[]): void {
    if (a.discard) return;
    // A gRPC answer with no message, none of it sent on: its grpc-status may be retried.
    if (this.#grpc && this.#head !== undefined && this.#bytesOut === 0 && !this.#finished && this.#retriedGrpc(a, trailers)) return;
    this.attemptSettle(a, this.#status);
    if (this.#finished) return;
    if (this.#head !== undefined) this.#sendHead();
    if (trailers.length > 0) {
      if (this.#grpc) this.#grpcStatus = grpcStatusIn(trailers);
      // HTTP/2's compat API takes trailers as an object, node:http as [name, value] pairs.
      this.#res.addTrailers(this.#req.httpVersionMajor === 1 ? pairs(trailers) : headerObject(trailers));
    }
    this.#res.end();
    this.#finish();
  }

  attemptError(a: UpstreamAttempt, err: Error): void {
    if (a.discard) return;
    // Our own abort (the client left): not the upstream's fault.
    if (this.#finished && !(err instanceof UpstreamError)) return this.attemptSettle(a, undefined);
    const e = classifyUpstreamError(err);
    if (this.#finished || this.#responded) {
      this.attemptSettle(a, undefined, FAILURE_OUTCOME[tryFailureOf(e)]);
      if (this.#finished) return;
      // The answer was already streaming: nothing to do but cut the client off too, once
      // what was written of it (the chunks parsed before the error, in the same read) has
      // left: the response's writes are corked until the end of this tick.
      // The record keeps the status and the bytes the client got.
      this.#reason = 'upstream_abort';
      if (this.#grpc) return this.#cutOff(GRPC.UNAVAILABLE, 'the upstream connection was lost mid-call');
      const res = this.#res;
      setImmediate(() => res.destroy());
      this.#finish();
      return;
    }
    // A head still held never reached the client: this try failed like one that got no answer.
    this.#head = undefined;
    clearTimeout(this.#hedgeTimer);
    if (this.#hedge !== undefined && this.#race(a, { error: FAILURE_OUTCOME[tryFailureOf(e)], latencyMs: this.#ctx.clock.nowMs() - a.startMs })) return;
    a.settled = true;
    a.clearTimer();
    const cluster = this.#cluster as ClusterRuntime;
    this.#onTryFailed(e, tryFailed(this.#lc as RequestLifecycle, this.#ctx.hooks, cluster.name, e, this.#ctx.clock.nowMs() - a.startMs, this.#bodyReplayable()));
  }

  /** The lifecycle retries the answer's grpc-status (retry_on): the next try, with the body held whole. */
  #retriedGrpc(a: UpstreamAttempt, trailers: readonly string[]): boolean {
    const grpcStatus = Number(grpcStatusIn(trailers) ?? 0);
    if (grpcStatus === 0) return false;
    const replay = this.#grpcReplay();
    const cluster = this.#cluster as ClusterRuntime;
    const d = tryGrpcAnswered(this.#lc as RequestLifecycle, this.#ctx.hooks, cluster.name, this.#status, grpcStatus, this.#ctx.clock.nowMs() - a.startMs, replay !== undefined);
    if (d !== 'retry') return false;
    a.settled = true;
    this.#head = undefined;
    if (replay !== null && replay !== undefined) this.#bodyBuffer = replay;
    this.#retry();
    return true;
  }

  /** The body to send a gRPC call again with: null for none, undefined when it cannot be (not complete, or past the bound). */
  #grpcReplay(): Buffer | null | undefined {
    if (!this.#hasBody) return null;
    if (this.#bodyBuffer !== undefined) return this.#bodyBuffer;
    const copy = this.#grpcCopy;
    if (copy === undefined || !this.#req.readableEnded) return undefined;
    return Buffer.concat(copy);
  }

  /**
   * The turn the response head arrived in is over and no body came with it: send the head
   * alone, now (node:http would hold it until the first body write), so a stream whose
   * first bytes come later (SSE, long polls) starts at once.
   */
  turnEnded(): void {
    // Calls come in order: the last one is for the turn the current head arrived in.
    if (--this.#turnWaits > 0 || this.#head === undefined || this.#finished) return;
    this.#sendHead();
    this.#res.flushHeaders();
  }

  #sendHead(): void {
    const out = this.#head as string[] | ResponseFields;
    this.#head = undefined;
    this.#responded = true;
    if (!Array.isArray(out)) (this.#res as unknown as Http1ServerResponse).writeHeadFields(this.#status, this.#headStatusText, out.text, out.contentLength, out.date, this.#ctx.draining());
    else if (this.#req.httpVersionMajor === 1) this.#res.writeHead(this.#status, this.#headStatusText, out);
    // HTTP/2 has no reason phrase, and its compat API wants a header object.
    else this.#res.writeHead(this.#status, headerObject(out));
  }

  /**
   * The request body as streamed upstream: counted, and checked against the body limit,
   * on its way through. One stream for all tries: a retry may reuse it only while no try
   * has read from it yet.
   */
  #body(): Transform {
    if (this.#bodyStream) return this.#bodyStream;
    const maxBody = this.#ctx.limits.max_body_bytes;
    const body = new Transform({
      transform: (chunk: Buffer, _enc, done) => {
        this.#bytesIn += chunk.length;
        if (maxBody > 0 && this.#bytesIn > maxBody) {
          this.#abortRequest('payload_too_large');
          return done();
        }
        const copy = this.#grpcCopy;
        if (copy !== undefined) {
          // Past the bound the copy is dropped: this call is not retried.
          if (this.#bytesIn <= this.#grpcCopyLimit) copy.push(chunk);
          else this.#grpcCopy = undefined;
        }
        done(null, chunk);
      },
    });
    this.#bodyStream = body;
    // Read (and counted) while buffering, before the body outgrew the buffer.
    if (this.#bodyPrefix !== undefined) body.push(this.#bodyPrefix);
    this.#bodyPrefix = undefined;
    this.#req.pipe(body);
    return body;
  }

  /**
   * Slow-body clients (slowloris on the body) hold a connection, and while a body streams
   * an upstream one too: after a second's grace, a body arriving slower than the minimum
   * rate is cut off, whether it is buffered or streamed.
   */
  #watchBodyRate(): void {
    const minRate = this.#ctx.limits.min_body_rate_bytes_per_second;
    if (minRate === 0) return;
    this.#req.once('end', () => clearInterval(this.#rateTimer));
    const startedMs = this.#ctx.clock.nowMs();
    this.#rateTimer = setInterval(() => {
      const elapsedS = (this.#ctx.clock.nowMs() - startedMs) / 1000;
      if (elapsedS >= 1 && this.#bytesIn < minRate * elapsedS) this.#abortRequest('request_timeout');
    }, 1000);
    this.#rateTimer.unref();
  }

  /** Whether any try has taken bytes of the body's stream: then it cannot be sent again. */
  #bodyStarted(): boolean {
    return this.#bodyStream?.readableDidRead ?? false;
  }

  /** The body can be sent (again): there is none, it was read whole, or no try has read from its stream. */
  #bodyReplayable(): boolean {
    return !this.#hasBody || this.#bodyBuffer !== undefined || !this.#bodyStarted();
  }

  /** A try failed before any of its answer was sent on: what the lifecycle decided, carried out. */
  #onTryFailed(e: UpstreamError, d: RetryDecision): void {
    // The keep-alive race: the dead connection is gone, so the resend goes on a fresh one.
    if (d === 'resend') return this.#dispatch((this.#lc as RequestLifecycle).resendTry(), true);
    if (d === 'retry') return this.#retry();
    this.#localReply(e.code);
  }

  #refuse(code: LocalReplyCode): void {
    this.#mustClose = true;
    this.#localReply(code);
  }

  /** The client broke a body limit mid-stream: stop forwarding, answer if still possible, close. */
  #abortRequest(code: 'payload_too_large' | 'request_timeout'): void {
    if (this.#finished) return;
    clearInterval(this.#rateTimer);
    this.#mustClose = true;
    this.#req.unpipe();
    this.#bodyStream?.destroy();
    // Answer first, then cut the upstream request: its error then finds the exchange
    // finished, and a client breaking a limit is not counted against the endpoint.
    if (this.#responded) {
      this.#reason = code;
      this.#res.destroy();
      this.#finish();
    } else {
      this.#localReply(code);
    }
    this.#attempt?.abort(new Error(`request aborted: ${code}`));
  }

  /** The request's timeout passed. */
  onDeadline(): void {
    if (this.#finished) return;
    // Still reading a body before the first try (buffering it, or waiting for its first
    // chunk): nothing went upstream, the client was too slow.
    if ((this.#lc?.attempt ?? 0) === 0) return this.#abortRequest('request_timeout');
    // Finish first so the upstream's error is not taken for a retryable failure; it still
    // counts as a timeout against the endpoint.
    if (this.#responded) {
      this.#reason = 'timeout';
      this.#cutOff(GRPC.DEADLINE_EXCEEDED, 'the deadline passed mid-call');
    } else {
      this.#localReply('timeout');
    }
    this.#attempt?.abort(new UpstreamError('timeout', true, 'request timeout'));
  }

  /**
   * End an answer already streaming: a gRPC call gets the status in trailers (what a gRPC
   * client reads; a reset would be INTERNAL to it), anything else is cut off.
   */
  #cutOff(grpcStatus: number, message: string): void {
    if (this.#grpc && !this.#res.writableEnded) {
      if (this.#head !== undefined) this.#sendHead();
      this.#grpcStatus = String(grpcStatus);
      this.#res.addTrailers({ 'grpc-status': String(grpcStatus), 'grpc-message': grpcMessage(`meridian: ${message}`) });
      this.#res.end();
    } else {
      this.#res.destroy();
    }
    this.#finish();
  }

  #onDownstreamClose(): void {
    if (this.#finished) return;
    // The client went away before its answer was complete: free everything upstream.
    this.#reason = 'client_abort';
    // Finish first: the client reports the abort at once, and a finished exchange takes it
    // as ours, neither the endpoint's failure nor a reason to retry.
    this.#finish();
    this.#attempt?.abort(new Error('the client went away'));
  }

  #localReply(code: LocalReplyCode, headers: Record<string, string> = {}): void {
    if (this.#finished) return;
    this.#reason = code;
    // gRPC's local replies are HTTP 200, their status in grpc-status (errors.ts).
    this.#status = this.#grpc ? 200 : LOCAL_REPLIES[code].status;
    if (this.#grpc) this.#grpcStatus = String(grpcStatusOf(code, LOCAL_REPLIES[code].status));
    // HTTP/1.1 only (h2 forbids connection headers): when draining, and when a request
    // body was never read, since its bytes would be mistaken for the next request.
    const bodyUnread = this.#hasBody && this.#bodyBuffer === undefined && !this.#bodyStarted();
    if (this.#req.httpVersionMajor === 1 && (this.#ctx.draining() || this.#mustClose || bodyUnread)) headers['connection'] = 'close';
    sendLocalReply(this.#res, code, this.#requestId, headers);
    this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#deadline?.clear();
    clearInterval(this.#rateTimer);
    clearTimeout(this.#backoffTimer);
    clearTimeout(this.#hedgeTimer);
    if (this.#hedge !== undefined) this.#cancelHedge();
    this.#lc?.end();
    report(this.#ctx, {
      requestId: this.#requestId,
      client: this.#fwd?.clientIp ?? '',
      method: this.#method,
      host: hostHeaderOf(this.#req.headers) ?? '',
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
      hedged: this.#hedged,
      upstreamProtocol: this.#upstreamProtocol,
      upstreamTls: this.#upstreamTls,
      grpcStatus: this.#grpcStatus,
    });
  }
}

/** grpc-status in a flat [name, value, ...] list (trailers), if there. */
function grpcStatusIn(list: readonly string[]): string | undefined {
  for (let i = 0; i + 1 < list.length; i += 2) if ((list[i] as string).toLowerCase() === 'grpc-status') return list[i + 1];
  return undefined;
}

/**
 * One try of an exchange at one endpoint: the pool's response handler. It holds what is
 * the try's own (its start, its per-try timer, whether its outcome was reported, whether
 * its answer is being thrown away for a retry) and hands every event to its exchange.
 */
class UpstreamAttempt implements ResponseHandler, DeadlineOwner {
  readonly #exchange: Exchange;
  readonly #pools: UpstreamPools;
  /** The endpoint's HTTP/2 sessions, when the cluster speaks h2 or auto: the try goes there, not to the pool. */
  readonly #h2: EndpointH2 | undefined;
  readonly #address: string;
  readonly startMs: number;
  readonly fresh: boolean;
  /** Its outcome went to the lifecycle. */
  settled = false;
  /** Its answer is being retried: what still comes of it is dropped. */
  discard = false;
  #waiting = true;
  #try: TryControl | undefined;
  #tryTimeout: Deadline | undefined;
  #tryTimeoutMs = 0;
  /** Bound once per try: the downstream drained, read the upstream on. */
  readonly resumeOnDrain = (): void => this.#try?.resume();

  constructor(exchange: Exchange, pools: UpstreamPools, h2: EndpointH2 | undefined, address: string, startMs: number, fresh: boolean) {
    this.#exchange = exchange;
    this.#pools = pools;
    this.#h2 = h2;
    this.#address = address;
    this.startMs = startMs;
    this.fresh = fresh;
  }

  armPerTryTimeout(ms: number): void {
    this.#tryTimeoutMs = ms;
    this.#tryTimeout = new Deadline(this);
    this.#tryTimeout.set(ms);
  }

  /** The per-try timeout passed. */
  onDeadline(): void {
    this.abort(new UpstreamError('timeout', true, `no response within the per-try timeout of ${this.#tryTimeoutMs} ms`));
  }

  clearTimer(): void {
    this.#tryTimeout?.clear();
  }

  /** Given up for the other try of a hedge race: nothing of it is reported or passed on. */
  cancel(err: Error): void {
    this.settled = true;
    this.discard = true;
    this.clearTimer();
    this.abort(err);
  }

  /** End the try: on its connection, or (still waiting for one) in the pool's queue. */
  abort(err: Error): void {
    if (this.#try !== undefined) this.#try.abort(err);
    else if (this.#h2 !== undefined) this.#h2.cancel(this, err);
    else this.#pools.cancel(this.#address, this, err);
  }

  /** The protocol the try went out in (an `auto` endpoint may have chosen HTTP/1.1). */
  get protocol(): 'http1' | 'h2' {
    return this.#h2?.protocol ?? 'http1';
  }

  /** The TLS version negotiated with the endpoint (its latest connection); undefined: plaintext. */
  get tlsVersion(): string | undefined {
    return this.#h2 !== undefined && this.#h2.protocol === 'h2' ? this.#h2.tlsVersion : this.#pools.tlsVersion(this.#address);
  }

  #taken(): void {
    if (!this.#waiting) return;
    this.#waiting = false;
    this.#exchange.attemptTaken();
  }

  onConnect(t: TryControl): void {
    this.#taken();
    this.#try = t;
  }

  onHeaders(status: number, raw: readonly string[], reason: string): boolean {
    return this.#exchange.attemptHeaders(this, status, raw, reason);
  }

  onData(chunk: Buffer, view: boolean): boolean {
    return this.#exchange.attemptData(this, chunk, view);
  }

  onComplete(trailers: readonly string[]): void {
    this.#exchange.attemptComplete(this, trailers);
  }

  onError(err: Error): void {
    this.#taken();
    this.#exchange.attemptError(this, err);
  }
}

function pairs(raw: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i] as string, raw[i + 1] as string]);
  return out;
}
