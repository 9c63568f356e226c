import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';

/** Runs `body` (an ES module, V8's natives syntax allowed) in a fresh Node and returns what it prints, as JSON. */
function inChild(body: string): unknown {
  const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', body], { encoding: 'utf8', timeout: 30_000 });
  return JSON.parse(out.trim().split('\n').pop() as string);
}

const moduleUrl = (rel: string) => new URL(rel, import.meta.url).href;

describe('String.prototype stays fast', () => {
  it('a subclass of String leaves String.prototype a dictionary; keepStringPrototypeFast makes it fast again, and a later subclass leaves it so', () => {
    const seen = inChild(`
      const { keepStringPrototypeFast } = await import(${JSON.stringify(moduleUrl('../../src/shared/string-prototype.js'))});
      const fast = () => %HasFastProperties(String.prototype);
      const fresh = fast();
      class Verbatim extends String {}
      const afterSubclass = fast();
      keepStringPrototypeFast();
      const afterKeep = fast();
      class Another extends String {}
      console.log(JSON.stringify({ fresh, afterSubclass, afterKeep, afterAnother: fast(), used: [Verbatim, Another].length }));
    `);
    assert.deepEqual(seen, { fresh: true, afterSubclass: false, afterKeep: true, afterAnother: true, used: 2 });
  });

  it('in a started Meridian, with every module it loads (ioredis among them), String.prototype is fast', () => {
    const seen = inChild(`
      const h = await import(${JSON.stringify(moduleUrl('../proxy/harness.js'))});
      const bs = await h.backends(1);
      const m = await h.startMeridian(h.simpleConfig(bs));
      const fast = %HasFastProperties(String.prototype);
      await h.closeAll(m, bs);
      console.log(JSON.stringify({ fast }));
    `);
    assert.deepEqual(seen, { fast: true });
  });
});
