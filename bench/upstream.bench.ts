/**
 * The cost of TLS to backends, and gRPC through Meridian, as ratios measured in one run.
 *
 *   npm run bench:upstream
 *   node dist/bench/upstream.bench.js --runs 5 --duration 5s --connections 32
 *
 * Three processes: the backends (HTTP/1.1 plaintext, HTTPS, HTTPS closing every connection,
 * a @grpc/grpc-js server), Meridian (one listener for HTTP/1.1 and h2c, one cluster per
 * backend), and this one, the load: keep-alive HTTP/1.1 clients (undici), and a grpc-js
 * unary loop. Targets are loaded in turn, round after round, so machine noise spreads over
 * all of them; each reports the median of its runs:
 *
 * - plaintext, tls (Meridian's pooled connections to the backend are TLS: handshakes are
 *   paid once per pooled connection), tls-per-request (the backend closes every connection,
 *   so each request pays a handshake, resumed from the previous session);
 * - grpc-direct (grpc-js straight at the backend) and grpc-via-meridian;
 * - handshakes: this process opening TLS connections to the HTTPS backend as fast as it
 *   can, full handshakes, and resumed ones (the previous session offered).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { Pool } from 'undici';
import { validateConfig } from '../src/config/index.js';
import { Meridian } from '../src/node/meridian.js';
import { median } from './stats.js';

const SELF = fileURLToPath(import.meta.url);
const raw = (b: Buffer) => b;
const UNARY = { path: '/bench.Echo/Unary', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw };

interface Ports {
  plain: number;
  tls: number;
  tlsClose: number;
  grpc: number;
}

/** Role `backends`: the four servers; their ports go to the parent. */
async function backends(certDir: string): Promise<void> {
  const key = readFileSync(join(certDir, 'b.key'));
  const cert = readFileSync(join(certDir, 'b.crt'));
  const listen = (s: { listen(port: number, host: string, cb: () => void): unknown; address(): unknown }) =>
    new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as { port: number }).port)));
  const ok = (_req: unknown, res: import('node:http').ServerResponse) => res.end('ok\n');
  const plain = await listen(createHttpServer({ keepAliveTimeout: 60_000 }, ok));
  const tls = await listen(Object.assign(createHttpsServer({ key, cert }, ok), { keepAliveTimeout: 60_000 }));
  const tlsClose = await listen(
    createHttpsServer({ key, cert }, (_req, res) => {
      res.setHeader('connection', 'close');
      res.end('ok\n');
    }),
  );
  const server = new grpc.Server();
  server.addService({ unary: UNARY }, { unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request) });
  const grpcPort = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  process.send?.({ plain, tls, tlsClose, grpc: grpcPort } satisfies Ports);
}

/** Role `meridian`: one listener (HTTP/1.1 and h2c), a cluster per backend. */
async function meridian(certDir: string, ports: Ports): Promise<void> {
  const tls = { ca: join(certDir, 'ca.crt'), server_name: 'backend.bench' };
  const cluster = (name: string, port: number, extra: Record<string, unknown> = {}) => ({ name, endpoints: [{ address: `127.0.0.1:${port}` }], ...extra });
  const r = validateConfig({
    admin: { port: 0 },
    access_log: { enabled: false },
    listeners: [
      {
        name: 'bench',
        address: '127.0.0.1',
        port: 0,
        http2: { enabled: true },
        routes: ['plain', 'tls', 'tls-close', 'grpc'].map((c) => ({ match: { path: { prefix: c === 'grpc' ? '/bench.Echo/' : `/${c}/` } }, cluster: c })),
      },
    ],
    clusters: [
      cluster('plain', ports.plain),
      cluster('tls', ports.tls, { tls }),
      cluster('tls-close', ports.tlsClose, { tls }),
      cluster('grpc', ports.grpc, { upstream_protocol: 'h2' }),
    ],
  });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  const m = new Meridian(r.config, { logger: pino({ level: 'silent' }) });
  await m.start();
  process.send?.({ port: Object.values(m.ports())[0] });
}

function child(role: string, certDir: string, ports?: Ports): Promise<{ proc: ChildProcess; msg: Record<string, number> }> {
  const proc = fork(SELF, [], { env: { ...process.env, BENCH_ROLE: role, BENCH_CERTS: certDir, BENCH_PORTS: JSON.stringify(ports ?? {}) }, stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    proc.once('message', (msg) => resolve({ proc, msg: msg as Record<string, number> }));
    proc.once('exit', (code) => reject(new Error(`${role} exited with ${code}`)));
  });
}

/** Keep-alive HTTP/1.1 load: `connections` requests in flight for `ms`; requests per second. */
async function httpLoad(port: number, path: string, connections: number, ms: number): Promise<number> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections, pipelining: 1 });
  let done = 0;
  const end = performance.now() + ms;
  const loop = async () => {
    while (performance.now() < end) {
      const r = await pool.request({ path, method: 'GET' });
      await r.body.text();
      if (r.statusCode !== 200) throw new Error(`${path}: status ${r.statusCode}`);
      done++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, loop));
  const rate = done / ((performance.now() - started) / 1000);
  await pool.close();
  return rate;
}

