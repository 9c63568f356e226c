// The request-header object the engine builds (src/http1/incoming-headers.ts): node:http's
// rules for names and repeats, and nothing inherited, whatever a client names its fields.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { incomingHeaders } from '../../src/http1/incoming-headers.js';

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
});
