import { bytesNamed, COLON, CR, FIELD_VCHAR, HTAB, lowerBytes, LF, SP, TARGET_CHAR, TCHAR } from './chars.js';

/*
 * Meridian's HTTP/1.1 message-head parser, for requests (downstream) and responses
 * (upstream). Hand-written rather than a library or Node's llhttp binding: it is the hot
 * path (a library's generality and callbacks cost measurable time per request here), and
 * the binding is an undocumented internal. It is strict in HAProxy's spirit: what RFC 9112
 * lets a recipient be lenient about is refused, never guessed at (bare LF line ends,
 * obs-fold, runs of spaces in the request line, a Content-Length list, Content-Length with
 * Transfer-Encoding). docs/http1-engine.md lists each choice; the differential fuzz test
 * (test/http1/differential.test.ts) holds it to accepting nothing Node's own server
 * refuses, and to framing everything it accepts as Node does.
 *
 * Incremental by line: bytes come in chunks as the socket reads them; a line is parsed
 * as soon as its CRLF arrives, so a bad line is refused without waiting for the rest of
 * the head. Only a line split across two reads is copied.
 */

/** Returned by `execute` while the head is not complete. */
export const NEED_MORE = -1;
/** Returned by `execute` when the head is malformed or too large: see `error`. */
export const FAILED = -2;

export type HeadError =
  /** Malformed: 400 downstream, a protocol error upstream. */
  | 'bad_request'
  /** Longer than the head limit, or more header fields than allowed: 431. */
  | 'header_fields_too_large';

/**
 * Node's method list (http.METHODS) minus CONNECT (Meridian tunnels no CONNECT) and PRI
 * (the HTTP/2 preface, which an HTTP/1.1 connection refuses).
 */
const METHODS = new Set(
  'ACL BIND CHECKOUT COPY DELETE GET HEAD LINK LOCK M-SEARCH MERGE MKACTIVITY MKCALENDAR MKCOL MOVE NOTIFY OPTIONS PATCH POST PROPFIND PROPPATCH PURGE PUT QUERY REBIND REPORT SEARCH SOURCE SUBSCRIBE TRACE UNBIND UNLINK UNLOCK UNSUBSCRIBE'.split(' '),
);

/** Bytes of a read decoded at once in the hope that they hold the whole head (most heads are far shorter). */
const TEXT_WINDOW = 2048;

/** The names (and values) the parser acts on, as bytes for bytesNamed. */
const CONTINUE_100 = lowerBytes('100-continue');
const CLOSE = lowerBytes('close');
const CONNECTION = lowerBytes('connection');
const CONTENT_LENGTH = lowerBytes('content-length');
const EXPECT = lowerBytes('expect');
const HOST = lowerBytes('host');
const KEEP_ALIVE = lowerBytes('keep-alive');
const TRANSFER_ENCODING = lowerBytes('transfer-encoding');
const UPGRADE = lowerBytes('upgrade');

/** Content-Length digits accepted: 15 keeps any value an exact double (and far past any body limit). */
const MAX_LENGTH_DIGITS = 15;

/** What a message head says, as far as the engine must know to frame and forward it. */
export class MessageHead {
  /** Requests: the method, as sent (one of METHODS). */
  method = '';
  /** Requests: the request-target, as sent. */
  target = '';
  /** Responses: the status code. */
  status = 0;
  /** Responses: the reason phrase, as sent (may be empty). */
  reason = '';
  versionMajor = 1;
  versionMinor = 1;
  /** Header fields as sent, [name, value, ...]: names in their own case, values without surrounding whitespace. */
  readonly raw: string[] = [];
  /** The Content-Length, or -1 without one. */
  contentLength = -1;
  /** Transfer-Encoding's final coding is chunked. */
  chunked = false;
  /** A Transfer-Encoding field was sent. */
  transferEncoding = false;
  /** Transfer-Encoding names a coding besides chunked (the caller answers 501 or treats it as broken). */
  otherCoding = false;
  /** Connection: close (or HTTP/1.0 without keep-alive). */
  close = false;
  /** Connection names `upgrade`. */
  connectionUpgrade = false;
  /** The Upgrade field, if any. */
  upgrade: string | undefined = undefined;
  /** Host fields seen (a request must have exactly one). */
  hostCount = 0;
  /** The (last) Host field. */
  host: string | undefined = undefined;
  /** Expect: 100-continue (any case). */
  expectContinue = false;
  /** An Expect field other than 100-continue. */
  expectOther = false;
  /** Keep-Alive: timeout=N in seconds (responses), or -1. */
  keepAliveTimeoutS = -1;

