import { COLON, CR, FIELD_VCHAR, HEX, HTAB, LF, SEMICOLON, SP, TCHAR } from './chars.js';
import { FAILED, NEED_MORE } from './head-parser.js';

/** Where decoded body bytes go: an object (the connection), not a closure per message. */
export interface BodySink {
  /**
   * Body bytes, decoded (chunk framing removed). The buffer is a view of the socket's read:
   * copy to keep it. Return false to stop decoding here (backpressure): `execute` returns
   * the offset it got to, and the caller feeds the rest again later.
   */
  onBody(chunk: Buffer): boolean;
}

/** How a message's body is delimited (RFC 9112 §6.3). */
export const enum Framing {
  None,
  Length,
  Chunked,
  /** Responses only: the body runs to the end of the connection. */
  UntilClose,
}

const EQUALS = 61;
const DQUOTE = 34;
const BACKSLASH = 92;

/** Hex digits in a chunk size: 13 keep it an exact double (4 PiB), far past any body this proxies. */
const MAX_SIZE_DIGITS = 13;

const enum St {
  Size,
  /** chunk-ext (RFC 9112 §7.1.1), no whitespace: `;` name, then `;`, `=` or CR. */
  ExtName,
  ExtAfterName,
  ExtValue,
  ExtToken,
  ExtQuoted,
  ExtQuotedEscape,
  ExtAfterQuoted,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  /** A trailer field line (or the empty line that ends the message), up to its LF. */
  Trailer,
  Done,
}

/**
 * Decodes one message body at a time from a connection's reads: Content-Length, chunked
 * (strict: hex digits then CRLF or `;` extensions, no whitespace around the size, CRLF after
 * each chunk's data, trailers as header fields) or to the end of the connection.
 * `execute` returns the offset just past the body once it is complete (`done`), the offset
 * it stopped at when the sink asked it to (not `done`), NEED_MORE when it took everything,
 * or FAILED on a framing error.
 */
export class BodyDecoder {
  framing = Framing.None;
  /** Trailer fields of a chunked body, [name, value, ...]; empty when it had none. */
  trailers: string[] = [];
  /** Which rule a FAILED body broke: `chunk_size_digits` (more than 13 hex digits, leading zeros included) or `chunk` (anything else). */
  reason = '';
  #st = St.Done;
  #remaining = 0;
  #digits = 0;
  #line: Buffer | undefined;
  #trailerBytes = 0;
  readonly #maxTrailerBytes: number;

  constructor(maxTrailerBytes: number) {
    this.#maxTrailerBytes = maxTrailerBytes;
  }

  start(framing: Framing, length: number): void {
    this.framing = framing;
    this.trailers = [];
    this.reason = 'chunk';
    this.#trailerBytes = 0;
    this.#line = undefined;
    this.#remaining = framing === Framing.Length ? length : 0;
    this.#digits = 0;
    this.#st = framing === Framing.Chunked ? St.Size : framing === Framing.Length && length > 0 ? St.Data : framing === Framing.UntilClose ? St.Data : St.Done;
  }

  get done(): boolean {
    return this.#st === St.Done;
  }

