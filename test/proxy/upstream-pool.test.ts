// Requests waiting for an upstream connection at circuit_breaker.max_connections, through a
// real Meridian and a real backend on 127.0.0.1.
import assert from 'node:assert/strict';
import { request, type ClientRequest } from 'node:http';
import { after, describe, it } from 'node:test';
import { backends, closeAll, get, simpleConfig, startMeridian, until } from './harness.js';

/** A request whose client can be cut while it waits. */
function hanging(port: number, path: string): ClientRequest {
  const req = request({ host: '127.0.0.1', port, path, agent: false });
  req.on('error', () => {});
  req.end();
  return req;
}

describe('requests waiting for a connection at max_connections', () => {
  const open: { close(): Promise<void> }[] = [];
  after(() => closeAll(open));

  it('a waiting request whose client leaves gives up its place at once: the next request waits instead of being refused circuit_open', async () => {
    const bs = await backends(1);
    const m = await startMeridian(simpleConfig(bs, { circuit_breaker: { max_connections: 1, max_pending_requests: 1 } }));
    open.push(m, ...bs);
    // A holds the only connection (/hang never answers).
    const a = hanging(m.port, '/hang');
    await until(() => m.meridian.clusters()[0]?.endpoints[0]?.poolOpen === 1, 5000, 'A on the only connection');
    // B waits for it; then its client leaves.
    const b = hanging(m.port, '/hang?b');
    // Two exchanges in flight and one connection: B waits in the pool (it has no body, so it went there at once).
    await until(() => m.meridian.inFlight === 2, 5000, 'B waiting');
    b.destroy();
    await until(() => m.records.some((r) => r.path === '/hang?b'), 5000, "B's record");
    assert.equal(m.records.find((r) => r.path === '/hang?b')?.status, 499);
    // C takes the waiting place B left (before: B still held it, and C was refused 503 circuit_open).
    const c = get(m.port, '/');
    await until(() => m.meridian.inFlight === 2, 5000, 'C waiting');
    // A's client leaves too: its connection closes, and C gets one.
    a.destroy();
    const answer = await c;
    assert.equal(answer.status, 200);
  });
});
