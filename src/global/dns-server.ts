/**
 * The DNS responder's sockets: UDP and TCP on one address and port.
 *
 * - UDP: one datagram in, at most one out; the responder sets TC when the answer does
 *   not fit, and the client retries over TCP.
 * - TCP (RFC 7766): each message has a 2-byte length prefix; a connection may carry
 *   several queries, pipelined, answered in order; it is closed after `idleTimeoutMs`
 *   without a complete query, and at most `maxConnections` are open at once.
 * - UDP is read with Node's dgram, or (option `udpBatch`) with the native batch engine
 *   (udp-batch.ts): the same answers, read and written many datagrams per syscall.
 * - Nothing a peer sends can throw out of here: the responder never throws, socket
 *   errors are logged and the socket (for TCP, the one connection) closed.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { lookup, type LookupOneOptions } from 'node:dns';
import { createServer, isIP, isIPv6, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { RateLimitAction } from '../core/response-rate-limiter.js';
import type { DnsOutcome, QueryContext } from './dns-responder.js';
import { truncatedCopy } from './dns-wire.js';
import { BatchUdpSockets } from './udp-batch.js';
import type { UdpBatchAddon } from '../shared/udp-batch-addon.js';

export interface DnsServerOptions {
  readonly address: string;
  /** 0 = a free port (the same for UDP and TCP). */
  readonly port: number;
  readonly respond: (msg: Buffer, ctx: QueryContext) => DnsOutcome;
  readonly idleTimeoutMs: number;
  readonly maxConnections: number;
  /** UDP sockets on the port; above 1 they are bound with reusePort (config validation checks the runtime has it). */
  readonly udpSockets?: number;
  /** Read and write UDP with this addon (batched, sockets steered by source prefix); absent: Node's dgram. */
  readonly udpBatch?: UdpBatchAddon;
  readonly log: Logger;
  /**
   * Response rate limiting for UDP (TCP proves the client's address and is not limited):
   * 'drop' sends nothing and does no work, 'slip' sends the answer empty with TC=1.
   */
  readonly rateLimit?: (remoteAddress: string) => RateLimitAction;
  /** Called after each message was answered (or dropped). */
  readonly onOutcome?: (o: DnsOutcome, ctx: QueryContext) => void;
  /** `respond` or `onOutcome` threw (the message was dropped, or answered regardless); absent: logged each time. */
  readonly onError?: (component: 'dns_server', err: unknown) => void;
}

export class DnsServer {
  readonly #o: DnsServerOptions;
  #idleTimeoutMs: number;
  #udp: UdpSocket[] = [];
  #batch: BatchUdpSockets | undefined;
  /** The batch engine's context, one reused for every datagram (the responder and hooks use it synchronously). */
  readonly #batchCtx: { transport: 'udp'; remoteAddress: string } = { transport: 'udp', remoteAddress: '' };
  #tcp: Server | undefined;
  readonly #connections = new Set<Socket>();
  #port = 0;

  constructor(opts: DnsServerOptions) {
    this.#o = opts;
    this.#idleTimeoutMs = opts.idleTimeoutMs;
  }

