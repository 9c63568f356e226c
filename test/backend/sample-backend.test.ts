// The sample backend over real sockets on 127.0.0.1, and the `meridian backend` command.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { formatLatency, parseLatency, sampleLatencyMs, startSampleBackend } from '../../src/backend/sample-backend.js';
import { parseBackendArgs, runBackend } from '../../src/cli/backend.js';
import { SeededRng } from '../../src/core/rng.js';

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly trailers: NodeJS.Dict<string>;
}

/** One request on a fresh connection (agent: false), the whole body read. */
function request(url: string, opts: { method?: string; body?: Buffer | string; agent?: http.Agent } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), trailers: res.trailers }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Like request() but only counts body bytes, for large bodies. */
function countBytes(url: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; bytes: number }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes }));
      })
      .on('error', reject);
  });
}

async function waitFor(cond: () => boolean, what: string, deadlineMs = 5000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('sample backend routes', async () => {
  const b = await startSampleBackend({ name: 'b1' });
  after(() => b.close());

  it('answers its name on any other path, with x-backend, and counts requests (health checks excluded)', async () => {
    const before = b.requests;
    const r = await request(`${b.url}/anything/at/all?x=1`);
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'b1\n');
    assert.equal(r.headers['x-backend'], 'b1');
    assert.match(r.headers['content-type'] ?? '', /^text\/plain/);
    await request(`${b.url}/healthz`);
    assert.equal(b.requests, before + 1);
  });

  it('drains a request body before answering on the default route', async () => {
    const r = await request(`${b.url}/`, { method: 'POST', body: Buffer.alloc(200_000, 1) });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'b1\n');
  });

  it('HEAD gets the headers without a body', async () => {
    const r = await request(`${b.url}/`, { method: 'HEAD' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], '3');
    assert.equal(r.body.length, 0);
  });

  it('health path: 200 ok, 503 after setHealthy(false), ?delay= still answers', async () => {
    try {
      const ok = await request(`${b.url}/healthz`);
      assert.equal(ok.status, 200);
      assert.equal(ok.body.toString(), 'ok');
      assert.equal(ok.headers['x-backend'], 'b1');
      b.setHealthy(false);
      assert.equal((await request(`${b.url}/healthz`)).status, 503);
      assert.equal((await request(`${b.url}/healthz?delay=20`)).status, 503);
      b.setHealthy(true);
      assert.equal((await request(`${b.url}/healthz?delay=20`)).status, 200);
    } finally {
      b.setHealthy(true);
    }
  });

  it('/echo reports method, url, headers and the body size', async () => {
    const r = await request(`${b.url}/echo?q=1`, { method: 'PUT', body: Buffer.alloc(12345) });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json');
    const echo = JSON.parse(r.body.toString()) as { name: string; method: string; url: string; headers: Record<string, string>; bodyBytes: number };
    assert.equal(echo.name, 'b1');
    assert.equal(echo.method, 'PUT');
    assert.equal(echo.url, '/echo?q=1');
    assert.equal(echo.headers['content-length'], '12345');
    assert.equal(echo.bodyBytes, 12345);
  });

  it('/status/NNN answers that status; 204 and 304 without a body; out of range is 400', async () => {
    const teapot = await request(`${b.url}/status/418`);
    assert.equal(teapot.status, 418);
    assert.equal(teapot.body.toString(), 'b1 418\n');
    for (const code of [204, 304]) {
      const r = await request(`${b.url}/status/${code}`);
      assert.equal(r.status, code);
      assert.equal(r.body.length, 0);
      assert.equal(r.headers['x-backend'], 'b1');
    }
    const head = await request(`${b.url}/status/503`, { method: 'HEAD' });
    assert.equal(head.status, 503);
    assert.equal(head.body.length, 0);
    assert.equal((await request(`${b.url}/status/999`)).status, 400);
  });

  it('/slow?ms=N answers 200', async () => {
    const r = await request(`${b.url}/slow?ms=20`);
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'b1\n');
  });

  it('/bytes streams N bytes with content-length, or chunked with &chunked=1', async () => {
    const n = 5 * 1024 * 1024 + 7;
    const sized = await countBytes(`${b.url}/bytes?n=${n}`);
    assert.equal(sized.status, 200);
    assert.equal(sized.headers['content-length'], String(n));
    assert.equal(sized.bytes, n);
    const chunked = await countBytes(`${b.url}/bytes?n=${n}&chunked=1`);
    assert.equal(chunked.headers['content-length'], undefined);
    assert.equal(chunked.headers['transfer-encoding'], 'chunked');
    assert.equal(chunked.bytes, n);
    const empty = await countBytes(`${b.url}/bytes?n=0`);
    assert.equal(empty.bytes, 0);
  });

  it('/bytes waits for a slow reader (drain) instead of queueing the whole body', async () => {
    const sockets = new Set<net.Socket>();
    const track = (s: net.Socket): void => void sockets.add(s);
    b.server.on('connection', track);
    const req = http.get(`${b.url}/bytes?n=${64 * 1024 * 1024}`, { agent: false });
    req.on('error', () => {});
    try {
      const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
      res.pause();
      // Let the server fill the socket buffers: it must then wait, not queue 64 MB in memory.
      await new Promise((r) => setTimeout(r, 100));
      const queued = [...sockets].reduce((sum, s) => sum + s.writableLength, 0);
      assert.ok(queued < 1024 * 1024, `server queued ${queued} bytes for a paused reader`);
    } finally {
      b.server.off('connection', track);
      req.destroy();
    }
  });

  it('/upload counts the request body', async () => {
    const r = await request(`${b.url}/upload`, { method: 'POST', body: Buffer.alloc(3 * 1024 * 1024) });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body.toString()), { bytes: 3 * 1024 * 1024 });
  });

  it('/trailers sends a chunked body with an x-checksum trailer', async () => {
    const r = await request(`${b.url}/trailers`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.trailer, 'x-checksum');
    assert.equal(r.body.toString(), 'hello\n');
    assert.equal(r.trailers['x-checksum'], 'abc123');
  });

  it('/reset-mid sends headers and part of the body, then the client sees an error', async () => {
    let status = 0;
    let received = 0;
    const err = await new Promise<Error>((resolve) => {
      http
        .get(`${b.url}/reset-mid`, { agent: false }, (res) => {
          status = res.statusCode ?? 0;
          res.on('data', (c: Buffer) => (received += c.length));
          res.on('error', resolve);
          res.on('end', () => resolve(new Error('unexpected end')));
        })
        .on('error', resolve);
    });
    assert.equal(status, 200);
    assert.ok(received < 1000);
    assert.notEqual(err.message, 'unexpected end');
  });

  it('/reset destroys the connection without an answer', async () => {
    await assert.rejects(request(`${b.url}/reset`), (e: NodeJS.ErrnoException) => e.code === 'ECONNRESET');
  });

  it('counts TCP connections: two requests over one keep-alive connection count once', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const before = b.connections;
      await request(`${b.url}/`, { agent });
      await request(`${b.url}/`, { agent });
      assert.equal(b.connections, before + 1);
    } finally {
      agent.destroy();
    }
  });
});

