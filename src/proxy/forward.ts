import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Http2ServerRequest } from 'node:http2';
import type { Clock } from '../core/clock.js';
import type { HostState } from '../core/cluster.js';
import { FAILURE_OUTCOME, type RequestLifecycle, type RetryDecision } from '../core/request-lifecycle.js';
import type { RetryRefusal } from '../core/retry-budget.js';
import type { Outcome } from '../core/types.js';
import type { HttpListenerConfig } from '../config/index.js';
import { classifyUpstreamError, LOCAL_REPLIES, sendLocalReply, UpstreamError, type LocalReplyCode } from './errors.js';
import { downstreamResponseList, headerObject, hostHeaderOf, requestIdOf, upstreamRequestHeaders, type ForwardedInfo } from './headers.js';
import { admit, viaFor } from './admission.js';
import { requestTarget } from './request-target.js';
import type { ClusterRuntime, Runtime } from './runtime.js';
import { tryAnswered, tryFailed, tryFailureOf } from './try-outcome.js';
import { afterTurn, type TurnEndWaiter } from './turn-end.js';
import { GRPC, grpcMessage, grpcStatusOf, grpcTimeoutMs, isGrpc } from './grpc.js';

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
class Exchange implements TurnEndWaiter {
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
  #cluster: ClusterRuntime | undefined;
  #abortUpstream: ((err: Error) => void) | undefined;
  #bodyStream: Transform | undefined;
  /** The whole body, read before the first try: every try sends it. */
  #bodyBuffer: Buffer | undefined;
  /** What was read of a body before it outgrew the buffer: the first bytes of its stream. */
  #bodyPrefix: Buffer | undefined;
  /** Bytes of the upstream's answer (its head at least) have gone to the client: no other answer is possible. */
  #responded = false;
  /** The upstream's response head, held until its first body bytes or the end of the turn it came in. */
  #head: string[] | undefined;
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
  #requestTimer: NodeJS.Timeout | undefined;
  #rateTimer: NodeJS.Timeout | undefined;
  #backoffTimer: NodeJS.Timeout | undefined;
  /** The rest of the request body will not be read: the connection cannot carry another request. */
  #mustClose = false;
  #lc: RequestLifecycle | undefined;
  /** A gRPC call (h2, application/grpc): streamed at once both ways, answered in gRPC's terms. */
  readonly #grpc: boolean;
  #upstreamProtocol: ExchangeRecord['upstreamProtocol'];
  #upstreamTls: string | undefined;
  #grpcStatus: string | undefined;

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
    this.#fwd = this.#rt.trusted.forwarded(req.socket.remoteAddress, req.headers, this.#ctx.encrypted);
    const maxBody = this.#ctx.limits.max_body_bytes;
    if (maxBody > 0 && Number(req.headers['content-length'] ?? 0) > maxBody) return this.#localReply('payload_too_large');
    const admission = admit(this.#ctx, this.#rt, req, this.#url, this.#fwd.clientIp);
    if (!admission.ok) {
      // A client over a limit is not one to keep talking to: those replies close the connection.
      if (admission.close) this.#mustClose = true;
      return this.#localReply(admission.code, admission.headers);
    }
    const { route, cluster, lifecycle } = admission;
    this.#lc = lifecycle;
    this.#cluster = cluster;
    // At max_connections, requests queue in the pool for a connection; only so many may.
    if (cluster.pools.waiting >= cluster.config.circuit_breaker.max_pending_requests) return this.#localReply('circuit_open');
    const routeTimeoutMs = route.config.timeout ?? cluster.config.timeouts.request;
    // A gRPC deadline shorter than the route's is the request's timeout (Envoy's grpc_timeout_header_max).
    const deadlineMs = this.#grpc ? grpcTimeoutMs(req.headers['grpc-timeout']) : undefined;
    const timeoutMs = deadlineMs !== undefined && deadlineMs < routeTimeoutMs ? deadlineMs : routeTimeoutMs;
    lifecycle.deadlineIn(timeoutMs);
    this.#requestTimer = setTimeout(() => this.#onRequestTimeout(), timeoutMs);
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
    this.#dispatch(host);
  }

  /** The lifecycle granted a retry: the next try after its backoff (none after a failed connect). */
  #retry(): void {
    const delayMs = (this.#lc as RequestLifecycle).retryDelayMs;
    if (delayMs === 0) return this.#tryNext();
    this.#backoffTimer = setTimeout(() => this.#tryNext(), delayMs);
  }

