// The guard that keeps src/core pure must itself hold: feed it each known walk-around and a clean file.
// Two layers: src/core/tsconfig.json compiles the core against the ECMAScript library alone (no DOM, no
// Node types), so host globals are type errors; the ESLint rule bans what ECMAScript itself offers
// (Date, globalThis, Math.random however it is reached, code compiled from strings).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { ESLint } from 'eslint';
import ts from 'typescript';

const eslint = new ESLint({ cwd: process.cwd() });
const ruleIds = async (code: string, file = 'src/core/example.ts') => {
  const [result] = await eslint.lintText(code, { filePath: file });
  return result!.messages.map((m) => `${m.line}:${m.ruleId}`);
};

/** Type-checks files under src/core/tsconfig.json's options; returns `line:TScode` per file. */
function typeErrors(rootNames: string[], dir: string): Map<string, string[]> {
  const parsed = ts.getParsedCommandLineOfConfigFile(resolve('src/core/tsconfig.json'), { rootDir: dir }, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(ts.flattenDiagnosticMessageText(d.messageText, '\n')),
  });
  assert.ok(parsed);
  const program = ts.createProgram(rootNames, parsed.options);
  const byFile = new Map<string, string[]>(rootNames.map((f) => [f, []]));
  for (const d of ts.getPreEmitDiagnostics(program)) {
    assert.ok(d.file, ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    const { line } = d.file.getLineAndCharacterOfPosition(d.start!);
    byFile.get(resolve(d.file.fileName))?.push(`${line + 1}:TS${d.code}`);
  }
  return byFile;
}

// Each walk-around, and exactly which layer reports it (line:rule or line:TScode).
const walkArounds: { name: string; code: string; eslint: string[]; tsc: string[] }[] = [
  { name: 'globalThis.Date.now()', code: 'export const a = globalThis.Date.now();', eslint: ['1:no-restricted-globals'], tsc: [] },
  { name: 'Date()', code: 'export const a = Date();', eslint: ['1:no-restricted-globals'], tsc: [] },
  { name: 'new Date()', code: 'export const a = new Date();', eslint: ['1:no-restricted-globals'], tsc: [] },
  { name: 'Date.now()', code: 'export const a = Date.now();', eslint: ['1:no-restricted-globals'], tsc: [] },
  { name: 'crypto.randomUUID()', code: 'export const a = crypto.randomUUID();', eslint: [], tsc: ['1:TS2304'] },
  { name: 'AbortSignal.timeout()', code: 'export const a = AbortSignal.timeout(5);', eslint: [], tsc: ['1:TS2304'] },
  { name: 'globalThis.setTimeout', code: 'globalThis.setTimeout(() => 0, 1);', eslint: ['1:no-restricted-globals'], tsc: ['1:TS7017'] },
  { name: 'setTimeout', code: 'setTimeout(() => 0, 1);', eslint: ['1:no-restricted-globals'], tsc: ['1:TS2304'] },
  { name: 'performance.now()', code: 'export const a = performance.now();', eslint: ['1:no-restricted-globals'], tsc: ['1:TS2304'] },
  { name: 'an alias of Math', code: 'const M = Math;\nexport const a = M.random();', eslint: ['1:no-restricted-syntax'], tsc: [] },
  { name: 'Math passed as a value', code: "export const a = Reflect.get(Math, 'random');", eslint: ['1:no-restricted-syntax'], tsc: [] },
  { name: 'Math.random destructured', code: 'const { random } = Math;\nexport const a = random();', eslint: ['1:no-restricted-properties', '1:no-restricted-syntax'], tsc: [] },
  { name: "Math['random']()", code: "export const a = Math['random']();", eslint: ['1:no-restricted-properties', '1:no-restricted-syntax'], tsc: [] },
  { name: 'Math.random()', code: 'export const a = Math.random();', eslint: ['1:no-restricted-properties'], tsc: [] },
  { name: 'console', code: "console.log('x');", eslint: ['1:no-restricted-globals'], tsc: ['1:TS2584'] },
  { name: 'process', code: 'export const a = process.env.HOME;', eslint: ['1:no-restricted-globals'], tsc: ['1:TS2591'] },
  { name: 'fetch', code: "export const a = fetch('http://127.0.0.1/');", eslint: ['1:no-restricted-globals'], tsc: ['1:TS2304'] },
  { name: 'Intl reads the clock', code: 'export const a = new Intl.DateTimeFormat().format();', eslint: ['1:no-restricted-globals'], tsc: [] },
  { name: 'eval', code: "export const a: unknown = eval('Date.now()');", eslint: ['1:no-restricted-globals'], tsc: [] },
  { name: 'Function from .constructor', code: "export const a: unknown = [].constructor.constructor('return Date.now()')();", eslint: ['1:no-restricted-properties', '1:no-restricted-properties'], tsc: [] },
  { name: 'node:timers import', code: "import { setTimeout } from 'node:timers';\nsetTimeout(() => 0, 1);", eslint: ['1:no-restricted-syntax'], tsc: ['1:TS2591'] },
];

describe('src/core purity guard', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meridian-purity-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reports every known walk-around, in the layer that can see it', async () => {
    const files = walkArounds.map((w, i) => {
      const file = join(dir, `walk-${i}.ts`);
      writeFileSync(file, w.code);
      return file;
    });
    const clean = join(dir, 'clean.ts');
    writeFileSync(clean, 'export const a = (now: () => number, rand: () => number) => Math.floor(now() * rand()) + Math.PI;');
    const types = typeErrors([...files, clean], dir);
    for (const [i, w] of walkArounds.entries()) {
      assert.deepEqual(await ruleIds(w.code, `src/core/walk-${i}.ts`), w.eslint, `eslint: ${w.name}`);
      assert.deepEqual(types.get(files[i]!), w.tsc, `tsc: ${w.name}`);
      assert.ok(w.eslint.length + w.tsc.length > 0, `${w.name} is reported by at least one layer`);
    }
    assert.deepEqual(types.get(clean), []);
    assert.deepEqual(await ruleIds(readFileSync(clean, 'utf8')), []);
  });

  it('rejects imports from outside core, node built-ins and packages', async () => {
    const found = await ruleIds(
      ["import { readFileSync } from 'node:fs';", "import { z } from 'zod';", "import { x } from '../config/schema.js';", 'export const y = [readFileSync, z, x];'].join('\n'),
    );
    assert.deepEqual(found.filter((f) => f.endsWith('no-restricted-syntax')), ['1:no-restricted-syntax', '2:no-restricted-syntax', '3:no-restricted-syntax']);
  });

  it('allows the same code outside core', async () => {
    assert.deepEqual(await ruleIds('export const a = Date.now() + Math.random() + globalThis.Date.now();', 'src/cli/example.ts'), []);
  });

  it('passes on every file in src/core today, under both layers', async () => {
    const dir = 'src/core';
    const paths = readdirSync(dir).filter((n) => n.endsWith('.ts')).map((f) => resolve(dir, f));
    for (const path of paths) assert.deepEqual(await ruleIds(readFileSync(path, 'utf8'), path), [], path);
    assert.deepEqual([...typeErrors(paths, resolve(dir)).values()].flat(), []);
  });
});
