// The shipped example files: the good one must stay valid as the schema evolves, the
// bad one must keep failing for exactly the mistakes it is annotated with.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { clusterEndpoints, loadConfigFile, parseConfigText } from '../../src/config/index.js';

// dist/test/config/ → repository root.
const example = (name: string): string => fileURLToPath(new URL(`../../../examples/${name}`, import.meta.url));

describe('examples/meridian.yaml', () => {
  it('is valid and uses the features it is meant to show', async () => {
    const r = await loadConfigFile(example('meridian.yaml'), { env: {} });
    assert.ok(r.ok, JSON.stringify(r));
    const { listeners, clusters } = r.config;
    assert.equal(listeners.length, 1);
    const web = listeners[0];
    assert.ok(web?.protocol === 'http');
    assert.equal(web.routes.length, 3);
    const [api, sessions] = clusters;
    assert.ok(api && sessions);
    assert.equal(api.policy, 'round_robin');
    assert.ok(api.health_check && api.outlier_detection && api.slow_start);
    assert.equal(sessions.policy, 'maglev');
    assert.deepEqual(sessions.hash?.key, { kind: 'header', name: 'x-user-id' });
    assert.equal(sessions.hash?.bounded_load, 1.25);
    assert.equal(clusters.reduce((n, c) => n + clusterEndpoints(c).length, 0), 5);
  });
});

describe('examples/bad.yaml', () => {
  it('fails with one error per annotated mistake', async () => {
    const r = await loadConfigFile(example('bad.yaml'), { env: {} });
    assert.ok(!r.ok && r.kind === 'invalid', JSON.stringify(r));
    assert.deepEqual(
      r.errors.map((e) => e.slice(0, e.indexOf(': '))).sort(),
      [
        'clusters[0].endpoints[1].address',
        'clusters[0].helth_check',
        'clusters[0].policy',
        'clusters[1].health_check.interval',
        'clusters[1].maglev.table_size',
        'clusters[1].outlier_detection.max_ejection_time',
        'listeners[0].routes[0].cluster',
        'listeners[0].routes[1].match.path',
      ],
    );
    assert.ok(r.errors.includes('clusters[1].health_check.interval: expected a duration like "2s", got "fast"'));
  });
});

describe('docs/config.md', () => {
  const doc = (): string => readFileSync(fileURLToPath(new URL('../../../docs/config.md', import.meta.url)), 'utf8');

  it('has a valid config in every yaml code block', () => {
    const blocks = [...doc().matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
    assert.ok(blocks.length > 0);
    for (const b of blocks) {
      const r = parseConfigText(b, { filename: 'docs/config.md' });
      assert.ok(r.ok, JSON.stringify(r));
    }
  });

  it('shows the errors examples/bad.yaml really produces', async () => {
    const r = await loadConfigFile(example('bad.yaml'), { env: {} });
    assert.ok(!r.ok && r.kind === 'invalid');
    const text = doc();
    assert.ok(text.includes(`examples/bad.yaml: ${r.errors.length} errors\n`));
    for (const e of r.errors) assert.ok(text.includes(`  ${e}\n`), `docs/config.md lacks: ${e}`);
  });
});
