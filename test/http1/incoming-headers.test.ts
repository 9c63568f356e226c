// The request-header object the engine builds (src/http1/incoming-headers.ts): node:http's
// rules for names and repeats, and nothing inherited, whatever a client names its fields.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cachedNames, incomingHeaders, lowerName } from '../../src/http1/incoming-headers.js';

describe('incomingHeaders', () => {
  it('lower-cases names and joins repeats as node:http does', () => {
    const h = incomingHeaders(['Host', 'a.example', 'Accept', 'text/html', 'ACCEPT', 'text/plain', 'Cookie', 'a=1', 'cookie', 'b=2', 'Set-Cookie', 'x=1', 'set-cookie', 'y=2', 'User-Agent', 'first', 'user-agent', 'second']);
    assert.deepEqual({ ...h }, {
      host: 'a.example',
      accept: 'text/html, text/plain',
      cookie: 'a=1; b=2',
      'set-cookie': ['x=1', 'y=2'],
      'user-agent': 'first',
    });
  });

  it('inherits nothing: fields named like Object.prototype members are plain fields, absent unless sent', () => {
    const none = incomingHeaders(['Host', 'a']);
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) assert.equal(none[name], undefined, name);
    const h = incomingHeaders(['__proto__', 'p', 'Constructor', 'c', 'toString', 't']);
    assert.equal(h['__proto__'], 'p');
    assert.equal(h['constructor'], 'c');
    assert.equal(h['tostring'], 't');
    assert.deepEqual(Object.keys(h), ['__proto__', 'constructor', 'tostring']);
    const names: string[] = [];
    for (const name in h) names.push(name);
    assert.deepEqual(names, ['__proto__', 'constructor', 'tostring'], 'for-in sees own fields only');
  });

  it('lower-cases any name, past the bound of its cache of names too, and gives the same string for every spelling', () => {
    // More distinct names than the cache holds: those past its bound are lower-cased all the same.
    for (let i = 0; i < 3000; i++) {
      const name = `X-Custom-${i}-Name`;
      assert.equal(lowerName(name), `x-custom-${i}-name`);
      assert.equal(lowerName(name), `x-custom-${i}-name`, 'the second time, from the cache or not');
    }
    assert.equal(cachedNames(), 1024, 'a client sending endless new names fills it to its bound, no further');
    const head = 'GET / HTTP/1.1\r\nUser-Agent: t\r\n';
    const cut = head.slice(16, 26); // as the parser cuts a name from the decoded head
    assert.equal(cut, 'User-Agent');
    assert.equal(lowerName(cut), 'user-agent');
    assert.equal(lowerName('USER-AGENT'), 'user-agent');
    const h = incomingHeaders(['USER-agent', 'a', 'x-EXTRA-2999-name', 'b']);
    assert.deepEqual({ ...h }, { 'user-agent': 'a', 'x-extra-2999-name': 'b' });
  });
});
