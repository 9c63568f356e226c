import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { MessageHead } from './head-parser.js';
import { incomingHeaders, type IncomingHeaders } from './incoming-headers.js';

/** What a request's body stream asks of the connection it is read from. */
export interface BodySource {
  /** The consumer wants more: decode on if decoding stopped for backpressure. */
  readMore(): void;
}

/**
 * A request as Meridian's HTTP/1.1 server hands it to the exchange: the fields of
 * node:http's IncomingMessage that the proxy reads (method, url, headers, rawHeaders,
 * version, socket), and the body as a Readable fed by the connection's decoder with
 * backpressure: a full buffer stops decoding (and reading the socket) until `_read`.
 */
export class Http1ServerRequest extends Readable {
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

  constructor(head: MessageHead, socket: Socket, source: BodySource, hasBody: boolean) {
    super();
    this.method = head.method;
    this.url = head.target;
    this.httpVersionMajor = head.versionMajor;
    this.httpVersionMinor = head.versionMinor;
    this.rawHeaders = head.raw;
    this.socket = socket;
    this.#source = source;
    if (!hasBody) {
      this.complete = true;
      this.push(null);
    }
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

  override _read(): void {
    this.#source.readMore();
  }
}