describe('sample backend behaviour', () => {
  it('/hang never answers, and close() ends the hanging connection', async () => {
    const b = await startSampleBackend({ name: 'hang' });
    const pending = request(`${b.url}/hang`);
    await waitFor(() => b.requests === 1, 'the request to arrive');
    await b.close();
    await assert.rejects(pending);
    await b.close(); // idempotent
  });

  it('error rate 1.0 answers 500 "<name> error"; setErrorRate changes it; out of range throws', async () => {
    const b = await startSampleBackend({ name: 'err', errorRate: 1 });
    try {
      const r = await request(`${b.url}/`);
      assert.equal(r.status, 500);
      assert.equal(r.body.toString(), 'err error\n');
      assert.equal(r.headers['x-backend'], 'err');
      assert.equal((await request(`${b.url}/healthz`)).status, 200, 'health checks are not subject to errors');
      b.setErrorRate(0);
      assert.equal((await request(`${b.url}/`)).status, 200);
      assert.throws(() => b.setErrorRate(1.5), /error rate 1\.5/);
    } finally {
      await b.close();
    }
  });

  it('the same seed gives the same sequence of errors', async () => {
    const run = async (): Promise<number[]> => {
      const b = await startSampleBackend({ name: 'seeded', errorRate: 0.5, seed: 7 });
      try {
        const statuses: number[] = [];
        for (let i = 0; i < 20; i++) statuses.push((await request(`${b.url}/`)).status);
        return statuses;
      } finally {
        await b.close();
      }
    };
    const first = await run();
    assert.deepEqual(await run(), first);
    assert.ok(first.includes(200) && first.includes(500));
  });

  it('injected latency still answers, and setLatency accepts specs and rejects bad ones', async () => {
    const b = await startSampleBackend({ name: 'lat', latency: '5ms', healthPath: '/ready' });
    try {
      assert.equal((await request(`${b.url}/`)).status, 200);
      b.setLatency('exp:2ms');
      assert.equal((await request(`${b.url}/`)).status, 200);
      b.setLatency({ kind: 'none' });
      assert.throws(() => b.setLatency('slow'), /bad latency spec "slow"/);
      assert.equal((await request(`${b.url}/ready`)).body.toString(), 'ok');
    } finally {
      await b.close();
    }
  });

  it('rejects a bad name or health path, and a port already in use (EADDRINUSE)', async () => {
    await assert.rejects(startSampleBackend({ name: 'has space' }), /bad backend name/);
    await assert.rejects(startSampleBackend({ name: 'x', healthPath: 'healthz' }), /bad health path/);
    await assert.rejects(startSampleBackend({ name: 'x', latency: '10' }), /bad latency spec "10"/);
    const b = await startSampleBackend({ name: 'taken' });
    try {
      await assert.rejects(startSampleBackend({ name: 'other', port: b.port }), (e: NodeJS.ErrnoException) => e.code === 'EADDRINUSE');
    } finally {
      await b.close();
    }
  });
});

