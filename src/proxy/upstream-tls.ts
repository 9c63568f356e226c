import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext, type ConnectionOptions, type SecureContext, type TLSSocket } from 'node:tls';
import { plainConnector, tlsConnector, type Connector } from '../http1/upstream-client.js';
import type { ClusterConfig, UpstreamTlsConfig } from '../config/index.js';
import { parseHostPort } from '../shared/address.js';
import { isTlsError } from '../shared/tls-errors.js';

/** Sessions kept per `tls` block: one per endpoint, so a pool of thousands stays bounded. */
const MAX_SESSIONS = 1024;

/**
 * One upstream `tls` block made ready to connect with: its files read and its secure
 * context built once (not per connection), and the latest TLS session of each endpoint
 * kept for resumption, so a new connection costs an abbreviated handshake, not a full one.
 */
export class UpstreamTls {
  readonly config: UpstreamTlsConfig;
  readonly context: SecureContext;
  /** The files' text: a reload that reads the same text keeps this object, and its sessions. */
  readonly pem: string;
  readonly #sessions = new Map<string, Buffer>();

  constructor(config: UpstreamTlsConfig, where: string) {
    this.config = config;
    const read = (path: string | undefined, what: string): string | undefined => {
      if (path === undefined) return undefined;
      try {
        return readFileSync(path, 'utf8');
      } catch (e) {
        throw new Error(`${where}: tls: cannot read ${what} file ${path}: ${(e as Error).message}`, { cause: e });
      }
    };
    const ca = read(config.ca, 'ca');
    const cert = read(config.cert, 'certificate');
    const key = read(config.key, 'key');
    this.pem = JSON.stringify([ca, cert, key]);
    try {
      // Without `ca`, Node's own root store (the system's CAs as Node bundles them).
      this.context = createSecureContext({ ...(ca === undefined ? {} : { ca }), ...(cert === undefined ? {} : { cert, key }), minVersion: config.min_version });
    } catch (e) {
      throw new Error(`${where}: tls: ${[config.ca, config.cert, config.key].filter((f) => f !== undefined).join(', ')}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Whether `other` connects exactly as this one would (same settings, same file contents). */
  same(other: UpstreamTls): boolean {
    return this.pem === other.pem && JSON.stringify(this.config) === JSON.stringify(other.config);
  }

  session(address: string): Buffer | undefined {
    return this.#sessions.get(address);
  }

  /** A socket's 'session' event: keep the newest ticket for the endpoint's next connection. */
  remember(address: string, session: Buffer): void {
    this.#sessions.delete(address);
    if (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value as string);
    this.#sessions.set(address, session);
  }
}

/**
 * A cluster's upstream TLS, by endpoint: a locality's own `tls` for its endpoints, the
 * cluster's for the rest (discovered endpoints included), none when neither is set.
 */
export class ClusterTls {
  readonly #cluster: UpstreamTls | undefined;
  readonly #byAddress: ReadonlyMap<string, UpstreamTls>;

  private constructor(cluster: UpstreamTls | undefined, byAddress: ReadonlyMap<string, UpstreamTls>) {
    this.#cluster = cluster;
    this.#byAddress = byAddress;
  }

  /**
   * Read the cluster's TLS files (on every start and reload: renewed certificates are
   * picked up). Blocks whose settings and file contents are unchanged from `previous` are
   * kept as they were, with their session caches. Throws, naming the file, on any problem.
   */
  static load(c: ClusterConfig, previous: ClusterTls | undefined): ClusterTls | undefined {
    const keep = (t: UpstreamTls): UpstreamTls => {
      const old = previous === undefined ? undefined : previous.#all().find((o) => o.same(t));
      return old ?? t;
    };
    const cluster = c.tls === undefined ? undefined : keep(new UpstreamTls(c.tls, `cluster ${c.name}`));
    const byAddress = new Map<string, UpstreamTls>();
    (c.localities ?? []).forEach((l, i) => {
      if (l.tls === undefined) return;
      const t = keep(new UpstreamTls(l.tls, `cluster ${c.name}: localities[${i}]`));
      for (const e of l.endpoints) byAddress.set(e.address, t);
    });
    if (cluster === undefined && byAddress.size === 0) return undefined;
    return new ClusterTls(cluster, byAddress);
  }

  #all(): UpstreamTls[] {
    return [...(this.#cluster ? [this.#cluster] : []), ...this.#byAddress.values()];
  }

  for(address: string): UpstreamTls | undefined {
    return this.#byAddress.get(address) ?? this.#cluster;
  }

  /** Whether every endpoint would connect as with `other` (then pools may be kept). */
  same(other: ClusterTls | undefined): boolean {
    if (other === undefined) return false;
    if (this.#cluster !== other.#cluster || this.#byAddress.size !== other.#byAddress.size) return false;
    for (const [a, t] of this.#byAddress) if (other.#byAddress.get(a) !== t) return false;
    return true;
  }
}

/**
 * The TLS options for connecting to `address` (`host:port`) of a cluster, or undefined
 * for plaintext: its CAs, client certificate and key (one secure context, built at load),
 * SNI (the configured server_name, else the host unless it is an IP), verification (never
 * turned off unless `verify: false`), and the endpoint's last session for resumption.
 * The one place every connector (pools, HTTP/2 sessions, health checks) takes them from.
 */
export function upstreamTlsOptions(tls: ClusterTls | undefined, address: string): ConnectionOptions | undefined {
  const t = tls?.for(address);
  if (t === undefined) return undefined;
  const hp = parseHostPort(address);
  const host = typeof hp === 'string' ? '' : hp.host;
  const servername = t.config.server_name ?? (host !== '' && isIP(host) === 0 ? host : undefined);
  const session = t.session(address);
  return {
    secureContext: t.context,
    rejectUnauthorized: t.config.verify,
    minVersion: t.config.min_version,
    ...(servername === undefined ? {} : { servername }),
    ...(session === undefined ? {} : { session }),
  };
}

/** Keep `socket`'s TLS sessions for `address`'s next connections (connectors that keep no cache of their own). */
export function rememberSessions(tls: ClusterTls | undefined, address: string, socket: NodeJS.EventEmitter): void {
  const t = tls?.for(address);
  if (t !== undefined) socket.on('session', (s: Buffer) => t.remember(address, s));
}

/**
 * How the engine's pool (src/http1/upstream-client.ts) opens connections to one TLS
 * endpoint: `tlsConnector` with the endpoint's options taken afresh for each connection,
 * so each resumes the endpoint's newest session; the version it negotiated is kept for
 * the metrics and the access log.
 */
export class UpstreamTlsConnector implements Connector {
  readonly #tls: ClusterTls;
  readonly #address: string;
  tlsVersion: string | undefined;

  constructor(tls: ClusterTls, address: string) {
    this.#tls = tls;
    this.#address = address;
  }

  connect(host: string, port: number): ReturnType<Connector['connect']> {
    const opened = tlsConnector(upstreamTlsOptions(this.#tls, this.#address) as ConnectionOptions).connect(host, port);
    const socket = opened.socket as TLSSocket;
    // The engine fails a try with the socket's error as cause, TLS 1.3's late client-certificate alert included: classifyUpstreamError names it upstream_tls.
    rememberSessions(this.#tls, this.#address, socket);
    socket.once('secureConnect', () => (this.tlsVersion = socket.getProtocol() ?? undefined));
    return opened;
  }
}

/** The connector for a cluster's endpoint at `address`: TLS when its `tls` (or its locality's) says so. */
export function upstreamConnector(tls: ClusterTls | undefined, address: string): Connector {
  return tls?.for(address) === undefined ? plainConnector : new UpstreamTlsConnector(tls as ClusterTls, address);
}

/**
 * Make a failed handshake the error a connection ends with. TLS 1.3 tells a client that
 * its certificate was refused only by an alert read after its side of the handshake; the
 * peer's close follows, and a client that takes the close for the cause (an HTTP/2 session
 * over the socket) would report a reset. Destroying the socket with the alert's error
 * first keeps the reason: upstream_tls.
 */
export function surfaceTlsErrors(socket: NodeJS.EventEmitter & { destroyed: boolean; destroy(err?: Error): unknown }): void {
  socket.prependListener('error', (err: NodeJS.ErrnoException) => {
    if (!socket.destroyed && isTlsError(err.code)) socket.destroy(err);
  });
}
