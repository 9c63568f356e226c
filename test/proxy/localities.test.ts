// Localities through the real proxy: failover to another region's Meridian with the hops
// header, loop prevention, and spillover by capacity — real Meridians and backends on 127.0.0.1.
import { strict as assert } from 'node:assert';
import { after, describe, it } from 'node:test';
import type { SampleBackend } from '../../src/backend/sample-backend.js';
import { backends, closeAll, config, freePort, get, startMeridian, until, type Running } from './harness.js';

const CHECK = { path: '/healthz', interval: '50ms', timeout: '40ms', healthy_threshold: 1, unhealthy_threshold: 1, jitter: '0%' };

/** A region's Meridian: its own backends at priority 0, the other region's Meridian at priority 1 (remote). */
function regionConfig(name: string, port: number, local: readonly SampleBackend[], peerPort: number) {
  return config({
    node: { name, region: name },
    admin: { port: 0 },
    access_log: { enabled: false },
    listeners: [{ name: 'web', address: '127.0.0.1', port, routes: [{ cluster: 'app' }] }],
    clusters: [
      {
        name: 'app',
        health_check: CHECK,
        retries: { attempts: 0 },
        localities: [
          { region: name, priority: 0, endpoints: local.map((b) => ({ address: `127.0.0.1:${b.port}`, id: b.name })) },
          { region: 'peer', priority: 1, remote: true, endpoints: [{ address: `127.0.0.1:${peerPort}`, id: 'peer' }] },
        ],
      },
    ],
  });
}

/** A node's records less the other region's health checks of its listener (CHECK.path), which arrive at any time. */
function traffic(r: Running) {
  return r.records.filter((x) => x.path !== CHECK.path);
}

interface Echo {
  readonly headers: Record<string, string>;
}

describe('cross-region failover through localities', () => {
  const open: { close(): Promise<void> }[] = [];
  after(() => closeAll(open));

  it("sends traffic to the other region's Meridian when its own endpoints are down, with the hops header, and never loops", async () => {
    const eastBackends = await backends(2, { healthPath: '/healthz' });
    const westBackends = await Promise.all([0, 1].map(async (i) => (await backends(1, { name: `w${i}` }))[0] as SampleBackend));
    open.push(...eastBackends, ...westBackends);
    const [eastPort, westPort] = [await freePort(), await freePort()];
    const east: Running = await startMeridian(regionConfig('east', eastPort, eastBackends, westPort));
    const west: Running = await startMeridian(regionConfig('west', westPort, westBackends, eastPort));
    open.push(east, west);

    // Healthy: east answers from its own backends.
    const local = await get(eastPort, '/');
    assert.equal(local.status, 200);
    assert.match(String(local.headers['x-backend']), /^b\d$/);

    // East's backends die: its health checks take them out and the traffic crosses to west.
    await Promise.all(eastBackends.map((b) => b.close()));
    await until(() => east.meridian.clusters()[0]?.localities?.find((l) => l.region === 'peer')?.share === 1, 5000, 'east fails over to the peer');
    const crossed = await get(eastPort, '/echo');
    assert.equal(crossed.status, 200);
    assert.match(String(crossed.headers['x-backend']), /^w\d$/, 'answered by a west backend');
    assert.equal((JSON.parse(crossed.body) as Echo).headers['x-meridian-hops'], 'east', "west's backend sees the hop");
    const westSaw = traffic(west).at(-1);
    assert.equal(westSaw?.path, '/echo');
    assert.equal(westSaw?.endpoint.startsWith('w'), true, 'west served it from its own endpoints');

    // A request that already crossed regions (as from west's failover) is never sent on:
    // east has no healthy endpoint of its own, yet it does not hand the request back to west.
    const eastBefore = traffic(east).length;
    const westBefore = traffic(west).length;
    const looped = await get(eastPort, '/', { headers: { 'x-meridian-hops': 'west' } });
    assert.ok(looped.status >= 500, `east cannot answer it locally: ${looped.status}`);
    assert.equal(traffic(east).length - eastBefore, 1, 'east saw it once');
    assert.equal(traffic(west).length, westBefore, 'and did not send it back to west');
    assert.notEqual(traffic(east).at(-1)?.endpoint, 'peer');
  });
});

describe('spillover by locality capacity', () => {
  const open: { close(): Promise<void> }[] = [];
  after(() => closeAll(open));

  it('sends only what exceeds max_in_flight to the next locality', async () => {
    const near = await backends(1, { name: 'near', latency: '300ms' });
    const far = await backends(1, { name: 'far' });
    open.push(...near, ...far);
    const m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'app' }] }],
        clusters: [
          {
            name: 'app',
            localities: [
              { region: 'near', priority: 0, max_in_flight: 2, endpoints: [{ address: `127.0.0.1:${near[0]?.port}`, id: 'near' }] },
              { region: 'far', priority: 1, endpoints: [{ address: `127.0.0.1:${far[0]?.port}`, id: 'far' }] },
            ],
          },
        ],
      }),
    );
    open.push(m);
    // Five at once: two fill the near locality (each held 300 ms), three spill.
    const replies = await Promise.all(Array.from({ length: 5 }, () => get(m.port, '/', { agent: false })));
    const by = (name: string) => replies.filter((r) => r.headers['x-backend'] === name).length;
    assert.deepEqual([by('near'), by('far')], [2, 3]);
    const l = m.meridian.clusters()[0]?.localities ?? [];
    assert.equal(l[0]?.spilledOut, 3);
    assert.equal(l[1]?.spilledIn, 3);
    // Once they finish, the near locality takes traffic again.
    assert.equal((await get(m.port, '/')).headers['x-backend'], 'near');
  });
});
