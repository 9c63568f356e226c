// The responder's fast path (bytes read by hand, cached answers patched per query)
// against its general path (dns-packet): on any message, the same answer or a decline.
// And the cache never outlives a health change: the next answer after it moved.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { encode } from 'dns-packet';
import fc from 'fast-check';
import { DnsResponder, type QueryContext, type Steer } from '../../src/global/dns-responder.js';
import { Meridian } from '../../src/node/meridian.js';
import { ecs, globalConfig, HealthServer, parse, quiet, type Rec, udpQuery, until } from './helpers.js';

const config = globalConfig().global!;
const byName = new Map(config.regions.map((r) => [r.name, r]));

/**
 * Deterministic steering that reads everything the fast path hands over: the region
 * from the client address's last byte, the scope from its prefix length.
 */
const steer: Steer = (hostname, client) => {
  if (hostname === 'many.meridian.test') return answer('antarctica', 0);
  const names = ['us-east', 'eu-west', 'ap-southeast'];
  const last = client.ip === undefined ? 0 : (client.ip.bytes[client.ip.bytes.length - 1] as number);
  return answer(names[(last + (client.ip?.family ?? 0) + hostname.length) % 3] as string, client.prefixLength ?? 0);
};

function answer(region: string, scope: number): ReturnType<Steer> {
  const decision = { policy: 'geo', region, reason: 'nearest', order: [region], skipped: [], spilledFrom: [], locationSource: 'none', scopePrefixLength: scope } as const;
  return { decision, addresses: byName.get(region)!.addresses };
}

const names = ['www.meridian.test', 'WWW.Meridian.TEST', 'meridian.test', 'ns1.meridian.test', 'many.meridian.test', 'api.meridian.test', 'deep.sub.meridian.test', 'sub.meridian.test', 'nope.meridian.test', 'www.example.com', 'w.meridian.test.'];

/** Encode a name as wire labels (no compression). */
function wireName(name: string): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter((l) => l !== '');
  return Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])), Buffer.from([0])]);
}

const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);

const ecsOption = fc.oneof(
  // Valid: an address masked to its source prefix.
  fc.record({ family: fc.constantFrom(1, 2), source: fc.nat(128), bytes: fc.uint8Array({ minLength: 16, maxLength: 16 }), scope: fc.nat(255) }).map(({ family, source, bytes, scope }) => {
    const s = family === 1 ? source % 33 : source;
    const n = Math.ceil(s / 8);
    const addr = Buffer.from(bytes.subarray(0, n));
    if (s % 8 !== 0) addr[n - 1] = (addr[n - 1] as number) & (0xff << (8 - (s % 8)));
    return Buffer.concat([u16(8), u16(4 + n), u16(family), Buffer.from([s, scope]), addr]);
  }),
  // Anything: bad family, lengths, host bits.
  fc.uint8Array({ maxLength: 24 }).map((d) => Buffer.concat([u16(8), u16(d.length), Buffer.from(d)])),
);
const otherOption = fc.record({ code: fc.constantFrom(3, 10, 11, 12, 14, 65001), data: fc.uint8Array({ maxLength: 12 }) }).map(({ code, data }) => Buffer.concat([u16(code), u16(data.length), Buffer.from(data)]));

const opt = fc
  .record({ size: fc.constantFrom(0, 512, 1232, 4096, 65535), rcode: fc.constantFrom(0, 0, 1), version: fc.constantFrom(0, 0, 0, 1), flags: fc.constantFrom(0, 0x8000), options: fc.array(fc.oneof(ecsOption, otherOption), { maxLength: 3 }) })
  .map(({ size, rcode, version, flags, options }) => {
    const rdata = Buffer.concat(options);
    return Buffer.concat([Buffer.from([0]), u16(41), u16(size), Buffer.from([rcode, version]), u16(flags), u16(rdata.length), rdata]);
  });

/** Mostly well-formed queries, some with a byte changed or cut: the shapes where the paths could part. */
const query = fc
  .record({
    id: fc.nat(0xffff),
    flags: fc.constantFrom(0x0100, 0x0000, 0x0120, 0x0110, 0x0300, 0x2100, 0x8100),
    name: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...names) }, { weight: 1, arbitrary: fc.stringMatching(/^[a-zA-Z0-9.-]{0,30}$/) }),
    qtype: fc.constantFrom(1, 28, 255, 2, 6, 15, 16, 65, 99),
    qclass: fc.constantFrom(1, 1, 1, 1, 1, 3, 255),
    opt: fc.option(opt, { freq: 3 }),
    counts: fc.oneof({ weight: 6, arbitrary: fc.constant([1, 0, 0]) }, { weight: 1, arbitrary: fc.constantFrom([2, 0, 0], [1, 1, 0], [1, 0, 1], [0, 0, 0]) }),
    mutate: sometimes(fc.record({ at: fc.nat(200), value: fc.nat(255) }), 6),
    cut: sometimes(fc.nat(200), 10),
    trailing: sometimes(fc.uint8Array({ minLength: 1, maxLength: 4 }), 8),
  })
  .map((q) => {
    const head = Buffer.concat([u16(q.id), u16(q.flags), u16(q.counts[0] as number), u16(q.counts[1] as number), u16(q.counts[2] as number), u16(q.opt === null ? 0 : 1)]);
    let msg = Buffer.concat([head, wireName(q.name), u16(q.qtype), u16(q.qclass), q.opt ?? Buffer.alloc(0), q.trailing === null ? Buffer.alloc(0) : Buffer.from(q.trailing)]);
    if (q.mutate !== null) msg[q.mutate.at % msg.length] = q.mutate.value;
    if (q.cut !== null) msg = msg.subarray(0, q.cut % (msg.length + 1));
    return msg;
  });

