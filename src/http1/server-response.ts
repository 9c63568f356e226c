import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Http1ServerRequest } from './server-request.js';
import { corkForTurn } from './turn-writes.js';

/** A body up to this size goes out in one buffer with its head (Buffer.allocUnsafe's pool serves up to 4 KiB; a copy this small costs less than writev's bookkeeping). */
const ONE_WRITE_MAX = 4096;

/** What a response tells the connection it is written on. */
export interface ResponseSink {
  readonly socket: Socket;
  /** Seconds announced in `Keep-Alive: timeout=` (node:http announces its keep-alive timeout too). */
  readonly keepAliveSeconds: number;
  /** The connection is to close after this response (draining, a client that asked, unknown request framing). */
  readonly closing: boolean;
  /** The response went out whole; `keepAlive` says whether the connection carries another request. */
  responseEnded(keepAlive: boolean): void;
}

export type HeaderInput = readonly string[] | Readonly<Record<string, string | number | readonly string[] | undefined>>;

/**
 * A response written straight onto the connection's socket: the ServerResponse methods
 * the proxy calls (writeHead, write, end, addTrailers, writeContinue, flushHeaders,
 * destroy) with node:http's framing rules. No Content-Length and a body to come: chunked
 * for an HTTP/1.1 client, the end of the connection for an HTTP/1.0 one. HEAD, 1xx, 204
 * and 304 carry no body. The head is held until the first body bytes or the end, so head
 * and body leave in one write; Date, Connection and Keep-Alive are added as node:http adds
 * them, so clients see the same answers they did.
 */
export class Http1ServerResponse {
  readonly req: Http1ServerRequest;
  statusCode = 200;
  statusMessage = '';
  headersSent = false;
  writableEnded = false;
  destroyed = false;
  readonly #sink: ResponseSink;
  readonly #socket: Socket;
  /** The serialised head, not yet written. */
  #head: string | undefined;
  #chunked = false;
  #noBody = false;
  #keepAlive = true;
  #trailers = '';

  /** Listeners, [event, fn, once, ...]: only 'close' and 'drain' are ever emitted. */
  #listeners: (string | Listener | boolean)[] | undefined;

  constructor(req: Http1ServerRequest, sink: ResponseSink) {
    this.req = req;
    this.#sink = sink;
    this.#socket = sink.socket;
  }

  /**
   * 'close': the connection closed before the answer was written whole (not emitted after
   * a complete answer: the exchange knows it ended it). 'drain': the socket took what it
   * held. Anything else would never be emitted, so it is refused rather than ignored.
   * (Not an EventEmitter: one costs more to make than this whole answer's bookkeeping.)
   */
  on(event: string, fn: Listener): this {
    return this.#add(event, fn, false);
  }

  once(event: string, fn: Listener): this {
    return this.#add(event, fn, true);
  }

  off(event: string, fn: Listener): this {
    const ls = this.#listeners;
    if (ls === undefined) return this;
    for (let i = 0; i < ls.length; i += 3) {
      if (ls[i] === event && ls[i + 1] === fn) {
        ls.splice(i, 3);
        break;
      }
    }
    return this;
  }

  removeListener(event: string, fn: Listener): this {
    return this.off(event, fn);
  }

  /** The connection's events, to this answer's listeners. */
  emit(event: 'close' | 'drain'): void {
    const ls = this.#listeners;
    if (ls === undefined) return;
    const now = ls.slice();
    for (let i = 0; i < now.length; i += 3) {
      if (now[i] !== event) continue;
      if (now[i + 2] === true) this.off(event, now[i + 1] as Listener);
      (now[i + 1] as Listener)();
    }
  }

  #add(event: string, fn: Listener, once: boolean): this {
    if (event !== 'close' && event !== 'drain') throw new TypeError(`Http1ServerResponse emits 'close' and 'drain' only, not '${event}'`);
    (this.#listeners ??= []).push(event, fn, once);
    return this;
  }

  get writableFinished(): boolean {
    return this.writableEnded;
  }

