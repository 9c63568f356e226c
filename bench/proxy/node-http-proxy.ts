/**
 * The `node-http-proxy` target of the proxy benchmark: the `http-proxy` package as a
 * reverse proxy in one Node process, round robin over the backends, with one keep-alive
 * agent (`keepAlive: true, maxSockets: 64`) for the upstream connections. It is set up
 * for the same job as nginx and Meridian there (bench/proxy/configs.ts): Host kept,
 * X-Forwarded-For/-Proto/-Host added (`xfwd`), a request id sent upstream and returned.
 *
 *   node dist/bench/proxy/node-http-proxy.js --port P --backends 8001,8002
 *
 * It prints one line when it listens; any other output (an upstream error) is a problem
 * the benchmark counts.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';
import httpProxy from 'http-proxy';

const { values } = parseArgs({
  options: { port: { type: 'string' }, backends: { type: 'string' } },
  strict: true,
});
const port = Number(values.port);
const targets = (values.backends ?? '')
  .split(',')
  .filter((s) => s !== '')
  .map((p) => `http://127.0.0.1:${Number(p)}`);
if (!Number.isInteger(port) || port <= 0 || targets.length === 0) {
  process.stderr.write('usage: node-http-proxy.js --port P --backends P1,P2,...\n');
  process.exit(2);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const proxy = httpProxy.createProxyServer({ agent, xfwd: true });
let errors = 0;
proxy.on('error', (err, _req, res) => {
  if (errors++ < 20) process.stderr.write(`node-http-proxy: upstream error: ${err.message}\n`);
  if (res instanceof http.ServerResponse && !res.headersSent) {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end('bad gateway\n');
  } else {
    res.destroy();
  }
});

let next = 0;
const server = http.createServer((req, res) => {
  const id = randomUUID();
  req.headers['x-request-id'] = id;
  res.setHeader('x-request-id', id);
  const target = targets[next] as string;
  next = (next + 1) % targets.length;
  proxy.web(req, res, { target });
});
// As Meridian and the nginx config here: client connections stay open indefinitely.
server.keepAliveTimeout = 75_000;
server.listen(port, '127.0.0.1', () => process.stdout.write(`node-http-proxy listening on 127.0.0.1:${port}\n`));

const stop = (): void => {
  server.close();
  agent.destroy();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
