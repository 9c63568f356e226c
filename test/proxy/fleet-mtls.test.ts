// Two Meridians as regions, failing over to each other over mutually authenticated TLS;
// a caller without a fleet certificate never reaches a region's failover port.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestCert } from './certs.js';
import { closeAll, config, freePort, get, startMeridian, type Running } from './harness.js';
import { pki, type Pki, type TestCa } from './pki.js';

/** A backend that can die and come back on the same port. */
async function mortalBackend(name: string): Promise<{ port: number; kill(): Promise<void>; revive(): Promise<void>; close(): Promise<void> }> {
  let server: Server | undefined;
  const port = await freePort();
  const revive = async () => {
    const s = createServer((req, res) => {
      res.setHeader('x-backend', name);
      res.setHeader('x-hops-seen', String(req.headers['x-meridian-hops'] ?? ''));
      res.end(name);
    });
    await new Promise<void>((resolve) => s.listen(port, '127.0.0.1', resolve));
    server = s;
  };
  const kill = () =>
    new Promise<void>((resolve) => {
      const s = server;
      server = undefined;
      if (s === undefined) return resolve();
      s.closeAllConnections();
      s.close(() => resolve());
    });
  await revive();
  return { port, kill, revive, close: kill };
}

/** A request to a fleet port with `cert` (or none): its status, or the error code that ended it. */
function fleetGet(port: number, ca: string, cert?: TestCert): Promise<string> {
  return new Promise((resolve) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        servername: 'meridian-a',
        ca: readFileSync(ca),
        ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}),
        agent: false,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.statusCode)));
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.end();
  });
}

describe('two regions failing over to each other over mTLS', () => {
  let p: Pki;
  let fleet: TestCa;
  const certs: Record<string, TestCert> = {};
  let backendA: Awaited<ReturnType<typeof mortalBackend>>;
  let backendB: Awaited<ReturnType<typeof mortalBackend>>;
  let a: Running;
  let b: Running;
  let fleetPort: { a: number; b: number };

  const region = (me: 'a' | 'b', other: 'a' | 'b', backendPort: number) =>
    config({
      admin: { port: 0 },
      access_log: { enabled: false },
      node: { name: `meridian-${me}`, region: me },
      listeners: [
        { name: 'public', address: '127.0.0.1', port: 0, routes: [{ cluster: 'app' }] },
        {
          name: 'fleet',
          address: '127.0.0.1',
          port: fleetPort[me],
          protocol: 'https',
          tls: { certificates: [certs[`meridian-${me}`]], client_ca: fleet.cert, client_names: ['meridian-a', 'meridian-b'] },
          routes: [{ cluster: 'app' }],
        },
      ],
      clusters: [
        {
          name: 'app',
          retries: { attempts: 2 },
          localities: [
            { region: me, priority: 0, endpoints: [{ address: `127.0.0.1:${backendPort}` }] },
            {
              region: other,
              priority: 1,
              remote: true,
              tls: { ca: fleet.cert, server_name: `meridian-${other}`, cert: certs[`meridian-${me}`]?.cert, key: certs[`meridian-${me}`]?.key },
              endpoints: [{ address: `127.0.0.1:${fleetPort[other]}` }],
            },
          ],
        },
      ],
    });

  before(async () => {
    p = pki();
    fleet = p.ca('fleet-ca');
    for (const n of ['meridian-a', 'meridian-b', 'outsider']) certs[n] = fleet.issue(n);
    certs['stranger'] = p.ca('other-ca').issue('meridian-a', { file: 'stranger' });
    backendA = await mortalBackend('backend-a');
    backendB = await mortalBackend('backend-b');
    fleetPort = { a: await freePort(), b: await freePort() };
    a = await startMeridian(region('a', 'b', backendA.port));
    b = await startMeridian(region('b', 'a', backendB.port));
  });
  after(async () => {
    await closeAll(a, b, backendA, backendB);
    p.remove();
  });

  it('each region serves from its own backend while it is up', async () => {
    assert.equal((await get(a.port, '/')).body, 'backend-a');
    assert.equal((await get(b.port, '/')).body, 'backend-b');
  });

  it("region a's backend down: a forwards to region b over mTLS, and b serves it from its own", async () => {
    await backendA.kill();
    const r = await get(a.port, '/');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'backend-b');
    assert.equal(r.headers['x-hops-seen'], 'meridian-a');
    assert.equal(b.records.at(-1)?.listener, 'fleet');
    await backendA.revive();
  });

  it("region b's backend down: b forwards to region a the same way", async () => {
    await backendB.kill();
    const r = await get(b.port, '/');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'backend-a');
    assert.equal(r.headers['x-hops-seen'], 'meridian-b');
    assert.equal(a.records.at(-1)?.listener, 'fleet');
    await backendB.revive();
  });

  it('the fleet port refuses callers without a fleet certificate: none, a foreign CA, or a fleet name not on the list', async () => {
    const before = a.records.length;
    // No HTTP answer at all: the handshake fails (no certificate, a foreign CA), or the
    // connection is cut right after it (a name not on the list). Which error the client's
    // TLS stack reports (the alert, or the reset that follows it) is a race, not Meridian's.
    for (const cert of [undefined, certs['stranger'], certs['outsider']]) {
      assert.doesNotMatch(await fleetGet(fleetPort.a, fleet.cert, cert), /^\d{3}$/);
    }
    // A fleet member's request after them is the only one region a saw.
    assert.equal(await fleetGet(fleetPort.a, fleet.cert, certs['meridian-b']), '200');
    assert.equal(a.records.length, before + 1);
    assert.equal(a.records.at(-1)?.listener, 'fleet');
  });

  it('a reload re-reads the client CA file: a renewed fleet CA is in force for the next handshake', async () => {
    const caFile = join(p.dir, 'client-ca.pem');
    copyFileSync(join(p.dir, 'other-ca.crt'), caFile);
    const port = await freePort();
    const cfg = config({
      admin: { port: 0 },
      access_log: { enabled: false },
      listeners: [{ name: 'fleet', address: '127.0.0.1', port, protocol: 'https', tls: { certificates: [certs['meridian-a']], client_ca: caFile }, routes: [{ cluster: 'app' }] }],
      clusters: [{ name: 'app', endpoints: [{ address: `127.0.0.1:${backendA.port}` }] }],
    });
    const c = await startMeridian(cfg);
    try {
      assert.doesNotMatch(await fleetGet(port, fleet.cert, certs['meridian-b']), /^\d{3}$/);
      copyFileSync(fleet.cert, caFile);
      assert.equal((await c.meridian.reload(cfg)).ok, true);
      assert.equal(await fleetGet(port, fleet.cert, certs['meridian-b']), '200');
    } finally {
      await c.close();
    }
  });
});
