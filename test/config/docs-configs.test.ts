// Configs shown to users must be valid: the README's YAML blocks and the example files.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { loadConfigFile, parseConfigText } from '../../src/config/index.js';

describe('configs in the docs', () => {
  it('every YAML block in README.md is a valid config', () => {
    const blocks = [...readFileSync('README.md', 'utf8').matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    assert.ok(blocks.length >= 1);
    for (const text of blocks) {
      const r = parseConfigText(text, { filename: 'README.md' });
      assert.ok(r.ok, JSON.stringify(r));
    }
  });

  it('every example config but bad.yaml is valid', async () => {
    const files = readdirSync('examples').filter((f) => f.endsWith('.yaml') && f !== 'bad.yaml');
    assert.ok(files.includes('quickstart.yaml') && files.includes('global.yaml'));
    for (const f of files) {
      const r = await loadConfigFile(`examples/${f}`, { env: {} });
      assert.ok(r.ok, `${f}: ${JSON.stringify(r)}`);
    }
  });
});
