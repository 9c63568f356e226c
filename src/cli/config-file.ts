import { loadConfigFile, type Config } from '../config/index.js';
import { parseOptions, UsageError } from './args.js';
import type { Io } from './io.js';

/**
 * Load a config for a command, reporting failures the way `validate` does: returns the
 * config, or the exit code (2 unreadable or unparsable, 1 invalid) after saying why.
 */
export async function loadConfigForCommand(file: string, io: Io, command: string): Promise<Config | number> {
  const r = await loadConfigFile(file);
  if (r.ok) return r.config;
  if (r.kind === 'invalid') {
    io.stderr(`meridian ${command}: ${file}: ${r.errors.length} error${r.errors.length === 1 ? '' : 's'}\n${r.errors.map((e) => `  ${e}`).join('\n')}`);
    return 1;
  }
  io.stderr(`meridian ${command}: ${r.message}`);
  return 2;
}

/** `-c FILE` (required), or 'help'. */
export function configArg(argv: readonly string[]): string | 'help' {
  const values = parseOptions(argv, { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } });
  if (values.help === true) return 'help';
  if (values.config === undefined) throw new UsageError('missing -c FILE');
  return values.config;
}
