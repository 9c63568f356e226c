import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Io } from './io.js';

/** A mistake on the command line: exit 2, with a message that names the option. */
export class UsageError extends Error {}

/** node:util parseArgs, strict, no positionals, its own errors (which name the option) as UsageErrors. */
export function parseOptions<O extends NonNullable<ParseArgsConfig['options']>>(argv: readonly string[], options: O) {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** An option holding a whole number in [min, max]; absent: `fallback`, or required when there is none. */
export function integerOption(name: string, raw: string | undefined, fallback: number | undefined, min: number, max: number): number {
  if (raw === undefined) {
    if (fallback === undefined) throw new UsageError(`--${name} is required`);
    return fallback;
  }
  // Plain decimal digits only: Number() would accept '', '0x10', '1e3' and ' 7'.
  const value = /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
  if (!(value >= min && value <= max)) throw new UsageError(`--${name} must be an integer in ${min}..${max}, got '${raw}'`);
  return value;
}

/**
 * Parse a command's arguments: settings, or the exit code after printing help (0) or a
 * usage error (2).
 */
export function parseCommand<S>(command: string, argv: readonly string[], io: Io, parse: (argv: readonly string[]) => S | 'help', usage: string, usageLine: string): S | number {
  try {
    const s = parse(argv);
    if (s !== 'help') return s;
    io.stdout(usage);
    return 0;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.stderr(`meridian ${command}: ${e.message}\n${usageLine}`);
    return 2;
  }
}

/** Resolves at the first SIGINT or SIGTERM: the end of a long-running command. */
export function stopSignal(signals: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    signals.once('SIGTERM', resolve);
    signals.once('SIGINT', resolve);
  });
}
