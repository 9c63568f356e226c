import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { runValidate } from '../../src/cli/validate.js';

/** Runs the command with captured output: one array entry per line written. */
async function run(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runValidate(argv, { stdout: (s) => out.push(s), stderr: (s) => err.push(s) });
  return { code, out, err };
}

const dir = mkdtempSync(join(tmpdir(), 'meridian-validate-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const GOOD = `
listeners:
  - { name: web, port: 8080, routes: [ { cluster: api } ] }
clusters:
  - name: api
    endpoints: [ { address: "127.0.0.1:9001" }, { address: "127.0.0.1:9002" } ]
`;

describe('meridian validate', () => {
  it('exits 0 with one summary line for a valid config', async () => {
    const path = file('good.yaml', GOOD);
    const r = await run(['-c', path]);
    assert.deepEqual(r, { code: 0, out: [`ok: ${path} — 1 listener, 1 cluster, 2 endpoints, 1 route`], err: [] });
  });

  it('summarizes the shipped example', async () => {
    const path = fileURLToPath(new URL('../../../examples/meridian.yaml', import.meta.url));
    const r = await run(['--config', path]);
    assert.equal(r.code, 0, r.err.join('\n'));
    assert.deepEqual(r.out, [`ok: ${path} — 1 listener, 2 clusters, 5 endpoints, 3 routes`]);
  });

  it('exits 1 and lists every error by path on stderr', async () => {
    const path = file('bad.yaml', GOOD.replace('8080', '80800').replace('cluster: api', 'cluster: apx').replace('name: api', 'name: api\n    policy: fastest'));
    const r = await run(['-c', path]);
    assert.equal(r.code, 1);
    assert.deepEqual(r.out, []);
    assert.deepEqual(r.err, [
      `${path}: 3 errors`,
      '  listeners[0].port: must be between 0 and 65535, got 80800',
      '  clusters[0].policy: expected one of round_robin, random, least_request, peak_ewma, ring_hash, maglev; got "fastest"',
      '  listeners[0].routes[0].cluster: unknown cluster "apx" (did you mean "api"?)',
    ]);
  });

  it('exits 2 when the file cannot be read', async () => {
    const path = join(dir, 'nope.yaml');
    const r = await run(['-c', path]);
    assert.equal(r.code, 2);
    assert.equal(r.err.length, 1);
    assert.match(r.err[0] ?? '', /^cannot read .*nope\.yaml: ENOENT/);
  });

  it('exits 2 with line and column when the file is not YAML', async () => {
    const path = file('broken.yaml', 'listeners:\n  - name: web\n   port: 1\n');
    const r = await run(['-c', path]);
    assert.equal(r.code, 2);
    assert.match(r.err.join('\n'), new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:\\d+: `));
  });

  it('exits 2 with usage when -c is missing or an option is unknown', async () => {
    for (const argv of [[], ['--config'], ['-x'], ['extra.yaml']]) {
      const r = await run(argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.err.join('\n'), /usage: meridian validate -c FILE/);
    }
  });

  it('prints usage on --help and exits 0', async () => {
    const r = await run(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.out.join('\n'), /^usage: meridian validate -c FILE/);
  });
});
