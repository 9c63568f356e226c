// The native batch engine's own claims, over real sockets on 127.0.0.1 (127/8 is all
// loopback, so other /24s are other clients): it is built where a C compiler is, the
// reuseport group is steered by source /24, a flood from one /24 over many source ports
// fills only its own socket's queue, and without the addon Meridian answers over dgram.
// Its answers are checked by every DNS test file, which run on it by default and again
// on dgram (dns-dgram-engine.test.ts).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { encode } from 'dns-packet';
import pino from 'pino';
import { Writable } from 'node:stream';
import { DnsResponder } from '../../src/global/dns-responder.js';
import { DnsServer } from '../../src/global/dns-server.js';
import { udpBatchFor } from '../../src/global/global-layer.js';
import { socketForSource } from '../../src/global/udp-batch.js';
import { loadUdpBatch } from '../../src/shared/udp-batch-addon.js';
import { Meridian } from '../../src/node/meridian.js';
import { globalConfig, quiet, udpQuery, until } from './helpers.js';

const load = loadUdpBatch();
const addon = 'addon' in load ? load.addon : undefined;
const hasCc = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
const noAddon = addon === undefined ? 'the udp-batch addon is not built' : false;

const dns = globalConfig().global!.dns;
const responder = new DnsResponder(dns, ['www.meridian.test'], () => ({
  decision: { policy: 'failover', region: 'us-east', reason: 'primary', order: ['us-east'], skipped: [], spilledFrom: [], locationSource: 'none', scopePrefixLength: 0 },
  addresses: ['127.0.0.11'],
}));
/**
 * The flood: 64 sockets on 127.0.5.1-8 (argv: port, prefix, query hex), bursts of 25 per
 * socket each turn until stdin closes or 20,000 bursts; prints how many it sent.
 */
const FLOOD = `
import { createSocket } from 'node:dgram';
const [port, prefix, hex] = [Number(process.argv[1]), process.argv[2], process.argv[3]];
const q = Buffer.from(hex, 'hex');
const socks = await Promise.all(Array.from({ length: 64 }, (_, i) => new Promise((r) => { const s = createSocket('udp4'); s.bind(0, prefix + (1 + (i % 8)), () => r(s)); })));
let sent = 0;
let stop = false;
process.stdin.on('end', () => (stop = true));
process.stdin.resume();
process.stdout.write('flooding\\n');
for (let burst = 0; burst < 20000 && !stop; burst++) {
  for (const s of socks) for (let k = 0; k < 25; k++) s.send(q, port, '127.0.0.1');
  sent += socks.length * 25;
  await new Promise((r) => setImmediate(r));
}
for (const s of socks) s.close();
process.stdout.write('sent ' + sent + '\\n');
`;
const query = encode({ type: 'query', id: 7, flags: 1 << 8, questions: [{ type: 'A', name: 'www.meridian.test' }] });

async function clientOn(address: string): Promise<Socket> {
  const s = createSocket('udp4');
  s.bind(0, address);
  await once(s, 'listening');
  return s;
}

/** One query from `s`, its answer or undefined after `ms` (each waits for its own ID). */
function ask(s: Socket, port: number, id: number, ms: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const msg = Buffer.from(query);
    msg.writeUInt16BE(id, 0);
    const onMessage = (m: Buffer): void => {
      if (m.readUInt16BE(0) !== id) return;
      clearTimeout(timer);
      s.off('message', onMessage);
      resolve(m);
    };
    const timer = setTimeout(() => {
      s.off('message', onMessage);
      resolve(undefined);
    }, ms);
    s.on('message', onMessage);
    s.send(msg, port, '127.0.0.1');
  });
}

