// TLS with SNI, HTTP/2 (h2 by ALPN, h2c), rapid-reset protection: real sockets on 127.0.0.1,
// certificates from openssl, real clients (node, nghttp, h2load).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as h2connect, constants as h2, type ClientHttp2Session, type Http2SecureServer, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { HttpListenerConfig } from '../../src/config/index.js';
import { createHttpServer, type AnyServerRequest, type AnyServerResponse, type ListenerServer, type ServerHandlers } from '../../src/proxy/http-server.js';
import { SniCertificates } from '../../src/proxy/tls.js';
import { certDir, type CertDir, type TestCert } from './certs.js';
import { config } from './harness.js';

const run = promisify(execFile);

function listener(protocol: 'http' | 'https', certs: TestCert[], extra: Record<string, unknown> = {}): HttpListenerConfig {
  const l = {
    name: 'web',
    address: '127.0.0.1',
    port: 0,
    protocol,
    routes: [{ cluster: 'c' }],
    ...(protocol === 'https' ? { tls: { certificates: certs.map((c) => ({ cert: c.cert, key: c.key })) } } : {}),
    ...extra,
  };
  const c = config({ admin: { port: 0 }, listeners: [l], clusters: [{ name: 'c', endpoints: [{ address: '127.0.0.1:1' }] }] });
  return c.listeners[0] as HttpListenerConfig;
}

/** Answers 200 with the protocol version, after `?delay=ms` if asked. */
const echo: ServerHandlers = {
  request(req: AnyServerRequest, res: AnyServerResponse) {
    const delay = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('delay') ?? 0);
    const answer = () => {
      if (res.destroyed) return;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`HTTP/${req.httpVersion}\n`);
    };
    if (delay > 0) setTimeout(answer, delay);
    else answer();
  },
  clientError(_err, socket) {
    socket.destroy();
  },
};

async function start(l: HttpListenerConfig, handlers: ServerHandlers, certs?: SniCertificates): Promise<ListenerServer & { port: number; stop(): Promise<void> }> {
  const s = createHttpServer(l, handlers, certs);
  await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
  const port = (s.server.address() as AddressInfo).port;
  return {
    ...s,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        s.closeAll();
        s.server.close(() => resolve());
      }),
  };
}

function peerCert(port: number, servername?: string): Promise<{ cn: string; fingerprint256: string; alpn: string | false | null }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['h2', 'http/1.1'], ...(servername ? { servername } : {}) }, () => {
      const c = socket.getPeerCertificate();
      resolve({ cn: String(c.subject.CN), fingerprint256: c.fingerprint256, alpn: socket.alpnProtocol });
      socket.end();
    });
    socket.on('error', reject);
  });
}

function fingerprint(certFile: string): string {
  return new X509Certificate(readFileSync(certFile)).fingerprint256;
}

function h2get(session: ClientHttp2Session, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const st = session.request({ ':path': path });
    let status = 0;
    let body = '';
    st.on('response', (h) => (status = Number(h[':status'])));
    st.setEncoding('utf8');
    st.on('data', (d: string) => (body += d));
    st.on('end', () => resolve({ status, body }));
    st.on('error', reject);
  });
}

function h2session(url: string, opts: Record<string, unknown> = {}): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = h2connect(url, { rejectUnauthorized: false, ...opts });
    // Ready once the server's SETTINGS arrived (they follow the connection preface).
    s.once('remoteSettings', () => resolve(s));
    s.once('error', reject);
  });
}

function closeSession(s: ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => (s.destroyed ? resolve() : s.close(() => resolve())));
}

