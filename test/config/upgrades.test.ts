// routes[].upgrades: the Upgrade protocols a route tunnels.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errors, valid } from './helpers.js';

function withUpgrades(upgrades: unknown): unknown {
  return {
    listeners: [{ name: 'web', port: 8080, routes: [{ cluster: 'api', upgrades }] }],
    clusters: [{ name: 'api', endpoints: [{ address: '127.0.0.1:9001' }] }],
  };
}

function routeUpgrades(input: unknown): readonly string[] {
  const l = valid(input).listeners[0];
  assert.ok(l && l.protocol !== 'tcp');
  return l.routes[0]?.upgrades ?? [];
}

describe('routes[].upgrades', () => {
  it('defaults to websocket; takes protocol tokens with a version, in lower case; may be empty', () => {
    assert.deepEqual(routeUpgrades({ listeners: [{ name: 'web', port: 8080, routes: [{ cluster: 'api' }] }], clusters: [{ name: 'api', endpoints: [{ address: '127.0.0.1:9001' }] }] }), ['websocket']);
    assert.deepEqual(routeUpgrades(withUpgrades(['WebSocket', 'foo/2', 'x-custom'])), ['websocket', 'foo/2', 'x-custom']);
    assert.deepEqual(routeUpgrades(withUpgrades([])), []);
  });

  it('refuses h2c and h2 (never tunnelled), what is not a token, and a non-list', () => {
    assert.deepEqual(errors(withUpgrades(['websocket', 'h2c', 'H2', 'web socket', ''])), [
      'listeners[0].routes[0].upgrades[1]: "h2c" cannot be tunnelled: Meridian strips an h2c upgrade and forwards the request as plain HTTP/1.1',
      'listeners[0].routes[0].upgrades[2]: "H2" cannot be tunnelled: Meridian strips an h2c upgrade and forwards the request as plain HTTP/1.1',
      'listeners[0].routes[0].upgrades[3]: expected an Upgrade protocol token like "websocket", got "web socket"',
      'listeners[0].routes[0].upgrades[4]: expected an Upgrade protocol token like "websocket", got ""',
    ]);
    assert.deepEqual(errors(withUpgrades('websocket')), ['listeners[0].routes[0].upgrades: expected a list, got "websocket"']);
  });
});
