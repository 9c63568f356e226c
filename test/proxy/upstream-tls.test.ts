// TLS and mTLS from Meridian to HTTPS backends, with certificates made at test time.
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import type { TestCert } from './certs.js';
import { closeAll, config, get, startMeridian, type Running } from './harness.js';
import { pki, type Pki, type TestCa } from './pki.js';
import { ActiveHealthChecker } from '../../src/health/active-checker.js';
import { ClusterTls, upstreamTlsOptions } from '../../src/proxy/upstream-tls.js';

interface Seen {
  readonly reused: boolean;
  readonly client: string | undefined;
}

interface HttpsBackend {
  readonly port: number;
  readonly seen: Seen[];
  close(): Promise<void>;
}

/** An HTTPS backend that closes every connection after its answer, so each request is a new handshake. */
async function httpsBackend(cert: TestCert, clientCa?: string): Promise<HttpsBackend> {
  const seen: Seen[] = [];
  const server: Server = createServer(
    {
      cert: readFileSync(cert.cert),
      key: readFileSync(cert.key),
      ...(clientCa === undefined ? {} : { ca: readFileSync(clientCa), requestCert: true, rejectUnauthorized: true }),
    },
    (req, res) => {
      const s = req.socket as TLSSocket;
      const peer = s.getPeerCertificate();
      seen.push({ reused: s.isSessionReused(), client: peer?.subject?.CN as string | undefined });
      res.writeHead(200, { connection: 'close', 'content-type': 'text/plain' });
      res.end('tls ok');
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function input(clusters: readonly Record<string, unknown>[]) {
  return {
    admin: { port: 0 },
    access_log: { enabled: false },
    listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: clusters.map((c) => ({ match: { path: { prefix: `/${String(c['name'])}/` } }, cluster: c['name'] })) }],
    clusters,
  };
}

describe('TLS to backends', () => {
  let p: Pki;
  let ca: TestCa;
  let otherCa: TestCa;
  let plain: HttpsBackend;
  let expired: HttpsBackend;
  let mtls: HttpsBackend;
  let m: Running;
  let trustFile: string;
  let clientCert: TestCert;
  const clusters: Record<string, unknown>[] = [];
  let cfg: ReturnType<typeof config>;

  before(async () => {
    p = pki();
    ca = p.ca('backend-ca');
    otherCa = p.ca('other-ca');
    const fleet = p.ca('fleet-ca');
    clientCert = fleet.issue('meridian-a');
    plain = await httpsBackend(ca.issue('backend.test'));
    expired = await httpsBackend(ca.issue('backend.test', { file: 'expired', expired: true }));
    mtls = await httpsBackend(ca.issue('mtls.test'), fleet.cert);
    trustFile = join(p.dir, 'trust.pem');
    copyFileSync(otherCa.cert, trustFile);
    const cluster = (name: string, port: number, tls: Record<string, unknown>) =>
      clusters.push({ name, endpoints: [{ address: `127.0.0.1:${port}` }], tls, retries: { attempts: 0 } });
    cluster('right', plain.port, { ca: ca.cert, server_name: 'backend.test' });
    cluster('wrong-ca', plain.port, { ca: otherCa.cert, server_name: 'backend.test' });
    cluster('wrong-name', plain.port, { ca: ca.cert, server_name: 'other.test' });
    cluster('expired', expired.port, { ca: ca.cert, server_name: 'backend.test' });
    cluster('mtls', mtls.port, { ca: ca.cert, server_name: 'mtls.test', cert: clientCert.cert, key: clientCert.key });
    cluster('mtls-none', mtls.port, { ca: ca.cert, server_name: 'mtls.test' });
    cluster('reload', plain.port, { ca: trustFile, server_name: 'backend.test' });
    cfg = config(input(clusters));
    m = await startMeridian(cfg);
  });
  after(async () => {
    await closeAll(m, plain, expired, mtls);
    p.remove();
  });

  it('verifies the backend against the configured CA and name, and passes with the right ones', async () => {
    const r = await get(m.port, '/right/x');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'tls ok');
    const rec = m.records.at(-1);
    assert.deepEqual([rec?.upstreamProtocol, rec?.upstreamTls], ['http1', 'TLSv1.3']);
  });

  for (const [name, what] of [
    ['wrong-ca', 'a CA that did not sign the certificate'],
    ['wrong-name', 'a server name the certificate does not carry'],
    ['expired', 'an expired certificate'],
  ] as const) {
    it(`refuses ${what}: 502 upstream_tls, never plaintext`, async () => {
      const before = plain.seen.length + expired.seen.length;
      const r = await get(m.port, `/${name}/x`);
      assert.equal(r.status, 502);
      assert.equal(r.headers['x-meridian-reason'], 'upstream_tls');
      assert.equal(m.records.at(-1)?.reason, 'upstream_tls');
      // The handshake failed on Meridian's side: no request reached the backend.
      assert.equal(plain.seen.length + expired.seen.length, before);
    });
  }

  it("mTLS: the backend accepts Meridian's client certificate and refuses Meridian without one", async () => {
    const ok = await get(m.port, '/mtls/x');
    assert.equal(ok.status, 200);
    assert.equal(mtls.seen.at(-1)?.client, 'meridian-a');
    const n = mtls.seen.length;
    const refused = await get(m.port, '/mtls-none/x');
    assert.equal(refused.status, 502);
    assert.equal(refused.headers['x-meridian-reason'], 'upstream_tls');
    assert.equal(mtls.seen.length, n);
  });

  it('resumes TLS sessions: a new connection to the same backend skips the full handshake', async () => {
    const start = plain.seen.length;
    for (let i = 0; i < 3; i++) assert.equal((await get(m.port, '/right/x')).status, 200);
    // The backend closes each connection: every request above had one of its own, and the later ones resumed.
    assert.deepEqual(
      plain.seen.slice(start + 1).map((s) => s.reused),
      [true, true],
    );
  });

  it('re-reads the CA file on reload: a renewed trust bundle is in force for the next connection', async () => {
    const refused = await get(m.port, '/reload/x');
    assert.equal(refused.headers['x-meridian-reason'], 'upstream_tls');
    copyFileSync(ca.cert, trustFile);
    const result = await m.meridian.reload(cfg);
    assert.equal(result.ok, true);
    const r = await get(m.port, '/reload/x');
    assert.equal(r.status, 200);
  });

  it('a reload naming a TLS file that cannot be read is refused, and the running config stays', async () => {
    const broken = clusters.map((c) => (c['name'] === 'right' ? { ...c, tls: { ...(c['tls'] as object), ca: join(p.dir, 'missing.pem') } } : c));
    const result = await m.meridian.reload(config(input(broken)));
    assert.equal(result.ok, false);
    assert.match(result.ok ? '' : result.errors.join('\n'), /cluster right: tls: cannot read ca file .*missing\.pem/);
    assert.equal((await get(m.port, '/right/x')).status, 200);
  });

  it('HTTP health checks speak TLS with the same settings: the right CA passes, a wrong one fails as tls', async () => {
    const verdict = async (name: string) => {
      const c = cfg.clusters.find((x) => x.name === name)!;
      const tls = ClusterTls.load(c, undefined);
      const check = config({ clusters: [{ ...clusters[0], health_check: { path: '/healthz' } }], listeners: [{ name: 'l', port: 0, routes: [{ cluster: 'right' }] }] }).clusters[0]!.health_check!;
      const checker = new ActiveHealthChecker({ endpoints: () => [], record: () => {} }, check, { tls: (a) => upstreamTlsOptions(tls, a) });
      const endpoint = { id: 'e', address: `127.0.0.1:${plain.port}`, host: '127.0.0.1', port: plain.port, weight: 1 };
      const r = await checker.probe(endpoint as never);
      return r.ok ? 'ok' : r.reason;
    };
    assert.equal(await verdict('right'), 'ok');
    assert.equal(await verdict('wrong-ca'), 'tls');
  });
});
