/**
 * Two builds of Meridian side by side: the A/B behind each speed change of the engine.
 * Each build's `dist` serves the bench's proxy config (workers: 1) over the same two
 * nginx backends; wrk -t1 -c64 runs against them in turn, and the CPU each process used
 * per request is read from /proc. Medians over the runs (one unrecorded warm-up first).
 *
 *   git worktree add /tmp/base <rev> && (cd /tmp/base && npm install && npm run build)
 *   npm run build && node dist/bench/ab.bench.js /tmp/base/dist dist [--runs 5] [--node PATH]
 *
 * Needs nginx and wrk. A build is named by its dist directory; the same one twice shows
 * the noise between two processes of one build.
 *
 * `--tcp`: the listener is a tcp one (bytes passed through to the backends, one backend
 * connection per client connection) instead of the HTTP proxy: the tunnels' A/B.
 *
 * `--fresh`: a new process of each build for every run (started, warmed for 2 s, measured,
 * stopped). On this 2-core VM a process sometimes runs 20-25% slower for its whole life
 * (where it lands beside wrk and the backends, it seems); with one process per build that
 * one process decides the whole comparison, with a fresh one per run it is one run of many.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { meridianYaml, nginxBackendsConf } from './proxy/configs.js';
import { freePorts, ProcessGroup, waitReady, type Proc } from './proxy/procs.js';
import { parseWrk } from './proxy/wrk.js';
import { median } from './stats.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    node: { type: 'string', default: process.execPath },
    runs: { type: 'string', default: '5' },
    duration: { type: 'string', default: '4s' },
    fresh: { type: 'boolean', default: false },
    tcp: { type: 'boolean', default: false },
  },
});
if (positionals.length < 2) {
  console.error('usage: node dist/bench/ab.bench.js DIST_A DIST_B [DIST...] [--runs 5] [--duration 4s] [--fresh] [--tcp] [--node PATH]');
  process.exit(2);
}
const runs = Number(values.runs);

/** CPU time (user + system) of `pid`, in µs. */
function cpuUs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100; // CLK_TCK 100
}

const group = new ProcessGroup();
const dir = mkdtempSync(path.join(os.tmpdir(), 'meridian-ab-'));
try {
  mkdirSync(path.join(dir, 'tmp'));
  const ports = await freePorts(2 + 2 * positionals.length);
  const backends = ports.slice(0, 2);
  writeFileSync(path.join(dir, 'nginx.conf'), nginxBackendsConf(dir, backends));
  group.spawn('nginx', 'nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir, '-g', 'daemon off;']);
  const targets = positionals.map((dist, i) => {
    const port = ports[2 + 2 * i]!;
    const conf = path.join(dir, `m${i}.yaml`);
    const yaml = meridianYaml(port, ports[3 + 2 * i]!, backends, 1);
    // The same listener as a tcp one: no routes, its cluster named.
    writeFileSync(conf, values.tcp ? yaml.replace('    protocol: http\n    routes:\n      - cluster: backends\n', '    protocol: tcp\n    cluster: backends\n') : yaml);
    return { dist, port, conf, proc: undefined as Proc | undefined, rps: [] as number[], cpu: [] as number[] };
  });
  const start = async (t: (typeof targets)[number]): Promise<Proc> => {
    const proc = group.spawn(t.dist, values.node, [path.resolve(t.dist, 'src/cli/bin.js'), 'start', '-c', t.conf]);
    await waitReady(t.port, proc);
    return proc;
  };
  const load = (t: (typeof targets)[number], duration: string) => spawnSync('wrk', ['-t1', '-c64', `-d${duration}`, '--latency', `http://127.0.0.1:${t.port}/`]);
  if (!values.fresh) for (const t of targets) t.proc = await start(t);
  for (let r = values.fresh ? 1 : 0; r <= runs; r++) {
    for (const t of targets) {
      if (values.fresh) {
        t.proc = await start(t);
        load(t, '2s');
      }
      const pid = (t.proc as Proc).pid;
      const before = cpuUs(pid);
      const out = load(t, r === 0 ? '2s' : values.duration);
      const used = cpuUs(pid) - before;
      if (values.fresh) await group.stop(t.proc as Proc);
      const w = parseWrk(out.stdout.toString());
      if (w.non2xx > 0) console.log(`${t.dist}: ${w.non2xx} non-2xx answers`);
      if (r === 0) continue;
      t.rps.push(w.requestsPerSec);
      t.cpu.push(used / w.requests);
    }
  }
  const spawned = spawnSync(values.node, ['--version']).stdout.toString().trim();
  console.log(`Node ${spawned}; wrk -t1 -c64 -d${values.duration}, ${runs} interleaved runs${values.fresh ? ', a fresh process each' : ''}${values.tcp ? ', through a tcp listener' : ''}, medians`);
  for (const t of targets) {
    console.log(`${t.dist.padEnd(32)} ${median(t.rps).toFixed(0).padStart(7)} req/s  ${median(t.cpu).toFixed(1).padStart(5)} µs CPU/req  runs ${t.rps.map((n) => n.toFixed(0)).join(' ')}`);
  }
} finally {
  await group.stopAll();
  rmSync(dir, { recursive: true, force: true });
}