  execute(buf: Buffer, off: number, sink: BodySink): number {
    const n = buf.length;
    let i = off;
    if (this.framing === Framing.UntilClose) {
      if (i < n) sink.onBody(off === 0 ? buf : buf.subarray(i));
      return NEED_MORE;
    }
    let more = true;
    while (i < n) {
      if (!more) return i;
      switch (this.#st) {
        case St.Done:
          return i;
        case St.Data: {
          const take = Math.min(this.#remaining, n - i);
          more = sink.onBody(i === 0 && take === n ? buf : buf.subarray(i, i + take));
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) {
            if (this.framing === Framing.Length) {
              this.#st = St.Done;
              return i;
            }
            this.#st = St.DataCr;
          }
          break;
        }
        case St.Size: {
          const c = buf[i++] as number;
          const v = HEX[c] as number;
          if (v !== 0) {
            if (++this.#digits > MAX_SIZE_DIGITS) {
              this.reason = 'chunk_size_digits';
              return FAILED;
            }
            this.#remaining = this.#remaining * 16 + (v - 1);
          } else if (this.#digits === 0) return FAILED;
          else if (c === CR) this.#st = St.SizeLf;
          else if (c === SEMICOLON) this.#st = St.ExtName;
          else return FAILED;
          break;
        }
        case St.ExtName: {
          if (TCHAR[buf[i++] as number] !== 1) return FAILED;
          this.#st = St.ExtAfterName;
          break;
        }
        case St.ExtAfterName:
        case St.ExtToken:
        case St.ExtAfterQuoted: {
          const c = buf[i++] as number;
          if (c === CR) this.#st = St.SizeLf;
          else if (c === SEMICOLON) this.#st = St.ExtName;
          else if (c === EQUALS && this.#st === St.ExtAfterName) this.#st = St.ExtValue;
          else if (TCHAR[c] !== 1 || this.#st === St.ExtAfterQuoted) return FAILED;
          break;
        }
        case St.ExtValue: {
          const c = buf[i++] as number;
          if (c === DQUOTE) this.#st = St.ExtQuoted;
          else if (TCHAR[c] === 1) this.#st = St.ExtToken;
          else return FAILED;
          break;
        }
        case St.ExtQuoted: {
          const c = buf[i++] as number;
          if (c === DQUOTE) this.#st = St.ExtAfterQuoted;
          else if (c === BACKSLASH) this.#st = St.ExtQuotedEscape;
          else if (FIELD_VCHAR[c] !== 1) return FAILED;
          break;
        }
        case St.ExtQuotedEscape: {
          if (FIELD_VCHAR[buf[i++] as number] !== 1) return FAILED;
          this.#st = St.ExtQuoted;
          break;
        }
        case St.SizeLf: {
          if (buf[i++] !== LF) return FAILED;
          if (this.#remaining === 0) {
            this.#st = St.Trailer;
            this.#line = undefined;
          } else this.#st = St.Data;
          break;
        }
        case St.DataCr: {
          if (buf[i++] !== CR) return FAILED;
          this.#st = St.DataLf;
          break;
        }
        case St.DataLf: {
          if (buf[i++] !== LF) return FAILED;
          this.#st = St.Size;
          this.#digits = 0;
          this.#remaining = 0;
          break;
        }
        case St.Trailer: {
          const lf = buf.indexOf(LF, i);
          const end = lf === -1 ? n : lf;
          this.#trailerBytes += end - i + 1;
          if (this.#trailerBytes > this.#maxTrailerBytes) return FAILED;
          const part = buf.subarray(i, end);
          this.#line = this.#line === undefined ? Buffer.from(part) : Buffer.concat([this.#line, part]);
          if (lf === -1) return NEED_MORE;
          i = lf + 1;
          const line = this.#line;
          this.#line = undefined;
          if (line.length === 0 || line[line.length - 1] !== CR) return FAILED;
          if (line.length === 1) {
            this.#st = St.Done;
            return i;
          }
          if (!this.#trailer(line, line.length - 1)) return FAILED;
          break;
        }
      }
    }
    return this.#st === St.Done ? i : NEED_MORE;
  }

  /** A trailer field, with a header field's grammar. */
  #trailer(b: Buffer, end: number): boolean {
    let i = 0;
    while (i < end && TCHAR[b[i] as number] === 1) i++;
    if (i === 0 || i >= end || b[i] !== COLON) return false;
    const nameEnd = i++;
    while (i < end && (b[i] === SP || b[i] === HTAB)) i++;
    let vEnd = end;
    while (vEnd > i && (b[vEnd - 1] === SP || b[vEnd - 1] === HTAB)) vEnd--;
    for (let j = i; j < vEnd; j++) if (FIELD_VCHAR[b[j] as number] !== 1) return false;
    this.trailers.push(b.toString('latin1', 0, nameEnd), b.toString('latin1', i, vEnd));
    return true;
  }
}
