import { isIPv4 } from 'node:net';

/** "host:port" or "[v6]:port" (the shape config validation guarantees) -> parts, brackets removed. */
export function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon);
  return { host: host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host, port: Number(address.slice(colon + 1)) };
}

/** "::ffff:127.0.0.1" (IPv4 on a dual-stack socket) -> "127.0.0.1", so a client is one address either way. */
export function unmappedIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}
