// The admin server over real sockets on 127.0.0.1, with a real ProxyMetrics and a fake
// AdminTarget that records what it was asked to do.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import parse from 'parse-prometheus-text-format';
import { ProxyMetrics } from '../../src/admin/metrics.js';
import { createAdminServer, MAX_BODY_BYTES, type AdminLogger } from '../../src/admin/server.js';
import type { AdminTarget, ChangeResult, ClusterState, ReloadResult } from '../../src/admin/types.js';
import { endpoint } from './fixtures.js';

const TOKEN = 's3cret-token';

/** A target with two clusters; endpoint ids with ':' '.', '[]' and '/' to exercise decoding. */
class FakeTarget implements AdminTarget {
  isReady = true;
  reloadResult: ReloadResult | Error = { ok: true, summary: '1 listener, 2 clusters, 3 endpoints' };
  clustersError: Error | undefined;
  readonly calls: unknown[][] = [];
  readonly state: ClusterState[] = [
    { name: 'api', policy: 'round_robin', inPanic: false, endpoints: [endpoint('10.0.0.1:8080', { active: 2 }), endpoint('[::1]:8080')] },
    { name: 'db.primary', policy: 'maglev', inPanic: true, endpoints: [endpoint('pg/1', { status: 'unhealthy' })] },
  ];

  clusters(): ClusterState[] {
    if (this.clustersError) throw this.clustersError;
    return this.state;
  }
  ready(): boolean {
    return this.isReady;
  }
  drain(cluster: string, id: string, draining: boolean): ChangeResult {
    this.calls.push(['drain', cluster, id, draining]);
    return this.#find(cluster, id);
  }
  setWeight(cluster: string, id: string, weight: number | null): ChangeResult {
    this.calls.push(['setWeight', cluster, id, weight]);
    return this.#find(cluster, id);
  }
  async reload(): Promise<ReloadResult> {
    this.calls.push(['reload']);
    if (this.reloadResult instanceof Error) throw this.reloadResult;
    return this.reloadResult;
  }
  #find(cluster: string, id: string): ChangeResult {
    const c = this.state.find((x) => x.name === cluster);
    if (!c) return 'no_cluster';
    return c.endpoints.some((e) => e.id === id) ? 'ok' : 'no_endpoint';
  }
}

interface Logged {
  readonly level: 'info' | 'warn';
  readonly obj: Record<string, unknown>;
  readonly msg: string | undefined;
}

/** A server on an ephemeral port, closed when the test ends; token: TOKEN unless given (even as undefined). */
async function start(t: TestContext, opts: { token?: string; allowedHosts?: string[]; address?: string } = { token: TOKEN }) {
  const { token } = opts;
  const target = new FakeTarget();
  const metrics = new ProxyMetrics({ defaultMetrics: false });
  metrics.setSource(() => target.clusters());
  const logs: Logged[] = [];
  const logger: AdminLogger = {
    info: (obj, msg) => logs.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
    warn: (obj, msg) => logs.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
  };
  const bind = opts.address ?? '127.0.0.1';
  const admin = createAdminServer({ target, metrics, token, address: bind, port: 0, logger, ...(opts.allowedHosts ? { allowedHosts: opts.allowedHosts } : {}) });
  const { port, address } = await admin.listen();
  t.after(() => admin.close());
  assert.equal(address, bind);
  return { admin, target, metrics, logs, port };
}

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly json: Record<string, unknown>;
}

function request(
  port: number,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer; chunked?: boolean } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...opts.headers };
    if (opts.body !== undefined && !opts.chunked) headers['content-length'] = Buffer.byteLength(opts.body);
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const isJson = res.headers['content-type'] === 'application/json';
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: isJson ? (JSON.parse(body) as Record<string, unknown>) : {} });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

const auth = { authorization: `Bearer ${TOKEN}` };
const post = (port: number, path: string, body?: string, headers: Record<string, string> = auth): Promise<Reply> =>
  request(port, 'POST', path, body === undefined ? { headers } : { headers, body });

