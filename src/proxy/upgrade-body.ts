import type { IncomingHttpHeaders } from 'node:http';
import type { LocalReplyCode } from './errors.js';

/**
 * How an Upgrade request frames its body. Node hands an Upgrade request over as soon as
 * its headers are parsed, leaving any body unread on the socket (as raw bytes, chunked
 * framing included), so the upgrade path reads the body itself.
 */
export type BodyFraming = { readonly kind: 'none' } | { readonly kind: 'length'; readonly length: number } | { readonly kind: 'chunked' };

const NONE: BodyFraming = { kind: 'none' };
const CHUNKED: BodyFraming = { kind: 'chunked' };

/**
 * The framing the headers declare, or the local reply for one Meridian will not forward.
 * Node has already refused Content-Length next to Transfer-Encoding, and malformed or
 * repeated Content-Lengths; requestTarget() any Transfer-Encoding but chunked alone
 * (Node does not check codings on an upgrade).
 */
export function bodyFraming(headers: IncomingHttpHeaders): BodyFraming | LocalReplyCode {
  if (headers['transfer-encoding'] !== undefined) return CHUNKED;
  const cl = headers['content-length'];
  if (cl === undefined) return NONE;
  // Node checked the digits; a length past 2^53 cannot be counted exactly.
  const length = Number(cl);
  if (!Number.isSafeInteger(length)) return 'bad_request';
  return length === 0 ? NONE : { kind: 'length', length };
}

/** A chunk-size line with its extensions (RFC 9112 §7.1.1), as strict as Node's own parser: no space before the size. */
const SIZE_LINE = /^([0-9a-fA-F]{1,16})(?:[ \t]*;[\t\x20-\x7e\x80-\xff]*)?$/;
/** A trailer field line (RFC 9112 §7.1.2). */
const FIELD_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*$/;
/** Longest chunk-size line (extensions included) and trailer section accepted. */
const MAX_LINE_BYTES = 4096;
const MAX_TRAILER_BYTES = 16_384;

type State = 'size' | 'data' | 'data_cr' | 'data_lf' | 'trailer' | 'done';

/**
 * Reads one request body out of raw bytes as they arrive: a Content-Length's worth, or a
 * chunked body decoded (extensions ignored, trailer fields checked and discarded, which
 * RFC 9112 §7.1.2 allows a recipient that removes the chunked coding). Whatever follows
 * the body is kept in `rest`: on an upgrade, that is the start of the tunnel.
 */
export class BodyReader {
  readonly #max: number;
  #state: State;
  /** Body bytes still to come: of the Content-Length, or of the current chunk. */
  #remaining: number;
  readonly #chunked: boolean;
  #line = '';
  #trailerBytes = 0;
  /** Body bytes read so far (decoded). */
  received = 0;
  /** The bytes after the body, once it ended. */
  rest: Buffer = Buffer.alloc(0);

  /** `max`: the most body bytes accepted (0 = no limit). */
  constructor(framing: Exclude<BodyFraming, { kind: 'none' }>, max: number) {
    this.#max = max;
    this.#chunked = framing.kind === 'chunked';
    this.#remaining = framing.kind === 'length' ? framing.length : 0;
    this.#state = this.#chunked ? 'size' : 'data';
  }

  get done(): boolean {
    return this.#state === 'done';
  }

  /**
   * Take the next raw bytes; body bytes go to `onData` (views into `raw`). 'more' while the
   * body goes on, 'done' when it ended (see `rest`), or why it cannot be forwarded.
   */
  feed(raw: Buffer, onData: (body: Buffer) => void): 'more' | 'done' | 'bad_request' | 'payload_too_large' {
    let i = 0;
    while (i < raw.length) {
      switch (this.#state) {
        case 'data': {
          const n = Math.min(this.#remaining, raw.length - i);
          this.#remaining -= n;
          this.received += n;
          onData(raw.subarray(i, i + n));
          i += n;
          if (this.#remaining === 0) this.#state = this.#chunked ? 'data_cr' : 'done';
          break;
        }
        case 'data_cr':
        case 'data_lf':
          if (raw[i++] !== (this.#state === 'data_cr' ? 0x0d : 0x0a)) return 'bad_request';
          this.#state = this.#state === 'data_cr' ? 'data_lf' : 'size';
          break;
        case 'size':
        case 'trailer': {
          const lf = raw.indexOf(0x0a, i);
          const end = lf < 0 ? raw.length : lf;
          this.#line += raw.toString('latin1', i, end);
          if (this.#state === 'trailer') this.#trailerBytes += end - i;
          if (this.#line.length > MAX_LINE_BYTES || this.#trailerBytes > MAX_TRAILER_BYTES) return 'bad_request';
          i = lf < 0 ? raw.length : lf + 1;
          if (lf < 0) break;
          const line = this.#line;
          this.#line = '';
          // Every line ends in CRLF: a bare LF, or a CR anywhere else, is the stuff of smuggling.
          if (!line.endsWith('\r') || line.indexOf('\r') !== line.length - 1) return 'bad_request';
          const verdict = this.#state === 'size' ? this.#sizeLine(line.slice(0, -1)) : this.#trailerLine(line.slice(0, -1));
          if (verdict !== undefined) return verdict;
          break;
        }
        case 'done':
          this.rest = raw.subarray(i);
          return 'done';
      }
    }
    if (this.#state !== 'done') return 'more';
    this.rest = Buffer.alloc(0);
    return 'done';
  }

  #sizeLine(line: string): 'bad_request' | 'payload_too_large' | undefined {
    const m = SIZE_LINE.exec(line);
    if (m === null) return 'bad_request';
    const size = parseInt(m[1] as string, 16);
    if (!Number.isSafeInteger(size)) return 'bad_request';
    if (this.#max > 0 && this.received + size > this.#max) return 'payload_too_large';
    this.#remaining = size;
    this.#state = size === 0 ? 'trailer' : 'data';
    return undefined;
  }

  #trailerLine(line: string): 'bad_request' | undefined {
    if (line === '') {
      this.#state = 'done';
      return undefined;
    }
    return FIELD_LINE.test(line) ? undefined : 'bad_request';
  }
}
