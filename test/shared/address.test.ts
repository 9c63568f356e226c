// One host:port grammar for the config, the proxy and the health checker.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { endpointAddress } from '../../src/core/discovery.js';
import { isHost, isHostName, parseHostPort, splitAddress, unmappedIp } from '../../src/shared/address.js';

describe('endpoint addresses', () => {
  it('parses host:port and [v6]:port, brackets removed, the address kept verbatim', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:8080'), { address: '127.0.0.1:8080', host: '127.0.0.1', port: 8080 });
    assert.deepEqual(parseHostPort('[::1]:9000'), { address: '[::1]:9000', host: '::1', port: 9000 });
    assert.deepEqual(parseHostPort('api.internal:443'), { address: 'api.internal:443', host: 'api.internal', port: 443 });
  });

  it('refuses what is not one, saying why', () => {
    for (const bad of ['nope', '::1:80', ':80', '[::1]80', '[nope]:80', 'a b:80'])
      assert.match(parseHostPort(bad) as string, /^(expected "host:port"|not a valid host)/, bad);
    assert.equal(parseHostPort('h:0'), 'port must be between 1 and 65535, got 0');
    assert.equal(parseHostPort('h:70000'), 'port must be between 1 and 65535, got 70000');
  });

  it('splitAddress reads every accepted address as parseHostPort does, and every address discovery writes', () => {
    const accepted = ['127.0.0.1:1', '10.0.0.2:65535', '[::1]:80', '[2001:db8::7]:8443', 'api.internal:443', 'localhost:8080', 'a_b-c.example.:9'];
    for (const a of accepted) {
      const p = parseHostPort(a);
      assert.notEqual(typeof p, 'string', a);
      assert.deepEqual(splitAddress(a), { host: (p as { host: string }).host, port: (p as { port: number }).port }, a);
    }
    for (const [ip, port] of [['10.1.2.3', 80], ['fe80::1', 8080]] as const) {
      const a = endpointAddress(ip, port);
      assert.deepEqual(parseHostPort(a), { address: a, host: ip, port });
      assert.deepEqual(splitAddress(a), { host: ip, port });
    }
  });

  it('hosts: IP literals or DNS names; unmapped IPv4', () => {
    assert.ok(isHost('10.0.0.1') && isHost('::1') && isHost('api.internal'));
    assert.ok(!isHost('a b') && !isHost('') && !isHostName('::1'));
    assert.equal(unmappedIp('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(unmappedIp('::ffff:zz'), '::ffff:zz');
    assert.equal(unmappedIp('::1'), '::1');
  });
});