function assertJsonError(r: Reply, status: number, pattern: RegExp): void {
  assert.equal(r.status, status, r.body);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(typeof r.json.error, 'string', r.body);
  assert.match(r.json.error as string, pattern);
}

describe('admin server: GET /api/region (what a region reports to the global layer)', () => {
  it("reports the healthy share of the region's own endpoints and its load; 503 when none is healthy", async (t) => {
    const { port, target } = await start(t);
    target.state[0] = {
      ...(target.state[0] as ClusterState),
      loadRps: 12.345,
      endpoints: [
        endpoint('a', { status: 'healthy' }),
        endpoint('b', { status: 'slow_start' }),
        endpoint('c', { status: 'ejected' }),
        endpoint('d', { status: 'draining' }),
        endpoint('peer-lb', { status: 'healthy', remote: true }),
      ],
    };
    const api = await request(port, 'GET', '/api/region?cluster=api');
    assert.equal(api.status, 200);
    // a and b of a, b, c: the drained one and the other region's load balancer do not count.
    assert.deepEqual(api.json, { healthy: 2, total: 3, healthy_fraction: 2 / 3, load_rps: 12.35 });
    const db = await request(port, 'GET', '/api/region?cluster=db.primary');
    assert.equal(db.status, 503);
    assert.deepEqual(db.json, { healthy: 0, total: 1, healthy_fraction: 0, load_rps: 0 });
    const both = await request(port, 'GET', '/api/region');
    assert.deepEqual([both.status, both.json.healthy, both.json.total], [200, 2, 4]);
    assertJsonError(await request(port, 'GET', '/api/region?cluster=api,nope'), 404, /no cluster "nope"/);
    target.isReady = false;
    assert.equal((await request(port, 'GET', '/api/region?cluster=api')).status, 503, 'a draining Meridian is not a region to send users to');
  });
});

describe('admin server: the global layer', () => {
  it('without `global:` in the config, its routes say so with a 404', async (t) => {
    const { port } = await start(t);
    assertJsonError(await request(port, 'GET', '/api/global'), 404, /no global layer/);
    assertJsonError(await post(port, '/api/global/regions/us-east', '{"override":"down"}'), 404, /no global layer/);
    assertJsonError(await post(port, '/api/global/regions/us-east', '{"override":"down"}', {}), 401, /missing bearer token/);
  });
});

describe('admin server: probes and metrics', () => {
  it('GET /healthz is 200 ok', async (t) => {
    const { port } = await start(t);
    const r = await request(port, 'GET', '/healthz');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
    assert.match(r.headers['content-type'] ?? '', /^text\/plain/);
    assert.equal(r.headers['cache-control'], 'no-store');
  });

  it('GET /readyz follows target.ready(): 200 ready, 503 not ready, and back', async (t) => {
    const { port, target } = await start(t);
    assert.deepEqual([(await request(port, 'GET', '/readyz')).status, (await request(port, 'GET', '/readyz')).body], [200, 'ready']);
    target.isReady = false;
    const r = await request(port, 'GET', '/readyz');
    assert.deepEqual([r.status, r.body], [503, 'not ready']);
    target.isReady = true;
    assert.equal((await request(port, 'GET', '/readyz')).status, 200);
  });

  it('GET /metrics is the Prometheus text of the metrics, with state from the source', async (t) => {
    const { port, metrics } = await start(t);
    metrics.observeRequest({ listener: 'web', cluster: 'api', endpoint: '10.0.0.1:8080', code: 200 }, 0.01);
    const r = await request(port, 'GET', '/metrics');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], metrics.contentType);
    const families = parse(r.body);
    const requests = families.find((f) => f.name === 'meridian_requests_total');
    assert.equal(requests?.metrics[0]?.value, '1');
    const inFlight = families.find((f) => f.name === 'meridian_endpoint_in_flight');
    assert.equal(inFlight?.metrics.find((s) => s.labels?.endpoint === '10.0.0.1:8080')?.value, '2');
    const panic = families.find((f) => f.name === 'meridian_cluster_panic');
    assert.equal(panic?.metrics.find((s) => s.labels?.cluster === 'db.primary')?.value, '1');
  });

  it('HEAD is answered where GET is, without a body', async (t) => {
    const { port } = await start(t);
    const r = await request(port, 'HEAD', '/metrics');
    assert.equal(r.status, 200);
    assert.equal(r.body, '');
  });

  it('a failing metrics source is a 500, and the server carries on', async (t) => {
    const { port, target } = await start(t);
    target.clustersError = new Error('state unavailable');
    const r = await request(port, 'GET', '/metrics');
    assert.equal(r.status, 500);
    assert.match(r.body, /metrics collection failed: state unavailable/);
    target.clustersError = undefined;
    assert.equal((await request(port, 'GET', '/metrics')).status, 200);
  });
});

