// Part of `npm run build`: compiles native/udp-batch (the DNS responder's batched UDP
// engine, docs/dns-batching.md) into dist/native/udp_batch.node with the system's C
// compiler and the npm package node-api-headers; no node-gyp, no header download.
// N-API is ABI-stable, so the one file loads on every Node from 20 on. Without a C
// compiler it says so and builds nothing: Meridian then answers DNS with Node's dgram.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import process from 'node:process';

const root = join(import.meta.dirname, '..');
const source = join(root, 'native', 'udp-batch', 'udp_batch.c');
const out = join(root, 'dist', 'native', 'udp_batch.node');

if (process.platform !== 'linux') {
  process.stderr.write(`native udp-batch: skipped (recvmmsg and SO_ATTACH_REUSEPORT_CBPF are Linux's; this is ${process.platform}); DNS uses Node's dgram\n`);
  process.exit(0);
}
if (existsSync(out) && statSync(out).mtimeMs >= statSync(source).mtimeMs) process.exit(0);

const cc = ['cc', 'gcc', 'clang'].find((c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);
if (cc === undefined) {
  process.stderr.write('native udp-batch: skipped (no C compiler: cc, gcc or clang; on Debian `apt-get install gcc`); DNS uses Node\'s dgram\n');
  process.exit(0);
}
let headers;
try {
  headers = createRequire(import.meta.url)('node-api-headers').include_dir;
} catch {
  process.stderr.write('native udp-batch: skipped (the npm package node-api-headers is not installed: run npm install); DNS uses Node\'s dgram\n');
  process.exit(0);
}
mkdirSync(dirname(out), { recursive: true });
const r = spawnSync(cc, ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-Werror', `-I${headers}`, '-o', out, source], { stdio: 'inherit' });
if (r.status !== 0) {
  // A compiler that fails on this source is a defect to see, not a reason to fall back quietly.
  process.stderr.write(`native udp-batch: ${cc} failed (above)\n`);
  process.exit(1);
}
process.stderr.write(`native udp-batch: built ${join('dist', 'native', 'udp_batch.node')} with ${cc}\n`);