describe('tls: SNI certificates', () => {
  let dir: CertDir;
  let a: TestCert;
  let b: TestCert;
  before(() => {
    dir = certDir();
    a = dir.make('a.test');
    b = dir.make('b.test');
  });
  after(() => dir.remove());

  it('picks the certificate by server name; unknown or absent names get the first', async () => {
    const certs = await SniCertificates.load([a, b]);
    const s = await start(listener('https', [a, b]), echo, certs);
    try {
      assert.equal((await peerCert(s.port, 'a.test')).cn, 'a.test');
      assert.equal((await peerCert(s.port, 'B.TEST')).cn, 'b.test');
      assert.equal((await peerCert(s.port, 'unknown.test')).cn, 'a.test');
      assert.equal((await peerCert(s.port)).cn, 'a.test');
      // ALPN still offers h2 after the SNI callback swapped the context.
      assert.equal((await peerCert(s.port, 'b.test')).alpn, 'h2');
    } finally {
      await s.stop();
    }
  });

  it('explicit server_names (exact and *.suffix) override the names in the certificate', () => {
    const certs = new SniCertificates([a, { ...b, server_names: ['*.example.com', 'exact.org'] }]);
    assert.equal(certs.secureContextFor('x.example.com'), certs.secureContextFor('exact.org'));
    assert.equal(certs.secureContextFor('a.b.example.com'), certs.secureContextFor('EXACT.org'));
    assert.equal(certs.secureContextFor('b.test'), certs.defaultContext, 'b.test is no longer one of its names');
    assert.equal(certs.secureContextFor('example.com'), certs.defaultContext);
  });

  it('takes the CN when the certificate has no subjectAltName', () => {
    const cnOnly = dir.make('cn-only.test', { san: false });
    const certs = new SniCertificates([a, cnOnly]);
    assert.notEqual(certs.secureContextFor('cn-only.test'), certs.defaultContext);
  });

  it('names the file when a certificate or key cannot be read or does not match', async () => {
    assert.throws(() => new SniCertificates([{ cert: `${dir.dir}/missing.crt`, key: a.key }]), /certificate file .*missing\.crt/);
    await assert.rejects(SniCertificates.load([{ cert: a.cert, key: `${dir.dir}/missing.key` }]), /key file .*missing\.key/);
    assert.throws(() => new SniCertificates([{ cert: a.cert, key: b.key }]), (e: Error) => e.message.includes(b.key) && /does not match/.test(e.message));
  });

  it('reload() serves replaced files; a broken file keeps the old certificates and names the file', async () => {
    const d = certDir();
    try {
      const ra = d.make('a.test');
      const rb = d.make('b.test');
      const certs = await SniCertificates.load([ra, rb]);
      const s = await start(listener('https', [ra, rb]), echo, certs);
      try {
        const oldA = fingerprint(ra.cert);
        assert.equal((await peerCert(s.port, 'a.test')).fingerprint256, oldA);
        d.make('a.test'); // new key pair, same files
        const newA = fingerprint(ra.cert);
        assert.notEqual(newA, oldA);
        await certs.reload();
        assert.equal((await peerCert(s.port, 'a.test')).fingerprint256, newA);
        assert.equal((await peerCert(s.port)).fingerprint256, newA, 'clients without SNI get the reloaded default');

        const oldB = fingerprint(rb.cert);
        writeFileSync(rb.cert, 'not a certificate');
        await assert.rejects(certs.reload(), (e: Error) => e.message.includes(rb.cert));
        assert.equal((await peerCert(s.port, 'b.test')).fingerprint256, oldB);
        assert.equal((await peerCert(s.port, 'a.test')).fingerprint256, newA);
      } finally {
        await s.stop();
      }
    } finally {
      d.remove();
    }
  });
});

