// Hedged requests in the proxy, over real sockets (docs/overload.md "Hedging"): a second
// try after the route's `hedge.after`, the first head wins, the loser's connection closed.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { closeAll, config, get, startMeridian, until, type Running } from './harness.js';

interface Arrival {
  readonly server: string;
  readonly url: string;
  readonly res: ServerResponse;
  readonly socket: Socket;
  body: string;
  closed: boolean;
}

/**
 * Two backends (`a`, `b`) sharing what they saw, by request path:
 * - `/marker...`: answered at once with the backend's name;
 * - `/race...`: a request id's first arrival is held (the test ends it), any later one
 *   (the hedge) answered at once with the backend's name;
 * - `/slow...`: the first arrival answered after 50 ms, a later one at once;
 * - `/hold...`: every arrival held;
 * - `/fail...`: the first arrival held, a later one's connection destroyed.
 */
async function pair(): Promise<{ ports: Record<string, number>; arrivals: Arrival[]; close(): Promise<void> }> {
  const arrivals: Arrival[] = [];
  const byId = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  const servers: Server[] = [];
  const ports: Record<string, number> = {};
  for (const name of ['a', 'b']) {
    const act = (a: Arrival, n: number): void => {
      const { url, res, socket } = a;
      if (url.startsWith('/hold')) return;
      if (url.startsWith('/fail')) return void (n > 1 && socket.destroy());
      if (url.startsWith('/slow') && n === 1) {
        const t = setTimeout(() => {
          timers.delete(t);
          res.end(name);
        }, 50);
        timers.add(t);
        return;
      }
      if (n > 1 || !url.startsWith('/race')) res.end(name);
    };
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const url = req.url ?? '';
      if (url.startsWith('/marker')) return void res.end(name);
      const a: Arrival = { server: name, url, res, socket: req.socket, body: '', closed: false };
      arrivals.push(a);
      req.socket.once('close', () => (a.closed = true));
      const id = String(req.headers['x-request-id']);
      const n = (byId.get(id) ?? 0) + 1;
      byId.set(id, n);
      req.setEncoding('utf8');
      req.on('data', (c: string) => (a.body += c));
      // Decided once the request (its body too) is in.
      req.once('end', () => act(a, n));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    ports[name] = (server.address() as AddressInfo).port;
    servers.push(server);
  }
  return {
    ports,
    arrivals,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.closeAllConnections();
              s.close(() => resolve());
            }),
        ),
      );
    },
  };
}

function hedgeConfig(ports: Record<string, number>, route: Record<string, unknown>, cluster: Record<string, unknown> = {}) {
  return config({
    admin: { port: 0 },
    access_log: { enabled: false },
    listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c', ...route }] }],
    clusters: [{ name: 'c', endpoints: Object.entries(ports).map(([id, port]) => ({ address: `127.0.0.1:${port}`, id })), ...cluster }],
  });
}