describe('admin server: GET /api/clusters', () => {
  it('is 200 JSON { clusters } as the target reports them', async (t) => {
    const { port, target } = await start(t);
    const r = await request(port, 'GET', '/api/clusters');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.deepEqual(r.json, { clusters: target.state });
  });

  it('needs no token (reads are open) and ignores a query string', async (t) => {
    const { port } = await start(t, {});
    assert.equal((await request(port, 'GET', '/api/clusters?pretty=1')).status, 200);
  });

  it('a target that throws is a 500 JSON error, logged, and the server carries on', async (t) => {
    const { port, target, logs } = await start(t);
    target.clustersError = new Error('boom');
    assertJsonError(await request(port, 'GET', '/api/clusters'), 500, /internal error: boom/);
    assert.ok(logs.some((l) => l.level === 'warn' && l.obj.admin === 'error' && /boom/.test(l.obj.err as string)));
    target.clustersError = undefined;
    assert.equal((await request(port, 'GET', '/api/clusters')).status, 200);
  });
});

describe('admin server: the bearer token', () => {
  const DRAIN = '/api/clusters/api/endpoints/10.0.0.1:8080/drain';

  it('with no token configured, state-changing calls are refused with 403 saying how to set one', async (t) => {
    for (const token of [undefined, '']) {
      const { port, target } = await start(t, { token });
      for (const path of [DRAIN, '/api/clusters/api/endpoints/10.0.0.1:8080/weight', '/api/reload']) {
        const r = await post(port, path, '{"weight":2}');
        assertJsonError(r, 403, /admin\.token.*MERIDIAN_ADMIN_TOKEN/);
      }
      assert.deepEqual(target.calls, []);
    }
  });

  it('a missing, malformed or wrong token is 401 with WWW-Authenticate: Bearer, and changes nothing', async (t) => {
    const { port, target, logs } = await start(t);
    const missing = await post(port, DRAIN, undefined, {});
    assertJsonError(missing, 401, /missing bearer token/);
    assert.match(missing.headers['www-authenticate'] ?? '', /^Bearer /);
    for (const authorization of [`Basic ${TOKEN}`, `Bearer`, `${TOKEN}`]) {
      const r = await post(port, DRAIN, undefined, { authorization });
      assertJsonError(r, 401, /missing bearer token/);
    }
    // Wrong tokens of the same length, shorter, longer.
    for (const wrong of ['s3cret-tokeN', 's3cret', `${TOKEN}x`, `x${TOKEN}`]) {
      const r = await post(port, DRAIN, undefined, { authorization: `Bearer ${wrong}` });
      assertJsonError(r, 401, /invalid bearer token/);
      assert.match(r.headers['www-authenticate'] ?? '', /^Bearer .*error="invalid_token"/);
    }
    assert.deepEqual(target.calls, []);
    assert.ok(logs.filter((l) => l.level === 'warn' && l.obj.admin === 'unauthorized').length >= 8);
    assert.ok(logs.every((l) => !JSON.stringify(l).includes(TOKEN)), 'the token must never be logged');
  });

  it('the right token is accepted, the scheme in any case', async (t) => {
    const { port, target } = await start(t);
    assert.equal((await post(port, DRAIN, undefined, { authorization: `bearer ${TOKEN}` })).status, 200);
    assert.equal((await post(port, DRAIN)).status, 200);
    assert.equal(target.calls.length, 2);
  });
});

