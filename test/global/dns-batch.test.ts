// The native batch engine's own claims, over real sockets on 127.0.0.1 (127/8 is all
// loopback, so other /24s are other clients): it is built where a C compiler is, the
// reuseport group is steered by source /24, a flood from one /24 over many source ports
// fills only its own socket's queue, and without the addon Meridian answers over dgram.
// Its answers are checked by every DNS test file, which run on it by default and again
// on dgram (dns-dgram-engine.test.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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
import { globalConfig, quiet, udpQuery } from './helpers.js';

const load = loadUdpBatch();
const addon = 'addon' in load ? load.addon : undefined;
const hasCc = spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
const noAddon = addon === undefined ? 'the udp-batch addon is not built' : false;

const dns = globalConfig().global!.dns;
const responder = new DnsResponder(dns, ['www.meridian.test'], () => ({
  decision: { policy: 'failover', region: 'us-east', reason: 'primary', order: ['us-east'], skipped: [], spilledFrom: [], locationSource: 'none', scopePrefixLength: 0 },
  addresses: ['127.0.0.11'],
}));
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
    // The flood's answers are dropped (as RRL drops a flooder's): what is measured is the queue.
    const server = new DnsServer({
      address: '127.0.0.1',
      port: 0,
      udpSockets: sockets,
      udpBatch: addon,
      respond: (m, c) => responder.respond(m, c),
      rateLimit: (a) => (a.startsWith(flooder) ? 'drop' : 'answer'),
      idleTimeoutMs: 1000,
      maxConnections: 10,
      log: quiet,
    });
    const port = await server.listen();
    const flood: Socket[] = [];
    for (let i = 0; i < 64; i++) flood.push(await clientOn(`${flooder}${1 + (i % 8)}`));
    const v = await clientOn(victim);
    let sent = 0;
    let done = false;
    const flooding = (async () => {
      // Bursts far past what one JS thread answers; bounded, and it stops with the victim.
      for (let burst = 0; burst < 400 && !done; burst++) {
        for (const s of flood) for (let k = 0; k < 25; k++) s.send(query, port, '127.0.0.1');
        sent += flood.length * 25;
        await new Promise((r) => setImmediate(r));
      }
    })();
    const asked = 100;
    let answered = 0;
    try {
      for (let i = 0; i < asked; i++) if (await ask(v, port, 1000 + i, 1000)) answered++;
      done = true;
      await flooding;
      const floodSocket = socketForSource(Uint8Array.from([127, 0, 5, 1]), sockets);
      const read = server.udpReceived;
      // The flood outran the responder: the kernel dropped part of it, in its own socket's queue.
      assert.ok((read[floodSocket] as number) < sent, `flood read ${read[floodSocket]} of ${sent} sent`);
      assert.equal(read.reduce((a, b) => a + b, 0) - (read[floodSocket] as number), asked, 'every query of the victim was read (none dropped in a queue)');
      assert.ok(answered >= 0.95 * asked, `${answered} of ${asked} answered`);
    } finally {
      done = true;
      await flooding;
      for (const s of flood) s.close();
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
