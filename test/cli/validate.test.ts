import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
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
      '  clusters[0].policy: expected one of round_robin, random, least_request, peak_ewma, ring_hash, maglev, prequal, predictive; got "fastest"',
      '  listeners[0].routes[0].cluster: unknown cluster "apx" (did you mean "api"?)',
    ]);
  });

  it('exits 2 when the file cannot be read', async () => {
    const path = join(dir, 'nope.yaml');
    const r = await run(['-c', path]);
    assert.equal(r.code, 2);
    assert.equal(r.err.length, 1);
    assert.equal(r.err[0], `meridian validate: cannot read ${path}: no such file`);
  });

  it('exits 2 with line and column when the file is not YAML', async () => {
    const path = file('broken.yaml', 'listeners:\n  - name: web\n   port: 1\n');
    const r = await run(['-c', path]);
    assert.equal(r.code, 2);
    assert.match(r.err.join('\n'), new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:\\d+: `));
  });

  it('exits 2 with usage when the file is missing, an option is unknown, or there are two files', async () => {
    for (const argv of [[], ['--config'], ['-x'], ['-c', 'a.yaml', 'b.yaml'], ['a.yaml', 'b.yaml']]) {
      const r = await run(argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.err.join('\n'), /usage: meridian validate \[-c\] FILE/);
    }
  });

  it('prints usage on --help and exits 0', async () => {
    const r = await run(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.out.join('\n'), /^usage: meridian validate \[-c\] FILE/);
  });
});

/** The real command, as a user runs it: exit code and everything it printed. */
function cli(args: string[]): Promise<{ code: number | null; text: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['dist/src/cli/bin.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    child.on('exit', (code) => resolve({ code, text }));
  });
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('meridian validate catches what start would refuse (spawned)', () => {
  const LISTENER = 'listeners: [ { name: web, address: 127.0.0.1, port: 0, routes: [ { cluster: api } ] } ]\nclusters: [ { name: api, endpoints: [ { address: "127.0.0.1:9001" } ] } ]\n';

  it('5,000 nested lists: validate and start both exit 2 naming the file and the problem, no stack overflow', async () => {
    const path = file('deep.yaml', `${LISTENER}extra: ${'['.repeat(5000)}${']'.repeat(5000)}\n`);
    for (const command of ['validate', 'start']) {
      const r = await cli([command, '-c', path]);
      assert.equal(r.code, 2, `${command}: ${r.text}`);
      assert.match(r.text, new RegExp(`${escape(path)}:3:\\d+: nested more than 128 levels deep`));
      assert.doesNotMatch(r.text, /call stack/);
    }
  });

  it('admin.address: on is refused by validate (exit 1) and by start before it binds anything (exit 1)', async () => {
    const path = file('on.yaml', `admin: { address: on, port: 0 }\n${LISTENER}`);
    const v = await cli(['validate', '-c', path]);
    assert.equal(v.code, 1, v.text);
    assert.equal(v.text, `${path}: 1 error\n  admin.address: expected an IP address (e.g. 127.0.0.1, 0.0.0.0, ::1) or "localhost", got "on"\n`);
    const s = await cli(['start', '-c', path]);
    assert.equal(s.code, 1, s.text);
    assert.doesNotMatch(s.text, /listening/);
  });

  it('the admin API on a listener\'s port is refused by validate (exit 1)', async () => {
    const path = file('clash.yaml', 'admin: { port: 18080 }\nlisteners: [ { name: web, port: 18080, routes: [ { cluster: api } ] } ]\nclusters: [ { name: api, endpoints: [ { address: "127.0.0.1:9001" } ] } ]\n');
    const v = await cli(['validate', '-c', path]);
    assert.equal(v.code, 1, v.text);
    assert.match(v.text, /listeners\[0\]\.port: listen address "0\.0\.0\.0 port 18080" overlaps "127\.0\.0\.1 port 18080" at admin/);
  });

  it('start refuses an access log it cannot open before it listens (exit 2, the path and the reason), rather than spinning', { timeout: 30_000 }, async () => {
    const blocker = file('also-not-a-folder', 'x');
    const path = file('log.yaml', `admin: { port: 0 }\naccess_log: { path: ${blocker}/access.log }\n${LISTENER}`);
    const s = await cli(['start', '-c', path]);
    assert.equal(s.code, 2, s.text);
    assert.match(s.text, new RegExp(`meridian start: access_log\\.path: cannot open ${escape(blocker)}/access\\.log: EEXIST: file already exists, mkdir`));
    assert.doesNotMatch(s.text, /"msg":"listening"/);
  });

  it('a certificate file that does not exist and an access log that cannot be created are refused by validate (exit 1)', async () => {
    const blocker = file('not-a-folder', 'x');
    const path = file(
      'files.yaml',
      [
        'admin: { port: 0 }',
        `access_log: { path: ${blocker}/access.log }`,
        `listeners: [ { name: tls, address: 127.0.0.1, port: 0, protocol: https, tls: { certificates: [ { cert: ${dir}/missing.pem, key: ${dir}/missing.key } ] }, routes: [ { cluster: api } ] } ]`,
        'clusters: [ { name: api, endpoints: [ { address: "127.0.0.1:9001" } ] } ]',
        '',
      ].join('\n'),
    );
    const v = await cli(['validate', '-c', path]);
    assert.equal(v.code, 1, v.text);
    assert.equal(
      v.text,
      [
        `${path}: 2 errors`,
        `  listeners[0].tls.certificates: cannot read certificate file ${dir}/missing.pem: ENOENT: no such file or directory, open '${dir}/missing.pem'`,
        `  access_log.path: cannot create ${blocker}/access.log: ${blocker} is not a folder`,
        '',
      ].join('\n'),
    );
  });
});