/** A grpc-js unary loop with `concurrency` calls in flight for `ms`; calls per second. */
async function grpcLoad(port: number, concurrency: number, ms: number): Promise<number> {
  const Client = grpc.makeGenericClientConstructor({ unary: UNARY }, 'Echo');
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const payload = Buffer.from('ping');
  let done = 0;
  const end = performance.now() + ms;
  const call = () =>
    new Promise<void>((resolve, reject) => client.makeUnaryRequest(UNARY.path, raw, raw, payload, (e) => (e ? reject(e) : resolve())));
  const loop = async () => {
    while (performance.now() < end) {
      await call();
      done++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, loop));
  const rate = done / ((performance.now() - started) / 1000);
  client.close();
  return rate;
}

/** TLS handshakes per second from this process to `port`, one at a time: full, or resumed from the previous session. */
async function handshakes(port: number, ca: Buffer, resume: boolean, ms: number): Promise<number> {
  let session: Buffer | undefined;
  let done = 0;
  let resumed = 0;
  const end = performance.now() + ms;
  const started = performance.now();
  while (performance.now() < end) {
    await new Promise<void>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'backend.bench', ...(resume && session ? { session } : {}) });
      s.once('session', (x: Buffer) => (session = x));
      s.once('secureConnect', () => {
        if (s.isSessionReused()) resumed++;
        // TLS 1.3 sends its session ticket after the handshake: wait for the first one, then reuse it.
        if (!resume || session !== undefined) return s.end();
        s.once('session', () => s.end());
      });
      s.once('close', () => resolve());
      s.once('error', reject);
    });
    done++;
  }
  if (resume && resumed < done - 1) throw new Error(`only ${resumed} of ${done} handshakes resumed`);
  return done / ((performance.now() - started) / 1000);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '3' }, duration: { type: 'string', default: '3s' }, connections: { type: 'string', default: '16' }, json: { type: 'boolean', default: false } },
  });
  const runs = Number(values.runs);
  const ms = Number(/^(\d+)s$/.exec(values.duration)?.[1] ?? 3) * 1000;
  const connections = Number(values.connections);
  const certDir = mkdtempSync(join(tmpdir(), 'meridian-bench-'));
  const procs: ChildProcess[] = [];
  try {
    const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: certDir, stdio: 'pipe' });
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=bench-ca']);
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'b.key', '-out', 'b.csr', '-subj', '/CN=backend.bench', '-addext', 'subjectAltName=DNS:backend.bench']);
    openssl(['x509', '-req', '-in', 'b.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-copy_extensions', 'copy', '-out', 'b.crt']);
    const b = await child('backends', certDir);
    procs.push(b.proc);
    const ports = b.msg as unknown as Ports;
    const m = await child('meridian', certDir, ports);
    procs.push(m.proc);
    const port = m.msg['port'] as number;
    const ca = readFileSync(join(certDir, 'ca.crt'));
    const targets: Record<string, () => Promise<number>> = {
      plaintext: () => httpLoad(port, '/plain/', connections, ms),
      tls: () => httpLoad(port, '/tls/', connections, ms),
      'tls-per-request': () => httpLoad(port, '/tls-close/', connections, ms),
      'grpc-direct': () => grpcLoad(ports.grpc, connections, ms),
      'grpc-via-meridian': () => grpcLoad(port, connections, ms),
      'handshakes-full': () => handshakes(ports.tls, ca, false, ms),
      'handshakes-resumed': () => handshakes(ports.tls, ca, true, ms),
    };
    const samples: Record<string, number[]> = Object.fromEntries(Object.keys(targets).map((k) => [k, []]));
    for (const run of Object.values(targets)) await run(); // warm-up: JIT, pools, sessions
    for (let r = 0; r < runs; r++) for (const [name, run] of Object.entries(targets)) samples[name]?.push(await run());
    const med = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
    const ratio = (a: string, b: string) => (med[a] as number) / (med[b] as number);
    const ratios = {
      'tls / plaintext': ratio('tls', 'plaintext'),
      'tls-per-request / plaintext': ratio('tls-per-request', 'plaintext'),
      'grpc-via-meridian / grpc-direct': ratio('grpc-via-meridian', 'grpc-direct'),
      'handshakes-resumed / handshakes-full': ratio('handshakes-resumed', 'handshakes-full'),
    };
    if (values.json) {
      console.log(JSON.stringify({ runs, durationMs: ms, connections, medians: med, ratios }));
      return;
    }
    console.log(`medians of ${runs} interleaved runs of ${ms / 1000} s, ${connections} connections (shared machine: compare ratios)`);
    for (const [k, v] of Object.entries(med)) console.log(`  ${k.padEnd(22)} ${v.toFixed(0).padStart(8)} /s`);
    for (const [k, v] of Object.entries(ratios)) console.log(`  ${k.padEnd(38)} ${v.toFixed(2)}`);
  } finally {
    for (const p of procs) p.kill();
    rmSync(certDir, { recursive: true, force: true });
  }
}

const role = process.env['BENCH_ROLE'];
const certs = process.env['BENCH_CERTS'] ?? '';
if (role === 'backends') await backends(certs);
else if (role === 'meridian') await meridian(certs, JSON.parse(process.env['BENCH_PORTS'] ?? '{}') as Ports);
else await main();
