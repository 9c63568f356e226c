import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { MessageHead } from './head-parser.js';
import { incomingHeaders, type IncomingHeaders } from './incoming-headers.js';

/** What a request's body stream asks of the connection it is read from. */
export interface BodySource {
  /** The consumer wants more: decode on if decoding stopped for backpressure. */
  readMore(): void;
}

/** The body as a stream: the decoder pushes, the consumer's reads ask for more. */
class BodyStream extends Readable {
  readonly #source: BodySource;
  constructor(source: BodySource) {
    super();
    this.#source = source;
  }
  override _read(): void {
    this.#source.readMore();
  }
}

type Listener = Parameters<Readable['on']>[1];

/**
 * A request as Meridian's HTTP/1.1 server hands it to the exchange: the fields of
 * node:http's IncomingMessage that the proxy reads (method, url, headers, rawHeaders,
 * version, socket), and the Readable methods it calls, served by a body stream fed by
 * the connection's decoder with backpressure (a full stream stops decoding, and reading
 * the socket, until it is read). The request is not itself a stream: a Readable costs
 * microseconds to make, and most requests (a GET) have no body, so theirs is made only
 * if something asks for it (empty, and ended).
 */
export class Http1ServerRequest {
  readonly method: string;
  url: string;
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly rawHeaders: string[];
  readonly socket: Socket;
  /** The whole body was read. */
  complete = false;
  rawTrailers: string[] = [];
  #headers: IncomingHeaders | undefined;
  readonly #source: BodySource;
  #body: BodyStream | undefined;

  constructor(head: MessageHead, socket: Socket, source: BodySource, hasBody: boolean) {
    this.method = head.method;
    this.url = head.target;
    this.httpVersionMajor = head.versionMajor;
    this.httpVersionMinor = head.versionMinor;
    this.rawHeaders = head.raw;
    this.socket = socket;
    this.#source = source;
    if (hasBody) this.#body = new BodyStream(source);
    else this.complete = true;
  }

  get httpVersion(): string {
    return `${this.httpVersionMajor}.${this.httpVersionMinor}`;
  }

  /** Built on first use, as node:http does: a request refused early never needs it. */
  get headers(): IncomingHeaders {
    return (this.#headers ??= incomingHeaders(this.rawHeaders));
  }

  set headers(h: IncomingHeaders) {
    this.#headers = h;
  }

  get trailers(): IncomingHeaders {
    return incomingHeaders(this.rawTrailers);
  }

  /** The body stream (a request without a body gets an empty, ended one). */
  get body(): Readable {
    if (this.#body === undefined) {
      this.#body = new BodyStream(this.#source);
      this.#body.push(null);
    }
    return this.#body;
  }

  /** The connection's decoder: body bytes, or null at the end. False: the stream is full. */
  push(chunk: Buffer | null): boolean {
    return this.#body === undefined ? false : this.#body.push(chunk);
  }

  get readableEnded(): boolean {
    return this.#body === undefined ? this.complete : this.#body.readableEnded;
  }

  get destroyed(): boolean {
    return this.#body?.destroyed ?? false;
  }

  on(event: string, fn: Listener): this {
    this.body.on(event, fn);
    return this;
  }

  addListener(event: string, fn: Listener): this {
    return this.on(event, fn);
  }

  once(event: string, fn: Listener): this {
    this.body.once(event, fn);
    return this;
  }

  off(event: string, fn: Listener): this {
    this.#body?.off(event, fn);
    return this;
  }

  removeListener(event: string, fn: Listener): this {
    return this.off(event, fn);
  }

  pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T {
    return this.body.pipe(destination, options);
  }

  unpipe(destination?: NodeJS.WritableStream): this {
    this.#body?.unpipe(destination);
    return this;
  }

  pause(): this {
    this.#body?.pause();
    return this;
  }

  resume(): this {
    this.body.resume();
    return this;
  }

  read(size?: number): unknown {
    return this.body.read(size);
  }

  destroy(err?: Error): this {
    this.#body?.destroy(err);
    return this;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<unknown> {
    return this.body[Symbol.asyncIterator]();
  }
}
