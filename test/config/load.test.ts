import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type LoadResult, loadConfigFile, parseConfigText } from '../../src/config/index.js';
import { MAX_NESTING } from '../../src/config/load.js';

const GOOD_YAML = `
listeners:
  - name: web
    port: 8080
    routes:
      - cluster: api
clusters:
  - name: api
    endpoints:
      - address: 127.0.0.1:9001
`;

function parseMessage(r: LoadResult): string {
  assert.ok(!r.ok && r.kind !== 'invalid', `expected a read/parse failure, got ${JSON.stringify(r)}`);
  return r.message;
}

describe('parseConfigText: YAML', () => {
  it('parses and validates', () => {
    const r = parseConfigText(GOOD_YAML, { filename: 'm.yaml' });
    assert.ok(r.ok);
    assert.equal(r.config.clusters[0]?.name, 'api');
  });

  it('reports a syntax error as FILE:LINE:COL', () => {
    const text = 'listeners:\n  - name: web\n    port: [8080\nclusters: []\n';
    const r = parseConfigText(text, { filename: 'm.yaml' });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.kind, 'parse');
    assert.match(parseMessage(r), /^m\.yaml:4:1: /);
  });

  it('refuses a repeated key, with its position, instead of keeping the last one', () => {
    const text = 'listeners: []\nclusters: []\nlisteners: []\n';
    assert.equal(parseMessage(parseConfigText(text, { filename: 'm.yaml' })), 'm.yaml:3:1: Map keys must be unique');
  });

  it('refuses several documents in one file', () => {
    assert.match(parseMessage(parseConfigText(`${GOOD_YAML}---\n${GOOD_YAML}`, { filename: 'm.yaml' })), /^m\.yaml:\d+:1: .*multiple documents/);
  });

  it('refuses an alias to an undefined anchor', () => {
    assert.match(parseMessage(parseConfigText('listeners: *nope\n', { filename: 'm.yaml' })), /^m\.yaml: .*alias/i);
  });

  it('supports merge keys, so blocks can be shared', () => {
    const text = `${GOOD_YAML}  - name: api2\n    <<: &shared { policy: random }\n    endpoints: [ { address: "127.0.0.1:9002" } ]\n`;
    const r = parseConfigText(text, { filename: 'm.yaml' });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.config.clusters[1]?.policy, 'random');
  });

  it('returns validation errors by path, as kind "invalid"', () => {
    const r = parseConfigText(GOOD_YAML.replace('8080', 'http'), { filename: 'm.yaml' });
    assert.deepEqual(r, { ok: false, kind: 'invalid', errors: ['listeners[0].port: expected a number, got "http"'] });
  });

  it('calls an empty file empty', () => {
    assert.deepEqual(parseConfigText('# nothing yet\n', { filename: 'm.yaml' }), {
      ok: false,
      kind: 'invalid',
      errors: ['(root): the file is empty; a config needs "listeners" and "clusters"'],
    });
  });

  it('takes the admin token from the environment only when given one', () => {
    const withToken = parseConfigText(GOOD_YAML, { filename: 'm.yaml', env: { MERIDIAN_ADMIN_TOKEN: 's3cret' } });
    assert.ok(withToken.ok);
    assert.equal(withToken.config.admin.token, 's3cret');
    const without = parseConfigText(`${GOOD_YAML}admin: { token: file }\n`, { filename: 'm.yaml' });
    assert.ok(without.ok);
    assert.equal(without.config.admin.token, 'file');
  });
});

