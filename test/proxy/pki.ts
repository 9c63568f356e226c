// A throwaway certificate authority made by openssl in a fresh temp dir (never committed):
// CAs, and certificates they sign for servers and clients, valid or expired.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestCert } from './certs.js';

export interface TestCa extends TestCert {
  /** A certificate signed by this CA for `name` (CN and SAN DNS). */
  issue(name: string, opts?: { file?: string; expired?: boolean }): TestCert;
}

export interface Pki {
  readonly dir: string;
  ca(name: string): TestCa;
  remove(): void;
}

const CA_CONFIG = `[ ca ]
default_ca = d
[ d ]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = p
copy_extensions = copy
unique_subject = no
[ p ]
commonName = supplied
`;

export function pki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'meridian-pki-'));
  const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  return {
    dir,
    ca(name) {
      const base = join(dir, name);
      const cert = `${base}.crt`;
      const key = `${base}.key`;
      openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`]);
      const caDir = join(dir, `${name}.ca`);
      execFileSync('mkdir', ['-p', caDir]);
      writeFileSync(join(caDir, 'ca.cnf'), CA_CONFIG);
      writeFileSync(join(caDir, 'index.txt'), '');
      writeFileSync(join(caDir, 'serial'), '01\n');
      return {
        cert,
        key,
        issue(subject, opts = {}) {
          const out = join(dir, opts.file ?? subject);
          openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${out}.key`, '-out', `${out}.csr`, '-subj', `/CN=${subject}`, '-addext', `subjectAltName=DNS:${subject}`]);
          const dates = opts.expired ? ['-startdate', '20200101000000Z', '-enddate', '20200102000000Z'] : ['-days', '2'];
          execFileSync('openssl', ['ca', '-batch', '-config', 'ca.cnf', '-cert', cert, '-keyfile', key, '-in', `${out}.csr`, '-out', `${out}.crt`, '-notext', ...dates], { cwd: caDir, stdio: 'pipe' });
          return { cert: `${out}.crt`, key: `${out}.key` };
        },
      };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
