// The DNS responder through real UDP and TCP sockets on 127.0.0.1, driven by dns-packet
// as a client, inside a real Meridian started with only a `global` config.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, createServer as createTcpServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { encode } from 'dns-packet';
import { validateConfig } from '../../src/config/index.js';
import { Meridian } from '../../src/node/meridian.js';
import { ecs, globalConfig, parse, quiet, type Rec, tcpQueries, udpQuery, udpRaw } from './helpers.js';

const data = (answers: Rec[] | undefined): unknown[] => (answers ?? []).filter((a) => a.type !== 'OPT').map((a) => a.data);

describe('DNS responder (dns-packet client)', () => {
  let m: Meridian;
  let port: number;
  before(async () => {
    m = new Meridian(globalConfig(), { logger: quiet, seed: 7 });
    await m.start();
    assert.ok(m.global());
    port = m.global()!.ports().dns;
    assert.ok(port > 0);
  });
  after(() => m.close());

  it('answers A for a geo hostname by client subnet (ECS), echoing the option with a scope', async () => {
    const ny = await udpQuery(port, { questions: [{ type: 'A', name: 'www.meridian.test' }], additionals: ecs('127.0.1.0', 24) });
    assert.equal(ny.rcode, 'NOERROR');
    assert.equal(ny.flag_aa, true);
    assert.deepEqual(data(ny.answers), ['127.0.0.11']);
    assert.equal(ny.answers?.[0]?.ttl, 30);
    const opt = ny.additionals?.find((a) => a.type === 'OPT') as unknown as { options: { code: number; sourcePrefixLength: number; scopePrefixLength: number; ip: string }[] } | undefined;
    assert.ok(opt, 'OPT echoed');
    const echoed = opt.options.find((o) => o.code === 8);
    assert.deepEqual(echoed && [echoed.ip, echoed.sourcePrefixLength, echoed.scopePrefixLength], ['127.0.1.0', 24, 24]);
    const paris = await udpQuery(port, { questions: [{ type: 'A', name: 'www.meridian.test' }], additionals: ecs('127.0.2.0', 24) });
    assert.deepEqual(data(paris.answers), ['127.0.0.12']);
    const pinned = await udpQuery(port, { questions: [{ type: 'A', name: 'WWW.Meridian.Test' }], additionals: ecs('127.0.3.0', 24) });
    assert.deepEqual(data(pinned.answers), ['127.0.0.13']);
    const v6 = await udpQuery(port, { questions: [{ type: 'A', name: 'www.meridian.test' }], additionals: ecs('2001:db8:e::', 48) });
    assert.deepEqual(data(v6.answers), ['127.0.0.12']);
  });

  it('AAAA gives the region\'s IPv6 addresses, NODATA when it has none', async () => {
    const us = await udpQuery(port, { questions: [{ type: 'AAAA', name: 'www.meridian.test' }], additionals: ecs('127.0.1.0', 24) });
    assert.deepEqual([us.rcode, data(us.answers)], ['NOERROR', ['::11']]);
    const eu = await udpQuery(port, { questions: [{ type: 'AAAA', name: 'www.meridian.test' }], additionals: ecs('127.0.2.0', 24) });
    assert.deepEqual([eu.rcode, eu.answers?.length, eu.authorities?.[0]?.type], ['NOERROR', 0, 'SOA']);
  });

  it('SOA and NS at the apex (with glue), NODATA for other types, NXDOMAIN inside the zone, REFUSED outside', async () => {
    const soa = await udpQuery(port, { questions: [{ type: 'SOA', name: 'meridian.test' }] });
    assert.equal(soa.rcode, 'NOERROR');
    assert.deepEqual(soa.answers?.[0]?.data, { mname: 'ns1.meridian.test', rname: 'hostmaster.meridian.test', serial: 1, refresh: 3600, retry: 600, expire: 604800, minimum: 30 });
    const ns = await udpQuery(port, { questions: [{ type: 'NS', name: 'meridian.test' }] });
    assert.deepEqual(data(ns.answers), ['ns1.meridian.test']);
    assert.deepEqual(data(ns.additionals), ['127.0.0.1']);
    const nsA = await udpQuery(port, { questions: [{ type: 'A', name: 'ns1.meridian.test' }] });
    assert.deepEqual(data(nsA.answers), ['127.0.0.1']);
    const mx = await udpQuery(port, { questions: [{ type: 'MX', name: 'www.meridian.test' }] });
    assert.deepEqual([mx.rcode, mx.answers?.length, mx.authorities?.[0]?.type], ['NOERROR', 0, 'SOA']);
    const ent = await udpQuery(port, { questions: [{ type: 'A', name: 'sub.meridian.test' }] });
    assert.equal(ent.rcode, 'NOERROR', 'an empty non-terminal exists (RFC 8020)');
    const nx = await udpQuery(port, { questions: [{ type: 'A', name: 'nope.meridian.test' }] });
    assert.deepEqual([nx.rcode, nx.flag_aa, nx.authorities?.[0]?.type, nx.authorities?.[0]?.ttl], ['NXDOMAIN', true, 'SOA', 30]);
    const out = await udpQuery(port, { questions: [{ type: 'A', name: 'www.example.com' }] });
    assert.deepEqual([out.rcode, out.flag_aa, out.answers?.length], ['REFUSED', false, 0]);
    const suffix = await udpQuery(port, { questions: [{ type: 'A', name: 'evilmeridian.test' }] });
    assert.equal(suffix.rcode, 'REFUSED');
  });

  it('failover and weighted hostnames; an override takes a region out and back', async () => {
    const api = await udpQuery(port, { questions: [{ type: 'A', name: 'api.meridian.test' }] });
    assert.deepEqual(data(api.answers), ['127.0.0.12']);
    assert.equal(m.global()?.setRegionOverride('eu-west', 'down'), true);
    const api2 = await udpQuery(port, { questions: [{ type: 'A', name: 'api.meridian.test' }] });
    assert.deepEqual(data(api2.answers), ['127.0.0.11']);
    assert.equal(m.global()?.status().regions.find((r) => r.name === 'eu-west')?.healthy, false);
    for (let i = 0; i < 20; i++) {
      const w = await udpQuery(port, { questions: [{ type: 'A', name: 'w.meridian.test' }] });
      assert.deepEqual(data(w.answers), ['127.0.0.11'], 'weighted: only us-east is healthy with weight');
    }
    m.global()?.setRegionOverride('eu-west', undefined);
    const api3 = await udpQuery(port, { questions: [{ type: 'A', name: 'api.meridian.test' }] });
    assert.deepEqual(data(api3.answers), ['127.0.0.12']);
    assert.equal(m.global()?.setRegionOverride('mars', 'down'), false);
  });

  it('latency: reported RTTs steer a /24; other subnets fall back to geo', async () => {
    assert.equal(m.global()?.reportRtt('127.0.2.77', 'ap-southeast', 5), true);
    assert.equal(m.global()?.reportRtt('127.0.2.78', 'eu-west', 50), true);
    assert.equal(m.global()?.reportRtt('127.0.2.78', 'mars', 50), false);
    const fast = await udpQuery(port, { questions: [{ type: 'A', name: 'fast.meridian.test' }], additionals: ecs('127.0.2.0', 24) });
    assert.deepEqual(data(fast.answers), ['127.0.0.13']);
    assert.equal(m.global()?.decide('fast.meridian.test', '127.0.2.1')?.decision.reason, 'lowest_rtt');
    const geo = await udpQuery(port, { questions: [{ type: 'A', name: 'fast.meridian.test' }], additionals: ecs('127.0.1.0', 24) });
    assert.deepEqual(data(geo.answers), ['127.0.0.11']);
  });

  it('truncates a UDP answer over 512 bytes (TC) and gives it whole over TCP; EDNS raises the limit', async () => {
    const udp = await udpQuery(port, { questions: [{ type: 'A', name: 'many.meridian.test' }] });
    assert.deepEqual([udp.flag_tc, udp.answers?.length], [true, 0]);
    const edns = await udpQuery(port, { questions: [{ type: 'A', name: 'many.meridian.test' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, flags: 0, options: [] } as never] });
    assert.deepEqual([edns.flag_tc, edns.answers?.length], [false, 40]);
    const [tcp] = await tcpQueries(port, [{ questions: [{ type: 'A', name: 'many.meridian.test' }] }]);
    assert.deepEqual([tcp?.flag_tc, tcp?.answers?.length], [false, 40]);
  });

  it('answers several pipelined queries on one TCP connection, in order', async () => {
    const answers = await tcpQueries(port, [
      { questions: [{ type: 'A', name: 'www.meridian.test' }], additionals: ecs('127.0.2.0', 24) },
      { questions: [{ type: 'SOA', name: 'meridian.test' }] },
      { questions: [{ type: 'A', name: 'nope.meridian.test' }] },
    ]);
    assert.deepEqual(answers.map((a) => [a.id, a.rcode]), [[100, 'NOERROR'], [101, 'NOERROR'], [102, 'NXDOMAIN']]);
    assert.deepEqual(data(answers[0]?.answers), ['127.0.0.12']);
  });

  it('FORMERR for a bad client subnet, BADVERS for EDNS version 1, NOTIMP for other opcodes', async () => {
    // dns-packet's encoder masks the address, so write the option bytes by hand:
    // family 1, source /20, scope 0, address 127.0.1 (bit 23 set, past /20).
    const raw = (bytes: number[]) => [{ type: 'OPT', name: '.', udpPayloadSize: 4096, flags: 0, options: [{ code: 8, data: Buffer.from(bytes) }] } as never];
    const hostBits = await udpQuery(port, { questions: [{ type: 'A', name: 'www.meridian.test' }], additionals: raw([0, 1, 20, 0, 127, 0, 1]) });
    assert.equal(hostBits.rcode, 'FORMERR');
    const badLength = await udpQuery(port, { questions: [{ type: 'A', name: 'www.meridian.test' }], additionals: raw([0, 1, 24, 0, 127, 0, 1, 0]) });
    assert.equal(badLength.rcode, 'FORMERR');
    const badFamily = await udpQuery(port, { questions: [{ type: 'A', name: 'www.meridian.test' }], additionals: raw([0, 3, 8, 0, 127]) });
    assert.equal(badFamily.rcode, 'FORMERR');
    const zero = await udpQuery(port, { questions: [{ type: 'A', name: 'www.meridian.test' }], additionals: raw([0, 1, 0, 0]) });
    assert.equal(zero.rcode, 'NOERROR', 'source /0: answered for everyone');
    const q = encode({ type: 'query', id: 9, questions: [{ type: 'A', name: 'www.meridian.test' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, flags: 0, ednsVersion: 1, options: [] } as never] });
    const badvers = parse((await udpRaw(port, q))!);
    const opt = badvers.additionals?.find((a) => a.type === 'OPT') as unknown as { extendedRcode: number } | undefined;
    assert.equal(opt?.extendedRcode, 1, 'BADVERS = extended rcode 16');
    const notify = Buffer.from(encode({ type: 'query', id: 10, questions: [{ type: 'SOA', name: 'meridian.test' }] }));
    notify.writeUInt16BE(notify.readUInt16BE(2) | (4 << 11), 2); // opcode NOTIFY
    assert.equal(parse((await udpRaw(port, notify))!).rcode, 'NOTIMP');
  });

  it('answers a query longer than any answer (6,000 bytes of EDNS padding) as any other, over UDP', async () => {
    const big = encode({ type: 'query', id: 78, flags: 1 << 8, questions: [{ type: 'A', name: 'www.meridian.test' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, options: [{ code: 12, data: Buffer.alloc(6000) }] } as never] });
    assert.ok(big.length > 6000);
    const r = parse((await udpRaw(port, big))!);
    assert.deepEqual([r.id, r.rcode, data(r.answers).length], [78, 'NOERROR', 1]);
  });

  it('survives garbage over UDP and TCP and still answers after', async () => {
    const valid = encode({ type: 'query', id: 77, questions: [{ type: 'A', name: 'www.meridian.test' }] });
    const junk: Buffer[] = [Buffer.alloc(0), Buffer.from([1]), Buffer.alloc(11), valid.subarray(0, 20), valid.subarray(0, valid.length - 3)];
    for (let i = 0; i < 200; i++) junk.push(randomBytes(1 + (i % 600)));
    // A query whose header claims 65535 questions, and one with a compression pointer loop.
    const liar = Buffer.from(valid);
    liar.writeUInt16BE(0xffff, 4);
    junk.push(liar);
    const loop = Buffer.concat([valid.subarray(0, 12), Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    junk.push(loop);
    for (const j of junk) {
      const r = await udpRaw(port, j, 30);
      if (r !== undefined) {
        const d = parse(r);
        assert.equal(d.type, 'response');
        assert.ok(['FORMERR', 'NOTIMP', 'REFUSED', 'NXDOMAIN', 'NOERROR', 'SERVFAIL'].includes(d.rcode ?? ''), d.rcode);
      }
    }
    // A response sent to us is never answered (no error ping-pong between servers).
    assert.equal(await udpRaw(port, encode({ type: 'response', id: 5, questions: [{ type: 'A', name: 'www.meridian.test' }] }), 100), undefined);
    // TCP: garbage frames get FORMERR (or the connection ended), never a crash; a frame that
    // promises more bytes than it sends just waits; then a valid query on a new connection.
    const outcomes: string[] = [];
    for (const frame of [Buffer.concat([valid.subarray(0, 12), Buffer.alloc(28, 0xab)]), Buffer.alloc(3), Buffer.from([0xff, 0xff, 0, 0])]) {
      const closedOrAnswered = await new Promise<string>((resolve) => {
        const sock = connect(port, '127.0.0.1');
        const timer = setTimeout(() => {
          sock.destroy();
          resolve('waiting');
        }, 300);
        sock.on('data', () => {
          clearTimeout(timer);
          sock.destroy();
          resolve('answered');
        });
        sock.on('close', () => {
          clearTimeout(timer);
          resolve('closed');
        });
        sock.on('error', () => {});
        const prefix = Buffer.alloc(2);
        prefix.writeUInt16BE(frame.length === 4 ? 0xffff : frame.length);
        sock.write(Buffer.concat([prefix, frame]));
      });
      outcomes.push(closedOrAnswered);
    }
    // A query header over a garbled question gets an answer (FORMERR); one too short for a header
    // ends the connection; one whose prefix promises 65535 bytes waits for them.
    assert.deepEqual(outcomes, ['answered', 'closed', 'waiting']);
    const [viaTcp] = await tcpQueries(port, [{ questions: [{ type: 'A', name: 'www.meridian.test' }] }]);
    assert.equal(viaTcp?.rcode, 'NOERROR');
    const ok = await udpQuery(port, { questions: [{ type: 'A', name: 'www.meridian.test' }], additionals: ecs('127.0.1.0', 24) });
    assert.deepEqual(data(ok.answers), ['127.0.0.11']);
    const status = m.global()?.status();
    assert.equal(status?.zone, 'meridian.test');
  });

  it('counts queries by rcode and answers by region in /metrics', async () => {
    const text = await m.metrics.metricsText();
    assert.match(text, /meridian_dns_queries_total\{transport="udp",rcode="NOERROR"\} \d+/);
    assert.match(text, /meridian_dns_queries_total\{transport="udp",rcode="REFUSED"\} \d+/);
    assert.match(text, /meridian_dns_steering_decisions_total\{hostname="www.meridian.test",region="us-east",reason="nearest"\} \d+/);
    assert.match(text, /meridian_region_health_transitions_total\{region="eu-west",healthy="false"\} 1/);
  });
});

describe('GlobalLayer reload', () => {
  it('applies a new config, keeps overrides, moves the port, and refuses a port in use', async () => {
    const m = new Meridian(globalConfig(), { logger: quiet, seed: 1 });
    await m.start();
    try {
      const layer = m.global()!;
      const port1 = layer.ports().dns;
      layer.setRegionOverride('us-east', 'down');
      const next = globalConfig({}, { hostnames: [{ name: 'new.meridian.test', policy: 'geo' }] });
      assert.deepEqual((await m.reload(next)).ok, true);
      assert.equal(layer.ports().dns, port1, 'same address and port 0 config: sockets kept');
      const a = await udpQuery(port1, { questions: [{ type: 'A', name: 'new.meridian.test' }], additionals: ecs('127.0.1.0', 24) });
      assert.deepEqual(data(a.answers), ['127.0.0.12'], 'us-east is still overridden down: next nearest');
      const gone = await udpQuery(port1, { questions: [{ type: 'A', name: 'www.meridian.test' }] });
      assert.equal(gone.rcode, 'NXDOMAIN');
      // A free port: the responder moves there.
      const other = new Meridian(globalConfig(), { logger: quiet, seed: 2 });
      await other.start();
      const otherPort = other.global()!.ports().dns;
      await other.close();
      assert.equal((await m.reload(globalConfig({}, { dns: { address: '127.0.0.1', port: otherPort, zone: 'meridian.test' } }))).ok, true);
      assert.equal(layer.ports().dns, otherPort);
      const moved = await udpQuery(otherPort, { questions: [{ type: 'SOA', name: 'meridian.test' }] });
      assert.equal(moved.rcode, 'NOERROR');
      assert.equal(await udpRaw(port1, encode({ type: 'query', id: 1, questions: [{ type: 'SOA', name: 'meridian.test' }] }), 100), undefined, 'old port closed');
      // A port in use: the reload is refused and the responder stays where it was.
      const squatter = createSocket('udp4');
      await new Promise<void>((r) => squatter.bind(0, '127.0.0.1', r));
      const busy = squatter.address().port;
      const refused = await m.reload(globalConfig({}, { dns: { address: '127.0.0.1', port: busy, zone: 'meridian.test' } }));
      squatter.close();
      assert.equal(refused.ok, false);
      assert.match(refused.ok ? '' : (refused.errors[0] ?? ''), /dns: udp port \d+ on 127\.0\.0\.1 is already in use/);
      assert.equal(layer.ports().dns, otherPort);
      assert.equal((await udpQuery(otherPort, { questions: [{ type: 'SOA', name: 'meridian.test' }] })).rcode, 'NOERROR');
      // A reload whose listener cannot bind is refused whole: the global layer, which took
      // the new config first, is put back (the new hostname is not answered).
      const blocker = await new Promise<import('node:net').Server>((r) => {
        const srv = createTcpServer();
        srv.listen(0, '127.0.0.1', () => r(srv));
      });
      const blocked = (blocker.address() as { port: number }).port;
      const parts = validateConfig({
        listeners: [{ name: 'web', address: '127.0.0.1', port: blocked, routes: [{ cluster: 'c' }] }],
        clusters: [{ name: 'c', endpoints: [{ address: '127.0.0.1:9' }] }],
      });
      assert.ok(parts.ok);
      const late = globalConfig({}, { dns: { address: '127.0.0.1', port: otherPort, zone: 'meridian.test' }, hostnames: [{ name: 'late.meridian.test', policy: 'geo' }] });
      const withListener = { config: { ...late, listeners: parts.config.listeners, clusters: parts.config.clusters } };
      const half = await m.reload(withListener.config);
      blocker.close();
      assert.equal(half.ok, false);
      assert.equal((await udpQuery(otherPort, { questions: [{ type: 'A', name: 'late.meridian.test' }] })).rcode, 'NXDOMAIN', 'the refused config is not answered');
      assert.equal((await udpQuery(otherPort, { questions: [{ type: 'A', name: 'www.meridian.test' }] })).rcode, 'NOERROR', 'the running one still is');
      // Dropping `global` closes the layer.
      const plain = globalConfig();
      const noGlobal = { ...plain, global: undefined, listeners: plain.listeners };
      assert.equal((await m.reload(noGlobal)).ok, true);
      assert.equal(m.global(), undefined);
      assert.equal(await udpRaw(otherPort, encode({ type: 'query', id: 1, questions: [{ type: 'SOA', name: 'meridian.test' }] }), 100), undefined);
    } finally {
      await m.close();
    }
  });
});
