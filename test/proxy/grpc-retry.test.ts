// gRPC retries on grpc-status (retry_on: unavailable): @grpc/grpc-js as client and backends, Meridian between them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { closeAll, config, startMeridian, type Running } from './harness.js';
import { EchoClient, echoService } from './grpc-backend.js';

type Client = InstanceType<typeof EchoClient>;

/**
 * Two grpc-js servers sharing one log of calls. Unary `flaky:<key>...` fails UNAVAILABLE the
 * first time its key is seen, then echoes; `mark:<x>` echoes. ServerStream sends one message,
 * then ends UNAVAILABLE.
 */
async function startFlaky(calls: string[]): Promise<{ ports: number[]; close(): Promise<void> }> {
  const seen = new Set<string>();
  const servers: grpc.Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < 2; i++) {
    const server = new grpc.Server();
    server.addService(echoService, {
      unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const text = call.request.toString();
        const key = text.slice(0, text.indexOf('|') === -1 ? undefined : text.indexOf('|'));
        calls.push(key);
        if (key.startsWith('flaky:') && !seen.has(key)) {
          seen.add(key);
          return cb({ code: grpc.status.UNAVAILABLE, details: 'not yet' });
        }
        cb(null, Buffer.from(`ok:${key}:${call.request.length}`));
      },
      serverStream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        calls.push('stream');
        call.write(Buffer.from('first'));
        call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'gone mid-stream' });
      },
      clientStream: () => {},
      bidi: () => {},
    });
    ports.push(await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p)))));
    servers.push(server);
  }
  return { ports, close: async () => void (await Promise.all(servers.map((s) => new Promise<void>((r) => s.tryShutdown(() => r()))))) };
}

function unary(client: Client, body: Buffer, route?: string): Promise<{ value?: string; code: number }> {
  const md = new grpc.Metadata();
  if (route !== undefined) md.set('x-route', route);
  return new Promise((resolve) => {
    let value: string | undefined;
    const call = client.makeUnaryRequest('/test.Echo/Unary', (b: Buffer) => b, (b: Buffer) => b, body, md, (_e, v) => (value = v?.toString()));
    call.on('status', (s: grpc.StatusObject) => resolve({ ...(value === undefined ? {} : { value }), code: s.code }));
  });
}

describe('gRPC retries on grpc-status', () => {
  const calls: string[] = [];
  let backends: Awaited<ReturnType<typeof startFlaky>>;
  let m: Running;
  let client: Client;

  before(async () => {
    backends = await startFlaky(calls);
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
              { match: { headers: [{ name: 'x-route', exact: 'own' }] }, cluster: 'plain', retries: { attempts: 2, retry_on: ['unavailable'] } },
              { match: { headers: [{ name: 'x-route', exact: 'plain' }] }, cluster: 'plain' },
              { cluster: 'g' },
            ],
          },
        ],
        clusters: [
          {
            name: 'g',
            upstream_protocol: 'h2',
            endpoints: backends.ports.map((p) => ({ address: `127.0.0.1:${p}` })),
            retries: { attempts: 2, retry_on: ['unavailable'], grpc_buffer_bytes: 1024, budget: { percent: 100, min_per_second: 100 } },
          },
          { name: 'plain', upstream_protocol: 'h2', endpoints: backends.ports.map((p) => ({ address: `127.0.0.1:${p}` })), retries: { budget: { percent: 100, min_per_second: 100 } } },
        ],
      }),
    );
    client = new EchoClient(`127.0.0.1:${m.port}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client.close();
    await closeAll(m, backends);
  });

  it('a unary call answered UNAVAILABLE once is retried: the client sees OK', async () => {
    const r = await unary(client, Buffer.from('flaky:a'));
    assert.deepEqual(r, { value: 'ok:flaky:a:7', code: grpc.status.OK });
    assert.deepEqual(calls.filter((c) => c === 'flaky:a'), ['flaky:a', 'flaky:a']);
    assert.deepEqual([m.records.at(-1)?.attempts, m.records.at(-1)?.grpcStatus], [2, '0']);
  });

  it('a request body over grpc_buffer_bytes is not retried: the client sees UNAVAILABLE', async () => {
    const body = Buffer.concat([Buffer.from('flaky:b|'), Buffer.alloc(2000, 120)]);
    const r = await unary(client, body);
    assert.deepEqual(r, { code: grpc.status.UNAVAILABLE });
    // The answer reached the client only once Meridian had decided not to retry.
    assert.deepEqual(calls.filter((c) => c === 'flaky:b'), ['flaky:b']);
    assert.deepEqual([m.records.at(-1)?.attempts, m.records.at(-1)?.grpcStatus], [1, '14']);
  });

  it("a route's own retries apply in place of its cluster's; without them, the cluster's (none here)", async () => {
    assert.deepEqual(await unary(client, Buffer.from('flaky:c'), 'plain'), { code: grpc.status.UNAVAILABLE });
    assert.deepEqual(calls.filter((c) => c === 'flaky:c'), ['flaky:c']);
    assert.deepEqual(await unary(client, Buffer.from('flaky:d'), 'own'), { value: 'ok:flaky:d:7', code: grpc.status.OK });
    assert.deepEqual(calls.filter((c) => c === 'flaky:d'), ['flaky:d', 'flaky:d']);
  });

  it('a streaming call that already sent a response message is never retried', async () => {
    const call = client.makeServerStreamRequest('/test.Echo/ServerStream', (b: Buffer) => b, (b: Buffer) => b, Buffer.from('go'), new grpc.Metadata());
    const got: string[] = [];
    call.on('data', (d: Buffer) => got.push(d.toString()));
    call.on('error', () => {}); // the status says it
    const s = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    assert.deepEqual({ code: s.code, got }, { code: grpc.status.UNAVAILABLE, got: ['first'] });
    // A marker call after it: the backends saw the stream once, then the marker.
    assert.equal((await unary(client, Buffer.from('mark:1'))).code, grpc.status.OK);
    assert.deepEqual(calls.slice(calls.indexOf('stream')), ['stream', 'mark:1']);
    assert.equal(m.records.filter((r) => r.path === '/test.Echo/ServerStream').at(-1)?.attempts, 1);
  });
});
