// The lint rule that keeps src/core pure must itself work: feed it violations and a clean file.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';

const eslint = new ESLint({ cwd: process.cwd() });
const ruleIds = async (code: string, file = 'src/core/example.ts') => {
  const [result] = await eslint.lintText(code, { filePath: file });
  return result!.messages.map((m) => `${m.line}:${m.ruleId}`);
};

describe('src/core purity rule', () => {
  it('rejects imports from outside core, node built-ins and packages', async () => {
    const found = await ruleIds(
      ["import { readFileSync } from 'node:fs';", "import { z } from 'zod';", "import { x } from '../config/schema.js';", 'export const y = [readFileSync, z, x];'].join('\n'),
    );
    assert.deepEqual(found.filter((f) => f.endsWith('no-restricted-syntax')), ['1:no-restricted-syntax', '2:no-restricted-syntax', '3:no-restricted-syntax']);
  });

  it('rejects wall-clock time, timers and Math.random', async () => {
    const found = await ruleIds(
      ['export const a = Date.now();', 'export const b = performance.now();', 'setTimeout(() => 0, 1);', 'export const c = Math.random();', 'export const d = new Date();'].join('\n'),
    );
    assert.deepEqual(found, ['1:no-restricted-properties', '2:no-restricted-globals', '3:no-restricted-globals', '4:no-restricted-properties', '5:no-restricted-syntax']);
  });

  it('allows the same code outside core', async () => {
    assert.deepEqual(await ruleIds("export const a = Date.now() + Math.random();", 'src/cli/example.ts'), []);
  });

  it('passes on every file in src/core today', async () => {
    const dir = 'src/core';
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const path = `${dir}/${f}`;
      assert.deepEqual(await ruleIds(readFileSync(path, 'utf8'), path), [], path);
    }
  });
});
