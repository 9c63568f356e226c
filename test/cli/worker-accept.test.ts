// worker_accept: how two workers share a listener's port, seen from /proc: which
// processes own a listening socket on it, and which own the connections it accepted.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startSampleBackend } from '../../src/backend/sample-backend.js';
import { REUSE_PORT, validateConfig } from '../../src/config/index.js';
import { freePort, until } from '../proxy/harness.js';
import { children, startWorkers } from './workers-harness.js';

/** The socket inodes of IPv4 TCP sockets with local port `port` in state `state` (0A listen, 01 established). */
function tcpInodes(port: number, state: '0A' | '01'): Set<string> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const rows = readFileSync('/proc/net/tcp', 'utf8').trim().split('\n').slice(1);
  return new Set(
    rows
      .map((r) => r.trim().split(/\s+/))
      .filter((f) => f[1]!.endsWith(`:${hex}`) && f[3] === state)
      .map((f) => f[9]!),
  );
}

/** Which of `pids` hold each of `inodes` open. */
function owners(pids: readonly number[], inodes: Set<string>): number[] {
  const found: number[] = [];
  for (const pid of pids) {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue; // closed meanwhile
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1]!)) found.push(pid);
    }
  }
  return found.sort((a, b) => a - b);
}

/** Open `n` client connections, each with one answered keep-alive request, and keep them open. */
async function heldConnections(port: number, n: number): Promise<Socket[]> {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const s = connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
          let got = '';
          s.on('data', (d: Buffer) => {
            got += d.toString();
            if (/\r\n\r\n[^]*\n$/.test(got)) resolve(s);
          });
          s.on('error', reject);
        }),
    ),
  );
}

describe('worker_accept', () => {
  const cleanup: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanup) await c();
  });

  async function start(accept: string) {
    const backend = await startSampleBackend({ name: 'b' });
    cleanup.push(() => backend.close());
    const port = await freePort();
    const file = join(mkdtempSync(join(tmpdir(), 'meridian-accept-')), 'm.json');
    writeFileSync(
      file,
      JSON.stringify({
        workers: 2,
        worker_accept: accept,
        admin: { port: 0 },
        access_log: { enabled: false },
        listeners: [{ name: 'web', address: '127.0.0.1', port, routes: [{ cluster: 'c' }] }],
        clusters: [{ name: 'c', endpoints: [{ address: `127.0.0.1:${backend.port}` }] }],
      }),
    );
    const { child, exited } = await startWorkers(file, cleanup);
    const workers = children(child.pid!).sort((a, b) => a - b);
    assert.equal(workers.length, 2);
    return { child, exited, port, workers };
  }

  it('reuse_port (auto, on a runtime that has it): a listening socket in each worker, none in the primary; the kernel spreads connections over both', { skip: REUSE_PORT ? false : `Node ${process.versions.node} has no reusePort` }, async () => {
    const { child, exited, port, workers } = await start('auto');
    const listening = tcpInodes(port, '0A');
    assert.equal(listening.size, 2);
    assert.deepEqual(owners(workers, listening), workers);
    assert.deepEqual(owners([child.pid!], listening), []);
    // 40 connections from 40 source ports: the kernel's hash puts some on each socket.
    const held = await heldConnections(port, 40);
    const served = owners(workers, tcpInodes(port, '01'));
    for (const s of held) s.destroy();
    assert.equal(served.length, 40, 'every accepted connection is in a worker');
    assert.deepEqual([...new Set(served)], workers);
    // A worker that dies takes its socket with it; its replacement binds one of its own.
    process.kill(workers[0]!, 'SIGKILL');
    let now: number[] = [];
    await until(() => {
      now = children(child.pid!).sort((a, b) => a - b);
      return now.length === 2 && !now.includes(workers[0]!) && owners(now, tcpInodes(port, '0A')).length === 2;
    }, 15_000, 'a replacement worker listening');
    assert.deepEqual(owners(now, tcpInodes(port, '0A')), now);
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  it('round_robin: one listening socket, the primary\'s, which hands each connection to a worker', async () => {
    const { child, exited, port, workers } = await start('round_robin');
    const listening = tcpInodes(port, '0A');
    assert.equal(listening.size, 1);
    assert.deepEqual(owners([child.pid!], listening), [child.pid!]);
    assert.deepEqual(owners(workers, listening), []);
    const held = await heldConnections(port, 10);
    const served = owners(workers, tcpInodes(port, '01'));
    for (const s of held) s.destroy();
    assert.equal(served.length, 10, 'every accepted connection is in a worker');
    assert.deepEqual([...new Set(served)], workers);
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  it('reuse_port is refused where the runtime cannot, and on port 0 everywhere, each at its field', () => {
    const base = { listeners: [{ name: 'web', address: '127.0.0.1', port: 0, routes: [{ cluster: 'c' }] }], clusters: [{ name: 'c', endpoints: [{ address: '127.0.0.1:1' }] }] };
    const r = validateConfig({ ...base, workers: 2, worker_accept: 'reuse_port' });
    assert.equal(r.ok, false);
    const errors = r.ok ? [] : r.errors;
    if (REUSE_PORT) assert.deepEqual(errors, ['listeners[0].port: port 0 with worker_accept: reuse_port: each worker would bind a port of its own; give a fixed port, or use worker_accept: auto (round robin on port 0)']);
    else assert.deepEqual(errors, [`worker_accept: reuse_port needs SO_REUSEPORT listening (Node 22.12 or 23.1 and later); this is Node ${process.versions.node}: use round_robin or auto`]);
    assert.equal(validateConfig({ ...base, workers: 2, worker_accept: 'auto' }).ok, true);
  });
});
