// `npm test` (after the build): every dist/test/**/*.test.js under node's test runner.
// The files are listed here because `node --test DIR` is read differently by Node
// versions: Node 20 searches the directory, Node 22 and later take arguments as files or
// globs (a directory is then a module that cannot be found), and Node 20 takes no globs.
// Arguments given to `npm test -- ...` go before the files (runner flags, e.g.
// --test-name-pattern).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import process from 'node:process';

const root = join(import.meta.dirname, '..');
const files = [];
const walk = (dir) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) walk(path);
    else if (e.name.endsWith('.test.js')) files.push(relative(root, path));
  }
};
walk(join(root, 'dist', 'test'));
files.sort();
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...process.argv.slice(2), ...files], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
