// Self-signed test certificates made by openssl in a fresh temp dir (never committed).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCert {
  readonly cert: string;
  readonly key: string;
}

export interface CertDir {
  readonly dir: string;
  /** A self-signed cert for `name` (CN and SAN DNS), written to `<file>.crt` / `<file>.key` (default file = name). */
  make(name: string, opts?: { file?: string; san?: boolean; days?: number }): TestCert;
  remove(): void;
}

export function certDir(): CertDir {
  const dir = mkdtempSync(join(tmpdir(), 'meridian-certs-'));
  return {
    dir,
    make(name, opts = {}) {
      const base = join(dir, opts.file ?? name);
      const cert = `${base}.crt`;
      const key = `${base}.key`;
      const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert];
      args.push('-days', String(opts.days ?? 2), '-subj', `/CN=${name}`);
      if (opts.san !== false) args.push('-addext', `subjectAltName=DNS:${name}`);
      execFileSync('openssl', args, { stdio: 'pipe' });
      return { cert, key };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