  /** The value of the first field named `lower` (lower case), or undefined. */
  get(lower: string): string | undefined {
    const raw = this.raw;
    for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).length === lower.length && (raw[i] as string).toLowerCase() === lower) return raw[i + 1];
    return undefined;
  }
}

export interface HeadLimits {
  /** Bytes of the whole head (start line, fields, CRLFs). */
  readonly maxHeadBytes: number;
  /** Header fields (requests' limit is checked by admission for its own answer: pass a hard stop here). */
  readonly maxFields: number;
}

/**
 * Parses one message head at a time; `reset()` between messages. `execute(buf, off)`
 * returns the offset just past the head once it is complete, NEED_MORE (everything from
 * `off` was taken), or FAILED (`error` says why; the connection cannot go on).
 */
export class HeadParser {
  readonly #request: boolean;
  readonly #limits: HeadLimits;
  head = new MessageHead();
  error: HeadError | undefined;
  /** Which rule refused the head (for logs and the differential test): `request_line_spaces`, `bare_lf`, ... */
  reason = '';
  /** A line split across reads, waiting for its end. */
  #partial: Buffer | undefined;
  #bytes = 0;
  #started = false;
  #teCodings: string | undefined;

  constructor(request: boolean, limits: HeadLimits) {
    this.#request = request;
    this.#limits = limits;
  }

  /** Ready for the next message's head (a new MessageHead: the last one may still be in use). */
  reset(): void {
    this.head = new MessageHead();
    this.error = undefined;
    this.reason = '';
    this.#partial = undefined;
    this.#bytes = 0;
    this.#started = false;
    this.#teCodings = undefined;
    this.#keepAlive = false;
  }

  /** Whether any byte of a head has been read (an idle connection's end is not an error). */
  get started(): boolean {
    return this.#started || this.#partial !== undefined;
  }

  execute(buf: Buffer, off: number): number {
    const r = this.#execute(buf, off);
    this.#textBuf = undefined; // the next read may land in the same (shared) buffer
    return r;
  }

  /**
   * The read's text from where its lines start, up to TEXT_WINDOW bytes, decoded once per
   * read: line ends are found in it, and names and values that lie within it are cut from it
   * (a substring is a JIT'd copy or slice) instead of each being decoded from the buffer by
   * its own call into C++. Lines past it, or split across reads, are decoded from bytes.
   */
  #text = '';
  #textBuf: Buffer | undefined;
  #textAt = 0;

