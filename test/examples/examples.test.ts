// Every example works with the command written at its top: the header names the command and
// the file, `meridian validate` accepts it (bad.yaml: refuses it, as it says), and the configs
// that serve traffic answer through `meridian start` alone, their backends included.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseScenarioText } from '../../src/sim/index.js';
import { freePort, get, until } from '../proxy/harness.js';

const BIN = 'dist/src/cli/bin.js';

/** The first `npx meridian ...` command in the file's leading comment block. */
function headerCommand(file: string): string[] | undefined {
  const header = /^(?:#.*\n|\s*\n)*/.exec(readFileSync(file, 'utf8'))?.[0] ?? '';
  const line = /^#\s+npx meridian (.+?)(?:\s{2,}.*)?$/m.exec(header)?.[1];
  return line?.trim().split(/\s+/);
}

describe('examples', () => {
  // global.yaml's fleet ports need the test certificates its header says to make first.
  execFileSync('sh', ['scripts/make-fleet-certs.sh']);
  const configs = readdirSync('examples').filter((f) => f.endsWith('.yaml'));
  const scenarios = readdirSync('examples/scenarios').filter((f) => f.endsWith('.yaml'));

  it('each config names, at its top, the command that runs it, and validates (bad.yaml fails, as it is meant to)', () => {
    assert.ok(configs.includes('quickstart.yaml') && configs.includes('meridian.yaml') && configs.includes('bad.yaml'));
    for (const f of configs) {
      const path = `examples/${f}`;
      const cmd = headerCommand(path);
      assert.ok(cmd, `${path}: no "npx meridian ..." command in its header`);
      assert.ok(['start', 'validate'].includes(cmd[0] as string) && cmd.includes(path), `${path}: header command ${cmd.join(' ')}`);
      const r = spawnSync(process.execPath, [BIN, 'validate', '-c', path], { encoding: 'utf8' });
      assert.equal(r.status, f === 'bad.yaml' ? 1 : 0, `${path}: ${r.stdout}${r.stderr}`);
    }
  });

  it('each scenario names, at its top, the simulate command for itself, and parses', () => {
    assert.ok(scenarios.length > 10);
    for (const f of scenarios) {
      const path = `examples/scenarios/${f}`;
      assert.deepEqual(headerCommand(path), ['simulate', path], path);
      assert.doesNotThrow(() => parseScenarioText(readFileSync(path, 'utf8')), path);
    }
  });

  describe('served by meridian start alone', () => {
    const cleanup: (() => unknown)[] = [];
    after(async () => {
      for (const c of cleanup) await c();
    });

    // The file as written but on free ports (and loopback only), so the test cannot collide
    // with anything else listening on 8080 or 9901.
    async function serve(name: string, ports: number[]): Promise<{ port: (p: number) => number; out: () => string }> {
      const map = new Map<number, number>();
      for (const p of ports) map.set(p, await freePort());
      const text = readFileSync(`examples/${name}`, 'utf8')
        .replace(/\b\d{4}\b/g, (p) => String(map.get(Number(p)) ?? p))
        .replaceAll('0.0.0.0', '127.0.0.1');
      const dir = mkdtempSync(join(tmpdir(), 'meridian-example-'));
      const file = join(dir, name);
      writeFileSync(file, text);
      const child = spawn(process.execPath, [BIN, 'start', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MERIDIAN_LOG_LEVEL: 'warn' } });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise((r) => child.on('exit', r));
      cleanup.push(async () => {
        child.kill('SIGTERM');
        await exited;
        rmSync(dir, { recursive: true, force: true });
      });
      await until(() => /meridian is running/.test(out) || child.exitCode !== null, 15_000, `${name} started`);
      assert.match(out, /meridian is running/, out);
      return { port: (p) => map.get(p) as number, out: () => out };
    }

    it('examples/quickstart.yaml answers 200 from its sample backends, in turn', async () => {
      const s = await serve('quickstart.yaml', [8080, 9901, 9101, 9102, 9103]);
      await until(async () => (await get(s.port(8080), '/', { agent: false })).status === 200, 10_000, 'a 200');
      const seen = new Set<string>();
      for (let i = 0; i < 6; i++) {
        const r = await get(s.port(8080), '/', { agent: false });
        assert.equal(r.status, 200);
        seen.add(String(r.headers['x-backend']));
      }
      assert.deepEqual([...seen].sort(), ['backend-1', 'backend-2', 'backend-3']);
    });

    it('examples/meridian.yaml answers 200 on both clusters', async () => {
      const s = await serve('meridian.yaml', [8080, 9901, 9001, 9002, 9003, 9101, 9102]);
      await until(async () => (await get(s.port(8080), '/', { agent: false })).status === 200, 10_000, 'a 200');
      assert.match(String((await get(s.port(8080), '/', { agent: false })).headers['x-backend']), /^api-\d$/);
      const session = await get(s.port(8080), '/api/sessions', { agent: false, headers: { host: 'api.example.com', 'x-user-id': 'u1' } });
      assert.equal(session.status, 200);
      assert.match(String(session.headers['x-backend']), /^sessions-\d$/);
    });
  });
});
