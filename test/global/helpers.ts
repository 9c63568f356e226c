// DNS and health-endpoint helpers for the global layer's tests: real sockets on 127.0.0.1.
import { createSocket } from 'node:dgram';
import { createServer as createHttpServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { decode, type DecodedPacket, encode, type Packet } from 'dns-packet';
import pino from 'pino';
import { type Config, validateConfig } from '../../src/config/index.js';
import { loadUdpBatch, type UdpBatchAddon } from '../../src/shared/udp-batch-addon.js';

export const quiet = pino({ level: 'silent' });

/** A decoded record, loosely typed (dns-packet's types lack the decoded extras). */
export interface Rec {
  readonly type: string;
  readonly name: string;
  readonly ttl?: number;
  readonly data?: unknown;
  readonly [k: string]: unknown;
}

/** A decoded message with the fields dns-packet's decode sets but its types omit. */
export type Reply = Omit<DecodedPacket, 'answers' | 'authorities' | 'additionals'> & {
  readonly rcode: string;
  readonly answers?: Rec[];
  readonly authorities?: Rec[];
  readonly additionals?: Rec[];
};

export function parse(b: Buffer): Reply {
  return decode(b) as unknown as Reply;
}

/** Send one UDP datagram; resolve with the answer's bytes, or undefined when none came in `ms`. */
export function udpRaw(port: number, msg: Buffer, ms = 1000): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    const timer = setTimeout(() => {
      sock.close();
      resolve(undefined);
    }, ms);
    sock.on('message', (m) => {
      clearTimeout(timer);
      sock.close();
      resolve(m);
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      sock.close();
      reject(e);
    });
    sock.send(msg, port, '127.0.0.1');
  });
}

export async function udpQuery(port: number, packet: Packet): Promise<Reply> {
  const r = await udpRaw(port, encode({ type: 'query', id: 4242, flags: 1 << 8, ...packet }));
  if (r === undefined) throw new Error('no UDP answer');
  return parse(r);
}

/** Several length-prefixed queries on one TCP connection, written at once (pipelined); their answers in order. */
export function tcpQueries(port: number, packets: readonly Packet[], ms = 2000): Promise<Reply[]> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const out: Reply[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`only ${out.length} of ${packets.length} TCP answers`));
    }, ms);
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const len = buf.readUInt16BE(0);
        out.push(parse(buf.subarray(2, 2 + len)));
        buf = buf.subarray(2 + len);
      }
      if (out.length === packets.length) {
        clearTimeout(timer);
        s.end();
        resolve(out);
      }
    });
    s.on('error', reject);
    s.write(Buffer.concat(packets.map((p, i) => {
      const m = encode({ type: 'query', id: 100 + i, ...p });
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(m.length);
      return Buffer.concat([prefix, m]);
    })));
  });
}

export function ecs(ip: string, sourcePrefixLength: number): Packet['additionals'] {
  return [{ type: 'OPT', name: '.', udpPayloadSize: 4096, flags: 0, options: [{ code: 8, family: ip.includes(':') ? 2 : 1, sourcePrefixLength, scopePrefixLength: 0, ip }] } as never];
}

/** A region's health endpoint: answers `status` with `body`; stop() closes it, restart() binds the same port again. */
export class HealthServer {
  status = 200;
  body = '';
  port = 0;
  #server: Server | undefined;

  async start(port = 0): Promise<this> {
    const server = createHttpServer((req, res) => {
      res.writeHead(this.status, { 'content-type': 'application/json', connection: 'close' });
      res.end(this.body);
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/readyz`;
  }

  async stop(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (s) await new Promise<void>((r) => {
      s.close(() => r());
      s.closeAllConnections();
    });
  }

  async restart(): Promise<void> {
    await this.start(this.port);
  }

  close(): Promise<void> {
    return this.stop();
  }
}

const many = Array.from({ length: 40 }, (_, i) => `10.9.0.${i + 1}`);

/**
 * Three regions and one far-away region with 40 addresses (its answers do not fit 512
 * bytes); CIDRs put 127.0.1.0/24 in New York, 127.0.2.0/24 in Paris, 127.0.3.0/24 on
 * ap-southeast, and 2001:db8:e::/48 in Paris.
 */
export function globalConfig(health: Partial<Record<string, string>> = {}, over: Record<string, unknown> = {}): Config {
  const check = (url: string | undefined) => (url === undefined ? {} : { health: { url, interval: '100ms', timeout: '80ms', jitter: '0%', unhealthy_threshold: 2, healthy_threshold: 1 } });
  const dns = { address: '127.0.0.1', port: 0, zone: 'meridian.test', ttl: '30s', ns: ['ns1.meridian.test'], ns_addresses: { 'ns1.meridian.test': ['127.0.0.1'] } };
  const r = validateConfig({
    admin: { port: 0 },
    access_log: { enabled: false },
    global: {
      regions: [
        { name: 'us-east', location: { lat: 39.0, lon: -77.5 }, addresses: ['127.0.0.11', '::11'], ...check(health['us-east']) },
        { name: 'eu-west', location: { lat: 53.3, lon: -6.3 }, addresses: ['127.0.0.12'], ...check(health['eu-west']) },
        { name: 'ap-southeast', location: { lat: 1.35, lon: 103.8 }, addresses: ['127.0.0.13'], ...check(health['ap-southeast']) },
        { name: 'antarctica', location: { lat: -80, lon: 0 }, addresses: many },
      ],
      geo: {
        cidrs: [
          { cidr: '127.0.1.0/24', location: { lat: 40.7, lon: -74.0 } },
          { cidr: '127.0.2.0/24', location: { lat: 48.9, lon: 2.35 } },
          { cidr: '127.0.3.0/24', region: 'ap-southeast' },
          { cidr: '2001:db8:e::/48', location: { lat: 48.9, lon: 2.35 } },
        ],
      },
      hostnames: [
        { name: 'www.meridian.test', policy: 'geo' },
        { name: 'api.meridian.test', policy: 'failover', order: ['eu-west', 'us-east'] },
        { name: 'fast.meridian.test', policy: 'latency' },
        { name: 'w.meridian.test', policy: 'weighted', weights: { 'us-east': 1, 'eu-west': 1, 'ap-southeast': 0, antarctica: 0 } },
        { name: 'many.meridian.test', policy: 'failover', order: ['antarctica'] },
        { name: 'deep.sub.meridian.test', policy: 'geo' },
      ],
      ...over,
      ...withTestEngine((over['dns'] ?? dns) as Record<string, unknown>),
    },
  });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

/**
 * dns.udp_engine as MERIDIAN_TEST_UDP_ENGINE says (dns-dgram-engine.test.ts runs the DNS
 * test files again with `dgram`); unset: the config's own (default auto: batch where the addon built).
 */
function withTestEngine(d: Record<string, unknown>): { dns: Record<string, unknown> } {
  const engine = process.env['MERIDIAN_TEST_UDP_ENGINE'];
  return { dns: engine === undefined ? d : { ...d, udp_engine: engine } };
}

/** The batch addon for a DnsServer built by hand, unless MERIDIAN_TEST_UDP_ENGINE is dgram (undefined: dgram). */
export function testUdpBatch(): UdpBatchAddon | undefined {
  if (process.env['MERIDIAN_TEST_UDP_ENGINE'] === 'dgram') return undefined;
  const r = loadUdpBatch();
  return 'addon' in r ? r.addon : undefined;
}

/** Poll until `cond` holds; fail after `ms`. Only to wait, never to assert timing. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
