import type { Socket } from 'node:net';
import { keepRead, readAccepted, readAsStream } from './read-buffer.js';
import { BodyDecoder, Framing, type BodySink } from './body-decoder.js';
import { FAILED, HeadParser, NEED_MORE, type MessageHead } from './head-parser.js';
import { Http1ServerRequest, type BodySource } from './server-request.js';
import { Http1ServerResponse, type ResponseSink } from './server-response.js';
import { handleRead } from './read-time.js';

/*
 * Meridian's HTTP/1.1 server: client connections parsed by head-parser.ts and
 * body-decoder.ts straight off the socket's reads, one request at a time per connection
 * (a pipelined request waits, unread, until the answer before it is written, as nginx
 * does), the answer written by server-response.ts. It replaces node:http on the HTTP/1.1
 * path for the same reason the upstream client replaced undici: node:http's layers
 * (llhttp's callbacks into JavaScript, IncomingMessage and ServerResponse as full streams,
 * its own timers) cost more per request than the whole proxy logic. The parser is strict
 * where node:http is lenient (docs/http1-engine.md), so the request-line scanner
 * node:http needed (a second pass over every byte) has nothing to add here.
 *
 * Deadlines are not a timer per connection: each connection notes its deadline, and one
 * sweep per server (a few times per timeout) closes the ones past it.
 */

export interface Http1ServerOptions {
  readonly maxHeadBytes: number;
  /** Header fields before the head is refused outright (431). */
  readonly maxFields: number;
  /** From a request's first byte (or a new connection) to the end of its head. */
  headersTimeoutMs: number;
  /** Between requests on a kept-alive connection. */
  idleTimeoutMs: number;
}

export interface Http1Handlers {
  /** A request; `expectContinue` when it asked `Expect: 100-continue` (answer with res.writeContinue()). */
  request(req: Http1ServerRequest, res: Http1ServerResponse, expectContinue: boolean): void;
  /**
   * An Upgrade request: the socket is the handler's from here on, `head` the bytes read
   * past the request head. Absent: upgrades are answered as ordinary requests (node:http's way).
   */
  upgrade: ((req: Http1ServerRequest, socket: Socket, head: Buffer) => void) | undefined;
  /**
   * A malformed request (its `code` as node:http names it: HPE_HEADER_OVERFLOW for a head
   * too large, ERR_HTTP_REQUEST_TIMEOUT for a head too slow, another HPE_ code for the
   * rest): answer it and close. Nothing of it reached a handler.
   */
  clientError(err: NodeJS.ErrnoException, socket: Socket): void;
}

const enum St {
  /** Reading a request head (or waiting for one). */
  Head,
  /** The request is with the handler and its body is being read. */
  Body,
  /** The body is read whole; the answer is still being written. Later bytes wait. */
  Answering,
  /** The answer is written; the rest of the body is read and dropped before the next request. */
  Dumping,
  /** The socket belongs to an upgrade handler, or is closed. */
  Gone,
}

const enum Deadline {
  None,
  /** No head yet on a new connection, or a head under way: ERR_HTTP_REQUEST_TIMEOUT. */
  Head,
  /** A kept-alive connection between requests, or dropping a body: closed silently. */
  Idle,
}

export class Http1Server {
  readonly options: Http1ServerOptions;
  readonly handlers: Http1Handlers;
  readonly #connections = new Set<ServerConnection>();
  #sweep: NodeJS.Timeout | undefined;
  /** A coarse clock for deadlines, advanced by the sweep (and at start): no clock read per request. */
  nowMs = performance.now();

  constructor(options: Http1ServerOptions, handlers: Http1Handlers) {
    this.options = options;
    this.handlers = handlers;
  }

