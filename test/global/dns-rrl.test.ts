// Response rate limiting through real UDP sockets: a flood from one /24 (client sockets
// bound to 127.0.1.x) is limited while another /24 (127.0.2.x) is answered in full.
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { encode } from 'dns-packet';
import { Meridian } from '../../src/node/meridian.js';
import { globalConfig, parse, quiet, type Reply } from './helpers.js';

const RATE = 20;

/** A UDP client bound to `address`, collecting every answer it gets. */
async function client(address: string): Promise<{ sock: Socket; answers: Reply[] }> {
  const sock = createSocket('udp4');
  const answers: Reply[] = [];
  sock.on('message', (m) => answers.push(parse(m)));
  await new Promise<void>((r) => sock.bind(0, address, r));
  return { sock, answers };
}

const query = (id: number): Buffer => encode({ type: 'query', id, flags: 1 << 8, questions: [{ type: 'A', name: 'www.meridian.test' }] });

function send(sock: Socket, port: number, msg: Buffer): Promise<void> {
  return new Promise((resolve, reject) => sock.send(msg, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
}

/** Send and wait for the answer with this ID (the server handles one socket's datagrams in order). */
async function ask(c: { sock: Socket; answers: Reply[] }, port: number, id: number): Promise<Reply> {
  await send(c.sock, port, query(id));
  for (let i = 0; i < 500; i++) {
    const got = c.answers.find((a) => a.id === id);
    if (got !== undefined) return got;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no answer to ${id}`);
}

describe('DNS response rate limiting (real sockets)', () => {
  let m: Meridian;
  let port: number;
  before(async () => {
    const config = globalConfig({}, { dns: { address: '127.0.0.1', port: 0, zone: 'meridian.test', rrl: { responses_per_second: RATE, slip: 2, window: '15s' } } });
    m = new Meridian(config, { logger: quiet, seed: 5 });
    await m.start();
    port = m.global()!.ports().dns;
  });
  after(() => m.close());

  it('limits a flood from one /24, slips every second limited answer as TC, and answers another /24 in full', async () => {
    const flooders = await Promise.all(['127.0.1.1', '127.0.1.2', '127.0.1.3'].map(client));
    const other = await Promise.all(['127.0.2.1', '127.0.2.2'].map(client));
    const sync = await client('127.0.3.1');
    const CHUNKS = 12;
    const PER_CHUNK = 50;
    const otherAnswers: Reply[] = [];
    try {
      for (let c = 0; c < CHUNKS; c++) {
        for (let i = 0; i < PER_CHUNK; i++) await send(flooders[i % 3]!.sock, port, query(c * PER_CHUNK + i));
        // Another /24 asks in the middle of the flood: answered, whole.
        otherAnswers.push(await ask(other[c % 2]!, port, 10_000 + c));
        // A third /24's answer means the server has handled this chunk (bounded queues, nothing lost to the kernel).
        await ask(sync, port, 20_000 + c);
      }
      const got = flooders.flatMap((f) => f.answers);
      const full = got.filter((a) => !a.flag_tc);
      const slipped = got.filter((a) => a.flag_tc);
      const limited = CHUNKS * PER_CHUNK - full.length;
      assert.ok(full.length >= RATE, `a second's worth answered first (${full.length})`);
      assert.ok(limited > CHUNKS * PER_CHUNK / 2, `most of the flood limited (${limited})`);
      assert.equal(slipped.length, Math.floor(limited / 2), 'slip 2: every second limited answer is sent truncated');
      for (const s of slipped) assert.deepEqual([s.rcode, s.answers?.length, s.questions?.[0]?.name], ['NOERROR', 0, 'www.meridian.test']);
      assert.deepEqual(otherAnswers.map((a) => [a.flag_tc, a.rcode, a.answers?.length]), Array(CHUNKS).fill([false, 'NOERROR', 1]));
      const text = await m.metrics.metricsText();
      assert.match(text, new RegExp(`meridian_dns_rrl_responses_total\\{action="dropped"\\} ${limited - slipped.length}\\n`));
      assert.match(text, new RegExp(`meridian_dns_rrl_responses_total\\{action="slipped"\\} ${slipped.length}\\n`));
    } finally {
      for (const c of [...flooders, ...other, sync]) c.sock.close();
    }
  });

  it('never limits TCP: the flooded /24 still gets its answer over TCP', async () => {
    const reply = await new Promise<Reply>((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.1.1' });
      let buf = Buffer.alloc(0);
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          s.end();
          resolve(parse(buf.subarray(2, 2 + buf.readUInt16BE(0))));
        }
      });
      s.on('error', reject);
      const q = query(7);
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(q.length);
      s.write(Buffer.concat([prefix, q]));
    });
    assert.deepEqual([reply.flag_tc, reply.rcode, reply.answers?.length], [false, 'NOERROR', 1]);
  });
});