describe('http2', () => {
  let dir: CertDir;
  let a: TestCert;
  let certs: SniCertificates;
  before(async () => {
    dir = certDir();
    a = dir.make('a.test');
    certs = await SniCertificates.load([a]);
  });
  after(() => dir.remove());

  it('one https listener answers h2 (ALPN) and HTTP/1.1 clients', async () => {
    const s = await start(listener('https', [a]), echo, certs);
    try {
      const session = await h2session(`https://127.0.0.1:${s.port}`, { servername: 'a.test' });
      assert.deepEqual(await h2get(session), { status: 200, body: 'HTTP/2.0\n' });
      await closeSession(session);
      const h1 = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port: s.port, path: '/', rejectUnauthorized: false, servername: 'a.test' }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
      assert.deepEqual(h1, { status: 200, body: 'HTTP/1.1\n' });
    } finally {
      await s.stop();
    }
  });

  it('https with http2.enabled false speaks HTTP/1.1 only', async () => {
    const s = await start(listener('https', [a], { http2: { enabled: false } }), echo, certs);
    try {
      assert.equal((await peerCert(s.port, 'a.test')).alpn, 'http/1.1');
    } finally {
      await s.stop();
    }
  });

  it('h2c: an http listener with http2 enabled answers prior-knowledge HTTP/2', async () => {
    const s = await start(listener('http', [], { http2: { enabled: true } }), echo);
    try {
      const session = await h2session(`http://127.0.0.1:${s.port}`);
      assert.deepEqual(await h2get(session), { status: 200, body: 'HTTP/2.0\n' });
      await closeSession(session);
    } finally {
      await s.stop();
    }
  });

  it('advertises max_concurrent_streams and max_header_list_bytes in its SETTINGS', async () => {
    const s = await start(listener('https', [a], { http2: { max_concurrent_streams: 7, max_header_list_bytes: 4096 } }), echo, certs);
    try {
      const session = await h2session(`https://127.0.0.1:${s.port}`);
      assert.equal(session.remoteSettings.maxConcurrentStreams, 7);
      assert.equal(session.remoteSettings.maxHeaderListSize, 4096);
      await closeSession(session);
    } finally {
      await s.stop();
    }
  });

  it('nghttp gets a 200 over h2', async () => {
    const s = await start(listener('https', [a]), echo, certs);
    try {
      const { stdout } = await run('nghttp', ['-v', `https://127.0.0.1:${s.port}/`], { timeout: 10_000 });
      assert.match(stdout, /:status: 200/);
      assert.match(stdout, /HTTP\/2\.0/);
    } finally {
      await s.stop();
    }
  });

  it('h2load: 200 requests over 4 connections, 10 streams each, all succeed', async () => {
    const s = await start(listener('https', [a]), echo, certs);
    try {
      const { stdout } = await run('h2load', ['-n', '200', '-c', '4', '-m', '10', `https://127.0.0.1:${s.port}/`], { timeout: 30_000 });
      const m = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(stdout);
      assert.ok(m, stdout);
      assert.deepEqual(m.slice(1, 6).map(Number), [200, 200, 200, 0, 0]);
      assert.match(stdout, /Application protocol: h2/);
    } finally {
      await s.stop();
    }
  });

  it('rapid reset: a client resetting streams past max_resets_per_second loses its session; others are served', async () => {
    const flagged: (string | undefined)[] = [];
    const s = await start(listener('https', [a], { http2: { max_resets_per_second: 50 } }), { ...echo, rapidReset: (addr) => flagged.push(addr) }, certs);
    try {
      const serverClosed = new Promise<number>((resolve) =>
        (s.protocol as Http2SecureServer).once('session', (session: ServerHttp2Session) => session.once('close', () => resolve(Date.now()))),
      );
      const attacker = await h2session(`https://127.0.0.1:${s.port}`);
      attacker.on('error', () => {});
      for (let i = 0; i < 500 && flagged.length === 0 && !attacker.destroyed && !attacker.closed; i++) {
        const st = attacker.request({ ':path': '/?delay=1000' });
        st.on('error', () => {});
        st.close(h2.NGHTTP2_CANCEL);
        if (i % 20 === 19) await new Promise((r) => setImmediate(r));
      }
      // The server closed the session (GOAWAY ENHANCE_YOUR_CALM, then the socket). Node's client,
      // with hundreds of frames still queued, can be slow to notice; that is the client's business.
      await serverClosed;
      assert.deepEqual(flagged, ['127.0.0.1']);
      attacker.destroy();

      const good = await h2session(`https://127.0.0.1:${s.port}`);
      assert.deepEqual(await h2get(good), { status: 200, body: 'HTTP/2.0\n' });
      await closeSession(good);
    } finally {
      await s.stop();
    }
  });

  it('a few cancelled streams are fine: the session stays open', async () => {
    const s = await start(listener('https', [a]), echo, certs);
    try {
      const session = await h2session(`https://127.0.0.1:${s.port}`);
      for (let i = 0; i < 20; i++) session.request({ ':path': '/?delay=1000' }).on('error', () => {}).close(h2.NGHTTP2_CANCEL);
      assert.deepEqual(await h2get(session), { status: 200, body: 'HTTP/2.0\n' });
      assert.equal(session.destroyed, false);
      await closeSession(session);
    } finally {
      await s.stop();
    }
  });

  it('goaway() lets streams in flight finish and refuses new ones', async () => {
    const s = await start(listener('https', [a]), echo, certs);
    try {
      const session = await h2session(`https://127.0.0.1:${s.port}`);
      session.on('error', () => {});
      const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
      const inFlight = h2get(session, '/?delay=200');
      await new Promise((r) => setTimeout(r, 50));
      s.goaway();
      assert.equal(await goaway, h2.NGHTTP2_NO_ERROR);
      assert.deepEqual(await inFlight, { status: 200, body: 'HTTP/2.0\n' });
      await new Promise<void>((resolve) => (session.destroyed ? resolve() : session.once('close', () => resolve())));
    } finally {
      await s.stop();
    }
  });
});
