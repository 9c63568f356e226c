import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

/*
 * RFC 9112 §3: request-line = method SP request-target SP HTTP-version CRLF, one SP each.
 * Node's parser (llhttp) also takes runs of spaces ("GET  /x HTTP/1.1" arrives as url "/x")
 * and tells nobody, and it may read the socket natively, so the request line as sent is seen
 * nowhere. A recipient MAY be that lenient, but two recipients that split a line differently
 * are how requests get smuggled, so Meridian is strict, as Apache httpd is (HttpProtocolOptions
 * Strict, its default): 400.
 *
 * RequestLineScanner reads a connection's bytes just before the parser does and checks each
 * request line it finds. It keeps just enough framing to know where the next request line
 * begins (Content-Length, chunked bodies and trailers) and never changes a byte; the parser
 * stays the judge of everything else. Each 'request' (or 'upgrade') event then takes the
 * verdict of the next request line, in order, as the parser meets them. A request the scanner
 * did not expect (the two disagree on framing, which only a malformed request can cause, and
 * then the parser refuses it or its request line is refused here) finds no verdict, or one
 * for a target of another length: it is refused too. Once lost, the scanner stays lost and
 * every later request on the connection is refused: it fails closed. A later issue replaces
 * node:http with Meridian's own parser, which makes this module unnecessary.
 */

const CR = 13;
const LF = 10;
const SP = 32;
const COLON = 58;
const SEMICOLON = 59;

/** RFC 9110 §5.6.2 tchar: a method is 1*tchar. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = TCHAR[c + 32] = 1;

/** Hex digit values + 1 (0: not a hex digit). */
const HEX = new Uint8Array(256);
for (let c = 0; c < 16; c++) HEX['0123456789abcdef'.charCodeAt(c)] = HEX['0123456789ABCDEF'.charCodeAt(c)] = c + 1;

const HTTP_SLASH = [72, 84, 84, 80, 47]; // "HTTP/"
const CONTENT_LENGTH = Buffer.from('content-length');
const TRANSFER_ENCODING = Buffer.from('transfer-encoding');

const enum St {
  /** Between messages: CR and LF are skipped (RFC 9112 §2.2), as the parser does. */
  Start,
  Method,
  Target,
  /** `HTTP/` DIGIT `.` DIGIT, then CR. */
  Version,
  LineLf,
  FieldStart,
  FieldName,
  /** Any other field's value: skipped to its LF. */
  FieldValue,
  LengthValue,
  HeadEndLf,
  Body,
  ChunkSize,
  /** A chunk extension (or a CR): skipped to the LF that ends the size line. */
  ChunkSizeRest,
  ChunkData,
  ChunkDataEnd,
  ChunkDataLf,
  TrailerStart,
  TrailerLine,
  TrailerEndLf,
  /** The framing is unknown from here on: nothing more is read. */
  Lost,
}

/** A verdict for a bad request line (good ones are the target's length, at least 1). */
const BAD = -1;

/**
 * Checks the request lines of one connection's byte stream (see above). Pure: bytes in
 * through `scan`, verdicts out through `take`, in the order the request lines came.
 */
export class RequestLineScanner {
  #st = St.Start;
  /** Bytes of the part being read: method, target, version, field name, size digits. */
  #len = 0;
  #targetLen = 0;
  #maybeLength = false;
  #maybeCoding = false;
  #length = 0;
  #lengthDigits = 0;
  #lengthDone = false;
  #chunked = false;
  #remaining = 0;
  readonly #verdicts: number[] = [];
  #next = 0;

