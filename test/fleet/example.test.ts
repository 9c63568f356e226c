// examples/fleet: the three node configs validate, and run as a fleet (on free ports,
// loopback only) over a real Redis, as its README says.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { freePort, until } from '../proxy/harness.js';
import { call, FleetNode } from './fleet-harness.js';
import { NO_REDIS, RedisServer } from './redis-server.js';
import { parse } from 'yaml';

const FILES = [1, 2, 3].map((i) => `examples/fleet/node-${i}.yaml`);

describe('examples/fleet', { timeout: 60_000 }, () => {
  it('each node config validates', () => {
    for (const f of FILES) {
      const r = spawnSync(process.execPath, ['dist/src/cli/bin.js', 'validate', '-c', f], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${f}: ${r.stdout}${r.stderr}`);
    }
  });

  describe('run', { skip: NO_REDIS }, () => {
    const cleanup: (() => Promise<unknown>)[] = [];
    after(async () => {
      for (const c of cleanup.reverse()) await c();
    });

    it('three nodes see each other and serve through the sample backends node 1 runs', async () => {
      const redis = await RedisServer.start();
      cleanup.push(() => redis.kill());
      const ports = new Map<number, number>([[6379, redis.port]]);
      for (const p of [9101, 9102]) ports.set(p, await freePort());
      const nodes: FleetNode[] = [];
      for (const f of FILES) {
        const text = readFileSync(f, 'utf8').replace(/\b(6379|9101|9102)\b/g, (p) => String(ports.get(Number(p))));
        const input = parse(text) as { admin: object; listeners: object[] };
        const n = await FleetNode.start({
          name: f.replace(/\W+/g, '-'),
          config: ({ web, admin }) => ({
            ...input,
            admin: { ...input.admin, port: admin },
            listeners: input.listeners.map((l) => ({ ...l, port: web })),
          }),
        });
        cleanup.push(() => n.stop());
        nodes.push(n);
      }
      for (const n of nodes) await until(async () => ((await n.adminGet('/api/fleet')) as { nodes: unknown[] }).nodes.length === 3, 10_000, `${n.name} to see three nodes`);
      for (const n of nodes) assert.equal((await call(n.web, 'GET', '/')).status, 200);
    });
  });
});
