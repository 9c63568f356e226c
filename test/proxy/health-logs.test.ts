// What an operator reads when an endpoint's active checks change its health: losing it is a
// warning and, when it leaves too few healthy, "cluster in panic" follows at once (not at the
// next request: none is sent here); its recovery, and the end of panic, are info.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { startSampleBackend, type SampleBackend } from '../../src/backend/sample-backend.js';
import { Meridian } from '../../src/node/meridian.js';
import { config, freePort, until } from './harness.js';

describe('health transitions in the log', () => {
  const cleanup: { close(): Promise<void> }[] = [];
  after(async () => {
    for (const c of cleanup) await c.close();
  });

  it('unhealthy: warn, then cluster in panic with no request; healthy again: info, then out of panic', async () => {
    const port = await freePort();
    let backend: SampleBackend = await startSampleBackend({ name: 'b', port });
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ base: null }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
    const meridian = new Meridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${port}` }], health_check: { path: '/healthz', interval: '100ms', timeout: '50ms', unhealthy_threshold: 1, healthy_threshold: 1 } }],
      }),
      { logger, onAccess: () => {}, seed: 1 },
    );
    await meridian.start();
    cleanup.push(meridian);
    const said = (msg: string) => lines.find((l) => l.msg.startsWith(msg));

    await backend.close();
    await until(() => said('cluster in panic') !== undefined, 10_000, 'panic logged');
    assert.equal(said('endpoint unhealthy (active check)')?.level, 40);
    assert.equal(said('cluster in panic')?.level, 40);

    backend = await startSampleBackend({ name: 'b', port });
    cleanup.push(backend);
    await until(() => said('cluster out of panic') !== undefined, 10_000, 'the end of panic logged');
    assert.equal(said('endpoint healthy (active check)')?.level, 30);
    assert.equal(said('cluster out of panic')?.level, 30);
    assert.deepEqual(
      lines.filter((l) => /^(endpoint|cluster)/.test(l.msg)).map((l) => l.msg),
      ['endpoint unhealthy (active check)', 'cluster in panic: balancing over all endpoints', 'endpoint healthy (active check)', 'cluster out of panic'],
    );
  });
});
