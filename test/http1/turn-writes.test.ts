// Writes held to the end of the event-loop turn (src/http1/turn-writes.ts), over real
// loopback sockets: held while the turn runs, handed to the kernel in its check phase, in
// order, and never lost to an end() in between.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { corkForTurn, pipeForTurn } from '../../src/http1/turn-writes.js';
import { until } from '../proxy/harness.js';

const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

/** A connected pair: `a` is ours to write on, `b` (the accepted side)'s bytes are collected in `got`. */
async function pair(): Promise<{ a: Socket; b: Socket; got: () => string; closed: Promise<unknown> }> {
  const server = createServer();
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const a = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(a, 'connect');
  const [b] = await accepted;
  const chunks: Buffer[] = [];
  b.on('data', (c: Buffer) => chunks.push(c));
  return { a, b, got: () => Buffer.concat(chunks).toString('latin1'), closed: once(b, 'end') };
}

/** Resolves in this turn's check phase, after the immediates set before it (corkForTurn's flush among them). */
const checkPhase = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('writes held to the end of the turn', () => {
  it('are held while the turn runs and handed over, in order, in its check phase', async () => {
    const { a, got } = await pair();
    corkForTurn(a);
    a.write('one ');
    corkForTurn(a); // a second call in the same turn changes nothing
    a.write('two');
    assert.equal(a.writableLength, 7, 'held in the socket, not yet written');
    assert.equal(a.writableCorked, 1);
    await checkPhase();
    assert.equal(a.writableCorked, 0);
    assert.equal(a.writableLength, 0, 'handed to the kernel');
    await until(() => got().length >= 7, 2000, 'the bytes');
    assert.equal(got(), 'one two');
    a.destroy();
  });

  it('leaves a socket the caller corked to the caller', async () => {
    const { a } = await pair();
    a.cork();
    corkForTurn(a);
    a.write('x');
    assert.equal(a.writableCorked, 1, 'not corked a second time');
    await checkPhase();
    assert.equal(a.writableLength, 1, 'still the caller’s to uncork');
    a.uncork();
    assert.equal(a.writableLength, 0);
    a.destroy();
  });

  it('loses nothing when the socket is ended in the same turn', async () => {
    const { a, got, closed } = await pair();
    corkForTurn(a);
    a.write('answer');
    a.end(' and goodbye');
    await closed;
    assert.equal(got(), 'answer and goodbye');
  });

  it('a socket destroyed with writes held does not hold up the others of its turn', async () => {
    const first = await pair();
    const second = await pair();
    corkForTurn(first.a);
    corkForTurn(second.a);
    first.a.write('never sent');
    second.a.write('sent');
    first.a.destroy();
    await checkPhase();
    assert.equal(second.a.writableLength, 0);
    await until(() => second.got() === 'sent', 2000, 'the second socket’s bytes');
    second.a.destroy();
  });

  it('a tunnel (pipeForTurn) holds what it passes on until the turn ends, in order, and passes the end on', async () => {
    // We write on `inbound.a`; the tunnel reads it from `inbound.b` and writes on `out.a`.
    const inbound = await pair();
    const out = await pair();
    const src = inbound.b;
    pipeForTurn(src, out.a);
    const held: { corked: number; buffered: number; chunk: number }[] = [];
    // After pipe's own listener: what it just wrote is still in the corked socket.
    src.on('data', (c: Buffer) => held.push({ corked: out.a.writableCorked, buffered: out.a.writableLength, chunk: c.length }));
    inbound.a.write('first ');
    await until(() => out.got() === 'first ', 2000, 'the first bytes');
    inbound.a.end('and last');
    await out.closed;
    assert.equal(out.got(), 'first and last', 'in order, and the FIN passed on after them');
    assert.ok(held.length >= 2);
    for (const h of held) {
      assert.equal(h.corked, 1, 'corked while the turn runs');
      assert.ok(h.buffered >= h.chunk, 'the chunk held in the socket');
    }
  });
});
