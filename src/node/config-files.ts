/**
 * The files a config names, checked the way `start` will use them: certificates and keys
 * loaded and matched, the GeoIP database opened, the access log's folder writable. The
 * schema cannot see the file system; this is where `meridian validate` (like `nginx -t`
 * and `haproxy -c`, which load certificates too) catches what `start` would refuse, and
 * where start and reload refuse it before binding anything. Nothing is created or written.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Config } from '../config/index.js';
import { MmdbLocator } from '../global/mmdb.js';
import { SniCertificates } from '../proxy/tls.js';
import { ClusterTls } from '../proxy/upstream-tls.js';

/** Every problem as `path: message`, in config order; empty when all files are usable. */
export async function checkConfigFiles(config: Config): Promise<string[]> {
  const problems: string[] = [];
  for (const [i, l] of config.listeners.entries()) {
    if (l.protocol !== 'https') continue;
    try {
      await SniCertificates.load(l.tls.certificates, l.tls.min_version, l.tls.client_ca);
    } catch (e) {
      problems.push(`listeners[${i}].tls.certificates: ${(e as Error).message.replace(/^tls: /, '')}`);
    }
  }
  for (const [i, c] of config.clusters.entries()) {
    try {
      ClusterTls.load(c, undefined);
    } catch (e) {
      problems.push(`clusters[${i}].tls: ${(e as Error).message}`);
    }
  }
  const mmdb = config.global?.geo.mmdb;
  if (mmdb !== undefined) {
    try {
      await MmdbLocator.open(mmdb);
    } catch (e) {
      problems.push(`global.geo.mmdb: ${(e as Error).message.replace(/^geo\.mmdb: /, '')}`);
    }
  }
  if (config.access_log.enabled && config.access_log.path !== '-') {
    const problem = await appendable(config.access_log.path);
    if (problem !== undefined) problems.push(`access_log.path: ${problem}`);
  }
  return problems;
}

/**
 * Why a log file could not be opened for appending (its missing folders created, as the
 * access log does), or undefined when it could.
 */
async function appendable(path: string): Promise<string | undefined> {
  const full = resolve(path);
  const info = await stat(full).catch(() => undefined);
  if (info !== undefined) {
    if (info.isDirectory()) return `${path} is a directory, not a file`;
    return (await access(full, constants.W_OK).then(() => undefined, (e: NodeJS.ErrnoException) => `cannot write ${path}: ${e.code ?? e.message}`));
  }
  // The nearest folder that exists must be one, and writable, to create the rest in.
  for (let dir = dirname(full); ; dir = dirname(dir)) {
    const d = await stat(dir).catch(() => undefined);
    if (d !== undefined) {
      if (!d.isDirectory()) return `cannot create ${path}: ${dir} is not a folder`;
      return access(dir, constants.W_OK).then(() => undefined, () => `cannot create ${path}: no permission to write in ${dir}`);
    }
    if (dir === dirname(dir)) return `cannot create ${path}: no folder of it exists`;
  }
}