describe('admin server: drain', () => {
  it('drains by default, undrains with {"draining": false}, and says what it did', async (t) => {
    const { port, target, logs } = await start(t);
    const r = await post(port, '/api/clusters/api/endpoints/10.0.0.1:8080/drain');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.deepEqual(r.json, { ok: true, cluster: 'api', endpoint: '10.0.0.1:8080', draining: true });
    const u = await post(port, '/api/clusters/api/endpoints/10.0.0.1:8080/drain', '{"draining": false}');
    assert.deepEqual(u.json, { ok: true, cluster: 'api', endpoint: '10.0.0.1:8080', draining: false });
    assert.equal((await post(port, '/api/clusters/api/endpoints/10.0.0.1:8080/drain', '{"draining": true}')).status, 200);
    assert.deepEqual(target.calls, [
      ['drain', 'api', '10.0.0.1:8080', true],
      ['drain', 'api', '10.0.0.1:8080', false],
      ['drain', 'api', '10.0.0.1:8080', true],
    ]);
    // Who and what, for every change.
    const changes = logs.filter((l) => l.level === 'info');
    assert.equal(changes.length, 3);
    assert.deepEqual(
      changes.map((l) => [l.obj.cluster, l.obj.endpoint, l.obj.draining]),
      [
        ['api', '10.0.0.1:8080', true],
        ['api', '10.0.0.1:8080', false],
        ['api', '10.0.0.1:8080', true],
      ],
    );
    assert.match(changes[0]?.obj.remote as string, /^127\.0\.0\.1:\d+$/);
  });

  it('URL-decodes cluster and endpoint ids (IPv6 brackets, colons, dots, an encoded slash)', async (t) => {
    const { port, target } = await start(t);
    assert.equal((await post(port, `/api/clusters/api/endpoints/${encodeURIComponent('[::1]:8080')}/drain`)).status, 200);
    assert.equal((await post(port, '/api/clusters/db.primary/endpoints/pg%2F1/drain')).status, 200);
    assert.deepEqual(target.calls, [
      ['drain', 'api', '[::1]:8080', true],
      ['drain', 'db.primary', 'pg/1', true],
    ]);
  });

  it('an unknown cluster or endpoint is 404 JSON naming it', async (t) => {
    const { port } = await start(t);
    assertJsonError(await post(port, '/api/clusters/nope/endpoints/10.0.0.1:8080/drain'), 404, /no cluster "nope"/);
    assertJsonError(await post(port, '/api/clusters/api/endpoints/10.9.9.9:1/drain'), 404, /cluster "api" has no endpoint "10\.9\.9\.9:1"/);
  });

  it('a bad body is 400 naming the field, and changes nothing', async (t) => {
    const { port, target } = await start(t);
    const path = '/api/clusters/api/endpoints/10.0.0.1:8080/drain';
    const cases: [string, RegExp, string][] = [
      ['{"draining": "no"}', /^draining: expected true or false, got "no"/, 'draining'],
      ['{"drainig": false}', /^drainig: unknown field \(expected "draining"\)/, 'drainig'],
      ['{"draining": fals', /^body: not valid JSON/, 'body'],
      ['[true]', /^body: expected a JSON object/, 'body'],
    ];
    for (const [body, pattern, field] of cases) {
      const r = await post(port, path, body);
      assertJsonError(r, 400, pattern);
      assert.equal(r.json.field, field);
    }
    assert.deepEqual(target.calls, []);
  });
});

