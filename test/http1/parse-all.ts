import { BodyDecoder, Framing, type BodySink } from '../../src/http1/body-decoder.js';
import { FAILED, HeadParser, NEED_MORE } from '../../src/http1/head-parser.js';

/** A request as a parser framed it: what the differential test compares. */
export interface Framed {
  readonly method: string;
  readonly target: string;
  readonly version: string;
  readonly rawHeaders: readonly string[];
  /** The body, hex (bytes, whatever they are). */
  readonly body: string;
  readonly rawTrailers: readonly string[];
}

export interface ParseAllResult {
  readonly requests: Framed[];
  /** Why parsing stopped before the end of the input, if it did: the parser's error or the rule of Meridian's that refused. */
  readonly stopped: string | undefined;
}

class Collect implements BodySink {
  chunks: Buffer[] = [];
  onBody(chunk: Buffer): boolean {
    this.chunks.push(Buffer.from(chunk));
    return true;
  }
}

/**
 * Every request Meridian's parser frames in `input`, in order, as a downstream connection
 * would read them (fed in `split`-byte reads), until the first refusal or a request after
 * which the connection closes. The rules the listener applies on top of the parser (and
 * before any byte goes upstream) count as refusals: a version other than 1.0/1.1 (400, 505),
 * a transfer coding besides chunked (501), Transfer-Encoding on HTTP/1.0 (400).
 */
export function parseAll(input: Buffer, split = input.length || 1): ParseAllResult {
  const parser = new HeadParser(true, { maxHeadBytes: 16 * 1024, maxFields: 2000 });
  const decoder = new BodyDecoder(16 * 1024);
  const requests: Framed[] = [];
  let sink = new Collect();
  let inBody = false;
  for (let at = 0; at < input.length; at += split) {
    const buf = input.subarray(at, Math.min(input.length, at + split));
    let off = 0;
    while (off < buf.length) {
      if (!inBody) {
        const end = parser.execute(buf, off);
        if (end === FAILED) return { requests, stopped: parser.reason };
        if (end === NEED_MORE) break;
        off = end;
        const h = parser.head;
        if (!(h.versionMajor === 1 && (h.versionMinor === 0 || h.versionMinor === 1))) return { requests, stopped: 'version' };
        if (h.otherCoding) return { requests, stopped: 'transfer_coding' };
        if (h.transferEncoding && h.versionMinor === 0) return { requests, stopped: 'te_http10' };
        decoder.start(h.chunked ? Framing.Chunked : h.contentLength > 0 ? Framing.Length : Framing.None, h.contentLength);
        inBody = true;
        sink = new Collect();
      }
      const end = decoder.done ? off : decoder.execute(buf, off, sink);
      if (end === FAILED) return { requests, stopped: decoder.reason };
      if (end === NEED_MORE) break;
      off = end;
      const h = parser.head;
      requests.push({
        method: h.method,
        target: h.target,
        version: `${h.versionMajor}.${h.versionMinor}`,
        rawHeaders: h.raw,
        body: Buffer.concat(sink.chunks).toString('hex'),
        rawTrailers: decoder.trailers,
      });
      inBody = false;
      parser.reset();
      if (h.close) return { requests, stopped: off < buf.length || at + split < input.length ? 'closed' : undefined };
    }
  }
  return { requests, stopped: inBody || parser.started ? 'incomplete' : undefined };
}
