import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { UpstreamClientError } from '../http1/upstream-client.js';
import { isTlsError } from '../shared/tls-errors.js';
import { grpcMessage, grpcStatusOf, isGrpc } from './grpc.js';

/** Replies Meridian makes itself, with a stable reason code (see docs/errors.md). */
export const LOCAL_REPLIES = {
  bad_request: { status: 400, message: 'bad request' },
  invalid_host: { status: 400, message: 'the request names no host, more than one, or an invalid one' },
  request_timeout: { status: 408, message: 'the request was not received in time' },
  payload_too_large: { status: 413, message: 'the request body is larger than this listener accepts' },
  uri_too_long: { status: 414, message: 'the request target is longer than this listener accepts' },
  header_fields_too_large: { status: 431, message: 'too many or too large request header fields' },
  no_route: { status: 404, message: 'no route matches this request' },
  upgrade_refused: { status: 403, message: 'this route does not allow the requested upgrade' },
  rate_limited: { status: 429, message: 'rate limit exceeded' },
  transfer_coding_not_implemented: { status: 501, message: 'the request body is sent with a transfer coding other than chunked alone' },
  connect_failure: { status: 502, message: 'could not connect to an upstream' },
  upstream_tls: { status: 502, message: "the TLS handshake with the upstream failed (its certificate did not verify, or it refused Meridian's)" },
  upstream_reset: { status: 502, message: 'the upstream closed the connection before answering' },
  upstream_protocol_error: { status: 502, message: 'the upstream answered with a malformed HTTP/1.1 response' },
  rate_limit_unavailable: { status: 503, message: 'the fleet-wide rate limit could not be checked' },
  circuit_open: { status: 503, message: 'too many requests in flight for this cluster' },
  overloaded: { status: 503, message: 'the cluster is at its adaptive concurrency limit; try again later' },
  no_healthy_endpoint: { status: 503, message: 'no healthy upstream' },
  timeout: { status: 504, message: 'the upstream did not answer in time' },
  http_version_not_supported: { status: 505, message: 'this listener speaks HTTP/1.0 and HTTP/1.1 on this connection' },
} as const;

export type LocalReplyCode = keyof typeof LOCAL_REPLIES;

/**
 * Why one try at an upstream failed. `source` says where (pingora's habit): `connect`
 * failures never reached the upstream, so any request may be retried; the others may
 * have, so only idempotent requests whose body was not consumed may be.
 */
export class UpstreamError extends Error {
  readonly code: 'connect_failure' | 'upstream_tls' | 'upstream_reset' | 'upstream_protocol_error' | 'timeout';
  readonly reachedUpstream: boolean;

  constructor(code: UpstreamError['code'], reachedUpstream: boolean, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UpstreamError';
    this.code = code;
    this.reachedUpstream = reachedUpstream;
  }
}

/** The text every local reply carries (its body; a gRPC reply's grpc-message, without the newline). */
export function localReplyText(code: LocalReplyCode): string {
  return `meridian: ${LOCAL_REPLIES[code].message} (${code})\n`;
}

/**
 * A local reply as raw bytes, for a connection with no request object to answer through
 * (a malformed or too slow request head): the same status, reason header and body as
 * sendLocalReply's, and the connection closes after it.
 */
export function rawLocalReply(code: LocalReplyCode): string {
  const status = LOCAL_REPLIES[code].status;
  const body = localReplyText(code);
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Meridian-Reason: ${code}\r\nConnection: close\r\n\r\n${body}`;
}

export function sendLocalReply(res: ServerResponse, code: LocalReplyCode, requestId: string | undefined, extraHeaders: Record<string, string> = {}): void {
  const status = LOCAL_REPLIES[code].status;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const req = (res as { req?: IncomingMessage }).req;
  // A gRPC client reads only grpc-status: answer as a gRPC server would, HTTP 200 with the status in trailers.
  if (req !== undefined && req.httpVersionMajor === 2 && isGrpc(req.headers)) {
    res.writeHead(200, {
      'content-type': 'application/grpc',
      'x-meridian-reason': code,
      ...(requestId === undefined ? {} : { 'x-request-id': requestId }),
      ...extraHeaders,
    });
    res.addTrailers({ 'grpc-status': String(grpcStatusOf(code, status)), 'grpc-message': grpcMessage(localReplyText(code).trimEnd()) });
    res.end();
    return;
  }
  const body = localReplyText(code);
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-meridian-reason': code,
    ...(requestId === undefined ? {} : { 'x-request-id': requestId }),
    ...extraHeaders,
  });
  res.end(body);
}

// Errors that only a connection attempt can produce (not ETIMEDOUT: an established
// connection can time out too, after the request went out).
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EADDRNOTAVAIL']);

/**
 * Parser errors of node:http's client (the upgrade path's) carry llhttp's `HPE_*` codes: the
 * upstream's bytes broke HTTP/1.1. The exception is "Invalid EOF state": the connection
 * ended inside a message, a reset like any other.
 */
function isProtocolError(code: string | undefined): boolean {
  return code?.startsWith('HPE_') === true && code !== 'HPE_INVALID_EOF_STATE';
}

/**
 * An error on an upstream connection (the engine's client, or node:http's on the upgrade
 * path), named for what it means to a proxy: before the connection was up, nothing
 * reached the upstream (any request may be retried); after, it may have. `connected` is
 * what the caller knows of the connection; without it the error's code alone decides.
 */
export function classifyUpstreamError(err: Error, connected = true): UpstreamError {
  if (err instanceof UpstreamError) return err;
  // A failed handshake, whether the engine met it connecting or (a TLS 1.3 client-certificate alert) just after.
  const cause = err instanceof UpstreamClientError ? err.cause : err;
  if (isTlsError((cause as NodeJS.ErrnoException | undefined)?.code)) return new UpstreamError('upstream_tls', false, err.message, { cause });
  if (err instanceof UpstreamClientError) return new UpstreamError(err.code, err.code !== 'connect_failure', err.message, { cause: err.cause ?? err });
  const code = (err as NodeJS.ErrnoException).code;
  if (!connected || (code !== undefined && CONNECT_ERRORS.has(code))) return new UpstreamError('connect_failure', false, err.message, { cause: err });
  if (isProtocolError(code)) return new UpstreamError('upstream_protocol_error', true, err.message, { cause: err });
  return new UpstreamError('upstream_reset', true, err.message, { cause: err });
}