describe('latency specs', () => {
  it('parses constant, exp, lognormal and none', () => {
    assert.deepEqual(parseLatency('10ms'), { kind: 'constant', ms: 10 });
    assert.deepEqual(parseLatency('1.5s'), { kind: 'constant', ms: 1500 });
    assert.deepEqual(parseLatency('exp:10ms'), { kind: 'exp', meanMs: 10 });
    assert.deepEqual(parseLatency('lognormal:10ms,1.0'), { kind: 'lognormal', meanMs: 10, sigma: 1 });
    assert.deepEqual(parseLatency('lognormal:2s,0.25'), { kind: 'lognormal', meanMs: 2000, sigma: 0.25 });
    for (const none of ['0', '', '0ms', 'exp:0s']) assert.deepEqual(parseLatency(none), { kind: 'none' }, none);
    for (const s of ['10ms', 'exp:10ms', 'lognormal:10ms,1.5', '0']) assert.equal(formatLatency(parseLatency(s)), s);
  });

  it('rejects anything else with an error naming the spec', () => {
    for (const bad of ['10', 'fast', 'exp:', 'exp:10', 'uniform:10ms', 'lognormal:10ms', 'lognormal:10ms,', 'lognormal:10ms,-1', '-5ms', '10ms ', 'exp:0.5ms']) {
      assert.throws(() => parseLatency(bad), (e: Error) => e.message.includes(JSON.stringify(bad)) && e.message.includes('exp:10ms'), bad);
    }
  });

  it('samples with the requested mean (100,000 seeded draws, 3% tolerance)', () => {
    // Means of 100,000 draws: exp's sd is the mean, so the estimate's sd is 0.3% of it;
    // lognormal(sigma 1) has sd = mean x sqrt(e - 1) = 1.31 mean, so 0.4%. 3% is > 7 sd.
    const rng = new SeededRng(3);
    const mean = (spec: Parameters<typeof sampleLatencyMs>[0]): number => {
      let sum = 0;
      for (let i = 0; i < 100_000; i++) sum += sampleLatencyMs(spec, rng);
      return sum / 100_000;
    };
    assert.equal(sampleLatencyMs({ kind: 'constant', ms: 7 }, rng), 7);
    assert.equal(sampleLatencyMs({ kind: 'none' }, rng), 0);
    assert.ok(Math.abs(mean(parseLatency('exp:10ms')) / 10 - 1) < 0.03);
    assert.ok(Math.abs(mean(parseLatency('lognormal:10ms,1.0')) / 10 - 1) < 0.03);
  });
});

