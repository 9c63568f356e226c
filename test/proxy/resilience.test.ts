import assert from 'node:assert/strict';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { request } from 'node:http';
import { after, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { backends, closeAll, freePort, get, simpleConfig, startMeridian, until } from './harness.js';

describe('failures and retries', () => {
  const cleanup: { close(): Promise<void> }[] = [];
  after(() => closeAll(cleanup));

  it('retries a connect failure on another endpoint, for any method, taking neither budget nor max_retries', async () => {
    const bs = await backends(1);
    const dead = await freePort();
    const cfg = simpleConfig(bs, {
      policy: 'round_robin',
      // Nothing reached the upstream: these retries are first deliveries, outside both limits.
      retries: { budget: { percent: 0, min_per_second: 0 } },
      circuit_breaker: { max_retries: 0 },
      // Kept in the picks, so that every request finds it first (round robin: dead, b0, dead, b0...).
      connect_failure_ejection: { consecutive_failures: 0 },
      endpoints: [
        { address: `127.0.0.1:${dead}`, id: 'dead' },
        { address: `127.0.0.1:${bs[0]!.port}`, id: 'b0' },
      ],
    });
    const m = await startMeridian(cfg);
    cleanup.push(m, ...bs);
    for (let i = 0; i < 4; i++) {
      const r = await get(m.port, '/upload', { method: 'POST', body: 'x' });
      assert.equal(r.status, 200);
    }
    assert.deepEqual(m.records.map((r) => [r.endpoint, r.attempts]), Array(4).fill(['b0', 2]));
    const text = await m.meridian.metrics.metricsText();
    assert.match(text, /meridian_retries_total\{cluster="c",reason="connect_failure"\} 4/);
    assert.doesNotMatch(text, /meridian_retries_refused_total\{/);
  });

  it('takes an endpoint it cannot connect to out of the picks at its first connect failure (default config)', async () => {
    const bs = await backends(1);
    const dead = await freePort();
    const m = await startMeridian(
      simpleConfig(bs, {
        endpoints: [
          { address: `127.0.0.1:${dead}`, id: 'dead' },
          { address: `127.0.0.1:${bs[0]!.port}`, id: 'b0' },
        ],
      }),
    );
    cleanup.push(m, ...bs);
    for (let i = 0; i < 10; i++) assert.equal((await get(m.port)).status, 200);
    // Round robin picks dead first, once: then it is out for a second (base_ejection_time).
    assert.deepEqual(m.records.map((r) => r.attempts), [2, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    assert.equal(m.meridian.clusters()[0]!.endpoints.find((e) => e.id === 'dead')!.status, 'ejected');
    const text = await m.meridian.metrics.metricsText();
    assert.match(text, /meridian_ejections_total\{cluster="c",endpoint="dead",reason="connect_failure"\} 1/);
    assert.match(text, /meridian_health_transitions_total\{cluster="c",endpoint="dead",to="unhealthy",source="outlier"\} 1/);
  });

  it('counts every refused retry with its reason: not_replayable, attempts_exhausted, max_retries, budget', async () => {
    const bs = await backends(3);
    cleanup.push(...bs);
    // One request at a time against endpoints answering 503, which retry_on covers.
    const refusals = async (cluster: Record<string, unknown>, method = 'GET'): Promise<{ attempts: number; refused: string[] }> => {
      const m = await startMeridian(simpleConfig(bs, cluster));
      cleanup.push(m);
      const r = await get(m.port, '/status/503', method === 'GET' ? {} : { method, body: 'x' });
      assert.equal(r.status, 503);
      const text = await m.meridian.metrics.metricsText();
      const refused = [...text.matchAll(/^meridian_retries_refused_total\{cluster="c",reason="([a-z_]+)"\} (\d+)$/gm)].map((x) => `${x[1]} ${x[2]}`);
      return { attempts: m.records.at(-1)!.attempts, refused };
    };
    const open = { percent: 100, min_per_second: 0 };
    assert.deepEqual(await refusals({ retries: { attempts: 2, retry_on: [503], budget: open } }, 'POST'), { attempts: 1, refused: ['not_replayable 1'] });
    assert.deepEqual(await refusals({ retries: { attempts: 1, retry_on: [503], budget: open } }), { attempts: 2, refused: ['attempts_exhausted 1'] });
    assert.deepEqual(await refusals({ retries: { attempts: 2, retry_on: [503], budget: open }, circuit_breaker: { max_retries: 0 } }), { attempts: 1, refused: ['max_retries 1'] });
    // 20% of one active request is no retry, and no floor to fall back on.
    assert.deepEqual(await refusals({ retries: { attempts: 2, retry_on: [503], budget: { percent: 20, min_per_second: 0 } } }), { attempts: 1, refused: ['budget 1'] });
  });

  it('answers 502 when no endpoint can be reached, naming the reason', async () => {
    const dead = await freePort();
    const m = await startMeridian(simpleConfig([], { endpoints: [{ address: `127.0.0.1:${dead}` }], retries: { attempts: 0 } }));
    cleanup.push(m);
    const r = await get(m.port);
    assert.equal(r.status, 502);
    assert.equal(r.headers['x-meridian-reason'], 'connect_failure');
  });

  it('retries a reset GET but never a reset POST', async () => {
    const bs = await backends(3);
    const m = await startMeridian(simpleConfig(bs, { retries: { attempts: 2, retry_on: ['reset'], budget: { percent: 100, min_per_second: 100 } } }));
    cleanup.push(m, ...bs);
    const g = await get(m.port, '/reset');
    assert.equal(g.status, 502);
    assert.equal(g.headers['x-meridian-reason'], 'upstream_reset');
    assert.equal(m.records.at(-1)!.attempts, 3);
    const p = await get(m.port, '/reset', { method: 'POST', body: 'payload' });
    assert.equal(p.status, 502);
    assert.equal(m.records.at(-1)!.attempts, 1);
  });

  it('retries a configured status for idempotent requests, each retry on a different endpoint', async () => {
    const bs = await backends(3);
    const m = await startMeridian(simpleConfig(bs, { retries: { attempts: 2, retry_on: [503], budget: { percent: 100, min_per_second: 100 } } }));
    cleanup.push(m, ...bs);
    bs[0]!.setErrorRate(0);
    const before = bs.map((b) => b.requests);
    const r = await get(m.port, '/status/503');
    assert.equal(r.status, 503, 'the last try\'s answer is passed on');
    assert.equal(m.records.at(-1)!.attempts, 3);
    assert.deepEqual(bs.map((b, i) => b.requests - before[i]!), [1, 1, 1]);
  });

  it("a route's own retries replace its cluster's: a route retrying 503 on a cluster that retries none", async () => {
    const bs = await backends(2);
    const open = { budget: { percent: 100, min_per_second: 100 } };
    const routes = [{ match: { headers: [{ name: 'x-retry', exact: 'route' }] }, cluster: 'c', retries: { attempts: 1, retry_on: [503] } }, { cluster: 'c' }];
    const m = await startMeridian(simpleConfig(bs, { retries: { attempts: 1, retry_on: ['connect_failure'], ...open } }, { listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes }] }));
    cleanup.push(m, ...bs);
    assert.equal((await get(m.port, '/status/503', { headers: { 'x-retry': 'route' } })).status, 503);
    assert.equal(m.records.at(-1)!.attempts, 2);
    assert.equal((await get(m.port, '/status/503')).status, 503);
    assert.equal(m.records.at(-1)!.attempts, 1);
  });

  it('a backend dying mid-response cuts the client off without crashing; the next request works', async () => {
    const bs = await backends(2);
    const m = await startMeridian(simpleConfig(bs));
    cleanup.push(m, ...bs);
    await assert.rejects(get(m.port, '/reset-mid'));
    assert.equal(m.records.at(-1)!.reason, 'upstream_abort');
    assert.equal((await get(m.port)).status, 200);
    await until(() => m.meridian.inFlight === 0, 2000, 'in-flight to drain');
  });

  it('answers 504 when the request timeout passes, and frees the upstream request', async () => {
    const bs = await backends(1);
    const m = await startMeridian(simpleConfig(bs, { timeouts: { request: '150ms' } }));
    cleanup.push(m, ...bs);
    const r = await get(m.port, '/hang');
    assert.equal(r.status, 504);
    assert.equal(r.headers['x-meridian-reason'], 'timeout');
    await until(() => m.meridian.clusters()[0]!.endpoints[0]!.active === 0, 2000, 'upstream request to be freed');
  });

  it('per-try timeout moves a slow try to another endpoint', async () => {
    const bs = await backends(2);
    bs[0]!.setLatency('2s');
    const m = await startMeridian(
      simpleConfig(bs, { policy: 'round_robin', retries: { attempts: 1, retry_on: ['timeout'], per_try_timeout: '100ms', budget: { percent: 100, min_per_second: 100 } } }),
    );
    cleanup.push(m, ...bs);
    // Round robin starts at b0 (slow): its try times out and the retry lands on b1.
    const r = await get(m.port, '/');
    assert.equal(r.status, 200);
    assert.equal(r.body.trim(), 'b1');
    assert.equal(m.records.at(-1)!.attempts, 2);
  });

  it('survives the keep-alive race: a pooled connection closed by the backend as it is reused', async () => {
    // A raw backend that answers the first request on each connection with keep-alive,
    // then closes the connection as soon as the next request arrives on it, unanswered.
    let connections = 0;
    const racy: TcpServer = createTcpServer((socket) => {
      connections++;
      let served = 0;
      socket.on('data', () => {
        if (served++ === 0) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n');
        else socket.destroy();
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => racy.listen(0, '127.0.0.1', r));
    const port = (racy.address() as { port: number }).port;
    const m = await startMeridian(simpleConfig([], { endpoints: [{ address: `127.0.0.1:${port}` }], retries: { attempts: 0 } }));
    cleanup.push(m, { close: () => new Promise<void>((r) => racy.close(() => r())) });
    for (let i = 0; i < 20; i++) {
      const r = await get(m.port, '/');
      assert.equal(r.status, 200, `request ${i}: ${r.body}`);
    }
    assert.ok(connections >= 2, 'the race really happened (connections were reused and closed)');
    const text = await m.meridian.metrics.metricsText();
    assert.match(text, /meridian_retries_total\{cluster="c",reason="keepalive_race"\} [1-9]/);
  });

  it('default config: a GET reset before any answer, and again on its resend, is retried on another endpoint; a POST is not', async () => {
    // A backend that dies with every request it reads: each connection is reset unanswered.
    let connections = 0;
    const dies: TcpServer = createTcpServer((socket) => {
      connections++;
      socket.once('data', () => socket.resetAndDestroy());
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => dies.listen(0, '127.0.0.1', r));
    const port = (dies.address() as { port: number }).port;
    const bs = await backends(1);
    const m = await startMeridian(
      simpleConfig([], {
        policy: 'round_robin',
        endpoints: [
          { address: `127.0.0.1:${port}`, id: 'dies' },
          { address: `127.0.0.1:${bs[0]!.port}`, id: 'b0' },
        ],
      }),
    );
    cleanup.push(m, ...bs, { close: () => new Promise<void>((r) => dies.close(() => r())) });
    // Round robin: the GET finds `dies` (then its resend, on a connection of its own), its retry b0.
    const r = await get(m.port, '/');
    assert.equal(r.status, 200);
    assert.equal(r.body.trim(), 'b0');
    // The POST finds `dies` next: it may have reached the application, so it is not sent again.
    const post = await get(m.port, '/upload', { method: 'POST', body: 'x' });
    assert.equal(post.status, 502);
    assert.equal(post.headers['x-meridian-reason'], 'upstream_reset');
    assert.equal(connections, 3, 'the GET, its resend and the POST');
    assert.deepEqual(m.records.map((x) => [x.endpoint, x.status, x.attempts]), [
      ['b0', 200, 2],
      ['dies', 502, 1],
    ]);
    const text = await m.meridian.metrics.metricsText();
    assert.match(text, /meridian_retries_total\{cluster="c",reason="keepalive_race"\} 1\n/);
    assert.match(text, /meridian_retries_total\{cluster="c",reason="upstream_reset"\} 1\n/);
    assert.match(text, /meridian_retries_refused_total\{cluster="c",reason="not_replayable"\} 1\n/);
  });

  it('thousands of client aborts leave no request, socket, upstream connection or memory behind', async () => {
    const bs = await backends(2);
    const m = await startMeridian(simpleConfig(bs, { timeouts: { request: '30s' } }));
    cleanup.push(m, ...bs);
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const heap = () => {
      gc();
      return process.memoryUsage().heapUsed;
    };
    // Warm up first, so lazily built state (pools, metric series) is in the baseline.
    for (let i = 0; i < 50; i++) await get(m.port);
    const baseline = heap();
    const total = 2000;
    let aborted = 0;
    for (let batch = 0; batch < total / 200; batch++) {
      await Promise.all(
        Array.from(
          { length: 200 },
          () =>
            new Promise<void>((resolve) => {
              const req = request({ host: '127.0.0.1', port: m.port, path: batch % 2 ? '/hang' : '/bytes?n=5000000', agent: false });
              req.on('response', (res) => {
                res.once('data', () => req.destroy());
              });
              req.on('error', () => {
                aborted++;
                resolve();
              });
              req.on('close', () => resolve());
              // /hang never answers: abort once the request is surely on its way upstream.
              if (batch % 2) setTimeout(() => req.destroy(), 30);
              req.end();
            }),
        ),
      );
    }
    assert.ok(aborted > total / 4, `aborts happened (${aborted})`);
    await until(() => m.meridian.inFlight === 0, 5000, 'Meridian in-flight back to 0');
    await until(() => m.meridian.clusters()[0]!.endpoints.every((e) => e.active === 0), 5000, 'endpoint in-flight back to 0');
    const open = async () => (await Promise.all(bs.map((b) => new Promise<number>((r) => b.server.getConnections((_, n) => r(n)))))).reduce((a, b) => a + b, 0);
    // Aborted upstream requests are destroyed, not returned to the pool: only idle keep-alive survivors remain.
    await until(async () => (await open()) <= 64, 5000, 'upstream connections to close');
    const pools = m.meridian.clusters()[0]!.endpoints.map((e) => e.poolOpen - e.poolIdle);
    assert.deepEqual(pools, [0, 0], 'no pooled connection is still busy');
    // 2,000 leaked exchanges (request, response, sockets, buffers) would hold tens of MB.
    const grown = heap() - baseline;
    assert.ok(grown < 8 * 1024 * 1024, `heap grew by ${(grown / 1024 / 1024).toFixed(1)} MB`);
  });
});
