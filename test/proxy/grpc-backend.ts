// A gRPC service on @grpc/grpc-js for tests: raw bytes as messages (no .proto needed), all
// four call types, plus grpc.health.v1.Health/Check with hand-encoded protobuf.
import * as grpc from '@grpc/grpc-js';

const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const method = (path: string, requestStream: boolean, responseStream: boolean) => ({
  path,
  requestStream,
  responseStream,
  requestSerialize: raw.serialize,
  requestDeserialize: raw.deserialize,
  responseSerialize: raw.serialize,
  responseDeserialize: raw.deserialize,
});

export const echoService = {
  unary: method('/test.Echo/Unary', false, false),
  serverStream: method('/test.Echo/ServerStream', false, true),
  clientStream: method('/test.Echo/ClientStream', true, false),
  bidi: method('/test.Echo/Bidi', true, true),
} satisfies grpc.ServiceDefinition;

export const healthService = {
  check: method('/grpc.health.v1.Health/Check', false, false),
} satisfies grpc.ServiceDefinition;

export const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');

export interface GrpcBackend {
  readonly port: number;
  readonly server: grpc.Server;
  /** Calls the service saw, by method name. */
  readonly calls: string[];
  /** Health by service name ('' = the server); absent names answer NOT_FOUND. */
  readonly health: Map<string, 'SERVING' | 'NOT_SERVING'>;
  close(): Promise<void>;
}

/**
 * Unary: echoes the request, with trailer `x-trailer: unary`; a request `fail:<code>` ends
 * with that status; `slow` never answers. ServerStream: the request's first byte as a
 * count n, n messages `0..n-1`, then `hold` keeps the call open (for a kill mid-stream).
 * ClientStream: the requests joined by `,`. Bidi: each message echoed as it comes.
 */
export async function startGrpcBackend(name = 'g'): Promise<GrpcBackend> {
  const calls: string[] = [];
  const health = new Map<string, 'SERVING' | 'NOT_SERVING'>([['', 'SERVING']]);
  const server = new grpc.Server();
  server.addService(echoService, {
    unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      calls.push('unary');
      const text = call.request.toString();
      if (text === 'slow') return;
      const fail = /^fail:(\d+)$/.exec(text);
      if (fail) return cb({ code: Number(fail[1]), details: `failed as asked by ${name}` });
      const trailer = new grpc.Metadata();
      trailer.set('x-trailer', 'unary');
      cb(null, Buffer.from(`${name}:${text}`), trailer);
    },
    serverStream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      calls.push('serverStream');
      const n = call.request[0] ?? 0;
      for (let i = 0; i < n; i++) call.write(Buffer.from(String(i)));
      if (call.request.subarray(1).toString() !== 'hold') call.end();
    },
    clientStream: (call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      calls.push('clientStream');
      const got: string[] = [];
      call.on('data', (d: Buffer) => got.push(d.toString()));
      call.on('end', () => cb(null, Buffer.from(got.join(','))));
    },
    bidi: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      calls.push('bidi');
      call.on('data', (d: Buffer) => call.write(Buffer.from(`echo:${d.toString()}`)));
      call.on('end', () => call.end());
    },
  });
  server.addService(healthService, {
    check: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      // HealthCheckRequest { string service = 1; }: tag 0x0a, a one-byte length here.
      const service = call.request.length > 2 ? call.request.subarray(2).toString() : '';
      const status = health.get(service);
      if (status === undefined) return cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
      cb(null, Buffer.from([0x08, status === 'SERVING' ? 1 : 2]));
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { port, server, calls, health, close: async () => server.forceShutdown() };
}