describe('admin server: weight', () => {
  const path = '/api/clusters/api/endpoints/10.0.0.1:8080/weight';

  it('sets an integer weight, and null restores the configured one', async (t) => {
    const { port, target, logs } = await start(t);
    const r = await post(port, path, '{"weight": 3}');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { ok: true, cluster: 'api', endpoint: '10.0.0.1:8080', weight: 3 });
    assert.equal((await post(port, path, '{"weight": 10000}')).status, 200);
    const n = await post(port, path, '{"weight": null}');
    assert.deepEqual(n.json, { ok: true, cluster: 'api', endpoint: '10.0.0.1:8080', weight: null });
    assert.deepEqual(target.calls, [
      ['setWeight', 'api', '10.0.0.1:8080', 3],
      ['setWeight', 'api', '10.0.0.1:8080', 10000],
      ['setWeight', 'api', '10.0.0.1:8080', null],
    ]);
    assert.deepEqual(
      logs.filter((l) => l.level === 'info').map((l) => l.obj.weight),
      [3, 10000, null],
    );
  });

  it('refuses anything but an integer 1-10000 or null with 400 naming weight', async (t) => {
    const { port, target } = await start(t);
    for (const body of ['{"weight": 0}', '{"weight": -1}', '{"weight": 10001}', '{"weight": 2.5}', '{"weight": "3"}', '{"weight": true}', '{"weight": {}}']) {
      const r = await post(port, path, body);
      assertJsonError(r, 400, /^weight: expected an integer 1-10000, or null/);
      assert.equal(r.json.field, 'weight', body);
    }
    for (const body of [undefined, '{}']) {
      const r = await post(port, path, body);
      assertJsonError(r, 400, /^weight: required/);
      assert.equal(r.json.field, 'weight');
    }
    const typo = await post(port, path, '{"wieght": 3}');
    assertJsonError(typo, 400, /^wieght: unknown field/);
    assert.deepEqual(target.calls, []);
  });

  it('an unknown endpoint is 404', async (t) => {
    const { port } = await start(t);
    assertJsonError(await post(port, '/api/clusters/api/endpoints/x/weight', '{"weight": 2}'), 404, /has no endpoint "x"/);
  });
});

describe('admin server: reload', () => {
  it('200 { ok, summary } when the new config took effect', async (t) => {
    const { port, target, logs } = await start(t);
    const r = await post(port, '/api/reload');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { ok: true, summary: '1 listener, 2 clusters, 3 endpoints' });
    assert.deepEqual(target.calls, [['reload']]);
    assert.ok(logs.some((l) => l.level === 'info' && l.obj.admin === 'reload'));
  });

  it('422 { ok: false, errors } when the config is refused', async (t) => {
    const { port, target, logs } = await start(t);
    const errors = ['clusters[0].policy: expected one of ...', 'listeners[0].port: required'];
    target.reloadResult = { ok: false, errors };
    const r = await post(port, '/api/reload', '{}');
    assert.equal(r.status, 422);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.deepEqual(r.json, { ok: false, errors });
    assert.ok(logs.some((l) => l.level === 'warn' && l.obj.admin === 'reload'));
  });

  it('a reload that throws is a 500 JSON error, and the server carries on', async (t) => {
    const { port, target } = await start(t);
    target.reloadResult = new Error('disk on fire');
    assertJsonError(await post(port, '/api/reload'), 500, /disk on fire/);
    target.reloadResult = { ok: true, summary: 'fine' };
    assert.equal((await post(port, '/api/reload')).status, 200);
  });

  it('takes no fields', async (t) => {
    const { port, target } = await start(t);
    assertJsonError(await post(port, '/api/reload', '{"force": true}'), 400, /^force: unknown field \(this call takes no fields\)/);
    assert.deepEqual(target.calls, []);
  });
});

