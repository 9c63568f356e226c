// `npm run build` (and so start, test, bench): an incremental TypeScript build of the server,
// tests and benchmarks (tsconfig.build.json) and of the dashboard's page (ui/tsconfig.build.json).
// tsc -b keeps its state in dist/.tsbuildinfo/, so an unchanged tree builds in well under a second;
// deleting dist/ (npm run clean) forces a full build. It says what it does, because a full build
// takes tens of seconds and silence reads as a hang.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';

const root = join(import.meta.dirname, '..');
const dist = join(root, 'dist');
const started = performance.now();
const fresh = !existsSync(join(dist, '.tsbuildinfo'));
process.stderr.write(fresh ? 'building (first build: 10-30 s)…\n' : 'building (incremental)…\n');

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-b', 'tsconfig.build.json', 'ui/tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  process.stderr.write('build failed\n');
  process.exit(r.status ?? 1);
}
const pruned = prune();
const seconds = ((performance.now() - started) / 1000).toFixed(1);
process.stderr.write(`built in ${seconds} s${pruned > 0 ? ` (removed ${pruned} outputs of deleted sources)` : ''}\n`);

/**
 * tsc -b never deletes an output whose source is gone, and `node --test dist/test/` would still
 * run a deleted or moved test: remove every .js (and .js.map) under dist/ without its .ts.
 */
function prune() {
  let removed = 0;
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name === '.tsbuildinfo') continue;
        walk(path);
        if (readdirSync(path).length === 0) rmdirSync(path);
      } else {
        const source = /^(.*)\.js(\.map)?$/.exec(relative(dist, path));
        if (source && !existsSync(join(root, `${source[1]}.ts`))) {
          unlinkSync(path);
          removed++;
        }
      }
    }
  };
  if (existsSync(dist)) walk(dist);
  return removed;
}