  /** Serve a connection (plain, or TLS once its handshake is done). */
  connection(socket: Socket): void {
    if (this.#connections.size === 0) this.nowMs = performance.now();
    const c = new ServerConnection(this, socket);
    this.#connections.add(c);
    this.#ensureSweep();
  }

  /** Close the connections that are between requests (a drain, or a reload's closeIdle). */
  closeIdle(): void {
    for (const c of this.#connections) if (c.idle) c.destroy();
  }

  setTimeouts(headersMs: number, idleMs: number): void {
    this.options.headersTimeoutMs = headersMs;
    this.options.idleTimeoutMs = idleMs;
    clearInterval(this.#sweep);
    this.#sweep = undefined;
    this.#ensureSweep();
  }

  forget(c: ServerConnection): void {
    this.#connections.delete(c);
    if (this.#connections.size === 0) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
  }

  /** A few sweeps per timeout, so a deadline is kept to within a quarter of it (at most a second late). */
  #ensureSweep(): void {
    if (this.#sweep !== undefined || this.#connections.size === 0) return;
    const every = Math.max(10, Math.min(1000, Math.floor(Math.min(this.options.headersTimeoutMs, this.options.idleTimeoutMs) / 4)));
    this.#sweep = setInterval(() => {
      const now = (this.nowMs = performance.now());
      for (const c of this.#connections) c.checkDeadline(now);
    }, every);
    this.#sweep.unref();
  }
}

class ServerConnection implements BodySink, BodySource, ResponseSink {
  readonly socket: Socket;
  readonly #server: Http1Server;
  readonly #parser: HeadParser;
  readonly #decoder: BodyDecoder;
  #st = St.Head;
  #req: Http1ServerRequest | undefined;
  #res: Http1ServerResponse | undefined;
  /** Bytes read but not yet parsed: a pipelined request, or body bytes held back for backpressure. */
  #held: Buffer | undefined;
  /** The body's consumer is full: decoding waits for its `_read`. */
  #bodyFull = false;
  /** The socket is paused by this connection. */
  #paused = false;
  /** Inside #process: a response ending now must not start parsing re-entrantly. */
  #busy = false;
  #responseEnded = false;
  #closeAfter = false;
  /** The client half-closed: no request will follow the one being answered. */
  #clientEnded = false;
  #deadline = Deadline.Head;
  #deadlineMs: number;
  /** Reads arrive in READ_BUFFER (read-buffer.ts): anything kept past the read is copied. */
  readonly #shared: boolean;

  constructor(server: Http1Server, socket: Socket) {
    this.#server = server;
    this.socket = socket;
    const o = server.options;
    this.#parser = new HeadParser(true, { maxHeadBytes: o.maxHeadBytes, maxFields: o.maxFields });
    this.#decoder = new BodyDecoder(o.maxHeadBytes);
    this.#deadlineMs = server.nowMs + o.headersTimeoutMs;
    this.#shared = readAccepted(socket, this.#onReadL);
    if (!this.#shared) socket.on('data', this.#onDataL);
    socket.on('end', this.#onEndL);
    socket.on('drain', this.#onDrainL);
    socket.on('error', this.#onErrorL);
    socket.on('close', this.#onCloseL);
  }

  // Bound once per connection, so that an upgrade can take exactly these off the socket.
  readonly #onDataL = (b: Buffer): void => handleRead(this.#onData, this, b);
  readonly #onReadL = (n: number, buf: Buffer): boolean => {
    handleRead(this.#onData, this, buf.subarray(0, n));
    return true;
  };
  readonly #onEndL = (): void => this.#onEnd();
  readonly #onDrainL = (): void => {
    this.#res?.emit('drain');
  };
  readonly #onErrorL = (): void => {
    this.socket.destroy();
  };
  readonly #onCloseL = (): void => this.#onClose();

  /** Read through a call (TypeScript would keep the narrowing of #st): a handler called from #onHead may have closed the connection. */
  #gone(): boolean {
    return this.#st === St.Gone;
  }

  get keepAliveSeconds(): number {
    return Math.max(1, Math.floor(this.#server.options.idleTimeoutMs / 1000));
  }

  get closing(): boolean {
    return this.#closeAfter || this.#clientEnded;
  }

  /** Between requests: nothing of one read, none being answered. */
  get idle(): boolean {
    return this.#st === St.Head && !this.#parser.started && this.#held === undefined;
  }

  destroy(): void {
    this.socket.destroy();
  }

  checkDeadline(now: number): void {
    if (this.#deadline === Deadline.None || now < this.#deadlineMs || this.#st === St.Gone) return;
    if (this.#deadline === Deadline.Idle) return this.destroy();
    this.#deadline = Deadline.None;
    this.#fail('ERR_HTTP_REQUEST_TIMEOUT', 'request header timeout');
  }

  #onData(b: Buffer): void {
    if (this.#held !== undefined || this.#bodyFull || this.#st === St.Answering) {
      // Not ours to parse yet: keep it, and stop reading until it is.
      this.#held = this.#held === undefined ? this.#keep(b) : Buffer.concat([this.#held, b]);
      this.#pause();
      return;
    }
    this.#process(b, 0);
  }

  #process(b: Buffer, start: number): void {
    this.#busy = true;
    let off = start;
    try {
      while (off < b.length) {
        switch (this.#st) {
          case St.Head: {
            const fresh = !this.#parser.started;
            const end = this.#parser.execute(b, off);
            if (fresh && this.#parser.started && this.#deadline !== Deadline.Head) this.#arm(Deadline.Head, this.#server.options.headersTimeoutMs);
            if (end === NEED_MORE) return;
            if (end === FAILED) return this.#fail(this.#parser.error === 'header_fields_too_large' ? 'HPE_HEADER_OVERFLOW' : 'HPE_INVALID', this.#parser.reason);
            off = end;
            if (!this.#onHead(this.#parser.head, b, off)) return;
            break;
          }
          case St.Body:
          case St.Dumping: {
            const end = this.#decoder.execute(b, off, this);
            if (end === FAILED) return this.#bodyFailed();
            if (end === NEED_MORE) return;
            if (!this.#decoder.done) {
              // The consumer is full: the rest waits for its _read.
              this.#held = this.#keep(b.subarray(end));
              this.#pause();
              return;
            }
            off = end;
            this.#bodyDone();
            break;
          }
          case St.Answering:
            this.#held = this.#keep(b.subarray(off));
            this.#pause();
            return;
          case St.Gone:
            return;
        }
      }
    } finally {
      this.#busy = false;
    }
  }

  /** A complete head: the request goes to its handler. False when the rest of `b` is not this parser's. */
  #onHead(head: MessageHead, b: Buffer, off: number): boolean {
    this.#deadline = Deadline.None;
    const handlers = this.#server.handlers;
    const upgrade = handlers.upgrade;
    if (upgrade !== undefined && head.connectionUpgrade && head.upgrade !== undefined) {
      this.#st = St.Gone;
      this.#detach();
      const req = new Http1ServerRequest(head, this.socket, this, false);
      upgrade(req, this.socket, off < b.length ? this.#keep(b.subarray(off)) : Buffer.alloc(0));
      return false;
    }
    let framing = Framing.None;
    if (head.transferEncoding) {
      // Refused by the exchange (a coding other than chunked, or on HTTP/1.0); framed by chunked if it is last.
      framing = head.chunked ? Framing.Chunked : Framing.None;
      if (!head.chunked || head.versionMinor === 0) this.#closeAfter = true;
    } else if (head.contentLength > 0) framing = Framing.Length;
    if (head.close || head.versionMajor !== 1) this.#closeAfter = true;
    const hasBody = framing !== Framing.None;
    this.#decoder.start(framing, head.contentLength);
    const req = new Http1ServerRequest(head, this.socket, this, hasBody);
    const res = new Http1ServerResponse(req, this);
    this.#req = req;
    this.#res = res;
    this.#responseEnded = false;
    this.#st = hasBody ? St.Body : St.Answering;
    if (head.expectOther) {
      // node:http's answer to an Expect it does not know.
      res.writeHead(417, { 'content-length': 0 }).end();
      return !this.#gone();
    }
    handlers.request(req, res, head.expectContinue && head.versionMinor === 1);
    return !this.#gone();
  }

  #keep(b: Buffer): Buffer {
    return keepRead(b, this.#shared);
  }

  /** BodySink: decoded body bytes to the request's stream (or nowhere, once its answer is written). */
  onBody(chunk: Buffer): boolean {
    if (this.#st === St.Dumping) return true;
    if ((this.#req as Http1ServerRequest).push(this.#keep(chunk))) return true;
    this.#bodyFull = true;
    return false;
  }

  /** BodySource: the request's consumer wants more. */
  readMore(): void {
    if (!this.#bodyFull) return;
    this.#bodyFull = false;
    this.#resumeHeld();
  }

  #bodyDone(): void {
    const req = this.#req as Http1ServerRequest;
    // The last push may have filled the consumer: no _read comes after the end.
    this.#bodyFull = false;
    if (this.#st === St.Body) {
      req.rawTrailers = this.#decoder.trailers;
      req.complete = true;
      req.push(null);
    }
    if (this.#responseEnded) this.#next();
    else this.#st = St.Answering;
  }

  #bodyFailed(): void {
    const res = this.#res as Http1ServerResponse;
    (this.#req as Http1ServerRequest).destroy();
    // Before the answer started, the client hears why (node:http's clientError); after, the connection is cut.
    if (!res.headersSent && this.#st === St.Body) this.#fail('HPE_INVALID_CHUNK_SIZE', this.#decoder.reason);
    else this.destroy();
  }

  /** ResponseSink: the answer is written. */
  responseEnded(keepAlive: boolean): void {
    this.#responseEnded = true;
    if (!keepAlive || this.#clientEnded) {
      this.#st = St.Gone;
      this.#held = undefined;
      this.socket.destroySoon();
      return;
    }
    if (this.#st === St.Answering) return this.#next();
    // The body is still coming: read it to its end and drop it, then the next request (node:http's dump).
    this.#st = St.Dumping;
    this.#arm(Deadline.Idle, this.#server.options.idleTimeoutMs);
    if (this.#bodyFull) this.readMore();
  }

  /** Ready for the next request on this connection. */
  #next(): void {
    this.#st = St.Head;
    this.#req = undefined;
    this.#res = undefined;
    this.#parser.reset();
    this.#arm(Deadline.Idle, this.#server.options.idleTimeoutMs);
    this.#resumeHeld();
  }

  #resumeHeld(): void {
    // Within #process (a handler answered at once): its loop reads on from where it is.
    if (this.#busy) return;
    const held = this.#held;
    this.#held = undefined;
    if (held !== undefined) this.#process(held, 0);
    if (this.#held === undefined && !this.#bodyFull && this.#st !== St.Gone) this.#resume();
  }

  #arm(d: Deadline, ms: number): void {
    this.#deadline = d;
    this.#deadlineMs = this.#server.nowMs + ms;
  }

  #pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.socket.pause();
  }

  #resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.socket.resume();
  }

  /** A malformed or too slow request: the handler answers and closes; nothing more is read. */
  #fail(code: string, message: string): void {
    this.#st = St.Gone;
    this.#held = undefined;
    this.#deadline = Deadline.None;
    const err = Object.assign(new Error(`malformed request: ${message}`), { code });
    this.#server.handlers.clientError(err, this.socket);
  }

  /**
   * The client sent its FIN. Mid-head: a request cut short, answered 400. Between requests:
   * done. With a request in flight: the client is taken to have left, and its request is
   * aborted (node:http's default, httpAllowHalfOpen false; so does nginx).
   */
  #onEnd(): void {
    this.#clientEnded = true;
    if (this.#st === St.Head) {
      if (this.#parser.started || this.#held !== undefined) this.#fail('HPE_INVALID_EOF_STATE', 'the connection ended mid-request');
      else this.socket.end();
      return;
    }
    if (this.#st !== St.Gone) this.destroy();
  }

  #onClose(): void {
    const st = this.#st;
    this.#st = St.Gone;
    this.#server.forget(this);
    if (st === St.Gone && this.#res === undefined) return;
    const req = this.#req;
    if (req !== undefined && !req.complete) req.destroy();
    const res = this.#res;
    if (res !== undefined && !res.writableEnded) res.closedEarly();
  }

  /** The socket is an upgrade handler's now: this connection lets go of it. */
  #detach(): void {
    const s = this.socket;
    if (this.#shared) readAsStream(s);
    else s.off('data', this.#onDataL);
    s.off('end', this.#onEndL);
    s.off('drain', this.#onDrainL);
    s.off('error', this.#onErrorL);
    s.off('close', this.#onCloseL);
    s.pause();
    this.#server.forget(this);
  }
}