/** `arb` one time in `n`, else null. */
function sometimes<T>(arb: fc.Arbitrary<T>, n: number): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: n - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });
}

const contexts: QueryContext[] = [
  { transport: 'udp', remoteAddress: '127.0.2.9' },
  { transport: 'tcp', remoteAddress: '::1' },
  { transport: 'udp', remoteAddress: 'not an address' },
];

describe('DNS fast path', () => {
  it('answers exactly as the general path, or declines (fuzzed against dns-packet)', () => {
    const responder = new DnsResponder(config.dns, config.hostnames.map((h) => h.name), steer);
    let accepted = 0;
    fc.assert(
      fc.property(fc.oneof({ weight: 9, arbitrary: query }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b)) }), fc.constantFrom(...contexts), (msg, ctx) => {
        const fast = responder.respondFast(msg, ctx);
        if (fast === undefined) return;
        accepted++;
        const general = responder.respondGeneral(msg, ctx);
        assert.deepEqual(fast.response?.toString('hex'), general.response?.toString('hex'));
        assert.deepEqual([fast.rcode, fast.name, fast.type, fast.truncated, fast.decision], [general.rcode, general.name, general.type, general.truncated, general.decision]);
      }),
      { numRuns: 20_000, seed: 20 },
    );
    // The fuzz meant something: many of the messages were the fast path's to answer.
    assert.ok(accepted > 1000, `fast path took ${accepted}`);
  });

  it('takes the queries resolvers send: EDNS with a cookie and a client subnet, any case', () => {
    const responder = new DnsResponder(config.dns, config.hostnames.map((h) => h.name), steer);
    const cookie = { code: 10, data: Buffer.from('0123456789abcdef', 'hex') };
    const msg = encode({
      type: 'query',
      id: 0xbeef,
      flags: 0x0100,
      questions: [{ type: 'A', name: 'WwW.meridian.test' }],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, options: [cookie, { code: 8, family: 1, sourcePrefixLength: 24, scopePrefixLength: 0, ip: '127.0.1.0' }] } as never],
    });
    const fast = responder.respondFast(msg, contexts[0]!);
    assert.ok(fast?.response, 'the fast path answered');
    const reply = parse(fast.response);
    assert.equal(reply.id, 0xbeef);
    assert.equal(reply.questions?.[0]?.name, 'WwW.meridian.test');
    // Last byte 0 + family 4 + 17 letters: 21 % 3 = 0, us-east; the scope is the /24.
    assert.deepEqual(reply.answers?.map((a: Rec) => a.data), ['127.0.0.11']);
    const opt = reply.additionals?.find((a) => a.type === 'OPT') as unknown as { options: { code: number; scopePrefixLength?: number; ip?: string }[] };
    assert.deepEqual(opt.options.map((o) => [o.code, o.ip, o.scopePrefixLength]), [[8, '127.0.1.0', 24]]);
  });
});

describe('DNS answers after a health change', () => {
  let m: Meridian;
  let port: number;
  const usEast = new HealthServer();
  before(async () => {
    await usEast.start();
    m = new Meridian(globalConfig({ 'us-east': usEast.url }), { logger: quiet, seed: 3 });
    await m.start();
    port = m.global()!.ports().dns;
  });
  after(async () => {
    await m.close();
    await usEast.close();
  });

  const newYork = async (): Promise<unknown[]> => {
    const r = await udpQuery(port, { questions: [{ type: 'A', name: 'www.meridian.test' }], additionals: ecs('127.0.1.0', 24) });
    return (r.answers ?? []).map((a) => a.data);
  };
  const usEastHealthy = (): boolean | undefined => m.global()?.status().regions.find((r) => r.name === 'us-east')?.healthy;

  it('the first answer after a probe marks a region down (or up) is the new one, not a cached one', async () => {
    await until(() => usEastHealthy() === true, 5000, 'us-east up');
    assert.deepEqual(await newYork(), ['127.0.0.11']);
    assert.deepEqual(await newYork(), ['127.0.0.11'], 'answered again from the cache');
    usEast.status = 503;
    await until(() => usEastHealthy() === false, 5000, 'us-east down');
    assert.deepEqual(await newYork(), ['127.0.0.12'], 'the next nearest, at once');
    usEast.status = 200;
    await until(() => usEastHealthy() === true, 5000, 'us-east up again');
    assert.deepEqual(await newYork(), ['127.0.0.11']);
  });

  it('an override is in the very next answer, and clearing it too', async () => {
    assert.deepEqual(await newYork(), ['127.0.0.11']);
    m.global()!.setRegionOverride('us-east', 'down');
    assert.deepEqual(await newYork(), ['127.0.0.12']);
    m.global()!.setRegionOverride('us-east', undefined);
    assert.deepEqual(await newYork(), ['127.0.0.11']);
  });
});
