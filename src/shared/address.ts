/**
 * Endpoint addresses, `host:port` or `[v6]:port`: the one grammar the config validates,
 * the proxy dials, the health checker probes and discovery writes (core/discovery.ts
 * `endpointAddress`). Here, below config and everything that dials, so there is one
 * reading of the brackets and the port range.
 */
import { isIP, isIPv4, isIPv6 } from 'node:net';

const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

const HOST_PORT_RE = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/;

/** A DNS name (labels of letters, digits, `_`, `-`; a trailing dot allowed); not an IP literal check. */
export function isHostName(s: string): boolean {
  return HOSTNAME_RE.test(s);
}

/** An IP literal (unbracketed) or a DNS name. */
export function isHost(s: string): boolean {
  return isIP(s) !== 0 || HOSTNAME_RE.test(s);
}

export interface HostPort {
  /** As written; hashed by ring_hash and maglev, so keep it verbatim. */
  readonly address: string;
  /** Unbracketed: `::1`, not `[::1]`. */
  readonly host: string;
  readonly port: number;
}

/** `host:port` or `[v6]:port` → parts, or a reason it is not one (worded for config errors). */
export function parseHostPort(s: string): HostPort | string {
  const m = HOST_PORT_RE.exec(s);
  if (m === null) return `expected "host:port" (IPv6 as "[::1]:port"), got ${JSON.stringify(s)}`;
  const [, v6, host = v6 ?? '', portText = ''] = m;
  if (v6 !== undefined ? !isIPv6(v6) : !isHost(host)) return `not a valid host in ${JSON.stringify(s)}`;
  const port = Number(portText);
  if (port < 1 || port > 65535) return `port must be between 1 and 65535, got ${port}`;
  return { address: s, host, port };
}

/**
 * An address parseHostPort already accepted (every endpoint's is: the config, endpoint
 * files and discovery all produce that shape) → parts, brackets removed. No validation:
 * this runs per upstream connection.
 */
export function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon);
  return { host: host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host, port: Number(address.slice(colon + 1)) };
}

/** "::ffff:127.0.0.1" (IPv4 on a dual-stack socket) -> "127.0.0.1", so a client is one address either way. */
export function unmappedIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}
