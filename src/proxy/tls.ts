import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContext } from 'node:tls';

/** One certificate of a listener's `tls.certificates`: PEM file paths. */
export interface CertificateFiles {
  readonly cert: string;
  readonly key: string;
  /** Exact names or `*.suffix`; absent = the certificate's DNS subjectAltNames, else its CN. */
  readonly server_names?: readonly string[];
}

export type TlsMinVersion = 'TLSv1.2' | 'TLSv1.3';

/** The PEM text of a certificate and its key, as read from the files. */
export interface CertificatePem {
  readonly cert: string;
  readonly key: string;
}

interface Entry {
  readonly pem: CertificatePem;
  readonly context: SecureContext;
  /** Lowercased names this entry answers for: exact, or `.suffix` for `*.suffix`. */
  readonly exact: readonly string[];
  readonly suffixes: readonly string[];
}

/** An immutable lookup table, swapped in whole by reload(). */
interface Table {
  readonly entries: readonly Entry[];
  /** PEM of the CAs client certificates must chain to (listener mTLS); absent: none asked for. */
  readonly clientCa: string | undefined;
  readonly exact: ReadonlyMap<string, SecureContext>;
  /** Longest suffix first, so `*.api.example.com` beats `*.example.com`. */
  readonly suffixes: readonly (readonly [suffix: string, context: SecureContext])[];
}

/**
 * The certificates of one https listener, picked by SNI.
 *
 * Lookup of a client's server name (case-insensitive): an exact name wins, then the
 * longest matching `*.suffix` (which, as in route `hosts`, matches any depth:
 * `*.example.com` covers `a.example.com` and `a.b.example.com`, not `example.com`);
 * among equals the certificate listed first. No server name, or one nothing matches
 * (an IP literal, an unknown host): the first certificate.
 *
 * Names come from `server_names` when given, else from the certificate itself
 * (subjectAltName DNS entries, falling back to the subject CN).
 *
 * reload() re-reads every file and swaps the table in whole; on any error the old
 * table stays in force and the error, naming the file, is thrown. Listeners of
 * onChange() hear of every successful reload (the server refreshes its default context).
 */
export class SniCertificates {
  readonly #files: readonly CertificateFiles[];
  readonly #minVersion: TlsMinVersion;
  readonly #clientCa: string | undefined;
  #table: Table;
  readonly #onChange = new Set<() => void>();

  /** Reads the files synchronously; throws an error naming the file on any problem. */
  constructor(certs: readonly CertificateFiles[], minVersion: TlsMinVersion = 'TLSv1.2', pems?: readonly CertificatePem[], clientCa?: { readonly path: string; readonly pem?: string }) {
    if (certs.length === 0) throw new Error('tls: at least one certificate is required');
    this.#files = certs.map((c) => ({ ...c, ...(c.server_names ? { server_names: [...c.server_names] } : {}) }));
    this.#minVersion = minVersion;
    this.#clientCa = clientCa?.path;
    const caPem = clientCa === undefined ? undefined : (clientCa.pem ?? readCaSync(clientCa.path));
    this.#table = buildTable(this.#files, pems ?? this.#files.map(readPemSync), minVersion, caPem);
  }

  /** As the constructor, reading the files asynchronously; `clientCa`: the PEM file of listener mTLS's CAs. */
  static async load(certs: readonly CertificateFiles[], minVersion: TlsMinVersion = 'TLSv1.2', clientCa?: string): Promise<SniCertificates> {
    const [pems, caPem] = await Promise.all([Promise.all(certs.map(readPem)), clientCa === undefined ? undefined : readOne(clientCa, 'client CA')]);
    return new SniCertificates(certs, minVersion, pems, clientCa === undefined ? undefined : { path: clientCa, pem: caPem as string });
  }

  /** The client CAs' PEM text (listener mTLS), as last read; undefined when no client certificate is asked for. */
  get clientCaPem(): string | undefined {
    return this.#table.clientCa;
  }

  /** The context for a client's server name (see the class comment for the rules). */
  secureContextFor(servername: string | undefined): SecureContext {
    const t = this.#table;
    const first = (t.entries[0] as Entry).context;
    if (!servername) return first;
    const name = servername.toLowerCase().replace(/\.$/, '');
    const exact = t.exact.get(name);
    if (exact) return exact;
    for (const [suffix, context] of t.suffixes) if (name.endsWith(suffix) && name.length > suffix.length) return context;
    return first;
  }