describe('meridian backend (runBackend)', () => {
  const capture = () => {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { stdout: (s: string) => out.push(s), stderr: (s: string) => err.push(s) } };
  };

  it('bad options exit 2 with a message naming the option and the usage line', async () => {
    const cases: [string[], RegExp][] = [
      [[], /--port is required/],
      [['--port', 'abc'], /--port must be an integer in 0\.\.65535, got 'abc'/],
      [['--port', '70000'], /--port must be an integer/],
      [['--port', '0', '--latency', 'fast'], /--latency: bad latency spec "fast"/],
      [['--port', '0', '--error-rate', '2'], /--error-rate must be a number from 0 to 1, got '2'/],
      [['--port', '0', '--error-rate', 'lots'], /--error-rate/],
      [['--port', '0', '--health-path', 'healthz'], /--health-path must start with \//],
      [['--port', '0', '--seed', '-1'], /--seed/],
      [['--port', '0', '--name', 'two words'], /--name must be printable ASCII/],
      [['--port', '0', '--frob'], /--frob/],
      [['--port', '0', 'extra'], /extra/],
      [['--port'], /--port/],
    ];
    for (const [argv, message] of cases) {
      const c = capture();
      assert.equal(await runBackend(argv, c.io), 2, argv.join(' '));
      assert.equal(c.out.length, 0);
      assert.match(c.err.join('\n'), message, argv.join(' '));
      assert.match(c.err.join('\n'), /usage: meridian backend --port P/);
    }
  });

  it('parses every option', () => {
    assert.deepEqual(
      parseBackendArgs(['--port', '8081', '--host', '::1', '--name', 'eu-1', '--latency', 'exp:10ms', '--error-rate', '0.01', '--health-path', '/ready', '--seed', '9', '--concurrency', '4']),
      { port: 8081, host: '::1', name: 'eu-1', latency: { kind: 'exp', meanMs: 10 }, errorRate: 0.01, healthPath: '/ready', seed: 9, concurrency: 4 },
    );
    assert.deepEqual(parseBackendArgs(['--port', '0']), {
      port: 0,
      host: '127.0.0.1',
      name: 'backend-0',
      latency: { kind: 'none' },
      errorRate: 0,
      healthPath: '/healthz',
      seed: undefined,
      concurrency: undefined,
    });
    assert.equal(parseBackendArgs(['--help']), 'help');
  });

  it('concurrency: requests beyond the workers wait their turn, and one whose client left gives up its place', async () => {
    const b = await startSampleBackend({ name: 'busy', latency: '60s', concurrency: 1 });
    after(() => b.close());
    const sockets: net.Socket[] = [];
    const hold = () =>
      new Promise<void>((resolve) => {
        const req = http.request(b.url, { agent: false });
        req.on('socket', (s) => {
          sockets.push(s);
          resolve();
        });
        req.on('error', () => {});
        req.end();
      });
    await hold();
    await hold();
    await hold();
    await waitFor(() => b.requests === 3 && b.queued === 2, 'two requests queued behind the one worker');
    (sockets[2] as net.Socket).destroy();
    await waitFor(() => b.queued === 1, 'the request whose client left to give up its place');
    // Health checks are not default-route requests: answered at once, whatever the queue.
    assert.equal((await request(`${b.url}/healthz`)).status, 200);
  });

  it('--help prints the usage and exits 0', async () => {
    const c = capture();
    assert.equal(await runBackend(['--help'], c.io), 0);
    assert.match(c.out.join('\n'), /--error-rate R/);
  });

  it('a port in use exits 2 naming the port', async () => {
    const b = await startSampleBackend({ name: 'taken' });
    try {
      const c = capture();
      assert.equal(await runBackend(['--port', String(b.port)], c.io), 2);
      assert.match(c.err.join('\n'), new RegExp(`port ${b.port} is already in use`));
    } finally {
      await b.close();
    }
  });

  it('serves until stopped, printing one line', async () => {
    const c = capture();
    const stop = new AbortController();
    const done = runBackend(['--port', '0', '--name', 'cli-1'], c.io, stop.signal);
    await waitFor(() => c.out.length > 0, 'the listening line');
    const m = /^backend cli-1 listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(c.out[0] ?? '');
    assert.ok(m, c.out[0]);
    assert.equal((await request(`${m[1]}/`)).body.toString(), 'cli-1\n');
    stop.abort();
    assert.equal(await done, 0);
    await assert.rejects(request(`${m[1]}/`), (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED');
    assert.equal(c.out.length, 1);
  });

  it('exits 0 on SIGTERM (a child process)', async () => {
    const modulePath = fileURLToPath(new URL('../../src/cli/backend.js', import.meta.url));
    const script =
      `const { runBackend } = await import(${JSON.stringify(modulePath)});` +
      `process.exitCode = await runBackend(['--port', '0', '--name', 'child'], { stdout: (s) => console.log(s), stderr: (s) => console.error(s) });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => stdout.includes('\n'), 'the child to listen');
      const url = /listening on (\S+)/.exec(stdout)?.[1] ?? '';
      assert.equal((await request(`${url}/`)).body.toString(), 'child\n');
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