describe('admin server: errors', () => {
  it('an unknown path is 404: JSON under /api/, text elsewhere', async (t) => {
    const { port } = await start(t);
    const api = await request(port, 'GET', '/api/nope');
    assertJsonError(api, 404, /no such admin endpoint: GET \/api\/nope/);
    const other = await request(port, 'GET', '/nope');
    assert.equal(other.status, 404);
    assert.match(other.headers['content-type'] ?? '', /^text\/plain/);
    assert.equal((await request(port, 'GET', '/')).status, 404);
    assert.equal((await request(port, 'GET', '/metrics/extra')).status, 404);
    assertJsonError(await post(port, '/api/clusters/api/endpoints/10.0.0.1:8080'), 404, /no such admin endpoint/);
  });

  it('a wrong method on a known path is 405 with Allow', async (t) => {
    const { port, target } = await start(t);
    const m = await request(port, 'POST', '/metrics', { headers: auth });
    assert.equal(m.status, 405);
    assert.equal(m.headers.allow, 'GET, HEAD');
    const reload = await request(port, 'GET', '/api/reload');
    assertJsonError(reload, 405, /GET is not allowed on \/api\/reload/);
    assert.equal(reload.headers.allow, 'POST');
    const del = await request(port, 'DELETE', '/api/clusters', { headers: auth });
    assertJsonError(del, 405, /DELETE/);
    assert.equal(del.headers.allow, 'GET, HEAD');
    const drain = await request(port, 'PUT', '/api/clusters/api/endpoints/x/drain', { headers: auth });
    assert.equal(drain.status, 405);
    assert.equal(drain.headers.allow, 'POST');
    assert.deepEqual(target.calls, []);
  });

  it('malformed percent-encoding is 400', async (t) => {
    const { port } = await start(t);
    assertJsonError(await post(port, '/api/clusters/%E0%A4%A/endpoints/x/drain'), 400, /malformed percent-encoding/);
  });

  it(`a body over ${MAX_BODY_BYTES} bytes is 413, declared or streamed, and the connection answers`, async (t) => {
    const { port, target } = await start(t);
    const big = `{"weight": 3, "pad": "${'x'.repeat(MAX_BODY_BYTES)}"}`;
    const path = '/api/clusters/api/endpoints/10.0.0.1:8080/weight';
    assertJsonError(await post(port, path, big), 413, /larger than 65536 bytes/);
    assertJsonError(await request(port, 'POST', path, { headers: auth, body: big, chunked: true }), 413, /larger than 65536 bytes/);
    // Exactly at the cap is read (and then refused for its content, not its size).
    const atCap = `{"weight": 3, "pad": "${'x'.repeat(MAX_BODY_BYTES - 24)}"}`;
    assert.equal(Buffer.byteLength(atCap), MAX_BODY_BYTES);
    assertJsonError(await post(port, path, atCap), 400, /^pad: unknown field/);
    assert.deepEqual(target.calls, []);
  });

  it('a body declared larger than the cap is refused before it is sent', async (t) => {
    const { port } = await start(t);
    // Headers only: the 413 comes back without waiting for (or reading) a byte of body.
    const reply = await new Promise<string>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.write(`POST /api/reload HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 10000000\r\n\r\n`);
      });
      let data = '';
      s.on('data', (c: Buffer) => {
        data += c.toString('latin1');
        if (data.includes('\r\n\r\n') && data.includes('}')) {
          s.destroy();
          resolve(data);
        }
      });
      s.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 413 /);
    assert.match(reply, /larger than 65536 bytes/);
  });
});

describe('admin server: lifecycle', () => {
  it('listen() on a taken port rejects naming the address', async (t) => {
    const { port } = await start(t);
    const again = createAdminServer({ target: new FakeTarget(), metrics: new ProxyMetrics({ defaultMetrics: false }), address: '127.0.0.1', port });
    await assert.rejects(again.listen(), new RegExp(`admin: cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`));
    await again.close();
  });

  it('close() stops listening and closes kept-alive connections', async () => {
    const admin = createAdminServer({ target: new FakeTarget(), metrics: new ProxyMetrics({ defaultMetrics: false }), address: '127.0.0.1', port: 0 });
    const { port } = await admin.listen();
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/healthz', agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      }).on('error', reject);
    });
    await admin.close();
    agent.destroy();
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s));
        s.on('error', reject);
      }),
      { code: 'ECONNREFUSED' },
    );
  });
});

/** One raw HTTP/1.x request to `address`:`port`, exactly as written; the whole answer as text. */
function rawRequest(port: number, text: string, address = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, address);
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    s.on('error', reject);
    s.end(text);
  });
}

const statusOf = (reply: string): number => Number(/^HTTP\/1\.[01] (\d{3}) /.exec(reply)?.[1]);