describe('DNS batch engine', () => {
  it('is built by npm run build wherever a C compiler is', { skip: hasCc ? false : 'no C compiler here' }, () => {
    assert.equal('reason' in load ? load.reason : 'loaded', 'loaded');
  });

  it('steers by source /24: every datagram from one /24, whatever its port, is read by the socket the hash names', { skip: noAddon }, async () => {
    const server = new DnsServer({ address: '127.0.0.1', port: 0, udpSockets: 4, udpBatch: addon, respond: (m, c) => responder.respond(m, c), idleTimeoutMs: 1000, maxConnections: 10, log: quiet });
    const port = await server.listen();
    const clients: Socket[] = [];
    try {
      const sources = ['127.0.7.1', '127.0.7.200', '127.0.8.1', '127.0.9.9', '127.0.10.3'];
      const expected = [0, 0, 0, 0];
      for (const [n, address] of sources.entries()) {
        // Five source ports each: without steering the kernel's 4-tuple hash spreads them.
        for (let p = 0; p < 5; p++) {
          const c = await clientOn(address);
          clients.push(c);
          assert.ok(await ask(c, port, n * 10 + p, 2000), `answer to ${address}`);
          expected[socketForSource(Uint8Array.from(address.split('.').map(Number)), 4)]! += 1;
        }
      }
      assert.deepEqual(server.udpReceived, expected);
      assert.ok(expected.filter((n) => n > 0).length >= 2, 'the chosen prefixes land on more than one socket');
    } finally {
      for (const c of clients) c.close();
      await server.close();
    }
  });

  it('a flood from one /24 over 64 source ports fills its own socket only: another /24 still gets >= 95% of its answers', { skip: noAddon }, async () => {
    const sockets = 4;
    const flooder = '127.0.5.';
    const victim = '127.0.6.1';
    assert.notEqual(socketForSource(Uint8Array.from([127, 0, 5, 1]), sockets), socketForSource(Uint8Array.from([127, 0, 6, 1]), sockets), 'the two /24s hash to different sockets');
    // No RRL: every datagram read is answered, so reading the flood costs the responder real work.
    const server = new DnsServer({
      address: '127.0.0.1',
      port: 0,
      udpSockets: sockets,
      udpBatch: addon,
      respond: (m, c) => responder.respond(m, c),
      idleTimeoutMs: 1000,
      maxConnections: 10,
      log: quiet,
    });
    const port = await server.listen();
    // The flood runs in its own process, so it keeps every queue it reaches full while the
    // responder works (in this process it would pause whenever the responder ran).
    const flood = spawn(process.execPath, ['--input-type=module', '-e', FLOOD, String(port), flooder, query.toString('hex')], { stdio: ['pipe', 'pipe', 'inherit'] });
    let floodOut = '';
    flood.stdout.on('data', (d: Buffer) => (floodOut += d.toString()));
    const floodExited = once(flood, 'exit');
    const v = await clientOn(victim);
    const asked = 100;
    let answered = 0;
    try {
      await until(() => floodOut.includes('flooding'), 10_000, 'the flood to start');
      for (let i = 0; i < asked; i++) if (await ask(v, port, 1000 + i, 500)) answered++;
      flood.stdin.end();
      await floodExited;
      const sent = Number(/sent (\d+)/.exec(floodOut)?.[1]);
      const floodSocket = socketForSource(Uint8Array.from([127, 0, 5, 1]), sockets);
      const read = server.udpReceived;
      assert.ok(answered >= 0.95 * asked, `${answered} of ${asked} answered`);
      // The flood outran the responder: the kernel dropped part of it, in its own socket's queue.
      assert.ok((read[floodSocket] as number) < sent, `flood read ${read[floodSocket]} of ${sent} sent`);
      assert.equal(read.reduce((a, b) => a + b, 0) - (read[floodSocket] as number), asked, 'the other sockets read the victim\'s queries, all of them, and nothing else');
    } finally {
      flood.kill();
      v.close();
      await server.close();
    }
  });

  it('without the addon, auto falls back to dgram with one log line saying why, and answers', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(JSON.parse(c.toString()) as Record<string, unknown>), cb()) }));
    assert.equal(udpBatchFor('auto', log, () => ({ reason: 'no C compiler at build' })), undefined);
    assert.deepEqual(lines.map((l) => [l['msg'], l['reason']]), [['dns udp engine: Node dgram (the native batch engine is unavailable)', 'no C compiler at build']]);
    assert.throws(() => udpBatchFor('batch', log, () => ({ reason: 'no C compiler at build' })), /dns\.udp_engine: batch needs the native udp-batch addon: no C compiler at build/);

    const saved = process.env['MERIDIAN_UDP_BATCH_ADDON'];
    process.env['MERIDIAN_UDP_BATCH_ADDON'] = '/nonexistent/udp_batch.node';
    const started: Record<string, unknown>[] = [];
    const m = new Meridian(globalConfig(), { logger: pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, cb) => (started.push(JSON.parse(c.toString()) as Record<string, unknown>), cb()) })), seed: 7 });
    try {
      await m.start();
      const port = m.global()!.ports().dns;
      assert.equal((await udpQuery(port, { questions: [{ type: 'A', name: 'api.meridian.test' }] })).rcode, 'NOERROR');
      assert.equal(started.filter((l) => l['msg'] === 'dns udp engine: Node dgram (the native batch engine is unavailable)').length, 1);
      assert.equal(started.find((l) => l['msg'] === 'dns responder listening (udp and tcp)')?.['udpEngine'], 'dgram');
    } finally {
      await m.close();
      if (saved === undefined) delete process.env['MERIDIAN_UDP_BATCH_ADDON'];
      else process.env['MERIDIAN_UDP_BATCH_ADDON'] = saved;
    }
  });
});