  /** New TCP limits (a reload): the idle timeout applies to new connections. */
  setLimits(idleTimeoutMs: number, maxConnections: number): void {
    this.#idleTimeoutMs = idleTimeoutMs;
    if (this.#tcp) this.#tcp.maxConnections = maxConnections;
  }

  get port(): number {
    return this.#port;
  }

  get address(): string {
    return this.#o.address;
  }

  /** Bind UDP and TCP; with port 0, one free port for both (retried if TCP finds it taken). */
  async listen(): Promise<number> {
    const count = this.#o.udpSockets ?? 1;
    const reusePort = count > 1;
    if (this.#o.udpBatch !== undefined) return this.#listenBatch(this.#o.udpBatch, count);
    for (let attempt = 0; ; attempt++) {
      const udp = await this.#bindUdp(this.#o.port, reusePort);
      const port = udp.address().port;
      try {
        this.#tcp = await this.#bindTcp(port);
      } catch (e) {
        udp.close();
        if (this.#o.port === 0 && (e as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 5) continue;
        throw describeBindError(e as NodeJS.ErrnoException, this.#o.address, port, 'tcp');
      }
      this.#udp = [udp];
      this.#port = port;
      try {
        while (this.#udp.length < count) this.#udp.push(await this.#bindUdp(port, true));
      } catch (e) {
        await this.close();
        throw e;
      }
      return port;
    }
  }

  /** Bind `count` UDP sockets with the addon, and TCP on their port; as listen(). */
  async #listenBatch(addon: UdpBatchAddon, count: number): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const batch = new BatchUdpSockets(addon, (msg, remote) => this.#answerBatched(msg, remote));
      let port: number;
      try {
        port = batch.bind(this.#o.address, this.#o.port, count > 1);
      } catch (e) {
        throw describeBindError(e as NodeJS.ErrnoException, this.#o.address, this.#o.port, 'udp');
      }
      try {
        this.#tcp = await this.#bindTcp(port);
      } catch (e) {
        batch.close();
        if (this.#o.port === 0 && (e as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 5) continue;
        throw describeBindError(e as NodeJS.ErrnoException, this.#o.address, port, 'tcp');
      }
      this.#batch = batch;
      this.#port = port;
      try {
        while (batch.sockets < count) batch.bind(this.#o.address, port, true);
      } catch (e) {
        await this.close();
        throw describeBindError(e as NodeJS.ErrnoException, this.#o.address, port, 'udp');
      }
      batch.start();
      return port;
    }
  }

  #answerBatched(msg: Buffer, remoteAddress: string): Buffer | undefined {
    const action = this.#o.rateLimit === undefined ? 'answer' : this.#o.rateLimit(remoteAddress);
    if (action === 'drop') return undefined;
    const ctx = this.#batchCtx;
    ctx.remoteAddress = remoteAddress;
    const response = this.#answer(msg, ctx);
    return response !== undefined && action === 'slip' ? truncatedCopy(response) : response;
  }

  /** UDP sockets bound (dns.udp_sockets once listening). */
  get udpSockets(): number {
    return this.#batch?.sockets ?? this.#udp.length;
  }

  /** Datagrams each UDP socket read (the batch engine; empty with dgram). */
  get udpReceived(): readonly number[] {
    return this.#batch?.received ?? [];
  }

  /** What reads UDP: the native batch engine or Node's dgram. */
  get udpEngine(): 'batch' | 'dgram' {
    return this.#o.udpBatch === undefined ? 'dgram' : 'batch';
  }

  async close(): Promise<void> {
    const batch = this.#batch;
    this.#batch = undefined;
    batch?.close();
    const udp = this.#udp;
    this.#udp = [];
    await Promise.all(udp.map((u) => new Promise<void>((r) => u.close(() => r()))));
    const tcp = this.#tcp;
    this.#tcp = undefined;
    for (const c of this.#connections) c.destroy();
    this.#connections.clear();
    if (tcp) await new Promise<void>((r) => tcp.close(() => r()));
  }

  #answer(msg: Buffer, ctx: QueryContext): Buffer | undefined {
    let outcome: DnsOutcome;
    try {
      outcome = this.#o.respond(msg, ctx);
    } catch (e) {
      // The responder promises not to throw; if it does, drop the message and say so.
      this.#failed(e, 'dns responder threw; message dropped');
      return undefined;
    }
    try {
      this.#o.onOutcome?.(outcome, ctx);
    } catch (e) {
      this.#failed(e, 'dns outcome hook threw');
    }
    return outcome.response;
  }

  #failed(err: unknown, what: string): void {
    if (this.#o.onError) this.#o.onError('dns_server', err);
    else this.#o.log.error({ err: (err as Error).message }, what);
  }

  #bindUdp(port: number, reusePort: boolean): Promise<UdpSocket> {
    // `reusePort` is dgram's from Node 22.12; @types/node 20 does not know it yet.
    const sock = createSocket({ type: isIPv6(this.#o.address) ? 'udp6' : 'udp4', lookup: literalLookup, ...(reusePort ? { reusePort } : {}) } as Parameters<typeof createSocket>[0]);
    const rateLimit = this.#o.rateLimit;
    sock.on('message', (msg, rinfo) => {
      const action = rateLimit === undefined ? 'answer' : rateLimit(rinfo.address);
      if (action === 'drop') return;
      const response = this.#answer(msg, { transport: 'udp', remoteAddress: rinfo.address });
      // No callback: Node defers one per send (a nextTick); a failed send is the socket's 'error'.
      if (response !== undefined) sock.send(action === 'slip' ? truncatedCopy(response) : response, rinfo.port, rinfo.address);
    });
    return new Promise((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException): void => {
        sock.close();
        reject(describeBindError(e, this.#o.address, port, 'udp'));
      };
      sock.once('error', onError);
      sock.bind(port, this.#o.address, () => {
        sock.off('error', onError);
        // After binding, errors (e.g. ICMP unreachable reported on send) must not crash the process.
        sock.on('error', (e) => this.#o.log.warn({ err: e.message }, 'dns udp socket error'));
        resolve(sock);
      });
    });
  }

  #bindTcp(port: number): Promise<Server> {
    const server = createServer({ pauseOnConnect: false }, (socket) => this.#onConnection(socket));
    server.maxConnections = this.#o.maxConnections;
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => {
        server.close();
        reject(e);
      };
      server.once('error', onError);
      server.listen(port, this.#o.address, () => {
        server.off('error', onError);
        server.on('error', (e) => this.#o.log.warn({ err: e.message }, 'dns tcp server error'));
        resolve(server);
      });
    });
  }

  #onConnection(socket: Socket): void {
    this.#connections.add(socket);
    const ctx: QueryContext = { transport: 'tcp', remoteAddress: socket.remoteAddress ?? '' };
    let buf: Buffer = Buffer.alloc(0);
    socket.setTimeout(this.#idleTimeoutMs, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        const response = this.#answer(Buffer.from(msg), ctx);
        if (response === undefined) {
          // A message we will not answer over TCP: the stream may be out of step, so end it.
          socket.end();
          return;
        }
        const prefix = Buffer.alloc(2);
        prefix.writeUInt16BE(response.length);
        socket.write(Buffer.concat([prefix, response]));
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.#connections.delete(socket));
  }
}

/**
 * dgram resolves every send's address, and dns.lookup answers even an IP literal a tick
 * later; an answer goes to the address its query came from, always a literal, so it is
 * handed straight back (a name, as `localhost` to bind, still goes to dns.lookup).
 */
function literalLookup(address: string, family: number | LookupOneOptions, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  const literal = isIP(address);
  if (literal !== 0) callback(null, address, literal);
  else lookup(address, family as LookupOneOptions, callback);
}

function describeBindError(e: NodeJS.ErrnoException, address: string, port: number, proto: string): Error {
  if (e.code === 'EADDRINUSE') return new Error(`dns: ${proto} port ${port} on ${address} is already in use`);
  if (e.code === 'EACCES') return new Error(`dns: no permission to bind ${proto} port ${port} on ${address} (ports below 1024 need root or CAP_NET_BIND_SERVICE)`);
  return new Error(`dns: cannot bind ${proto} ${address}:${port}: ${e.message}`);
}
