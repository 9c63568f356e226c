// Configs shown to users must be valid: the README's YAML blocks and the example files.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
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

  it('examples/quickstart.yaml (what npm start runs) is valid', async () => {
    const r = await loadConfigFile('examples/quickstart.yaml', { env: {} });
    assert.ok(r.ok, JSON.stringify(r));
  });
});