  /** Read the next bytes of the connection. */
  scan(b: Uint8Array): void {
    const n = b.length;
    let i = 0;
    while (i < n) {
      switch (this.#st) {
        case St.Start: {
          const c = b[i] as number;
          if (c === CR || c === LF) {
            i++;
            break;
          }
          this.#st = St.Method;
          this.#len = 0;
          break;
        }
        case St.Method: {
          const c = b[i++] as number;
          if (c === SP && this.#len > 0) {
            this.#st = St.Target;
            this.#len = 0;
          } else if (TCHAR[c] === 1) this.#len++;
          else this.#bad();
          break;
        }
        case St.Target: {
          const c = b[i++] as number;
          if (c === SP && this.#len > 0) {
            this.#st = St.Version;
            this.#targetLen = this.#len;
            this.#len = 0;
          } else if (c > SP && c !== 127) this.#len++;
          else this.#bad();
          break;
        }
        case St.Version: {
          const c = b[i++] as number;
          const at = this.#len++;
          const ok = at < 5 ? c === HTTP_SLASH[at] : at === 6 ? c === 46 : at < 8 ? c >= 48 && c <= 57 : c === CR;
          if (!ok) this.#bad();
          else if (at === 8) this.#st = St.LineLf;
          break;
        }
        case St.LineLf: {
          if (b[i++] !== LF) {
            this.#bad();
            break;
          }
          this.#verdicts.push(this.#targetLen);
          this.#st = St.FieldStart;
          this.#lengthDone = false;
          this.#length = 0;
          this.#chunked = false;
          break;
        }
        case St.FieldStart: {
          const c = b[i] as number;
          if (c === CR) {
            i++;
            this.#st = St.HeadEndLf;
          } else if (c === LF) {
            i++;
            this.#headEnd();
          } else {
            this.#st = St.FieldName;
            this.#len = 0;
            this.#maybeLength = true;
            this.#maybeCoding = true;
          }
          break;
        }
        case St.FieldName: {
          const c = b[i++] as number;
          if (c === COLON) {
            if (this.#maybeLength && this.#len === CONTENT_LENGTH.length) {
              // A second Content-Length is refused by the parser; framing past it does not matter.
              this.#st = St.LengthValue;
              this.#length = 0;
              this.#lengthDigits = 0;
            } else {
              if (this.#maybeCoding && this.#len === TRANSFER_ENCODING.length) this.#chunked = true;
              this.#st = St.FieldValue;
            }
          } else if (c === CR || c === LF) this.#lose();
          else {
            // Lower-cases letters; no other byte maps onto a letter or '-' of the two names but CR, handled above.
            const lower = c | 0x20;
            const at = this.#len++;
            if (this.#maybeLength && lower !== CONTENT_LENGTH[at]) this.#maybeLength = false;
            if (this.#maybeCoding && lower !== TRANSFER_ENCODING[at]) this.#maybeCoding = false;
          }
          break;
        }
        case St.FieldValue: {
          const lf = b.indexOf(LF, i);
          if (lf === -1) i = n;
          else {
            i = lf + 1;
            this.#st = St.FieldStart;
          }
          break;
        }
        case St.LengthValue: {
          const c = b[i++] as number;
          if (c >= 48 && c <= 57 && !this.#lengthDone) {
            this.#length = this.#length * 10 + (c - 48);
            this.#lengthDigits++;
          } else if (c === SP || c === 9 || c === CR) this.#lengthDone ||= this.#lengthDigits > 0;
          else if (c === LF && this.#lengthDigits > 0) {
            this.#lengthDone = true;
            this.#st = St.FieldStart;
          } else this.#lose();
          break;
        }
        case St.HeadEndLf: {
          if (b[i++] === LF) this.#headEnd();
          else this.#lose();
          break;
        }
        case St.Body: {
          const take = Math.min(this.#remaining, n - i);
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#st = St.Start;
          break;
        }
        case St.ChunkSize: {
          const c = b[i++] as number;
          const v = HEX[c] as number;
          if (v !== 0) {
            this.#remaining = this.#remaining * 16 + (v - 1);
            this.#len++;
          } else if ((c === SEMICOLON || c === CR) && this.#len > 0) this.#st = St.ChunkSizeRest;
          else if (c === LF && this.#len > 0) this.#chunkSizeEnd();
          else this.#lose();
          break;
        }
        case St.ChunkSizeRest: {
          const lf = b.indexOf(LF, i);
          if (lf === -1) i = n;
          else {
            i = lf + 1;
            this.#chunkSizeEnd();
          }
          break;
        }
        case St.ChunkData: {
          const take = Math.min(this.#remaining, n - i);
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#st = St.ChunkDataEnd;
          break;
        }
        case St.ChunkDataEnd: {
          const c = b[i++] as number;
          if (c === CR) this.#st = St.ChunkDataLf;
          else if (c === LF) this.#chunkStart();
          else this.#lose();
          break;
        }
        case St.ChunkDataLf: {
          if (b[i++] === LF) this.#chunkStart();
          else this.#lose();
          break;
        }
        case St.TrailerStart: {
          const c = b[i++] as number;
          if (c === CR) this.#st = St.TrailerEndLf;
          else if (c === LF) this.#st = St.Start;
          else this.#st = St.TrailerLine;
          break;
        }
        case St.TrailerLine: {
          const lf = b.indexOf(LF, i);
          if (lf === -1) i = n;
          else {
            i = lf + 1;
            this.#st = St.TrailerStart;
          }
          break;
        }
        case St.TrailerEndLf: {
          if (b[i++] === LF) this.#st = St.Start;
          else this.#lose();
          break;
        }
        case St.Lost:
          return;
      }
    }
  }

  /**
   * The verdict on the next request line: true if it was well formed and its target was
   * `targetLength` bytes long (the parser's view of the same request), false otherwise.
   */
  take(targetLength: number): boolean {
    if (this.#next === this.#verdicts.length) return false;
    const v = this.#verdicts[this.#next++] as number;
    if (this.#next === this.#verdicts.length) {
      this.#verdicts.length = 0;
      this.#next = 0;
    }
    return v !== BAD && v === targetLength;
  }

  /** A malformed request line: its request is refused, and nothing after it is read. */
  #bad(): void {
    this.#verdicts.push(BAD);
    this.#lose();
  }

  #lose(): void {
    this.#st = St.Lost;
  }

  /** End of the header section. A request has a body only by Transfer-Encoding or Content-Length (RFC 9112 §6.3). */
  #headEnd(): void {
    if (this.#chunked) this.#chunkStart();
    else if (this.#length > 0) {
      this.#remaining = this.#length;
      this.#st = St.Body;
    } else this.#st = St.Start;
  }

  #chunkStart(): void {
    this.#st = St.ChunkSize;
    this.#remaining = 0;
    this.#len = 0;
  }

  #chunkSizeEnd(): void {
    this.#st = this.#remaining === 0 ? St.TrailerStart : St.ChunkData;
  }
}

const scanners = new WeakMap<object, { scanner: RequestLineScanner; onData: (chunk: Buffer) => void }>();

/**
 * Check the request lines on an HTTP/1.x server connection, from its first byte: call it
 * from the server's own connection event, after node:http has taken the socket. The
 * listener goes first, so each chunk is scanned before the parser reads it; adding it makes
 * node:http read the socket in JavaScript rather than natively.
 */
export function watchRequestLines(socket: Duplex): void {
  const scanner = new RequestLineScanner();
  const onData = (chunk: Buffer) => scanner.scan(chunk);
  scanners.set(socket, { scanner, onData });
  socket.prependListener('data', onData);
}

/** Stop checking (the connection was upgraded: what follows is not HTTP/1.1). */
export function unwatchRequestLines(socket: Duplex): void {
  const w = scanners.get(socket);
  if (w === undefined) return;
  socket.off('data', w.onData);
  scanners.delete(socket);
}

/**
 * Whether `req`'s request line was well formed. Call exactly once per request the server
 * emits, in order. A connection not watched (HTTP/2, or a server set up elsewhere) passes.
 */
export function requestLineValid(req: IncomingMessage): boolean {
  const w = scanners.get(req.socket);
  return w === undefined || w.scanner.take((req.url ?? '').length);
}
