/** Header values as the proxy hands them over: what node:http's header objects hold. */
export type HeaderValue = string | number | readonly string[] | undefined;

/** How the request body goes upstream, decided with its head. */
export const enum BodyMode {
  None,
  /** A Buffer, sent with its Content-Length. */
  Whole,
  /** A stream whose length the client declared: sent as it arrives, under that Content-Length. */
  Length,
  /** A stream of unknown length: chunked. */
  Chunked,
}

/** RFC 9110 §9.3: methods whose requests carry content; sent `Content-Length: 0` without a body (as undici does). */
const PAYLOAD_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * A request's header fields already as text, `name: value\r\n` each, with no field that
 * frames the body (Content-Length, Transfer-Encoding): the proxy's HTTP/1.1 fast path,
 * which builds it from the fields as the client sent them without a header object.
 */
export class RequestFields {
  constructor(
    readonly text: string,
    /** The Content-Length the client declared, or -1. */
    readonly contentLength: number,
  ) {}
}

/** The Content-Length a request's fields declare, if any. */
export function declaredLength(headers: Readonly<Record<string, HeaderValue>> | RequestFields): number | undefined {
  if (headers instanceof RequestFields) return headers.contentLength === -1 ? undefined : headers.contentLength;
  const cl = headers['content-length'];
  return cl === undefined ? undefined : Number(cl);
}

/**
 * The request head as one latin1 string, for a single write: request line, the fields of
 * `headers` (minus Content-Length and Transfer-Encoding, which the body's mode sets), the
 * framing field, the blank line. Values come from a parsed request or from Meridian
 * itself, so they hold no CR or LF.
 */
export function requestHead(method: string, path: string, headers: Readonly<Record<string, HeaderValue>> | RequestFields, mode: BodyMode, length: number): string {
  let s = `${method} ${path} HTTP/1.1\r\n`;
  let hadLength = false;
  if (headers instanceof RequestFields) {
    s += headers.text;
    hadLength = headers.contentLength !== -1;
  } else {
    for (const name in headers) {
      const v = headers[name];
      if (v === undefined) continue;
      if (name === 'content-length') {
        hadLength = true;
        continue;
      }
      if (name === 'transfer-encoding') continue;
      if (typeof v === 'object') for (const one of v) s += `${name}: ${one}\r\n`;
      else s += `${name}: ${v}\r\n`;
    }
  }
  if (mode === BodyMode.Whole || mode === BodyMode.Length) s += `content-length: ${length}\r\n`;
  else if (mode === BodyMode.Chunked) s += 'transfer-encoding: chunked\r\n';
  else if (hadLength || PAYLOAD_METHODS.has(method)) s += 'content-length: 0\r\n';
  return s + '\r\n';
}
