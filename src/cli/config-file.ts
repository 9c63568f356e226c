import { loadConfigFile, type Config } from '../config/index.js';
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
