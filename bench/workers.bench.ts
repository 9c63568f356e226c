/**
 * workers and worker_accept, side by side: Meridian with one worker, two with
 * round_robin, two with reuse_port (when the Node binary has it), over two nginx
 * backends, interleaved; wrk -t1 -c64 with kept-alive connections, then with
 * `Connection: close` (a connection per request). Prints the median req/s, CPU µs per
 * request (the whole process tree, from /proc) and p99 of each.
 *
 *   npm run build && node dist/bench/workers.bench.js [--node PATH] [--runs 3] [--duration 4s]
 *
 * Needs nginx and wrk. On a machine with few cores the extra worker competes with wrk
 * and the backends: read the ratios as what this machine gives, not as scaling.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { hasReusePort } from '../src/config/fields.js';
import { meridianYaml, nginxBackendsConf } from './proxy/configs.js';
import { freePorts, ProcessGroup, waitReady } from './proxy/procs.js';
import { parseWrk } from './proxy/wrk.js';
import { median } from './stats.js';

const { values } = parseArgs({
  options: {
    node: { type: 'string', default: process.execPath },
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '4s' },
  },
});
const runs = Number(values.runs);
const meridianBin = fileURLToPath(new URL('../src/cli/bin.js', import.meta.url));
const version = spawnSync(values.node, ['-p', 'process.versions.node']).stdout.toString().trim();

/** CPU time (user + system) of `pid` and its descendants, in µs. */
function treeCpuUs(pid: number): number {
  let us = 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    us = ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100; // CLK_TCK 100
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) us += treeCpuUs(Number(child));
  } catch {
    // gone meanwhile
  }
  return us;
}

const group = new ProcessGroup();
const dir = mkdtempSync(path.join(os.tmpdir(), 'meridian-workers-bench-'));
try {
  mkdirSync(path.join(dir, 'tmp'));
  const [b1, b2, ...ports] = await freePorts(8);
  const backends = [b1!, b2!];
  writeFileSync(path.join(dir, 'nginx.conf'), nginxBackendsConf(dir, backends));
  group.spawn('nginx', 'nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir, '-g', 'daemon off;']);
  const variants: { label: string; workers: number; accept: string }[] = [
    { label: 'workers: 1', workers: 1, accept: 'auto' },
    { label: 'workers: 2, round_robin', workers: 2, accept: 'round_robin' },
  ];
  if (hasReusePort(version)) variants.push({ label: 'workers: 2, reuse_port', workers: 2, accept: 'reuse_port' });
  const targets = [];
  for (const [i, v] of variants.entries()) {
    const port = ports[2 * i]!;
    const conf = path.join(dir, `m${i}.yaml`);
    writeFileSync(conf, meridianYaml(port, ports[2 * i + 1]!, backends, v.workers, v.accept));
    const proc = group.spawn(v.label, values.node, [meridianBin, 'start', '-c', conf]);
    await waitReady(port, proc);
    targets.push({ ...v, port, proc });
  }
  console.log(`Node ${version}, ${os.cpus().length} cores; wrk -t1 -c64 -d${values.duration}, ${runs} interleaved runs, medians`);
  for (const close of [false, true]) {
    const results = targets.map(() => ({ rps: [] as number[], cpu: [] as number[], p99: [] as number[] }));
    for (let r = 0; r <= runs; r++) {
      for (const [i, t] of targets.entries()) {
        const before = treeCpuUs(t.proc.pid);
        const out = spawnSync('wrk', ['-t1', '-c64', `-d${r === 0 ? '2s' : values.duration}`, '--latency', ...(close ? ['-H', 'Connection: close'] : []), `http://127.0.0.1:${t.port}/`]);
        const cpu = treeCpuUs(t.proc.pid) - before;
        const w = parseWrk(out.stdout.toString());
        if (w.non2xx > 0) console.log(`${t.label}: ${w.non2xx} non-2xx answers`);
        if (r === 0) continue; // warm-up
        results[i]!.rps.push(w.requestsPerSec);
        results[i]!.cpu.push(cpu / w.requests);
        results[i]!.p99.push(w.p99Ms);
      }
    }
    console.log(close ? '\nConnection: close (a connection per request)' : '\nkept-alive connections');
    const one = median(results[0]!.rps);
    for (const [i, t] of targets.entries()) {
      const x = results[i]!;
      const rps = median(x.rps);
      console.log(`  ${t.label.padEnd(26)} ${rps.toFixed(0).padStart(7)} req/s (${(rps / one).toFixed(2)}x)  ${median(x.cpu).toFixed(1).padStart(6)} µs CPU/req  p99 ${median(x.p99).toFixed(2)} ms  runs ${x.rps.map((n) => n.toFixed(0)).join(' ')}`);
    }
  }
} finally {
  await group.stopAll();
  rmSync(dir, { recursive: true, force: true });
}