describe('admin server: Host (DNS-rebinding protection)', () => {
  it('answers nothing, reads included, to a Host that is not its address, localhost or an allowed name: 403', async (t) => {
    const { port, target } = await start(t);
    for (const path of ['/api/clusters', '/metrics', '/healthz', '/readyz', '/api/global', '/nope']) {
      for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.1.evil.example:${port}`, `localhost.evil.example:${port}`, '10.1.2.3', 'bad host', 'a/b@c']) {
        const reply = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
        assert.equal(statusOf(reply), 403, `${path} with Host ${host}: ${reply}`);
        assert.doesNotMatch(reply, /10\.0\.0\.1|meridian_/, 'nothing of the state leaks');
      }
    }
    const api = await request(port, 'GET', '/api/clusters', { headers: { host: `evil.example:${port}` } });
    assertJsonError(api, 403, /^Host "evil\.example:\d+" is not allowed: .*admin\.allowed_hosts \(DNS-rebinding protection\)$/);
    // Writes too, even with the right token: the reload never reaches the target.
    const write = await request(port, 'POST', '/api/reload', { headers: { ...auth, host: `evil.example:${port}` } });
    assertJsonError(write, 403, /is not allowed/);
    const drain = await request(port, 'POST', '/api/clusters/api/endpoints/10.0.0.1%3A8080/drain', { headers: { ...auth, host: 'evil.example' } });
    assert.equal(drain.status, 403);
    assert.deepEqual(target.calls, []);
  });

  it('answers its own address, localhost and loopback IPs on loopback (any port), and no Host at all on HTTP/1.0', async (t) => {
    const { port } = await start(t);
    for (const host of [`127.0.0.1:${port}`, '127.0.0.1', `localhost:${port}`, 'LOCALHOST:8080', 'localhost.', `[::1]:${port}`, '127.0.0.2']) {
      const reply = await rawRequest(port, `GET /api/clusters HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      assert.equal(statusOf(reply), 200, `Host ${host}: ${reply}`);
    }
    assert.equal(statusOf(await rawRequest(port, 'GET /metrics HTTP/1.0\r\n\r\n')), 200);
    // A write with an allowed Host still needs the token, and with it takes effect.
    assert.equal((await request(port, 'POST', '/api/reload', { headers: { ...auth, host: `localhost:${port}` } })).status, 200);
  });

  it('answers the names and patterns of allowed_hosts, and only those', async (t) => {
    const { port } = await start(t, { token: TOKEN, allowedHosts: ['admin.corp.example', '*.ops.example', '192.0.2.10'] });
    for (const [host, status] of [
      [`admin.corp.example:${port}`, 200],
      ['Admin.Corp.Example', 200],
      [`lb1.ops.example:${port}`, 200],
      ['a.b.ops.example', 200],
      ['192.0.2.10:9901', 200],
      ['ops.example', 403],
      ['corp.example', 403],
      ['admin.corp.example.evil', 403],
    ] as const) {
      const reply = await rawRequest(port, `GET /metrics HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      assert.equal(statusOf(reply), status, `Host ${host}`);
    }
  });

  it('checks against the address a connection arrived on: bound to 127.0.0.2, Host 127.0.0.2 is its own', async (t) => {
    const { port } = await start(t, { token: TOKEN, address: '127.0.0.2' });
    assert.equal(statusOf(await rawRequest(port, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.2:${port}\r\nConnection: close\r\n\r\n`, '127.0.0.2')), 200);
    assert.equal(statusOf(await rawRequest(port, `GET /healthz HTTP/1.1\r\nHost: 192.0.2.1:${port}\r\nConnection: close\r\n\r\n`, '127.0.0.2')), 403);
  });

  it('refuses two Host headers with 400, whichever comes first', async (t) => {
    const { port } = await start(t);
    for (const hosts of [['localhost', 'evil.example'], ['evil.example', 'localhost']]) {
      const reply = await rawRequest(port, `GET /api/clusters HTTP/1.1\r\nHost: ${hosts[0]}\r\nHost: ${hosts[1]}\r\nConnection: close\r\n\r\n`);
      assert.equal(statusOf(reply), 400, reply);
    }
  });
});
