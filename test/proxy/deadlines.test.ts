// Request and per-try deadlines on per-duration lists (src/proxy/deadlines.ts), with real
// timers: they fire in order, not early, never once cleared, and hold the process open
// exactly while one is set.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Deadline } from '../../src/proxy/deadlines.js';

/** A deadline owner that records when it fired, by name, into `log`. */
function owner(name: string, log: { name: string; at: number }[]): { onDeadline(): void } {
  return { onDeadline: () => log.push({ name, at: performance.now() }) };
}

const until = (pred: () => boolean): Promise<void> =>
  new Promise((resolve) => {
    const poll = (): void => (pred() ? resolve() : void setTimeout(poll, 5));
    poll();
  });

describe('deadlines', () => {
  it('fire in the order they were set, each not before its time, and a cleared one never', async () => {
    const log: { name: string; at: number }[] = [];
    const set: Record<string, number> = {};
    const ds = ['a', 'b', 'c', 'd'].map((name) => new Deadline(owner(name, log)));
    for (const [i, d] of ds.entries()) {
      set[String.fromCharCode(97 + i)] = performance.now();
      d.set(30);
      await new Promise((r) => setTimeout(r, 3));
    }
    (ds[0] as Deadline).clear(); // the head: its timer is left armed, and finds b not yet due
    (ds[2] as Deadline).clear(); // from the middle
    assert.equal((ds[0] as Deadline).isSet, false);
    // d is due last of the four: a or c, had they fired, would be in the log before it.
    await until(() => log.some((e) => e.name === 'd'));
    assert.deepEqual(
      log.map((e) => e.name),
      ['b', 'd'],
    );
    for (const e of log) assert.ok(e.at >= (set[e.name] as number) + 29, `${e.name} not early`);
  });

  it('set again, a deadline moves: it fires once, at its new time', async () => {
    const log: { name: string; at: number }[] = [];
    const d = new Deadline(owner('moved', log));
    const other = new Deadline(owner('marker', log));
    d.set(15);
    const reset = performance.now();
    d.set(40);
    other.set(60);
    await until(() => log.length === 2);
    assert.deepEqual(
      log.map((e) => e.name),
      ['moved', 'marker'],
    );
    assert.ok((log[0] as { at: number }).at >= reset + 39, 'at its new time, not its first');
    assert.equal(d.isSet, false);
  });

  it('an owner may set a deadline again from onDeadline (a retry arms its own)', async () => {
    let fired = 0;
    const d: Deadline = new Deadline({
      onDeadline: () => {
        fired++;
        if (fired < 3) d.set(5);
      },
    });
    d.set(5);
    await until(() => fired === 3);
    assert.equal(d.isSet, false, 'the third firing set nothing: nothing more can fire');
  });

  it('take what setTimeout takes: under a millisecond, or NaN, is one millisecond', async () => {
    const log: { name: string; at: number }[] = [];
    new Deadline(owner('tiny', log)).set(0.000001);
    new Deadline(owner('nan', log)).set(NaN);
    await until(() => log.length === 2);
    assert.deepEqual(log.map((e) => e.name).sort(), ['nan', 'tiny']);
  });

  it('hold the process open while one is set, and not once cleared', () => {
    const module = fileURLToPath(new URL('../../src/proxy/deadlines.js', import.meta.url));
    const script = (body: string): string => `import { Deadline } from ${JSON.stringify(module)};\n${body}`;
    const run = (body: string) => spawnSync(process.execPath, ['--input-type=module', '-e', script(body)], { encoding: 'utf8', timeout: 30_000 });
    const held = run(`const d = new Deadline({ onDeadline: () => console.log('fired') }); d.set(200);`);
    assert.equal(held.status, 0, held.stderr);
    assert.equal(held.stdout, 'fired\n', 'the process waited for the deadline');
    // Cleared, a 60 s deadline does not keep the process for 60 s (the spawn's own limit is 30 s).
    const cleared = run(`const d = new Deadline({ onDeadline: () => console.log('fired') }); d.set(60000); d.clear(); process.on('exit', () => console.log('exit'));`);
    assert.equal(cleared.signal, null, 'exited by itself');
    assert.equal(cleared.stdout, 'exit\n');
  });
});
