/**
 * The `undici-proxy` target of the proxy benchmark: the leanest Node reverse proxy this
 * project knows how to write — node:http downstream, one undici `Pool` per backend and its
 * `dispatch` API upstream, round robin — doing the same job as the other targets (Host kept,
 * X-Forwarded-For/-Proto/-Host, a request id sent upstream and returned, hop-by-hop
 * headers dropped). No routing, limits, health checks, metrics or retries: it is the
 * ceiling of an undici-based Node proxy on this machine, the peer Meridian's own per-
 * request work is measured against.
 *
 *   node dist/bench/proxy/undici-proxy.js --port P --backends 8001,8002
 *
 * It prints one line when it listens; any other output (an upstream error) is a problem
 * the benchmark counts.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { Pool, type Dispatcher } from 'undici';

const { values } = parseArgs({ options: { port: { type: 'string' }, backends: { type: 'string' } }, strict: true });
const port = Number(values.port);
const pools = (values.backends ?? '')
  .split(',')
  .filter((s) => s !== '')
  .map((p) => new Pool(`http://127.0.0.1:${Number(p)}`, { connections: 64, pipelining: 1, keepAliveTimeout: 4000 }));
if (!Number.isInteger(port) || port <= 0 || pools.length === 0) {
  process.stderr.write('usage: undici-proxy.js --port P --backends P1,P2,...\n');
  process.exit(2);
}

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
let next = 0;
let errors = 0;

const server = http.createServer((req, res) => {
  const id = randomUUID();
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = v;
  const peer = req.socket.remoteAddress ?? '';
  const xff = req.headers['x-forwarded-for'];
  headers['x-forwarded-for'] = xff === undefined ? peer : `${String(xff)}, ${peer}`;
  headers['x-forwarded-proto'] = 'http';
  if (req.headers.host !== undefined) headers['x-forwarded-host'] = req.headers.host;
  headers['x-request-id'] = id;
  const pool = pools[next] as Pool;
  next = (next + 1) % pools.length;
  pool.dispatch(
    { path: req.url ?? '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers, body: req.method === 'GET' || req.method === 'HEAD' ? null : req },
    {
      onConnect() {},
      onHeaders(status: number, raw: Buffer[], _resume: () => void, statusText: string) {
        const out: string[] = [];
        for (let i = 0; i + 1 < raw.length; i += 2) {
          const name = (raw[i] as Buffer).toString('latin1');
          if (!HOP.has(name.toLowerCase())) out.push(name, (raw[i + 1] as Buffer).toString('latin1'));
        }
        out.push('x-request-id', id);
        res.writeHead(status, statusText, out);
        return true;
      },
      onData(chunk: Buffer) {
        return res.write(chunk);
      },
      onComplete() {
        res.end();
      },
      onError(err: Error) {
        if (errors++ < 20) process.stderr.write(`undici-proxy: upstream error: ${err.message}\n`);
        if (!res.headersSent) {
          res.writeHead(502, { 'content-type': 'text/plain' });
          res.end('bad gateway\n');
        } else {
          res.destroy();
        }
      },
    } as unknown as Dispatcher.DispatchHandler,
  );
});
// As Meridian and the nginx config here: client connections stay open indefinitely.
server.keepAliveTimeout = 75_000;
server.listen(port, '127.0.0.1', () => process.stdout.write(`undici-proxy listening on 127.0.0.1:${port}\n`));

const stop = (): void => {
  server.close();
  for (const p of pools) void p.destroy();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
