// HTTPS with SNI, HTTP/2 by ALPN and h2c, through a running Meridian to HTTP/1.1 backends.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { request as httpsRequest } from 'node:https';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import type { SampleBackend } from '../../src/backend/sample-backend.js';
import { certDir, type CertDir } from './certs.js';
import { backends, closeAll, config, get, raw, type Running, startMeridian } from './harness.js';

function h2get(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ...headers });
    let body = '';
    let status = 0;
    let h: Record<string, unknown> = {};
    stream.on('response', (hs) => {
      status = Number(hs[':status']);
      h = hs;
    });
    stream.on('data', (d: Buffer) => (body += d.toString()));
    stream.on('end', () => resolve({ status, body, headers: h }));
    stream.on('error', reject);
    stream.end();
  });
}

describe('https, SNI and HTTP/2 through meridian', () => {
  let certs: CertDir;
  let bs: SampleBackend[];
  let m: Running;
  let h2c: Running;
  before(async () => {
    certs = certDir();
    const a = certs.make('a.test');
    const b = certs.make('b.test');
    bs = await backends(2);
    const cluster = { name: 'c', endpoints: bs.map((x) => ({ address: `127.0.0.1:${x.port}`, id: x.name })) };
    m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'tls', protocol: 'https', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }], tls: { certificates: [a, b] } }],
        clusters: [cluster],
      }),
    );
    h2c = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'h2c', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }], http2: { enabled: true }, timeouts: { request_headers: '500ms' } }],
        clusters: [cluster],
      }),
    );
  });
  after(async () => {
    await closeAll(m, h2c, bs);
    certs.remove();
  });

  it('chooses the certificate by server name (SNI), the first one by default', async () => {
    const cn = (servername?: string) =>
      new Promise<string>((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port: m.port, rejectUnauthorized: false, ...(servername ? { servername } : {}), ALPNProtocols: ['http/1.1'] }, () => {
          const subject = s.getPeerCertificate().subject as unknown as { CN: string };
          s.end();
          resolve(subject.CN);
        });
        s.on('error', reject);
      });
    assert.equal(await cn('a.test'), 'a.test');
    assert.equal(await cn('b.test'), 'b.test');
    assert.equal(await cn('other.test'), 'a.test');
  });

  it('serves HTTP/2 clients (ALPN h2), forwarding to HTTP/1.1 backends with X-Forwarded-Proto https', async () => {
    const session = h2connect(`https://127.0.0.1:${m.port}`, { rejectUnauthorized: false, servername: 'b.test' });
    try {
      const names = new Set<string>();
      for (let i = 0; i < 4; i++) names.add((await h2get(session, '/')).body.trim());
      assert.deepEqual([...names].sort(), ['b0', 'b1']);
      const echo = await h2get(session, '/echo', { 'x-custom': 'yes' });
      const seen = (JSON.parse(echo.body) as { headers: Record<string, string> }).headers;
      assert.equal(seen['x-forwarded-proto'], 'https');
      assert.equal(seen['x-custom'], 'yes');
      assert.equal(seen['host'], `b.test:${m.port}`, 'the h2 :authority becomes Host');
      assert.ok(!Object.keys(seen).some((k) => k.startsWith(':')), 'no pseudo-headers upstream');
      const up = await new Promise<string>((resolve, reject) => {
        const s = session.request({ ':path': '/upload', ':method': 'POST' });
        let body = '';
        s.on('data', (d: Buffer) => (body += d.toString()));
        s.on('end', () => resolve(body));
        s.on('error', reject);
        s.end(Buffer.alloc(100_000, 1));
      });
      assert.deepEqual(JSON.parse(up), { bytes: 100_000 });
    } finally {
      session.close();
    }
  });

  it('serves HTTP/1.1 clients on the same TLS port', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: m.port, path: '/', rejectUnauthorized: false, servername: 'a.test' }, (res) => {
        let b = '';
        res.on('data', (d: Buffer) => (b += d.toString()));
        res.on('end', () => resolve(b));
      });
      req.on('error', reject);
      req.end();
    });
    assert.match(body, /^b[01]\n$/);
  });

  it('serves h2c (prior knowledge) where configured, and HTTP/1.1 on the same port', async () => {
    const session = h2connect(`http://127.0.0.1:${h2c.port}`);
    try {
      const r = await h2get(session, '/status/201');
      assert.equal(r.status, 201);
    } finally {
      session.close();
    }
    const h1 = await get(h2c.port, '/status/202', { agent: false });
    assert.equal(h1.status, 202);
    // HTTP/1.1 on that port keeps its framing checks: an ambiguous request is a 400.
    const smuggled = await raw(h2c.port, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    assert.match(smuggled, /^HTTP\/1\.1 400 /);
    // A client that connects and says nothing is cut at the request-header timeout.
    const silent = connect(h2c.port, '127.0.0.1');
    silent.on('error', () => {});
    await new Promise<void>((resolve) => silent.once('close', () => resolve()));
  });

  // Asynchronously: Meridian runs in this process, and a blocking spawn would starve it.
  it("answers Debian's nghttp and h2load", async (t) => {
    const run = promisify(execFile);
    let out: string;
    try {
      out = (await run('nghttp', ['-v', `https://127.0.0.1:${m.port}/`], { timeout: 10_000 })).stdout;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return t.skip('nghttp2-client is not installed (.ci/run installs it)');
      throw e;
    }
    assert.match(out, /:status: 200/);
    const load = (await run('h2load', ['-n', '200', '-c', '4', '-m', '10', `https://127.0.0.1:${m.port}/`], { timeout: 20_000 })).stdout;
    assert.match(load, /200 succeeded, 0 failed, 0 errored/);
  });
});