  /** For tls/https/http2 server options; bound, so it can be passed as is. */
  readonly SNICallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    try {
      cb(null, this.secureContextFor(servername));
    } catch (e) {
      cb(e as Error);
    }
  };

  /** The first certificate's context: for clients without (or with an unknown) server name. */
  get defaultContext(): SecureContext {
    return (this.#table.entries[0] as Entry).context;
  }

  /** The first certificate's PEM text, for server options (`cert`, `key`) and setSecureContext(). */
  get defaultPem(): CertificatePem {
    return (this.#table.entries[0] as Entry).pem;
  }

  get minVersion(): TlsMinVersion {
    return this.#minVersion;
  }

  /**
   * Re-read every file and build the new certificates, without using them yet: the function
   * returned puts them in force (a config reload calls it only once nothing can refuse the
   * reload any more). On error the old certificates stay in force and the error is thrown.
   */
  async prepareReload(): Promise<() => void> {
    const clientCa = this.#clientCa;
    const [pems, caPem] = await Promise.all([Promise.all(this.#files.map(readPem)), clientCa === undefined ? undefined : readOne(clientCa, 'client CA')]);
    const table = buildTable(this.#files, pems, this.#minVersion, caPem);
    return () => {
      this.#table = table;
      for (const fn of this.#onChange) fn();
    };
  }

  /** Re-read every file and use them at once; on error the old certificates stay in force and the error is thrown. */
  async reload(): Promise<void> {
    (await this.prepareReload())();
  }

  /** Called after every successful reload; returns an unsubscribe function. */
  onChange(fn: () => void): () => void {
    this.#onChange.add(fn);
    return () => this.#onChange.delete(fn);
  }
}

async function readPem(c: CertificateFiles): Promise<CertificatePem> {
  // Both reads run at once, but the error reported is always the certificate's first, so
  // the same files give the same message whichever read fails sooner.
  const [cert, key] = await Promise.allSettled([readOne(c.cert, 'certificate'), readOne(c.key, 'key')]);
  if (cert.status === 'rejected') throw cert.reason;
  if (key.status === 'rejected') throw key.reason;
  return { cert: cert.value, key: key.value };
}

async function readOne(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`tls: cannot read ${what} file ${path}: ${(e as Error).message}`, { cause: e });
  }
}

function readCaSync(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`tls: cannot read client CA file ${path}: ${(e as Error).message}`, { cause: e });
  }
}

function readPemSync(c: CertificateFiles): CertificatePem {
  const one = (path: string, what: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      throw new Error(`tls: cannot read ${what} file ${path}: ${(e as Error).message}`, { cause: e });
    }
  };
  return { cert: one(c.cert, 'certificate'), key: one(c.key, 'key') };
}

function buildTable(files: readonly CertificateFiles[], pems: readonly CertificatePem[], minVersion: TlsMinVersion, clientCa: string | undefined): Table {
  const entries = files.map((f, i) => buildEntry(f, pems[i] as CertificatePem, minVersion, clientCa));
  const exact = new Map<string, SecureContext>();
  const suffixes: [string, SecureContext, number][] = [];
  entries.forEach((e, i) => {
    for (const n of e.exact) if (!exact.has(n)) exact.set(n, e.context);
    for (const s of e.suffixes) suffixes.push([s, e.context, i]);
  });
  // Longest suffix first; the certificate listed first among equals.
  suffixes.sort((a, b) => b[0].length - a[0].length || a[2] - b[2]);
  return { entries, clientCa, exact, suffixes: suffixes.map(([s, c]) => [s, c] as const) };
}

function buildEntry(f: CertificateFiles, pem: CertificatePem, minVersion: TlsMinVersion, clientCa: string | undefined): Entry {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pem.cert);
  } catch (e) {
    throw new Error(`tls: certificate file ${f.cert} holds no valid PEM certificate: ${(e as Error).message}`, { cause: e });
  }
  let matches: boolean;
  try {
    matches = x509.checkPrivateKey(createPrivateKey(pem.key));
  } catch (e) {
    throw new Error(`tls: key file ${f.key} holds no valid (unencrypted) PEM private key: ${(e as Error).message}`, { cause: e });
  }
  if (!matches) throw new Error(`tls: key file ${f.key} does not match certificate file ${f.cert}`);
  let context: SecureContext;
  try {
    // The client CAs go in every SNI context: the one a client's name picks is the one that verifies it.
    context = createSecureContext({ cert: pem.cert, key: pem.key, minVersion, ...(clientCa === undefined ? {} : { ca: clientCa }) });
  } catch (e) {
    throw new Error(`tls: certificate file ${f.cert} with key file ${f.key}: ${(e as Error).message}`, { cause: e });
  }
  const names = (f.server_names ?? namesOf(x509)).map((n) => n.toLowerCase());
  return {
    pem,
    context,
    exact: names.filter((n) => !n.startsWith('*.')),
    suffixes: names.filter((n) => n.startsWith('*.')).map((n) => n.slice(1)),
  };
}

/** DNS subjectAltNames, else the subject CN. */
export function namesOf(x509: X509Certificate): string[] {
  const dns = (x509.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).trim())
    .filter((s) => s !== '');
  if (dns.length > 0) return dns;
  const cn = /^CN=(.*)$/m.exec(x509.subject)?.[1]?.trim();
  return cn ? [cn] : [];
}

/**
 * Whether a verified client certificate carries one of `allowed` (its DNS subjectAltNames,
 * else its CN; exact, case-insensitive): the fleet's allow-list on top of the CA's signature.
 */
export function clientAllowed(cert: X509Certificate | undefined, allowed: readonly string[]): boolean {
  if (cert === undefined) return false;
  const names = namesOf(cert).map((n) => n.toLowerCase());
  return allowed.some((a) => names.includes(a.toLowerCase()));
}
