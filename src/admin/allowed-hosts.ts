/**
 * DNS-rebinding protection for the admin server: which `Host` values it answers.
 *
 * A web page on `http://evil.example:9901/` can make its name resolve to 127.0.0.1 after
 * the page loaded; the victim's browser then sends the page's requests (same origin, so
 * it reads the answers) to the admin API on loopback, with `Host: evil.example:9901`.
 * The name in Host is the one thing such a request cannot fake, so the admin server
 * answers only to names it knows (go-ethereum's `--http.vhosts`, Vite's
 * `server.allowedHosts`, both answering 403 otherwise):
 *
 * - an IP literal that is the address the connection arrived on (the bind address, or
 *   with a wildcard bind whichever local address the client dialled): an IP in Host was
 *   typed by the user, no page can rebind it;
 * - `localhost` and loopback IPs, when the connection arrived on loopback;
 * - the names (or IPs: a NAT or port-forward's address) in `admin.allowed_hosts`, exact
 *   or `*.suffix` for any name under it.
 *
 * The port is not compared: a page that rebinds names the right port anyway, and an
 * operator's `kubectl port-forward 8080:9901` (Host `localhost:8080`) must keep working.
 * A request without Host (HTTP/1.0 only; browsers always send one) is answered.
 */
import { isIP, isIPv4 } from 'node:net';

/** The name in a Host header value: lowercase, no port, no brackets, no trailing dot; undefined when malformed. */
export function hostName(host: string): string | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s/@?#]+))(?::\d{1,5})?$/.exec(host);
  if (m === null) return undefined;
  const name = (m[1] ?? m[2] ?? '').toLowerCase().replace(/\.$/, '');
  if (m[1] !== undefined && isIP(name) !== 6) return undefined;
  return name;
}

function unmapped(ip: string): string {
  return ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

function isLoopback(ip: string): boolean {
  return ip === '::1' || (isIPv4(ip) && ip.startsWith('127.'));
}

/**
 * Whether to answer a request with this Host, arriving on `localAddress`.
 * `allowed` is the configured list: lowercase names or `*.suffix` patterns.
 */
export function hostAllowed(host: string | undefined, localAddress: string | undefined, allowed: readonly string[]): boolean {
  if (host === undefined) return true;
  const name = hostName(host);
  if (name === undefined) return false;
  if (allowed.some((p) => (p.startsWith('*.') ? name.endsWith(p.slice(1)) && name.length > p.length - 1 : name === p))) return true;
  const local = unmapped(localAddress ?? '');
  if (name === 'localhost') return isLoopback(local);
  if (isIP(name) === 0) return false;
  const ip = unmapped(name);
  return ip === local || (isLoopback(ip) && isLoopback(local));
}