describe('parseConfigText: JSON', () => {
  const json = JSON.stringify({
    listeners: [{ name: 'web', port: 8080, routes: [{ cluster: 'api' }] }],
    clusters: [{ name: 'api', endpoints: [{ address: '127.0.0.1:9001' }] }],
  }, null, 2);

  it('is chosen by the .json extension', () => {
    const r = parseConfigText(json, { filename: 'm.json' });
    assert.ok(r.ok);
    assert.equal(r.config.listeners[0]?.port, 8080);
  });

  it('can be forced with format', () => {
    assert.ok(parseConfigText(json, { filename: 'config', format: 'json' }).ok);
    // Not JSON: YAML flow style is not valid JSON.
    assert.equal(parseConfigText('{ a: 1 }', { filename: 'config', format: 'json' }).ok, false);
  });

  it('reports a syntax error with line and column', () => {
    const bad = json.replace('"port": 8080,', '"port": 8080');
    const msg = parseMessage(parseConfigText(bad, { filename: 'm.json' }));
    assert.match(msg, /^m\.json:6:7: Expected ',' or '}' after property value$/);
  });

  it('refuses a repeated key, which JSON.parse would silently drop', () => {
    const dup = '{\n  "listeners": [],\n  "listeners": []\n}';
    assert.equal(parseMessage(parseConfigText(dup, { filename: 'm.json' })), 'm.json:3:3: Map keys must be unique');
  });

  it('accepts a byte-order mark', () => {
    assert.ok(parseConfigText(`\uFEFF${json}`, { filename: 'm.json' }).ok);
  });
});

describe('loadConfigFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meridian-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a file', async () => {
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, GOOD_YAML);
    const r = await loadConfigFile(file, { env: {} });
    assert.ok(r.ok);
  });

  it('says which file it cannot read, and why', async () => {
    const file = join(dir, 'missing.yaml');
    const r = await loadConfigFile(file);
    assert.equal(!r.ok && r.kind, 'read');
    assert.equal(parseMessage(r), `cannot read ${file}: no such file`);
  });

  it('treats a directory as unreadable', async () => {
    const r = await loadConfigFile(dir);
    assert.equal(!r.ok && r.kind, 'read');
    assert.equal(parseMessage(r), `cannot read ${dir}: it is a directory`);
  });
});

describe('nesting depth', () => {
  const TOO_DEEP = `nested more than ${MAX_NESTING} levels deep (lists and mappings inside one another); a Meridian config nests about 8`;

  it('refuses 5,000 nested YAML lists with a position and the reason, not a stack overflow', () => {
    const text = `listeners: ${'['.repeat(5000)}${']'.repeat(5000)}\n`;
    const r = parseConfigText(text, { filename: 'deep.yaml' });
    assert.equal(!r.ok && r.kind, 'parse');
    assert.match(parseMessage(r), /^deep\.yaml:1:\d+: nested more than 128 levels deep /);
    assert.doesNotMatch(parseMessage(r), /call stack/);
  });

  it('refuses YAML one level past the limit, at the collection that crosses it', () => {
    // The root mapping is level 1, so the k-th "[" (at column 11 + k) opens level k + 1.
    const n = MAX_NESTING;
    const text = `listeners: ${'['.repeat(n)}${']'.repeat(n)}\n`;
    assert.equal(parseMessage(parseConfigText(text, { filename: 'd.yaml' })), `d.yaml:1:${11 + n}: ${TOO_DEEP}`);
    const ok = parseConfigText(`listeners: ${'['.repeat(n - 1)}${']'.repeat(n - 1)}\n`, { filename: 'd.yaml' });
    assert.equal(!ok.ok && ok.kind, 'invalid', 'one level less is parsed (and then found invalid)');
  });

  it('refuses deeply nested block mappings', () => {
    let text = '';
    for (let i = 0; i < 5000; i++) text += `${' '.repeat(i)}k:\n`;
    assert.match(parseMessage(parseConfigText(text, { filename: 'deep.yaml' })), /^deep\.yaml:\d+:\d+: nested more than 128 levels deep /);
  });

  it('refuses JSON nested past the limit with line and column, counting brackets inside strings as text', () => {
    const deep = `{"listeners":\n${'['.repeat(5000)}${']'.repeat(5000)}}`;
    assert.equal(parseMessage(parseConfigText(deep, { filename: 'd.json' })), `d.json:2:${MAX_NESTING}: ${TOO_DEEP}`);
    const strings = JSON.stringify({ listeners: [], note: '['.repeat(5000) });
    const r = parseConfigText(strings, { filename: 'd.json' });
    assert.equal(!r.ok && r.kind, 'invalid');
  });
});
