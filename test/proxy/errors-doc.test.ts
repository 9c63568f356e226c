// docs/errors.md is the catalogue of local replies: it must name every code with its status.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { LOCAL_REPLIES } from '../../src/proxy/errors.js';

describe('docs/errors.md', () => {
  it('documents every local reply code with its status', () => {
    const doc = readFileSync('docs/errors.md', 'utf8');
    for (const [code, { status }] of Object.entries(LOCAL_REPLIES)) {
      assert.match(doc, new RegExp(`\\| \`${code}\` \\| ${status} \\|`), `${code} (${status}) missing from docs/errors.md`);
    }
  });
});