  writeContinue(): void {
    if (this.headersSent || this.destroyed) return;
    corkForTurn(this.#socket);
    this.#socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
  }

  writeHead(status: number, reasonOrHeaders?: string | HeaderInput, headers?: HeaderInput): this {
    if (this.headersSent) return this;
    this.statusCode = status;
    let fields = headers;
    if (typeof reasonOrHeaders === 'string') this.statusMessage = reasonOrHeaders;
    else {
      this.statusMessage = STATUS_CODES[status] ?? 'unknown';
      fields = reasonOrHeaders;
    }
    this.headersSent = true;
    this.#head = this.#serialise(fields);
    return this;
  }

  /** Write the head now, without waiting for body bytes (a stream whose body comes later). */
  flushHeaders(): void {
    if (!this.headersSent) this.writeHead(this.statusCode);
    const head = this.#head;
    if (head === undefined || this.destroyed) return;
    this.#head = undefined;
    corkForTurn(this.#socket);
    this.#socket.write(head, 'latin1');
  }

  write(chunk: Buffer | string): boolean {
    return this.#write(chunk, false);
  }

  /** write() for a chunk valid only during this call (a view of a read buffer): copied only where it is kept past the call. */
  writeView(chunk: Buffer): boolean {
    return this.#write(chunk, true);
  }

  #write(chunk: Buffer | string, view: boolean): boolean {
    if (this.writableEnded || this.destroyed) return false;
    if (!this.headersSent) this.writeHead(this.statusCode);
    const len = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (this.#noBody || len === 0) {
      if (this.#head !== undefined) this.flushHeaders();
      return true;
    }
    const s = this.#socket;
    corkForTurn(s);
    const head = this.#head;
    const oneBuffer = !this.#chunked && head !== undefined && len <= ONE_WRITE_MAX && typeof chunk !== 'string';
    // A view is kept past this call by the socket unless it is copied into the head's buffer.
    if (view && !oneBuffer) chunk = Buffer.from(chunk as Buffer);
    if (this.#chunked) {
      const size = `${len.toString(16)}\r\n`;
      s.cork();
      s.write(this.#takeHead() + size, 'latin1');
      s.write(chunk);
      const ok = s.write('\r\n', 'latin1');
      s.uncork();
      return ok;
    }
    if (head === undefined) return s.write(chunk);
    this.#head = undefined;
    if (oneBuffer) {
      // Head and a small body in one buffer: one write, not a corked pair that goes out
      // through writev (an array of chunks built and walked per response).
      const out = Buffer.allocUnsafe(head.length + len);
      out.write(head, 0, 'latin1');
      (chunk as Buffer).copy(out, head.length);
      return s.write(out);
    }
    s.cork();
    s.write(head, 'latin1');
    const ok = s.write(chunk);
    s.uncork();
    return ok;
  }

  /** Trailers go out with the last chunk; a response that is not chunked has none to send (node:http drops them too). */
  addTrailers(trailers: readonly (readonly [string, string])[] | Readonly<Record<string, string>>): void {
    const list: readonly (readonly [string, string])[] = Array.isArray(trailers) ? (trailers as readonly (readonly [string, string])[]) : Object.entries(trailers);
    for (const [name, value] of list) if (safe(name) && safe(value)) this.#trailers += `${name}: ${value}\r\n`;
  }

  end(chunk?: Buffer | string): this {
    if (this.writableEnded || this.destroyed) return this;
    if (!this.headersSent) this.writeHead(this.statusCode);
    const s = this.#socket;
    corkForTurn(s);
    s.cork();
    if (chunk !== undefined && chunk.length > 0) this.write(chunk);
    this.writableEnded = true;
    const tail = this.#chunked ? `0\r\n${this.#trailers}\r\n` : '';
    const out = this.#takeHead() + tail;
    if (out.length > 0) s.write(out, 'latin1');
    s.uncork();
    this.#sink.responseEnded(this.#keepAlive);
    return this;
  }

  /** Cut the connection (node:http's res.destroy() destroys its socket); 'close' follows. */
  destroy(): this {
    if (!this.destroyed) this.#socket.destroy();
    return this;
  }

  /** The connection closed before this response was written whole. */
  closedEarly(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit('close');
  }

  #takeHead(): string {
    const head = this.#head;
    if (head === undefined) return '';
    this.#head = undefined;
    return head;
  }

  /** The head, with the framing and connection fields node:http would add. */
  #serialise(fields: HeaderInput | undefined): string {
    headText = `HTTP/1.1 ${this.statusCode} ${this.statusMessage}\r\n`;
    sawLength = false;
    sawChunked = false;
    sawDate = false;
    sawConnection = undefined;
    if (Array.isArray(fields)) {
      const flat = fields as readonly string[];
      for (let i = 0; i + 1 < flat.length; i += 2) headField(flat[i] as string, flat[i + 1] as string);
    } else if (fields !== undefined) {
      const obj = fields as Readonly<Record<string, string | number | readonly string[] | undefined>>;
      for (const name in obj) {
        const v = obj[name];
        if (v === undefined) continue;
        if (typeof v === 'object') for (const one of v) headField(name, one);
        else headField(name, typeof v === 'number' ? String(v) : v);
      }
    }
    const text = headText;
    headText = '';
    return this.#framed(text, sawLength, sawChunked, sawDate, sawConnection);
  }

  /**
   * writeHead for fields serialised already (`name: value\r\n` each, from a parser that
   * refused CR and LF in them), with no Connection or Transfer-Encoding among them: the
   * proxy's pass-through of an HTTP/1.1 upstream's answer. `close` asks the client to close.
   */
  writeHeadFields(status: number, reason: string, fields: string, contentLength: boolean, date: boolean, close: boolean): this {
    if (this.headersSent) return this;
    this.statusCode = status;
    this.statusMessage = reason;
    this.headersSent = true;
    const s = `HTTP/1.1 ${status} ${reason}\r\n${fields}`;
    this.#head = close ? this.#framed(`${s}connection: close\r\n`, contentLength, false, date, 'close') : this.#framed(s, contentLength, false, date, undefined);
    return this;
  }

  /** The head's end: the Date, Connection and framing fields node:http would add to `s` (status line and fields). */
  #framed(s: string, length: boolean, te: boolean, date: boolean, connection: string | undefined): string {
    const status = this.statusCode;
    const req = this.req;
    const http10 = req.httpVersionMinor === 0;
    this.#noBody = req.method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
    let keepAlive = !this.#sink.closing;
    if (connection !== undefined && /(?:^|,)\s*close\s*(?:,|$)/i.test(connection)) keepAlive = false;
    let framing = '';
    if (te) this.#chunked = !this.#noBody;
    else if (!length && !this.#noBody) {
      // No length to frame the body by: chunked for HTTP/1.1; an HTTP/1.0 client reads to the close.
      if (http10) keepAlive = false;
      else {
        this.#chunked = true;
        framing = 'Transfer-Encoding: chunked\r\n';
      }
    }
    this.#keepAlive = keepAlive;
    // node:http's order: Date, Connection (and Keep-Alive), then the framing it added.
    if (!date) s += `Date: ${httpDate()}\r\n`;
    if (connection === undefined) {
      if (!keepAlive) s += 'Connection: close\r\n';
      else if (http10) s += 'Connection: keep-alive\r\n';
      else s += `Connection: keep-alive\r\nKeep-Alive: timeout=${this.#sink.keepAliveSeconds}\r\n`;
    }
    s += framing;
    return `${s}\r\n`;
  }
}

/*
 * The head being serialised and what its fields said: module state rather than a closure
 * per answer (serialising is synchronous and never re-entered).
 */
let headText = '';
let sawLength = false;
let sawChunked = false;
let sawDate = false;
let sawConnection: string | undefined;

function headField(name: string, value: string): void {
  if (!safe(value) || !safe(name)) return; // never split a response on a CR or LF
  headText += `${name}: ${value}\r\n`;
  switch (name.length) {
    case 4:
      if (name.toLowerCase() === 'date') sawDate = true;
      break;
    case 10:
      if (name.toLowerCase() === 'connection') sawConnection = sawConnection === undefined ? value : `${sawConnection}, ${value}`;
      break;
    case 14:
      if (name.toLowerCase() === 'content-length') sawLength = true;
      break;
    case 17:
      if (name.toLowerCase() === 'transfer-encoding') sawChunked = /(?:^|,)\s*chunked\s*$/i.test(value);
      break;
  }
}

type Listener = () => void;

function safe(s: string): boolean {
  return s.indexOf('\r') === -1 && s.indexOf('\n') === -1;
}

/** The Date header, made once a second at most. */
let dateSecond = -1;
let dateString = '';
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateString = new Date(now).toUTCString();
  }
  return dateString;
}