async function hedges(m: Running, event: string): Promise<number> {
  const line = (await m.meridian.metrics.metricsText()).split('\n').find((l) => l.startsWith(`meridian_hedges_total{cluster="c",event="${event}"}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

/** Connections Meridian holds open to endpoint `id`, and how many of them are busy (not idle in the pool). */
function pool(m: Running, id: string): { open: number; busy: number } {
  const e = (m.meridian.clusters()[0]?.endpoints ?? []).find((x) => x.id === id);
  assert.ok(e !== undefined, `endpoint ${id}`);
  return { open: e.poolOpen ?? 0, busy: (e.poolOpen ?? 0) - (e.poolIdle ?? 0) };
}

/** Markers through Meridian, one new connection each, until both backends answered one. */
async function markers(m: Running): Promise<void> {
  const answered = new Set<string>();
  for (let n = 0; answered.size < 2; n++) {
    assert.ok(n < 40, 'markers reached both backends');
    answered.add((await get(m.port, `/marker${n}`, { agent: false })).body);
  }
}

describe('hedged requests in the proxy', () => {
  const cleanup: { close(): Promise<void> }[] = [];
  after(() => closeAll(cleanup));

  it('a held first try is hedged: the hedge answers, the held connection is closed, the hedge counts as won and the access log says hedged', async () => {
    const bs = await pair();
    const m = await startMeridian(hedgeConfig(bs.ports, { hedge: { after: '20ms', max_percent: 100 } }));
    cleanup.push(m, bs);
    const r = await get(m.port, '/race1', { agent: false });
    assert.equal(r.status, 200);
    assert.equal(bs.arrivals.length, 2);
    const [first, second] = bs.arrivals as [Arrival, Arrival];
    assert.notEqual(first.server, second.server);
    // The hedge's answer, not the held one's.
    assert.equal(r.body, second.server);
    // The held try's response was never read: its connection is closed, not pooled.
    await until(() => first.closed, 5000, 'the held connection closed');
    assert.deepEqual(pool(m, first.server), { open: 0, busy: 0 });
    assert.equal(await hedges(m, 'started'), 1);
    assert.equal(await hedges(m, 'won'), 1);
    assert.equal(await hedges(m, 'cancelled'), 0);
    const rec = m.records.find((x) => x.path === '/race1');
    assert.equal(rec?.hedged, true);
    assert.equal(rec?.endpoint, second.server);
    assert.equal(rec?.attempts, 1);
  });

  it('the first try answering first cancels the hedge: its connection closed, counted cancelled, not hedged in the log', async () => {
    const bs = await pair();
    const m = await startMeridian(hedgeConfig(bs.ports, { hedge: { after: '20ms', max_percent: 100 } }));
    cleanup.push(m, bs);
    const reply = get(m.port, '/hold1', { agent: false });
    await until(() => bs.arrivals.length === 2, 5000, 'the first try and its hedge at the backends');
    const [first, second] = bs.arrivals as [Arrival, Arrival];
    first.res.end('first');
    const r = await reply;
    assert.equal(r.body, 'first');
    await until(() => second.closed, 5000, "the hedge's connection closed");
    assert.deepEqual(pool(m, second.server), { open: 0, busy: 0 });
    assert.equal(await hedges(m, 'started'), 1);
    assert.equal(await hedges(m, 'won'), 0);
    assert.equal(await hedges(m, 'cancelled'), 1);
    assert.equal(m.records.find((x) => x.path === '/hold1')?.hedged, false);
  });

  it('a POST is never hedged: the other backend saw nothing after a later GET was hedged and markers reached both', async () => {
    const bs = await pair();
    const m = await startMeridian(hedgeConfig(bs.ports, { hedge: { after: '20ms', max_percent: 100 } }));
    cleanup.push(m, bs);
    const post = get(m.port, '/race-post', { agent: false, method: 'POST', body: 'x' });
    await until(() => bs.arrivals.length === 1, 5000, 'the POST at a backend');
    // A GET sent after the POST's first try arrived: its hedge timer (the same delay) runs
    // out after the POST's would have, so once its hedge has arrived a hedge of the POST
    // would have been sent before it.
    const got = await get(m.port, '/race-get', { agent: false });
    assert.equal(got.status, 200);
    await markers(m);
    assert.deepEqual(
      bs.arrivals.map((a) => a.url),
      ['/race-post', '/race-get', '/race-get'],
    );
    (bs.arrivals[0] as Arrival).res.end('posted');
    assert.equal((await post).body, 'posted');
    assert.equal(await hedges(m, 'started'), 1);
    assert.equal(m.records.find((x) => x.path === '/race-post')?.hedged, false);
  });

  it('the first try failing while the hedge runs: the hedge is adopted as the request try, with no resend or retry', async () => {
    const bs = await pair();
    const m = await startMeridian(hedgeConfig(bs.ports, { hedge: { after: '20ms', max_percent: 100 } }));
    cleanup.push(m, bs);
    const reply = get(m.port, '/hold-adopt', { agent: false });
    await until(() => bs.arrivals.length === 2, 5000, 'the first try and its hedge at the backends');
    const [first, second] = bs.arrivals as [Arrival, Arrival];
    first.socket.destroy();
    await until(() => pool(m, first.server).open === 0, 5000, 'the failed first try dropped');
    second.res.end('hedge');
    const r = await reply;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hedge');
    assert.equal(bs.arrivals.length, 2);
    assert.equal(await hedges(m, 'started'), 1);
    assert.equal(await hedges(m, 'won'), 0);
    assert.equal(await hedges(m, 'cancelled'), 0);
    const rec = m.records.find((x) => x.path === '/hold-adopt');
    assert.equal(rec?.hedged, true);
    assert.equal(rec?.endpoint, second.server);
    assert.equal(rec?.attempts, 1);
  });

  it('an adopted hedge answering a retry_on status is retried as the request try, and the retry answer is not marked hedged', async () => {
    const bs = await pair();
    const m = await startMeridian(hedgeConfig(bs.ports, { hedge: { after: '20ms', max_percent: 100 } }, { retries: { attempts: 1, retry_on: [503] } }));
    cleanup.push(m, bs);
    const reply = get(m.port, '/hold-retry', { agent: false });
    await until(() => bs.arrivals.length === 2, 5000, 'the first try and its hedge at the backends');
    const [first, second] = bs.arrivals as [Arrival, Arrival];
    first.socket.destroy();
    await until(() => pool(m, first.server).open === 0, 5000, 'the failed first try dropped');
    second.res.statusCode = 503;
    second.res.end('busy');
    await until(() => bs.arrivals.length === 3, 5000, 'the retry at a backend');
    const third = bs.arrivals[2] as Arrival;
    third.res.end('third');
    const r = await reply;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'third');
    const rec = m.records.find((x) => x.path === '/hold-retry');
    assert.equal(rec?.hedged, false);
    assert.equal(rec?.attempts, 2);
    assert.equal(rec?.endpoint, third.server);
  });

  it('a PUT with a buffered body is hedged with the same body', async () => {
    const bs = await pair();
    const m = await startMeridian(hedgeConfig(bs.ports, { hedge: { after: '20ms', max_percent: 100 } }));
    cleanup.push(m, bs);
    const r = await get(m.port, '/race-put', { agent: false, method: 'PUT', body: 'payload' });
    assert.equal(r.status, 200);
    assert.deepEqual(
      bs.arrivals.map((a) => [a.url, a.body]),
      [
        ['/race-put', 'payload'],
        ['/race-put', 'payload'],
      ],
    );
    assert.equal(r.body, (bs.arrivals[1] as Arrival).server);
    assert.equal(await hedges(m, 'won'), 1);
  });

  it('the request timing out mid-hedge: one 504, both tries given up, no upstream connection left busy', async () => {
    const bs = await pair();
    const m = await startMeridian(hedgeConfig(bs.ports, { hedge: { after: '20ms', max_percent: 100 }, timeout: '300ms' }));
    cleanup.push(m, bs);
    const r = await get(m.port, '/hold-timeout', { agent: false });
    assert.equal(r.status, 504);
    assert.equal(r.headers['x-meridian-reason'], 'timeout');
    assert.equal(await hedges(m, 'started'), 1);
    assert.equal(await hedges(m, 'cancelled'), 1);
    await until(() => bs.arrivals.every((a) => a.closed) && pool(m, 'a').busy + pool(m, 'b').busy === 0, 5000, 'both tries closed');
  });

  it('the budget bounds hedges: max_percent 25 over 20 requests each slower than the delay sends exactly 5', async () => {
    const bs = await pair();
    // Hedges are retries too: the retry budget's floor (3/s by default) is raised out of the
    // way, so the count is the hedge budget's alone (five hedges in well under 2 s could
    // otherwise find the floor's bucket empty on a fast run).
    const m = await startMeridian(hedgeConfig(bs.ports, { hedge: { after: '10ms', max_percent: 25 } }, { retries: { budget: { min_per_second: 1000 } } }));
    cleanup.push(m, bs);
    // Each first try answers after 50 ms, a timer armed after Meridian's 10 ms hedge timer
    // (same process): every request's hedge timer runs out while its first try is held, so
    // each one asks the budget, which a request fills by a quarter of a hedge.
    for (let i = 0; i < 20; i++) assert.equal((await get(m.port, `/slow${i}`)).status, 200);
    assert.equal(await hedges(m, 'started'), 5);
    assert.equal(bs.arrivals.length, 25);
    assert.equal(m.records.length, 20);
  });

  it('both tries failing: one 502, as when a retry fails; no hedge counted as won', async () => {
    const bs = await pair();
    const m = await startMeridian(hedgeConfig(bs.ports, { hedge: { after: '20ms', max_percent: 100 } }, { retries: { attempts: 0 } }));
    cleanup.push(m, bs);
    const reply = get(m.port, '/fail1', { agent: false });
    await until(() => bs.arrivals.length === 2, 5000, 'the first try and its hedge at the backends');
    const [first, second] = bs.arrivals as [Arrival, Arrival];
    // The hedge's connection was reset by its backend; once Meridian has dropped it, the first try fails too.
    await until(() => pool(m, second.server).open === 0, 5000, 'the failed hedge dropped');
    first.socket.destroy();
    const r = await reply;
    assert.equal(r.status, 502);
    assert.equal(r.headers['x-meridian-reason'], 'upstream_reset');
    // The first try's reset is taken for the keep-alive race once (a resend to the same
    // host, outside the budget, as without a hedge); its second reset ends the request.
    assert.deepEqual(
      bs.arrivals.map((a) => a.server),
      [first.server, second.server, first.server],
    );
    assert.equal(await hedges(m, 'started'), 1);
    assert.equal(await hedges(m, 'won'), 0);
    assert.equal(m.records.filter((x) => x.path === '/fail1').length, 1);
  });

  it('the client leaving mid-hedge closes both upstream connections: nothing left open in the pools', async () => {
    const bs = await pair();
    const m = await startMeridian(hedgeConfig(bs.ports, { hedge: { after: '20ms', max_percent: 100 } }));
    cleanup.push(m, bs);
    const client = connect(m.port, '127.0.0.1');
    client.on('error', () => {});
    client.write('GET /hold-gone HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => bs.arrivals.length === 2, 5000, 'the first try and its hedge at the backends');
    assert.equal(pool(m, 'a').busy + pool(m, 'b').busy, 2);
    client.destroy();
    await until(() => bs.arrivals.every((a) => a.closed), 5000, 'both upstream connections closed');
    assert.deepEqual([pool(m, 'a'), pool(m, 'b')], [{ open: 0, busy: 0 }, { open: 0, busy: 0 }]);
    assert.equal(await hedges(m, 'cancelled'), 1);
    assert.equal(m.records.find((x) => x.path === '/hold-gone')?.status, 499);
  });
});
