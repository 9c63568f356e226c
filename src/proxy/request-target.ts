import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { isIPv6 } from 'node:net';
import type { LocalReplyCode } from './errors.js';

/** Where a request goes, as every later step (routing, hashing, forwarding, logging) sees it. */
export interface RequestTarget {
  /** The target in origin form: `/path?query`. */
  readonly url: string;
  /** The host it names (Host, :authority, or an absolute-form target's authority). */
  readonly host: string;
}

/**
 * The one normalisation every HTTP request and every Upgrade request goes through before it
 * is routed, so both are answered, routed and forwarded alike. Call it first, exactly once
 * per request. Either the request is refused (a LocalReplyCode; the caller answers it and
 * closes the connection, or on HTTP/2 ends the stream; nothing goes upstream) or its target
 * is returned, with `req.headers.host` set to the one host the request names.
 *
 * HTTP/1.x, in order:
 * - the request line: already strict (the engine's parser refused a bad one with 400);
 * - the version: 1.0 or 1.1; 2.0 and up get 505 (nginx does), 0.9 a 400;
 * - Transfer-Encoding: faulty framing on 1.0 (RFC 9112 §6.1, 400); on 1.1 `chunked` alone,
 *   any case, empty list elements ignored (RFC 9110 §5.6.1); any other coding is one Meridian
 *   would drop on the way, so 501 (RFC 9112 §6.1; Envoy answers 501 too);
 * - Host (RFC 9112 §3.2): exactly one, a valid uri-host[:port], else invalid_host. HTTP/1.0
 *   may omit it, but Meridian refuses that too, as Envoy does (short of a configured default
 *   host): the HTTP/1.1 request upstream would have no host to name;
 * - the target: origin form, or absolute form (`http://host/path`), whose authority replaces
 *   Host (RFC 9112 §3.2.2) after the same checks, userinfo refused (RFC 9110 §4.2.4); no
 *   fragment in either. Anything else (asterisk form included) is a 400, as before.
 *
 * HTTP/2: the host is :authority (or `host` without it), valid as above; a `host` naming
 * another than :authority makes the request malformed (RFC 9113 §8.3.1), 400.
 */
export function requestTarget(req: IncomingMessage): RequestTarget | LocalReplyCode {
  // By the stream, not the version: "GET / HTTP/2.0" on an HTTP/1.1 connection says 2 too.
  if ((req as unknown as Partial<Http2ServerRequest>).stream !== undefined) return h2Target(req);
  if (req.httpVersionMajor !== 1) return req.httpVersionMajor > 1 ? 'http_version_not_supported' : 'bad_request';
  const te = req.headers['transfer-encoding'];
  if (te !== undefined) {
    if (req.httpVersionMinor === 0) return 'bad_request';
    if (!CHUNKED_ALONE.test(te)) return 'transfer_coding_not_implemented';
  }
  const host = req.headers.host;
  if (host === undefined || hostFields(req.rawHeaders) !== 1 || !validHost(host)) return 'invalid_host';
  return target(req, host);
}

function h2Target(req: IncomingMessage): RequestTarget | LocalReplyCode {
  const authority = req.headers[':authority'];
  const host = req.headers.host;
  if (typeof authority !== 'string') {
    if (host === undefined || hostFields(req.rawHeaders) !== 1 || !validHost(host)) return 'invalid_host';
    return target(req, host);
  }
  if (!validHost(authority)) return 'invalid_host';
  if (host !== undefined) {
    if (hostFields(req.rawHeaders) !== 1 || host.toLowerCase() !== authority.toLowerCase()) return 'invalid_host';
    // :authority is the one forwarded (Envoy drops host when :authority is present).
    req.headers.host = authority;
  }
  return target(req, authority);
}

function target(req: IncomingMessage, host: string): RequestTarget | LocalReplyCode {
  const url = req.url ?? '';
  // A request target has no fragment (RFC 9112 §3.2); Node's parser lets "/a#b" through. HAProxy refuses it too.
  if (url.includes('#')) return 'bad_request';
  if (url.charCodeAt(0) === 47 /* / */) return { url, host };
  const m = ABSOLUTE_FORM.exec(url);
  if (m === null) return 'bad_request';
  const authority = m[1] as string;
  if (!validHost(authority)) return 'invalid_host';
  const rest = m[2] ?? '';
  req.headers.host = authority;
  return { url: rest === '' ? '/' : rest.charCodeAt(0) === 63 /* ? */ ? `/${rest}` : rest, host: authority };
}

/** Transfer-Encoding that is `chunked` and nothing else (RFC 9110 §5.6.1 list, empty elements ignored). */
const CHUNKED_ALONE = /^[\t ,]*chunked[\t ,]*$/i;

/** `http://authority` or `https://authority`, then what follows: nothing, `/...` or `?...`. */
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)([/?].*)?$/i;

/**
 * RFC 9110 §7.2: Host = uri-host [ ":" port ]; uri-host is an IP-literal, or an IPv4
 * address or reg-name (RFC 3986 §3.2.2), which share one alphabet: unreserved, sub-delims
 * and percent-encoded octets. Not empty: an http(s) URI has a host (RFC 9110 §4.2.1).
 */
const REG_NAME_PORT = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+(?::[0-9]*)?$/;
/** RFC 3986 §3.2.2 IPvFuture. */
const IP_FUTURE = /^v[0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+$/;

/** A valid uri-host[:port] (see above), port at most 65535. */
export function validHost(value: string): boolean {
  let portAt: number;
  if (value.charCodeAt(0) === 91 /* [ */) {
    const end = value.indexOf(']');
    if (end === -1) return false;
    const literal = value.slice(1, end);
    // isIPv6 takes zone ids ("fe80::1%eth0"), which RFC 3986 does not.
    if (!(isIPv6(literal) && !literal.includes('%')) && !IP_FUTURE.test(literal)) return false;
    if (end + 1 === value.length) return true;
    if (value.charCodeAt(end + 1) !== 58 /* : */) return false;
    portAt = end + 2;
  } else {
    if (!REG_NAME_PORT.test(value)) return false;
    const colon = value.indexOf(':');
    if (colon === -1) return true;
    portAt = colon + 1;
  }
  let port = 0;
  for (let i = portAt; i < value.length; i++) {
    const d = value.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    port = port * 10 + d;
    if (port > 65535) return false;
  }
  return true;
}

/** Host field lines in a request (node:http keeps only the first in `headers`). */
function hostFields(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && (name.charCodeAt(0) | 0x20) === 104 && (name.charCodeAt(1) | 0x20) === 111 && (name.charCodeAt(2) | 0x20) === 115 && (name.charCodeAt(3) | 0x20) === 116) n++;
  }
  return n;
}
