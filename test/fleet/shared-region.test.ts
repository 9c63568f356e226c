// A region override (the global layer's) made on one node of a fleet reaches the other,
// over a real Redis; two Meridians in this process.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Meridian } from '../../src/node/meridian.js';
import { globalConfig } from '../global/helpers.js';
import { startMeridian, until } from '../proxy/harness.js';
import { NO_REDIS, RedisServer } from './redis-server.js';

describe('shared region overrides', { skip: NO_REDIS, timeout: 60_000 }, () => {
  let redis: RedisServer;
  let nodes: Meridian[] = [];

  before(async () => {
    redis = await RedisServer.start();
    const base = globalConfig();
    nodes = await Promise.all(
      ['r1', 'r2'].map(async (name) => (await startMeridian({ ...base, sync: syncFor(name, redis.url) })).meridian),
    );
  });

  after(async () => {
    await Promise.all(nodes.map((m) => m.close()));
    await redis?.kill();
  });

  const healthy = (m: Meridian, region: string) => m.global()?.status().regions.find((r) => r.name === region)?.healthy;

  it('an override set on one node holds on the other, and clearing it clears it there', async () => {
    await until(() => nodes.every((m) => m.fleetView()?.redis === 'up'), 10_000, 'both nodes to reach Redis');
    assert.equal(nodes[0]!.global()!.setRegionOverride('eu-west', 'down'), true);
    await until(() => healthy(nodes[1]!, 'eu-west') === false, 5000, 'r2 to take eu-west down');
    assert.equal(nodes[1]!.global()!.setRegionOverride('eu-west', undefined), true);
    await until(() => healthy(nodes[0]!, 'eu-west') === true, 5000, 'r1 to follow the probes again');
  });
});

function syncFor(name: string, redis: string) {
  return {
    redis,
    node: name,
    region: name,
    key_prefix: `region-${process.pid}`,
    sync_interval: 100,
    heartbeat_interval: 200,
    command_timeout: 1000,
    reconnect: { min: 50, max: 200 },
  };
}
