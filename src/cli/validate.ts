/**
 * `meridian validate [-c] FILE`: check a config without starting anything.
 *
 * Exit codes, for scripts and CI:
 *   0  valid; one summary line on stdout
 *   1  invalid; a count line, then every error as `path: message`, on stderr (a
 *      certificate, GeoIP database or access log folder that start could not use included)
 *   2  could not check: bad arguments, unreadable file, or YAML/JSON syntax error
 */
import { parseArgs } from 'node:util';
import { clusterEndpoints, type Config, loadConfigFile } from '../config/index.js';
import { countOf } from '../config/describe.js';
import { checkConfigFiles } from '../node/config-files.js';
import type { Io } from './io.js';


export const VALIDATE_USAGE_LINE = 'usage: meridian validate [-c] FILE';

export const VALIDATE_USAGE = `${VALIDATE_USAGE_LINE}

Checks a Meridian config and lists every problem by path.
  FILE, -c, --config FILE   the config file (YAML; JSON if the name ends in .json)
  -h, --help                show this help

Exit status: 0 valid, 1 invalid, 2 unreadable or not YAML/JSON.`;

/** `1 listener, 2 clusters, 5 endpoints, 3 routes` */
export function summarize(config: Config): string {
  const endpoints = config.clusters.reduce((n, c) => n + clusterEndpoints(c).length, 0);
  const routes = config.listeners.reduce((n, l) => n + (l.protocol === 'tcp' ? 0 : l.routes.length), 0);
  return [
    countOf(config.listeners.length, 'listener'),
    countOf(config.clusters.length, 'cluster'),
    countOf(endpoints, 'endpoint'),
    countOf(routes, 'route'),
  ].join(', ');
}

/** `argv` is what follows `validate` on the command line. Writes lines without newlines. */
export async function runValidate(argv: string[], io: Io): Promise<number> {
  let file: string | undefined;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
    if (values.help === true) {
      io.stdout(VALIDATE_USAGE);
      return 0;
    }
    // `validate FILE` as `simulate FILE`, or `-c FILE` as `start -c FILE`: one file either way.
    const files = [...(values.config === undefined ? [] : [values.config]), ...positionals];
    if (files.length > 1) throw new Error(`expected one FILE, got ${files.length}: ${files.join(' ')}`);
    file = files[0];
  } catch (e) {
    io.stderr(`meridian validate: ${(e as Error).message}\n\n${VALIDATE_USAGE}`);
    return 2;
  }
  if (file === undefined || file === '') {
    io.stderr(`meridian validate: missing FILE\n\n${VALIDATE_USAGE}`);
    return 2;
  }

  // The environment only overrides admin.token, which no check depends on; ignore it
  // so the verdict depends on the file alone.
  const r = await loadConfigFile(file, { env: {} });
  if (!r.ok && r.kind !== 'invalid') {
    // A syntax error reads FILE:LINE:COL: message, as compilers print it; any other failure names the command.
    io.stderr(r.kind === 'read' ? `meridian validate: ${r.message}` : r.message);
    return 2;
  }
  // The files the config names are checked only once the config itself is valid.
  const errors = r.ok ? await checkConfigFiles(r.config) : r.errors;
  if (errors.length > 0) {
    io.stderr(`${file}: ${countOf(errors.length, 'error')}`);
    for (const e of errors) io.stderr(`  ${e}`);
    return 1;
  }
  if (r.ok) io.stdout(`ok: ${file} — ${summarize(r.config)}`);
  return 0;
}
