// The real executable, run as a user would: exit codes and output streams.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const BIN = 'dist/src/cli/bin.js';
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, MERIDIAN_ADMIN_TOKEN: '' } });

describe('meridian (the executable)', () => {
  it('--help lists the commands and exits 0', () => {
    const r = run('--help');
    assert.equal(r.status, 0);
    assert.match(r.stdout, /meridian validate \[-c\] FILE/);
    assert.match(r.stdout, /meridian hash --policy maglev\|ring_hash/);
    assert.equal(r.stderr, '');
  });

  it('--help names every flag that each command\'s own --help describes', () => {
    const top = run('--help').stdout;
    for (const command of ['start', 'demo', 'quickstart', 'backend', 'validate', 'hash', 'simulate', 'plan']) {
      const own = run(command, '--help');
      assert.equal(own.status, 0, command);
      // The option list: lines like `  --rate N   ...`, `  -c, --config FILE   ...` (the short form is enough at the top).
      const flags = [...own.stdout.matchAll(/^ +(?:FILE, )?(?:(-\w), )?(--[a-z][a-z-]*)/gm)].map((m) => ({ short: m[1], long: m[2] as string })).filter((f) => f.long !== '--help');
      assert.ok(flags.length > 0 || command === 'start' || command === 'quickstart', command);
      const section = top.slice(top.indexOf(`meridian ${command} `)).split(/\n {2}meridian /)[0] as string;
      for (const f of flags) assert.ok(section.includes(f.long) || (f.short !== undefined && section.includes(`${f.short}]`)), `meridian --help omits ${command} ${f.long}`);
    }
  });

  it('--version prints the package version', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    const r = run('--version');
    assert.equal(r.status, 0);
    assert.equal(r.stdout, `meridian ${pkg.version}\n`);
  });

  it('an unknown command is a usage error (exit 2) on stderr', () => {
    const r = run('frobnicate');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown command "frobnicate"/);
    assert.equal(r.stdout, '');
  });

  it('validate: 0 with a one-line summary for the example, 1 with every error for the bad one, 2 for a missing file', () => {
    const good = run('validate', '-c', 'examples/meridian.yaml');
    assert.equal(good.status, 0, good.stderr);
    assert.equal(good.stdout.trim().split('\n').length, 1);
    assert.match(good.stdout, /^ok: examples\/meridian\.yaml/);
    const bad = run('validate', '-c', 'examples/bad.yaml');
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^examples\/bad\.yaml: \d+ errors/);
    assert.match(bad.stderr, /clusters\[\d+\]\.[a-z_.[\]0-9]+: /);
    const missing = run('validate', '-c', 'examples/nope.yaml');
    assert.equal(missing.status, 2);
    assert.equal(missing.stderr, 'meridian validate: cannot read examples/nope.yaml: no such file\n');
  });

  it('validate takes the file as a positional argument too, as simulate does, but only one', () => {
    const good = run('validate', 'examples/meridian.yaml');
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /^ok: examples\/meridian\.yaml/);
    const two = run('validate', '-c', 'examples/meridian.yaml', 'examples/quickstart.yaml');
    assert.equal(two.status, 2);
    assert.match(two.stderr, /^meridian validate: expected one FILE, got 2: examples\/meridian\.yaml examples\/quickstart\.yaml\n/);
  });

  it('a missing file is named with the command and the reason in words, never Node\'s raw error', () => {
    for (const args of [['start', '-c', 'nope.yaml'], ['quickstart', '-c', 'nope.yaml'], ['simulate', 'nope.yaml']]) {
      const r = run(...args);
      assert.equal(r.status, 2, args.join(' '));
      assert.equal(r.stderr, `meridian ${args[0]}: cannot read nope.yaml: no such file\n`);
    }
  });

  it('hash --json prints one JSON object', () => {
    const r = run('hash', '--policy', 'maglev', '--endpoints', '10', '--keys', '10000', '--table-size', '1009', '--json');
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(report['policy'], 'maglev');
    assert.equal(report['endpoints'], 10);
    assert.equal(report['table_size'], 1009);
  });
});
