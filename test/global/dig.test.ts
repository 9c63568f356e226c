// The DNS responder as a user meets it: Debian's `dig` against a real Meridian, with
// region health from real HTTP health endpoints that the test stops and restarts.
// Skips (saying so) when dig is not installed (`apt-get install -y dnsutils`).
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { Meridian } from '../../src/node/meridian.js';
import { globalConfig, HealthServer, quiet, until } from './helpers.js';

const run = promisify(execFile);

function haveDig(): boolean {
  try {
    execFileSync('dig', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const skip = haveDig() ? false : 'dig is not installed (apt-get install -y dnsutils)';

async function dig(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', ...args]);
  return stdout;
}

/** `dig +short`: the answer's data, one per line. */
async function short(port: number, ...args: string[]): Promise<string[]> {
  return (await dig(port, '+short', ...args)).split('\n').filter((l) => l !== '');
}

describe('dig against the DNS responder', { skip }, () => {
  let m: Meridian;
  let port: number;
  const health: Record<string, HealthServer> = {};
  before(async () => {
    for (const r of ['us-east', 'eu-west', 'ap-southeast']) health[r] = await new HealthServer().start();
    const urls = Object.fromEntries(Object.entries(health).map(([k, v]) => [k, v.url]));
    m = new Meridian(globalConfig(urls), { logger: quiet, seed: 3 });
    await m.start();
    port = m.global()!.ports().dns;
  });
  after(async () => {
    await m.close();
    await Promise.all(Object.values(health).map((h) => h.close()));
  });

  it('steers each client subnet (+subnet) to its region, with the configured TTL', async () => {
    assert.deepEqual(await short(port, 'www.meridian.test', 'A', '+subnet=127.0.1.0/24'), ['127.0.0.11']);
    assert.deepEqual(await short(port, 'www.meridian.test', 'A', '+subnet=127.0.2.0/24'), ['127.0.0.12']);
    assert.deepEqual(await short(port, 'www.meridian.test', 'A', '+subnet=127.0.3.0/24'), ['127.0.0.13']);
    assert.deepEqual(await short(port, 'www.meridian.test', 'AAAA', '+subnet=127.0.1.0/24'), ['::11']);
    const full = await dig(port, 'www.meridian.test', 'A', '+subnet=127.0.2.0/24', '+noall', '+answer', '+comments');
    assert.match(full, /^www\.meridian\.test\.\s+30\s+IN\s+A\s+127\.0\.0\.12$/m);
    assert.match(full, /flags: qr aa rd;/);
    assert.match(full, /CLIENT-SUBNET: 127\.0\.2\.0\/24\/24/);
  });

  it('moves the answer when the region\'s health endpoint stops, and back when it returns', async () => {
    const q = ['www.meridian.test', 'A', '+subnet=127.0.2.0/24'];
    assert.deepEqual(await short(port, ...q), ['127.0.0.12']);
    await health['eu-west']!.stop();
    await until(() => m.global()!.status().regions.find((r) => r.name === 'eu-west')?.healthy === false, 5000, 'eu-west down');
    assert.deepEqual(await short(port, ...q), ['127.0.0.11'], 'Paris clients: next nearest is us-east');
    await health['eu-west']!.restart();
    await until(() => m.global()!.status().regions.find((r) => r.name === 'eu-west')?.healthy === true, 5000, 'eu-west up');
    assert.deepEqual(await short(port, ...q), ['127.0.0.12']);
  });

  it('takes reported capacity and load from the health body', async () => {
    health['ap-southeast']!.body = JSON.stringify({ healthy_fraction: 0.5, load_rps: 120 });
    await until(() => m.global()!.status().regions.find((r) => r.name === 'ap-southeast')?.loadRps === 120, 5000, 'load reported');
    const ap = m.global()!.status().regions.find((r) => r.name === 'ap-southeast');
    assert.equal(ap?.healthyFraction, 0.5);
    health['ap-southeast']!.body = JSON.stringify({ healthy: 0, total: 4 });
    await until(() => m.global()!.status().regions.find((r) => r.name === 'ap-southeast')?.healthy === false, 5000, 'no healthy capacity');
    // Out of capacity: the next nearest to the pinned region's location answers (antarctica, 40 addresses).
    const next = await short(port, 'www.meridian.test', 'A', '+subnet=127.0.3.0/24');
    assert.deepEqual([next.length, next[0]], [40, '10.9.0.1']);
    health['ap-southeast']!.body = '';
    await until(() => m.global()!.status().regions.find((r) => r.name === 'ap-southeast')?.healthy === true, 5000, 'plain 200: full capacity');
  });

  it('works over TCP (+tcp) and retries a truncated UDP answer over TCP', async () => {
    assert.deepEqual(await short(port, '+tcp', 'www.meridian.test', 'A', '+subnet=127.0.1.0/24'), ['127.0.0.11']);
    const many = await short(port, '+noedns', 'many.meridian.test', 'A');
    assert.equal(many.length, 40, 'dig retried over TCP after TC');
    const noRetry = await dig(port, '+noedns', '+ignore', 'many.meridian.test', 'A');
    assert.match(noRetry, /flags: qr aa tc rd;/);
  });

  it('SOA, NS, NXDOMAIN and REFUSED', async () => {
    assert.deepEqual(await short(port, 'meridian.test', 'SOA'), ['ns1.meridian.test. hostmaster.meridian.test. 1 3600 600 604800 30']);
    assert.deepEqual(await short(port, 'meridian.test', 'NS'), ['ns1.meridian.test.']);
    assert.match(await dig(port, 'nope.meridian.test', 'A'), /status: NXDOMAIN/);
    assert.match(await dig(port, 'www.example.com', 'A'), /status: REFUSED/);
    const nodata = await dig(port, 'www.meridian.test', 'TXT');
    assert.match(nodata, /status: NOERROR/);
    assert.match(nodata, /ANSWER: 0, AUTHORITY: 1/);
  });

  it('keeps answering after random garbage and truncated packets', async () => {
    const sock = createSocket('udp4');
    const valid = Buffer.from('abcd01000001000000000000037777770c6d6572696469616e04746573740000010001', 'hex');
    for (let i = 0; i < 300; i++) {
      const junk = i % 3 === 0 ? valid.subarray(0, i % valid.length) : randomBytes(1 + (i % 700));
      await new Promise<void>((r) => sock.send(junk, port, '127.0.0.1', () => r()));
      // Sender and server share this process's event loop: pause now and then so the
      // server reads, rather than the flood overflowing its socket buffer (the kernel
      // would then drop whatever comes next, the test's own query included).
      if (i % 25 === 24) await new Promise((r) => setTimeout(r, 5));
    }
    sock.close();
    assert.deepEqual(await short(port, 'www.meridian.test', 'A', '+subnet=127.0.1.0/24'), ['127.0.0.11']);
    assert.deepEqual(await short(port, '+tcp', 'meridian.test', 'NS'), ['ns1.meridian.test.']);
  });
});