  /**
   * One try at `host`, through the endpoint's undici pool: its dispatch API is the
   * leanest HTTP/1.1 client Node has (about 1.8x http.request in a bare proxy here), and
   * its handler callbacks map one to one onto what the forwarder needs to see.
   */
  #dispatch(host: HostState, fresh = false): void {
    const cluster = this.#cluster as ClusterRuntime;
    const lc = this.#lc as RequestLifecycle;
    const tryStartMs = this.#ctx.clock.nowMs();
    if (this.#upstreamStartMs === 0) this.#upstreamStartMs = tryStartMs;
    const headers = upstreamRequestHeaders(this.#req.headers, this.#fwd as ForwardedInfo, this.#requestId, viaFor(cluster, host));
    delete headers['expect'];
    let settled = false;
    let perTryTimer: NodeJS.Timeout | undefined;
    const latency = () => this.#ctx.clock.nowMs() - tryStartMs;
    const settle = (status: number | undefined, error?: Outcome['error']) => {
      if (settled) return;
      settled = true;
      clearTimeout(perTryTimer);
      const latencyMs = latency();
      lc.endTry(error !== undefined ? { error, latencyMs } : status !== undefined ? { status, latencyMs } : { latencyMs });
    };
    let abort: ((err: Error) => void) | undefined;
    let abortedEarly: Error | undefined;
    // An abort asked for while the request still waits in the pool is carried out when it starts.
    this.#abortUpstream = (err) => (abort ? abort(err) : (abortedEarly = err));
    // The request's own timer covers a try that its deadline, not its per-try timeout, ends.
    const tryDeadlineMs = lc.tryDeadlineMs();
    if (tryDeadlineMs < lc.deadlineMs) {
      const perTry = tryDeadlineMs - tryStartMs;
      perTryTimer = setTimeout(() => abort?.(new UpstreamError('timeout', true, `no response within the per-try timeout of ${perTry} ms`)), perTry);
    }
    const res = this.#res;
    let resume: (() => void) | undefined;
    let discard = false;
    // HTTP/2 upstreams (upstream_protocol h2, or auto by ALPN) take the same handler: see upstream-h2.ts.
    const h2 = cluster.h2?.pool(host.endpoint.address);
    // The keep-alive race resend goes on a connection of its own: another pooled one may be just as stale.
    const dispatcher = h2 ?? (fresh ? cluster.pools.fresh(host.endpoint.address) : cluster.pools.pool(host.endpoint.address));
    const done = () => {
      if (fresh && h2 === undefined) void dispatcher.close().catch(() => {});
    };
    const pools = cluster.pools;
    let waiting = true;
    pools.waiting++;
    const taken = () => {
      if (!waiting) return;
      waiting = false;
      pools.waiting--;
    };
    dispatcher.dispatch(
      { path: this.#url, method: this.#method as Dispatcher.HttpMethod, headers: headers as Record<string, string | string[]>, body: this.#bodyBuffer ?? (this.#hasBody ? this.#body() : null) },
      {
        onConnect: (a: (err?: Error) => void) => {
          taken();
          abort = a;
          if (abortedEarly) a(abortedEarly);
        },
        onHeaders: (status: number, raw: Buffer[], resumeFn: () => void, statusText: string) => {
          clearTimeout(perTryTimer);
          if (status < 200) return true;
          if (this.#finished) {
            settle(status);
            return false;
          }
          if (tryAnswered(lc, this.#ctx.hooks, cluster.name, status, latency(), this.#bodyReplayable) === 'retry') {
            discard = true;
            settled = true;
            this.#retry();
            return true;
          }
          resume = resumeFn;
          this.#status = status;
          this.#upstreamProtocol = h2?.protocol ?? 'http1';
          this.#upstreamTls = h2 !== undefined ? h2.tlsVersion : pools.tlsVersion(host.endpoint.address);
          this.#upstreamMs = this.#ctx.clock.nowMs() - this.#upstreamStartMs;
          const out = downstreamResponseList(raw, this.#requestId);
          if (this.#req.httpVersionMajor === 1 && this.#ctx.draining()) out.push('connection', 'close');
          // Held, not written: undici reports a malformed body (a bad chunk size) found in
          // the same read as the head only after this returns, and until the head is sent
          // the client can still get a 502 instead of a cut connection.
          this.#head = out;
          this.#headStatusText = statusText;
          this.#turnWaits++;
          afterTurn(this);
          return true;
        },
        onData: (chunk: Buffer) => {
          if (discard || this.#finished) return true;
          // node:http sends a head written just before the first chunk in the same packet.
          if (this.#head !== undefined) this.#sendHead();
          this.#bytesOut += chunk.length;
          const ok = res.write(chunk);
          if (!ok) res.once('drain', () => resume?.());
          return ok;
        },
        onComplete: (trailers: Buffer[] | null) => {
          done();
          if (discard) return;
          settle(this.#status);
          if (this.#finished) return;
          if (this.#head !== undefined) this.#sendHead();
          if (trailers && trailers.length > 0) {
            const list = trailers.map(String);
            if (this.#grpc) this.#grpcStatus = grpcStatusIn(list);
            // HTTP/2's compat API takes trailers as an object, node:http as [name, value] pairs.
            res.addTrailers(this.#req.httpVersionMajor === 1 ? pairs(list) : headerObject(list));
          }
          res.end();
          this.#finish();
        },
        onError: (err: Error) => {
          taken();
          done();
          if (discard) return;
          // Our own abort (the client left): not the upstream's fault.
          if (this.#finished && !(err instanceof UpstreamError)) return settle(undefined);
          const e = classifyUpstreamError(err);
          if (this.#finished || this.#responded) {
            settle(undefined, FAILURE_OUTCOME[tryFailureOf(e)]);
            if (this.#finished) return;
            // The answer was already streaming: nothing to do but cut the client off too.
            // The record keeps the status and the bytes the client got.
            this.#reason = 'upstream_abort';
            this.#cutOff(GRPC.UNAVAILABLE, 'the upstream connection was lost mid-call');
            return;
          }
          // A head still held never reached the client: this try failed like one that got no answer.
          this.#head = undefined;
          settled = true;
          clearTimeout(perTryTimer);
          this.#onTryFailed(e, tryFailed(lc, this.#ctx.hooks, cluster.name, e, latency(), this.#bodyReplayable));
        },
      } as unknown as Dispatcher.DispatchHandler,
    );
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
    const out = this.#head as string[];
    this.#head = undefined;
    this.#responded = true;
    if (this.#req.httpVersionMajor === 1) this.#res.writeHead(this.#status, this.#headStatusText, out);
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
  get #bodyStarted(): boolean {
    return this.#bodyStream?.readableDidRead ?? false;
  }

  /** The body can be sent (again): there is none, it was read whole, or no try has read from its stream. */
  get #bodyReplayable(): boolean {
    return !this.#hasBody || this.#bodyBuffer !== undefined || !this.#bodyStarted;
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
    this.#abortUpstream?.(new Error(`request aborted: ${code}`));
  }

  #onRequestTimeout(): void {
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
    this.#abortUpstream?.(new UpstreamError('timeout', true, 'request timeout'));
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
    // Finish first: undici reports the abort at once, and a finished exchange takes it
    // as ours, neither the endpoint's failure nor a reason to retry.
    this.#finish();
    this.#abortUpstream?.(new Error('the client went away'));
  }

  #localReply(code: LocalReplyCode, headers: Record<string, string> = {}): void {
    if (this.#finished) return;
    this.#reason = code;
    // gRPC's local replies are HTTP 200, their status in grpc-status (errors.ts).
    this.#status = this.#grpc ? 200 : LOCAL_REPLIES[code].status;
    if (this.#grpc) this.#grpcStatus = String(grpcStatusOf(code, LOCAL_REPLIES[code].status));
    // HTTP/1.1 only (h2 forbids connection headers): when draining, and when a request
    // body was never read, since its bytes would be mistaken for the next request.
    const bodyUnread = this.#hasBody && this.#bodyBuffer === undefined && !this.#bodyStarted;
    if (this.#req.httpVersionMajor === 1 && (this.#ctx.draining() || this.#mustClose || bodyUnread)) headers['connection'] = 'close';
    sendLocalReply(this.#res, code, this.#requestId, headers);
    this.#finish();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    clearTimeout(this.#requestTimer);
    clearInterval(this.#rateTimer);
    clearTimeout(this.#backoffTimer);
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

function pairs(raw: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i] as string, raw[i + 1] as string]);
  return out;
}
