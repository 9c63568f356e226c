import type { IncomingHttpHeaders } from 'node:http';

/** gRPC status codes Meridian answers with (grpc/doc/statuscodes.md). */
export const GRPC = {
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** A gRPC call (not gRPC-Web, which is HTTP/1.1-friendly and passes as plain HTTP). */
export function isGrpc(headers: IncomingHttpHeaders): boolean {
  const ct = headers['content-type'];
  return ct !== undefined && ct.startsWith('application/grpc') && !ct.startsWith('application/grpc-web');
}

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 };

/**
 * `grpc-timeout` (up to 8 digits and a unit: H M S m u n) in milliseconds, rounded up so
 * a deadline never ends early; undefined when absent or malformed (then the route's
 * timeout alone applies, as gRPC servers ignore a malformed one).
 */
export function grpcTimeoutMs(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (m === null) return undefined;
  return Math.ceil(Number(m[1]) * (UNIT_MS[m[2] as string] as number));
}

/**
 * The gRPC status of a local reply: the choices for rate limits and timeouts,
 * else the HTTP-to-gRPC mapping of grpc/doc/http-grpc-status-mapping.md (Envoy's too).
 */
export function grpcStatusOf(reason: string, httpStatus: number): number {
  switch (reason) {
    case 'rate_limited':
    case 'payload_too_large':
    case 'header_fields_too_large':
      return GRPC.RESOURCE_EXHAUSTED;
    case 'timeout':
    case 'request_timeout':
      return GRPC.DEADLINE_EXCEEDED;
  }
  switch (httpStatus) {
    case 400:
      return GRPC.INTERNAL;
    case 401:
      return GRPC.UNAUTHENTICATED;
    case 403:
      return GRPC.PERMISSION_DENIED;
    case 404:
      return GRPC.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GRPC.UNAVAILABLE;
    default:
      return GRPC.UNKNOWN;
  }
}

/** grpc-message is percent-encoded: bytes outside printable ASCII, and `%` itself. */
export function grpcMessage(text: string): string {
  return text.replace(/[^\x20-\x24\x26-\x7e]/g, (c) => encodeURIComponent(c));
}
