// gRPC end to end: @grpc/grpc-js as client and as backend, Meridian between them (h2c both ways).
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { connect as netConnect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ActiveHealthChecker } from '../../src/health/active-checker.js';
import { closeAll, config, freePort, startMeridian, until, type Running } from './harness.js';
import { EchoClient, startGrpcBackend, type GrpcBackend } from './grpc-backend.js';

type Client = InstanceType<typeof EchoClient>;
interface Done {
  readonly value?: Buffer;
  readonly error?: grpc.ServiceError;
  readonly trailers?: grpc.Metadata;
}

function unary(client: Client, text: string, md = new grpc.Metadata()): Promise<Done> {
  return new Promise((resolve) => {
    let value: Buffer | undefined;
    let error: grpc.ServiceError | undefined;
    const call = client.makeUnaryRequest('/test.Echo/Unary', (b: Buffer) => b, (b: Buffer) => b, Buffer.from(text), md, (e, v) => {
      error = e ?? undefined;
      value = v;
    });
    call.on('status', (s: grpc.StatusObject) => resolve({ ...(value ? { value } : {}), ...(error ? { error } : {}), trailers: s.metadata }));
  });
}

/** A TCP relay in front of a backend: kill() cuts every connection as a dying process would. */
async function relay(port: number): Promise<{ port: number; kill(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: NetServer = createNetServer((c) => {
    const u = netConnect({ host: '127.0.0.1', port });
    for (const s of [c, u]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    c.pipe(u).pipe(c);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    kill: () => {
      for (const s of sockets) s.resetAndDestroy();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('gRPC through Meridian', () => {
  let g: GrpcBackend;
  let mortal: GrpcBackend;
  let cut: Awaited<ReturnType<typeof relay>>;
  let m: Running;
  let client: Client;

  before(async () => {
    g = await startGrpcBackend('g1');
    mortal = await startGrpcBackend('mortal');
    cut = await relay(mortal.port);
    const dead = await freePort();
    const by = (value: string, cluster: string, extra: Record<string, unknown> = {}) => ({ match: { headers: [{ name: 'x-route', exact: value }] }, cluster, ...extra });
    m = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [
          {
            name: 'grpc',
            address: '127.0.0.1',
            port: 0,
            http2: { enabled: true },
            routes: [
              by('dead', 'dead'),
              by('limited', 'g', { rate_limit: { requests_per_second: 0.01, burst: 1 } }),
              by('mortal', 'mortal'),
              { cluster: 'g' },
            ],
          },
        ],
        clusters: [
          { name: 'g', upstream_protocol: 'h2', endpoints: [{ address: `127.0.0.1:${g.port}` }] },
          { name: 'mortal', upstream_protocol: 'h2', endpoints: [{ address: `127.0.0.1:${cut.port}` }] },
          { name: 'dead', upstream_protocol: 'h2', endpoints: [{ address: `127.0.0.1:${dead}` }] },
        ],
      }),
    );
    client = new EchoClient(`127.0.0.1:${m.port}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client.close();
    await closeAll(m, g, mortal, cut);
  });

  it('unary: the answer and the trailers (metadata) the backend sent', async () => {
    const r = await unary(client, 'hi');
    assert.equal(r.error, undefined);
    assert.equal(r.value?.toString(), 'g1:hi');
    assert.deepEqual(r.trailers?.get('x-trailer'), ['unary']);
    const rec = m.records.at(-1);
    assert.deepEqual([rec?.upstreamProtocol, rec?.upstreamTls, rec?.grpcStatus], ['h2', undefined, '0']);
  });

  it('server streaming: every message, then OK', async () => {
    const call = client.makeServerStreamRequest('/test.Echo/ServerStream', (b: Buffer) => b, (b: Buffer) => b, Buffer.from([5]));
    const got: string[] = [];
    call.on('data', (d: Buffer) => got.push(d.toString()));
    const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    assert.equal(status.code, grpc.status.OK);
    assert.deepEqual(got, ['0', '1', '2', '3', '4']);
  });

  it('client streaming: every message the client sent reaches the backend', async () => {
    const result = new Promise<Buffer>((resolve, reject) => {
      const call = client.makeClientStreamRequest('/test.Echo/ClientStream', (b: Buffer) => b, (b: Buffer) => b, (e, v) => (e ? reject(e) : resolve(v as Buffer)));
      for (const s of ['a', 'b', 'c']) call.write(Buffer.from(s));
      call.end();
    });
    assert.equal((await result).toString(), 'a,b,c');
  });

  it('bidirectional: each message is answered before the next is sent (nothing is held back)', async () => {
    const call = client.makeBidiStreamRequest('/test.Echo/Bidi', (b: Buffer) => b, (b: Buffer) => b);
    const next = () => new Promise<string>((resolve) => call.once('data', (d: Buffer) => resolve(d.toString())));
    for (const word of ['one', 'two', 'three']) {
      const answer = next();
      call.write(Buffer.from(word));
      assert.equal(await answer, `echo:${word}`);
    }
    call.end();
    const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    assert.equal(status.code, grpc.status.OK);
  });

  it("a backend's error status and message pass through (a trailers-only answer)", async () => {
    const r = await unary(client, `fail:${grpc.status.NOT_FOUND}`);
    assert.equal(r.error?.code, grpc.status.NOT_FOUND);
    assert.equal(r.error?.details, 'failed as asked by g1');
  });

  it('grpc-timeout is the deadline: past it Meridian answers DEADLINE_EXCEEDED, HTTP 200 with grpc-status 4', async () => {
    const session = h2connect(`http://127.0.0.1:${m.port}`);
    const message = Buffer.from('slow');
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]);
    const stream = session.request({ ':method': 'POST', ':path': '/test.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '200m' });
    stream.end(frame);
    const headers = await new Promise<Record<string, unknown>>((resolve) => stream.once('response', resolve));
    const trailers = await new Promise<Record<string, unknown>>((resolve) => stream.once('trailers', resolve));
    stream.resume();
    await new Promise((resolve) => stream.once('close', resolve));
    session.close();
    assert.equal(headers[':status'], 200);
    assert.equal(headers['content-type'], 'application/grpc');
    assert.equal(headers['x-meridian-reason'], 'timeout');
    assert.equal(trailers['grpc-status'], String(grpc.status.DEADLINE_EXCEEDED));
    assert.match(String(trailers['grpc-message']), /did not answer in time/);
  });

  it('no reachable upstream: UNAVAILABLE, not an HTTP 502', async () => {
    const md = new grpc.Metadata();
    md.set('x-route', 'dead');
    const r = await unary(client, 'hi', md);
    assert.equal(r.error?.code, grpc.status.UNAVAILABLE);
    assert.match(r.error?.details ?? '', /connect_failure/);
  });

  it('over a rate limit: RESOURCE_EXHAUSTED', async () => {
    const md = new grpc.Metadata();
    md.set('x-route', 'limited');
    assert.equal((await unary(client, 'first', md)).error, undefined);
    const r = await unary(client, 'second', md);
    assert.equal(r.error?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.deepEqual([m.records.at(-1)?.status, m.records.at(-1)?.grpcStatus], [200, '8']);
  });

  it('a backend killed mid-stream: the messages sent so far, then UNAVAILABLE, as a direct client gets', async () => {
    const status = async (c: Client, md: grpc.Metadata) => {
      const call = c.makeServerStreamRequest('/test.Echo/ServerStream', (b: Buffer) => b, (b: Buffer) => b, Buffer.concat([Buffer.from([3]), Buffer.from('hold')]), md);
      const got: string[] = [];
      call.on('data', (d: Buffer) => {
        got.push(d.toString());
        if (got.length === 3) cut.kill();
      });
      call.on('error', () => {}); // the status says it
      const s = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
      return { code: s.code, got };
    };
    const md = new grpc.Metadata();
    md.set('x-route', 'mortal');
    const through = await status(client, md);
    assert.deepEqual(through, { code: grpc.status.UNAVAILABLE, got: ['0', '1', '2'] });
    const direct = new EchoClient(`127.0.0.1:${cut.port}`, grpc.credentials.createInsecure());
    try {
      assert.deepEqual(await status(direct, new grpc.Metadata()), through);
    } finally {
      direct.close();
    }
  });

  it('gRPC health checks (grpc.health.v1): SERVING passes; NOT_SERVING and an unknown service fail', async () => {
    const probe = async (service: string) => {
      const check = config({
        listeners: [{ name: 'l', port: 0, routes: [{ cluster: 'c' }] }],
        clusters: [{ name: 'c', endpoints: [{ address: '127.0.0.1:1' }], health_check: { type: 'grpc', service } }],
      }).clusters[0]!.health_check!;
      const checker = new ActiveHealthChecker({ endpoints: () => [], record: () => {} }, check);
      const r = await checker.probe({ id: 'g', address: `127.0.0.1:${g.port}`, weight: 1 } as never);
      return r.ok ? 'ok' : r.reason;
    };
    g.health.set('test.Echo', 'NOT_SERVING');
    assert.equal(await probe(''), 'ok');
    assert.equal(await probe('test.Echo'), 'bad_status');
    assert.equal(await probe('no.Such'), 'bad_status');
    g.health.set('test.Echo', 'SERVING');
    assert.equal(await probe('test.Echo'), 'ok');
  });

  it('a cluster with a grpc health check marks a NOT_SERVING endpoint unhealthy', async () => {
    const h = await startGrpcBackend('h');
    h.health.set('', 'NOT_SERVING');
    const hm = await startMeridian(
      config({
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'l', address: '127.0.0.1', port: 0, routes: [{ cluster: 'h' }] }],
        clusters: [
          {
            name: 'h',
            upstream_protocol: 'h2',
            endpoints: [{ address: `127.0.0.1:${h.port}` }],
            health_check: { type: 'grpc', interval: '100ms', timeout: '90ms', unhealthy_threshold: 1, healthy_threshold: 1 },
          },
        ],
      }),
    );
    try {
      const status = () => hm.meridian.clusters().find((c) => c.name === 'h')?.endpoints[0]?.status;
      await until(() => status() === 'unhealthy', 5000, 'the endpoint marked unhealthy');
      h.health.set('', 'SERVING');
      await until(() => status() === 'healthy', 5000, 'the endpoint marked healthy again');
    } finally {
      await closeAll(hm, h);
    }
  });
});
