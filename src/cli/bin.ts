#!/usr/bin/env node
// The executable: everything testable lives in main.ts.
import { main, type Io } from './main.js';

/**
 * How long a finished command may take to exit on its own. Past it, something still
 * holds the event loop (a socket a peer keeps half-open after a drain, say): the process
 * names what and exits anyway with the command's code, rather than never stopping.
 */
const EXIT_GRACE_MS = 2000;

const io: Io = { stdout: (s) => process.stdout.write(`${s}\n`), stderr: (s) => process.stderr.write(`${s}\n`) };
main(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code;
    setTimeout(() => {
      const open = process.getActiveResourcesInfo().filter((r) => r !== 'Timeout' && r !== 'TTYWrap' && r !== 'PipeWrap');
      io.stderr(`meridian: exiting with handles still open: ${open.join(', ')}`);
      process.exit(code);
    }, EXIT_GRACE_MS).unref();
  },
  (err: unknown) => {
    io.stderr(`meridian: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 70;
  },
);