  #slice(b: Buffer, start: number, end: number): string {
    const at = this.#textAt;
    return b === this.#textBuf && end - at <= this.#text.length ? this.#text.substring(start - at, end - at) : b.toString('latin1', start, end);
  }

  #execute(buf: Buffer, off: number): number {
    let pos = off;
    const n = buf.length;
    if (!this.#started && this.#partial === undefined) {
      // RFC 9112 §2.2: empty lines before a request line are ignored (as Node does).
      if (this.#request) while (pos < n && (buf[pos] === CR || buf[pos] === LF)) pos++;
      if (pos === n) return NEED_MORE;
      this.#started = true;
    }
    if (this.#partial === undefined) {
      // The usual read is a head, or a head and a small body: decoded at once (one call into
      // C++ rather than one per name and value), then searched and cut as a string.
      this.#text = buf.toString('latin1', pos, n - pos <= TEXT_WINDOW ? n : pos + TEXT_WINDOW);
      this.#textBuf = buf;
      this.#textAt = pos;
    }
    // Line ends are found in the text while it lasts: a string search is JIT'd, a Buffer's
    // goes into C++ through two layers of JavaScript.
    const text = this.#textBuf === buf ? this.#text : '';
    const at = this.#textAt;
    const textEnd = text === '' ? 0 : at + text.length;
    while (pos < n) {
      let lf = pos < textEnd ? text.indexOf('\n', pos - at) : -1;
      if (lf !== -1) lf += at;
      else lf = buf.indexOf(LF, pos < textEnd ? textEnd : pos);
      if (lf === -1) {
        this.#bytes += n - pos;
        if (this.#bytes > this.#limits.maxHeadBytes) return this.#fail('header_fields_too_large', 'head_bytes');
        this.#partial = this.#partial === undefined ? buf.subarray(pos) : Buffer.concat([this.#partial, buf.subarray(pos)]);
        // A copy: the socket may reuse its buffer.
        if (this.#partial.buffer === buf.buffer) this.#partial = Buffer.from(this.#partial);
        return NEED_MORE;
      }
      this.#bytes += lf + 1 - pos;
      if (this.#bytes > this.#limits.maxHeadBytes) return this.#fail('header_fields_too_large', 'head_bytes');
      let line = buf;
      let start = pos;
      let end = lf;
      if (this.#partial !== undefined) {
        line = Buffer.concat([this.#partial, buf.subarray(pos, lf)]);
        start = 0;
        end = line.length;
        this.#partial = undefined;
      }
      pos = lf + 1;
      // Every line ends in CRLF: a bare LF is refused (RFC 9112 §2.2 lets a recipient take it; Node 20 does not, nor do we).
      if (end === start || line[end - 1] !== CR) {
        // A request line ending in a bare LF is refused for its own faults first (say, no version), if it has any.
        if (this.#request && this.#atStartLine() && !this.#requestLine(line, start, end)) return FAILED;
        return this.#fail('bad_request', 'bare_lf');
      }
      end--;
      if (end === start) return this.#endOfHead() ? pos : FAILED;
      const ok = this.#atStartLine() ? this.#startLine(line, start, end) : this.#field(line, start, end);
      if (!ok) return FAILED;
    }
    return NEED_MORE;
  }

  #atStartLine(): boolean {
    return this.head.method === '' && this.head.status === 0;
  }

  #fail(e: HeadError, reason: string): number {
    this.error = e;
    this.reason = reason;
    return FAILED;
  }

  #startLine(b: Buffer, start: number, end: number): boolean {
    return this.#request ? this.#requestLine(b, start, end) : this.#statusLine(b, start, end);
  }

  /** method SP request-target SP HTTP-version: one SP each (RFC 9112 §3), as Apache's strict mode. */
  #requestLine(b: Buffer, start: number, end: number): boolean {
    let i = start;
    while (i < end && TCHAR[b[i] as number] === 1) i++;
    if (i === start || i >= end || b[i] !== SP) return this.#fail('bad_request', 'method') === 0;
    const method = this.#slice(b, start, i);
    const t = ++i;
    while (i < end && TARGET_CHAR[b[i] as number] === 1) i++;
    if (i === t && b[i] === SP) return this.#fail('bad_request', 'request_line_spaces') === 0;
    // No version: an HTTP/0.9 simple request to nginx and Node; refused, as HAProxy does.
    if (i === end && i > t) return this.#fail('bad_request', 'no_version') === 0;
    // GET compared first: equal strings are compared in place; a Set hashes the new string.
    if (method !== 'GET' && !METHODS.has(method)) return this.#fail('bad_request', 'method') === 0;
    if (i === t || i >= end || b[i] !== SP) return this.#fail('bad_request', 'target') === 0;
    const target = this.#slice(b, t, i);
    i++;
    if (b[i] === SP) return this.#fail('bad_request', 'request_line_spaces') === 0;
    if (!this.#version(b, i, end, true)) return false;
    this.head.method = method;
    this.head.target = target;
    return true;
  }

  /** HTTP-version SP status-code [SP reason-phrase] (a missing reason tolerated, as every client does). */
  #statusLine(b: Buffer, start: number, end: number): boolean {
    if (end - start < 12 || !this.#version(b, start, start + 8, false) || b[start + 8] !== SP) return this.#fail('bad_request', 'status_line') === 0;
    let status = 0;
    for (let i = start + 9; i < start + 12; i++) {
      const d = (b[i] as number) - 48;
      if (d < 0 || d > 9) return this.#fail('bad_request', 'status_line') === 0;
      status = status * 10 + d;
    }
    if (status < 100 || status > 599) return this.#fail('bad_request', 'status_line') === 0;
    let reason = '';
    if (end > start + 12) {
      if (b[start + 12] !== SP) return this.#fail('bad_request', 'status_line') === 0;
      for (let i = start + 13; i < end; i++) if (FIELD_VCHAR[b[i] as number] !== 1) return this.#fail('bad_request', 'status_line') === 0;
      reason = this.#slice(b, start + 13, end);
    }
    this.head.status = status;
    this.head.reason = reason;
    return true;
  }

  /**
   * `HTTP/` DIGIT `.` DIGIT, ending the line exactly. Requests: 1.0 and 1.1, plus 0.9 and
   * 2.0 so that the caller answers them as it chooses (400 and 505); responses: 1.0, 1.1.
   */
  #version(b: Buffer, i: number, end: number, request: boolean): boolean {
    if (end - i !== 8 || b[i] !== 72 || b[i + 1] !== 84 || b[i + 2] !== 84 || b[i + 3] !== 80 || b[i + 4] !== 47 || b[i + 6] !== 46) return this.#fail('bad_request', 'version') === 0;
    const major = (b[i + 5] as number) - 48;
    const minor = (b[i + 7] as number) - 48;
    const ok = (major === 1 && (minor === 0 || minor === 1)) || (request && ((major === 0 && minor === 9) || (major === 2 && minor === 0)));
    if (!ok) return this.#fail('bad_request', 'version') === 0;
    this.head.versionMajor = major;
    this.head.versionMinor = minor;
    return true;
  }

  /** field-name ":" OWS field-value OWS; no space before the colon, no obs-fold (RFC 9112 §5). */
  #field(b: Buffer, start: number, end: number): boolean {
    const head = this.head;
    if (head.raw.length >= this.#limits.maxFields * 2) return this.#fail('header_fields_too_large', 'fields') === 0;
    // The table as a local: a module binding is loaded again on each pass of a loop.
    const tchar = TCHAR;
    let i = start;
    while (i < end && tchar[b[i] as number] === 1) i++;
    if (i === start || i >= end || b[i] !== COLON) return this.#fail('bad_request', 'field_name') === 0;
    const nameEnd = i++;
    while (i < end && (b[i] === SP || b[i] === HTAB)) i++;
    let vEnd = end;
    while (vEnd > i && (b[vEnd - 1] === SP || b[vEnd - 1] === HTAB)) vEnd--;
    // FIELD_VCHAR by comparisons: here they beat the table's load (and a helper's call).
    for (let j = i; j < vEnd; j++) {
      const c = b[j] as number;
      if ((c < SP && c !== HTAB) || c === 0x7f) return this.#fail('bad_request', 'field_value') === 0;
    }
    const name = this.#slice(b, start, nameEnd);
    const value = this.#slice(b, i, vEnd);
    head.raw.push(name, value);
    return this.#known(b, start, nameEnd, i, vEnd, value);
  }

  /** The fields that frame the message or that the engine acts on. */
  #known(b: Buffer, n: number, nEnd: number, v: number, vEnd: number, value: string): boolean {
    const head = this.head;
    switch (nEnd - n) {
      case 4:
        if (bytesNamed(b, n, nEnd, HOST)) {
          head.hostCount++;
          head.host = value;
        }
        return true;
      case 6:
        if (bytesNamed(b, n, nEnd, EXPECT)) {
          if (bytesNamed(b, v, vEnd, CONTINUE_100)) head.expectContinue = true;
          else head.expectOther = true;
        }
        return true;
      case 7:
        if (bytesNamed(b, n, nEnd, UPGRADE)) head.upgrade = head.upgrade === undefined ? value : `${head.upgrade}, ${value}`;
        return true;
      case 10:
        if (bytesNamed(b, n, nEnd, CONNECTION)) this.#connection(b, v, vEnd, value);
        else if (bytesNamed(b, n, nEnd, KEEP_ALIVE)) {
          const m = /(?:^|[\s,])timeout\s*=\s*(\d{1,6})/i.exec(value);
          if (m !== null) head.keepAliveTimeoutS = Number(m[1]);
        }
        return true;
      case 14:
        if (bytesNamed(b, n, nEnd, CONTENT_LENGTH)) return this.#contentLength(b, v, vEnd);
        return true;
      case 17:
        if (bytesNamed(b, n, nEnd, TRANSFER_ENCODING)) {
          head.transferEncoding = true;
          this.#teCodings = this.#teCodings === undefined ? value : `${this.#teCodings},${value}`;
        }
        return true;
      default:
        return true;
    }
  }

  /** 1*DIGIT, one field only: a duplicate (even of the same value) or a list is refused, as Node does. */
  #contentLength(b: Buffer, v: number, vEnd: number): boolean {
    if (this.head.contentLength !== -1) return this.#fail('bad_request', 'content_length_twice') === 0;
    if (vEnd === v || vEnd - v > MAX_LENGTH_DIGITS) return this.#fail('bad_request', 'content_length') === 0;
    let n = 0;
    for (let i = v; i < vEnd; i++) {
      const d = (b[i] as number) - 48;
      if (d < 0 || d > 9) return this.#fail('bad_request', 'content_length') === 0;
      n = n * 10 + d;
    }
    this.head.contentLength = n;
    return true;
  }

  #connection(b: Buffer, v: number, vEnd: number, value: string): void {
    const head = this.head;
    // The usual value is one token: no split.
    if (bytesNamed(b, v, vEnd, KEEP_ALIVE)) {
      this.#keepAlive = true;
      return;
    }
    if (bytesNamed(b, v, vEnd, CLOSE)) {
      head.close = true;
      return;
    }
    for (const token of value.split(',')) {
      const t = token.trim().toLowerCase();
      if (t === 'close') head.close = true;
      else if (t === 'upgrade') head.connectionUpgrade = true;
      else if (t === 'keep-alive') this.#keepAlive = true;
    }
  }

  #keepAlive = false;

  /**
   * The head is complete: settle its framing. Transfer-Encoding's codings are tokens, with
   * chunked at most once and only last (RFC 9112 §6.1); with Content-Length it is refused
   * (the smuggling pair; Node refuses it too, HAProxy drops the length: we refuse).
   */
  #endOfHead(): boolean {
    const head = this.head;
    if (this.#teCodings !== undefined) {
      if (head.contentLength !== -1) return this.#fail('bad_request', 'transfer_encoding') === 0;
      let chunkedAt = -1;
      let count = 0;
      const parts = this.#teCodings.split(',');
      // A list ending in an empty element ("chunked,") is refused, as Node refuses it.
      if ((parts[parts.length - 1] as string).trim() === '') return this.#fail('bad_request', 'transfer_encoding') === 0;
      for (const part of parts) {
        const c = part.trim();
        if (c === '') continue; // RFC 9110 §5.6.1: empty list elements are ignored.
        for (let i = 0; i < c.length; i++) if (TCHAR[c.charCodeAt(i)] !== 1) return this.#fail('bad_request', 'transfer_encoding') === 0;
        if (c.toLowerCase() === 'chunked') {
          if (chunkedAt !== -1) return this.#fail('bad_request', 'transfer_encoding') === 0;
          chunkedAt = count;
        }
        count++;
      }
      if (chunkedAt !== -1 && chunkedAt !== count - 1) return this.#fail('bad_request', 'transfer_encoding') === 0;
      head.chunked = chunkedAt !== -1;
      head.otherCoding = count > (head.chunked ? 1 : 0);
      if (count === 0) return this.#fail('bad_request', 'transfer_encoding') === 0;
    }
    if (head.versionMajor === 1 && head.versionMinor === 0 && !this.#keepAlive) head.close = true;
    return true;
  }
}
