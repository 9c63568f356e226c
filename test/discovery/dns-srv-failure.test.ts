// An SRV answer whose targets' address lookups all fail: the refresh fails as a whole, and
// no target's failure is left unhandled (each one was an unhandledRejection, which ends a
// Node process by default). A real UDP DNS server on 127.0.0.1, written with dns-packet:
// SRV for three targets, SERVFAIL for every A query.
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { DnsSource } from '../../src/discovery/dns-source.js';
import { until } from '../proxy/harness.js';

describe('discovery: SRV targets that cannot be resolved', () => {
  let server: Socket;
  let port = 0;
  const aQueries: string[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

  before(async () => {
    process.on('unhandledRejection', onUnhandled);
    server = createSocket('udp4');
    server.on('message', (msg, rinfo) => {
      const q = dnsPacket.decode(msg);
      const question = q.questions?.[0];
      if (question === undefined) return;
      const srv = question.type === 'SRV';
      if (!srv) aQueries.push(`${question.type} ${question.name}`);
      const answer = dnsPacket.encode({
        type: 'response',
        id: q.id,
        flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (srv ? 0 : 2), // rcode 2: SERVFAIL
        questions: q.questions,
        answers: srv ? ['b2', 'b3', 'b4'].map((t, i) => ({ type: 'SRV', name: question.name, ttl: 30, data: { priority: 10, weight: 1, port: 8000 + i, target: `${t}.test` } })) : [],
      });
      server.send(answer, rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
    port = server.address().port;
  });

  after(() => {
    process.off('unhandledRejection', onUnhandled);
    server.close();
  });

  it('fails the refresh naming a target, and leaves no rejection unhandled', async () => {
    const source = new DnsSource({ name: '_http._tcp.web.test', type: 'SRV', refresh: 'ttl', min_ttl: 50, max_ttl: 1000, resolver: `127.0.0.1:${port}`, timeout: 500 });
    const first = await source.resolve();
    assert.equal(first.answer.ok, false);
    assert.match(first.answer.ok ? '' : first.answer.error, /^SRV _http\._tcp\.web\.test: A b[234]\.test: ESERVFAIL$/);
    // Every target's lookup was answered (and failed); a second refresh, answered the same
    // way after them on the same resolver, has been through the event loop after all of them.
    await until(() => ['b2', 'b3', 'b4'].every((t) => aQueries.includes(`A ${t}.test`)), 5000, 'an A query for every target');
    const second = await source.resolve();
    assert.equal(second.answer.ok, false);
    assert.deepEqual(unhandled, []);
  });
});
