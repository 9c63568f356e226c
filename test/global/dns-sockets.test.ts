// The DNS responder's UDP sockets: several on one port with reusePort (the batch engine
// sets it itself; dgram has it from Node 22.12).
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { encode } from 'dns-packet';
import { describe, it } from 'node:test';
import { REUSE_PORT } from '../../src/config/index.js';
import { DnsResponder } from '../../src/global/dns-responder.js';
import { DnsServer } from '../../src/global/dns-server.js';
import { globalConfig, quiet, testUdpBatch, udpQuery } from './helpers.js';

const dns = globalConfig().global!.dns;
const responder = new DnsResponder(dns, ['www.meridian.test'], () => ({
  decision: { policy: 'failover', region: 'us-east', reason: 'primary', order: ['us-east'], skipped: [], spilledFrom: [], locationSource: 'none', scopePrefixLength: 0 },
  addresses: ['127.0.0.11'],
}));

describe('DNS UDP sockets', () => {
  it('binds udp_sockets sockets on one port, and every client is answered', { skip: REUSE_PORT || testUdpBatch() !== undefined ? false : `Node ${process.versions.node} has no dgram reusePort and the batch engine is off` }, async () => {
    const server = new DnsServer({ address: '127.0.0.1', port: 0, udpSockets: 4, respond: (m, c) => responder.respond(m, c), udpBatch: testUdpBatch(), idleTimeoutMs: 1000, maxConnections: 10, log: quiet });
    const port = await server.listen();
    try {
      assert.equal(server.udpSockets, 4);
      // Each query from a fresh client port: the kernel spreads them over the sockets.
      for (let i = 0; i < 40; i++) assert.equal((await udpQuery(port, { questions: [{ type: 'A', name: 'www.meridian.test' }] })).rcode, 'NOERROR');
    } finally {
      await server.close();
    }
  });

  it('tells the responder the client as dgram writes it: ::1 over IPv6, ::ffff:127.0.0.1 for IPv4 on a dual-stack socket', async () => {
    const seen: string[] = [];
    const server = new DnsServer({ address: '::', port: 0, udpBatch: testUdpBatch(), respond: (m, c) => (seen.push(c.remoteAddress), responder.respond(m, c)), idleTimeoutMs: 1000, maxConnections: 10, log: quiet });
    const port = await server.listen();
    try {
      const ask = async (type: 'udp4' | 'udp6', to: string): Promise<void> => {
        const c = createSocket(type);
        const answered = once(c, 'message');
        c.send(encode({ type: 'query', id: 9, questions: [{ type: 'A', name: 'www.meridian.test' }] }), port, to);
        await answered;
        c.close();
      };
      await ask('udp6', '::1');
      await ask('udp4', '127.0.0.1');
      assert.deepEqual(seen, ['::1', '::ffff:127.0.0.1']);
    } finally {
      await server.close();
    }
  });

  it('binds one UDP socket by default', async () => {
    const server = new DnsServer({ address: '127.0.0.1', port: 0, respond: (m, c) => responder.respond(m, c), udpBatch: testUdpBatch(), idleTimeoutMs: 1000, maxConnections: 10, log: quiet });
    const port = await server.listen();
    try {
      assert.equal(server.udpSockets, 1);
      assert.equal((await udpQuery(port, { questions: [{ type: 'A', name: 'www.meridian.test' }] })).rcode, 'NOERROR');
    } finally {
      await server.close();
    }
  });
});
